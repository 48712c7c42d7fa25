"""Build the starting world from a topology: every region serving, every instance healthy,
every DNS record pointing at its service's primary region, every region's quota limits as
the topology's ``emulator.region_quotas`` sets them."""

from __future__ import annotations

from emulator.databases import SpannerDatabase, SpannerInstance, SqlInstance
from emulator.state import (
    COMPUTE_URL,
    MACHINE_TYPE,
    Address,
    Backend,
    BackendService,
    Change,
    ForwardingRule,
    HealthCheck,
    ManagedGroup,
    RecordSet,
    TargetHttpProxy,
    UrlMap,
    World,
    Zone,
    new_fingerprint,
    rfc3339,
)
from evac.topology import Topology, gcp_regions
from providers.gcp.bindings import CloudDnsBinding

NAME_SERVERS = [f"ns-cloud-a{n}.googledomains.com." for n in range(1, 5)]


def seed_world(topology: Topology, now: float) -> World:
    project = topology.project
    world = World(project=project)
    world.region_quotas = {region: dict(limits) for region, limits in topology.emulator.region_quotas.items()}

    for service in topology.services.values():
        for region, binding in gcp_regions(service).items():
            group_zone = binding.instance_group_zone
            key = f"{group_zone or region}/{binding.instance_group}"
            if key not in world.groups:
                group = ManagedGroup(
                    name=binding.instance_group,
                    region=region,
                    zone=group_zone,
                    id=world.next_id(),
                    created_at=now,
                    fingerprint=new_fingerprint(),
                    target_size=0,
                    ordinal=len(world.groups),
                    machine_type=topology.emulator.machine_types.get(f"{region}/{binding.instance_group}", MACHINE_TYPE),
                )
                size_key = f"{region}/{binding.instance_group}"
                size = topology.emulator.group_sizes.get(size_key, topology.emulator.default_group_size)
                # The seeded instances exist whatever the region's quota (as on Google Cloud,
                # where lowering a quota below its usage deletes nothing).
                group.resize(size, now=now, warmup=0.0, world=world, within_quota=False)
                world.groups[key] = group

            regional = binding.backend_service_scope == "regional"
            services = world.region_backend_services if regional else world.backend_services
            service_key = f"{region}/{binding.backend_service}" if regional else binding.backend_service
            backend = services.get(service_key)
            if backend is None:
                check = HealthCheck(
                    name=f"{binding.backend_service}-hc",
                    id=world.next_id(),
                    created_at=now,
                    region=region if regional else None,
                )
                world.health_checks[f"{region}/{check.name}" if regional else check.name] = check
                location = f"regions/{region}" if regional else "global"
                backend = BackendService(
                    id=world.next_id(),
                    name=binding.backend_service,
                    self_link=f"{COMPUTE_URL}/projects/{project}/{location}/backendServices/{binding.backend_service}",
                    region=f"{COMPUTE_URL}/projects/{project}/regions/{region}" if regional else None,
                    creation_timestamp=rfc3339(now),
                    fingerprint=new_fingerprint(),
                    health_checks=[check.self_link(project)],
                )
                services[service_key] = backend
            url = binding.group_url(project, region)
            if all(b.group != url for b in backend.backends):
                backend.backends.append(Backend(group=url))

    seed_load_balancer_frontends(world, topology, now)

    for zone_name, zone_def in topology.dns_zones.items():
        zone = Zone(name=zone_name, dns_name=zone_def.dns_name, id=world.next_id(), created_at=now)
        zone.rrsets.append(
            RecordSet(
                name=zone_def.dns_name,
                type="SOA",
                ttl=21600,
                rrdatas=[f"{NAME_SERVERS[0]} cloud-dns-hostmaster.google.com. 1 21600 3600 259200 300"],
            )
        )
        zone.rrsets.append(RecordSet(name=zone_def.dns_name, type="NS", ttl=21600, rrdatas=list(NAME_SERVERS)))
        world.zones[zone_name] = zone

    for service in topology.services.values():
        primary = service.regions[service.primary_region]
        if not isinstance(service.dns, CloudDnsBinding):
            continue  # another provider's DNS: not Google's to serve
        zone = world.zones[service.dns.managed_zone]
        zone.rrsets.append(
            RecordSet(name=service.dns.record, type=service.dns.type, ttl=service.dns.ttl, rrdatas=[primary.address])
        )

    for zone in world.zones.values():
        zone.changes.append(Change(id="0", start_time=now, done_at=now, additions=list(zone.rrsets)))
    seed_databases(world, topology, now)
    return world


def seed_load_balancer_frontends(world: World, topology: Topology, now: float) -> None:
    """Per service and Google Cloud region, the address its DNS record holds when the region
    serves, reserved and in use by the forwarding rule that serves it:

    - a global backend service: a **global** address ``<backend_service>-<region>-ip`` and a
      **global** forwarding rule ``<backend_service>-<region>-fr`` labelled ``evac-region:
      <region>`` (a global rule has no region of its own), whose ``target`` is the backend
      service's target HTTP proxy ``<backend_service>-proxy``, whose URL map
      ``<backend_service>-map`` sends every request to the backend service (a global external
      Application Load Balancer with one address per region, as DNS chooses among them);
    - a regional backend service: a **regional** address and a **regional** forwarding rule, of
      the same names, in the region, whose ``backendService`` is the regional backend service,
      labelled ``evac-service: <service>`` (nothing else says which regions' backend services
      are one service's: ``evac discover`` joins them by it).

    The first binding of a (backend service, region) pair names its address; a second service
    sharing it adds nothing."""
    project = world.project
    for service_name, service in topology.services.items():
        for region, binding in gcp_regions(service).items():
            regional = binding.backend_service_scope == "regional"
            location = region if regional else None
            name = f"{binding.backend_service}-{region}"
            key = f"{region}/{name}-fr" if regional else f"{name}-fr"
            if key in world.forwarding_rules:
                continue
            base = f"{COMPUTE_URL}/projects/{project}"
            proxy = None if regional else _seed_http_proxy(world, binding.backend_service, service_name, now)
            rule = ForwardingRule(
                name=f"{name}-fr",
                id=world.next_id(),
                created_at=now,
                ip_address=binding.address,
                region=location,
                target=None if proxy is None else proxy.self_link(project),
                backend_service=f"{base}/regions/{region}/backendServices/{binding.backend_service}" if regional else None,
                description=f"{service_name} in {region}",
                labels={"evac-service": service_name} if regional else {"evac-region": region},
            )
            address = Address(
                name=f"{name}-ip",
                id=world.next_id(),
                created_at=now,
                address=binding.address,
                region=location,
                user=rule.self_link(project),
                description=f"{service_name} in {region}",
            )
            world.forwarding_rules[key] = rule
            world.addresses[f"{region}/{address.name}" if regional else address.name] = address


def _seed_http_proxy(world: World, backend_service: str, service_name: str, now: float) -> TargetHttpProxy:
    """The global backend service's target HTTP proxy ``<backend_service>-proxy`` and its URL map
    ``<backend_service>-map``, which sends every request to the backend service (made once)."""
    proxy = world.target_http_proxies.get(f"{backend_service}-proxy")
    if proxy is not None:
        return proxy
    project = world.project
    url_map = UrlMap(
        name=f"{backend_service}-map",
        id=world.next_id(),
        created_at=now,
        default_service=f"{COMPUTE_URL}/projects/{project}/global/backendServices/{backend_service}",
        fingerprint=new_fingerprint(),
        description=f"Every request to {service_name}",
    )
    proxy = TargetHttpProxy(
        name=f"{backend_service}-proxy",
        id=world.next_id(),
        created_at=now,
        url_map=url_map.self_link(project),
        fingerprint=new_fingerprint(),
        description=f"{service_name} over HTTP",
    )
    world.url_maps[url_map.name] = url_map
    world.target_http_proxies[proxy.name] = proxy
    return proxy


def seed_databases(world: World, topology: Topology, now: float) -> None:
    """Each service's Cloud SQL instances — the primary region's instance primary, the others its
    cross-region replicas, the first of them its DR replica — and its Spanner database, whose
    instance config spans the service's Google Cloud regions."""
    lags = topology.emulator.replication_lag
    for service in topology.services.values():
        if service.cloud_sql is not None:
            primary_region = service.cloud_sql.primary_region(service.primary_region)
            primary = service.cloud_sql.instances[primary_region]
            world.sql_instances[primary] = SqlInstance(name=primary, region=primary_region, created_at=now)
            for region, name in service.cloud_sql.instances.items():
                if name != primary:
                    replica = SqlInstance(name=name, region=region, master=primary, created_at=now, base_lag=lags.get(name, 0.0))
                    world.sql_instances[name] = replica
                    if world.sql_instances[primary].dr_replica is None:
                        world.sql_instances[primary].dr_replica = name
        if service.spanner is not None:
            binding = service.spanner
            regions = list(gcp_regions(service))
            instance = world.spanner_instances.get(binding.instance)
            if instance is None:
                instance = SpannerInstance(name=binding.instance, config=f"custom-{binding.instance}", regions=[], created_at=now)
                world.spanner_instances[binding.instance] = instance
            instance.regions += [r for r in regions if r not in instance.regions]
            world.spanner_databases[f"{binding.instance}/{binding.database}"] = SpannerDatabase(
                instance=binding.instance,
                name=binding.database,
                default_leader=binding.leader_region(service.primary_region),
                created_at=now,
            )
