"""The readiness check's reads: what one service of a plan would meet if it ran now.

Every call here is a read (the request log proves it: ``tests/e2e/test_readiness_e2e.py``),
through the same providers the steps use. A resource that refuses to be read (404, 403) is a
``not_ready`` finding; one whose API does not answer (after the usual in-place retries) is a
warning: readiness unknown. The source region's own resources get ``retries.source_deadline``
as the runs do, so a dead region costs an evaluation no more than a run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities import budget
from activities.errors import provider_call, worth_repeating
from evac import bindings, workflow_types
from evac.discovery import checked, compare
from evac.drills import capacity_proof
from evac.logging import step_logging
from evac.permissions import STEP_PERMISSIONS, StepKind, permissions_for
from evac.plan import (
    DrainStep,
    ScaleTargetStep,
    ShiftDnsStep,
    SpannerLeaderStep,
    SqlPromoteReplicaStep,
    SqlSwitchoverStep,
    Step,
    VerifyHealthStep,
)
from evac.readiness import (
    EVALUATE_READINESS,
    LAST_PASSED_DRILL,
    MEMO_STATES,
    PREVIOUS_READINESS,
    DrillSeen,
    EvaluateService,
    Finding,
    LastPassedDrill,
    PreviousReadiness,
    PreviousStates,
    ServiceCheck,
    Severity,
    State,
)
from evac.refs import ResourceRef
from evac.resources import HealthReport
from providers.gcp.bindings import CloudDnsBinding, GcpRegionBinding
from providers.registry import Providers

T = TypeVar("T")


class ReadinessActivities:
    """``temporal_client``: the worker's own, to read a schedule's previous evaluation (None: unknown)."""

    def __init__(self, providers: Providers, temporal_client: Client | None = None):
        self._providers = providers
        self._temporal = temporal_client

    @activity.defn(name=PREVIOUS_READINESS)
    async def previous_readiness(self, input: PreviousReadiness) -> PreviousStates:
        """The plans' states at the schedule's latest evaluation that has ended (from its memo)."""
        if self._temporal is None:
            raise ApplicationError("this worker has no Temporal client to read earlier evaluations with", non_retryable=True)
        query = (
            f"WorkflowType = '{workflow_types.READINESS}' AND EvacScheduleId = '{input.schedule_id}' "
            "AND ExecutionStatus = 'Completed'"
        )
        async for run in self._temporal.list_workflows(query, limit=1):
            states: dict[str, State] = await run.memo_value(MEMO_STATES, {})
            return PreviousStates(states=states)
        return PreviousStates(states=None)

    @activity.defn(name=LAST_PASSED_DRILL)
    async def last_passed_drill(self, input: LastPassedDrill) -> DrillSeen:
        """The service's newest drill that passed, as the runs' search attributes say."""
        if self._temporal is None:
            raise ApplicationError("this worker has no Temporal client to find drills with", non_retryable=True)
        query = (
            f"EvacKind = 'drill' AND EvacService = '{input.service}' AND EvacOutcome = 'passed' "
            "AND ExecutionStatus != 'ContinuedAsNew'"
        )
        async for run in self._temporal.list_workflows(query, limit=1):
            return DrillSeen(at=run.close_time or run.start_time, workflow_id=run.id)
        return DrillSeen()

    @activity.defn(name=EVALUATE_READINESS, no_thread_cancel_exception=True)
    def evaluate_readiness(self, input: EvaluateService) -> ServiceCheck:
        """Read what a run of ``input.plan`` for ``input.service`` would touch; change nothing."""
        with step_logging(input.context):
            return _Evaluation(self._providers, input).run()


class _Evaluation:
    def __init__(self, providers: Providers, input: EvaluateService) -> None:
        self.providers = providers
        self.input = input
        self.plan = input.plan
        self.check = ServiceCheck()

    def find(self, resource: object, severity: Severity, text: str) -> None:
        self.check.findings.append(Finding(service=self.input.service, resource=str(resource), severity=severity, text=text))

    def read(self, ref: ResourceRef, what: str, call: Callable[[], T]) -> T | None:
        """``call()``, or None with a finding: refused is not ready, unanswered a warning."""
        source = ref.control_plane == self.plan.source
        seconds = self.plan.retries.source_deadline.total_seconds() if source else None
        if seconds == 0:  # retries.source_deadline 0: a run never calls the source's API, nor does this
            self.check.checked.append(f"{ref}: {what} not read (the plan never calls {self.plan.source}'s API)")
            return None
        try:
            with budget.within(seconds), provider_call():
                return call()
        except Exception as exc:  # noqa: BLE001 - every failure to read is a finding
            text = exc.message if isinstance(exc, ApplicationError) else str(exc)
            if worth_repeating(exc):
                self.find(ref, "warning", f"{what} got no answer, so its readiness is unknown: {text}")
            else:
                self.find(ref, "not_ready", f"{what} is refused: {text}")
            return None

    def read_global(self, resource: str, what: str, call: Callable[[], T]) -> T | None:
        """:meth:`read` of something no region serves (a project's IAM)."""
        try:
            with provider_call():
                return call()
        except Exception as exc:  # noqa: BLE001 - every failure to read is a finding
            text = exc.message if isinstance(exc, ApplicationError) else str(exc)
            severity: Severity = "warning" if worth_repeating(exc) else "not_ready"
            verb = "got no answer, so its readiness is unknown" if severity == "warning" else "is refused"
            self.find(resource, severity, f"{what} {verb}: {text}")
            return None

    def run(self) -> ServiceCheck:
        plan, project, topology = self.plan, self.input.project, self.input.topology
        providers, check = self.providers, self.check
        healthy: dict[str, HealthReport] = {}
        for region in dict.fromkeys([plan.source, plan.target]):
            backend = bindings.backend_ref(project, topology, region)
            traffic = providers.traffic(backend)
            share = self.read(backend, "its share", lambda: traffic.read_share(backend))  # noqa: B023 - called at once
            health = self.read(backend, "its health", lambda: traffic.read_health(backend))  # noqa: B023
            if share is not None and health is not None:
                healthy[region] = health
                check.checked.append(f"{backend}: {share.summary()}, {health.summary()}")
            if region == plan.target and share is not None and share.capacity_scaler == 0:
                self.find(backend, "not_ready", f"the target {region} is drained itself: it would take no traffic")
        self._capacity(healthy)
        self._front_ends()
        self._quota()
        if any(isinstance(step, ShiftDnsStep) for step in plan.steps):
            self._dns()
        self._databases()
        self._permissions()
        self._drift()
        return check

    def _provider_of(self, step: Step) -> str | None:
        """Which provider serves what ``step`` acts on (None: nothing, or not this service)."""
        plan, project, topology = self.plan, self.input.project, self.input.topology
        if not getattr(step, "applies_to", lambda _: True)(self.input.service):
            return None
        ref: ResourceRef | None
        if isinstance(step, ScaleTargetStep):
            groups = bindings.group_refs(project, topology, [plan.target])
            ref = groups[0] if groups else None
        elif isinstance(step, (DrainStep, VerifyHealthStep)):
            default = plan.source if isinstance(step, DrainStep) else plan.target
            ref = bindings.backend_ref(project, topology, step.region or default)
        elif isinstance(step, ShiftDnsStep):
            ref = bindings.dns_record_ref(project, topology)
        else:
            return "gcp" if step.kind in STEP_PERMISSIONS else None  # the data steps: Cloud SQL, Spanner
        return None if ref is None else str(getattr(ref, "provider", "gcp"))

    def _permissions(self) -> None:
        """The worker's own credentials hold every Google Cloud permission the plan's steps need
        (``testIamPermissions``), so that a run cannot fail halfway for a 403."""
        plan, project, topology = self.plan, self.input.project, self.input.topology
        kinds: dict[StepKind, None] = {}
        for step in plan.steps:
            if step.kind in STEP_PERMISSIONS and self._provider_of(step) == "gcp":
                kinds[step.kind] = None  # type: ignore[index]
        if not kinds:
            return
        regional = any(
            getattr(topology.regions[r], "backend_service_scope", "global") == "regional" for r in (plan.source, plan.target)
        )
        needed = permissions_for(kinds, regional_backend_service=regional)
        iam = self.providers.gcp.iam
        where = f"project {project}"
        missing = self.read_global(where, "the worker's permissions", lambda: iam.missing(project, needed))
        if missing is None:
            return
        if missing:
            users = {p: [k for k in kinds if p in permissions_for([k], regional_backend_service=regional)] for p in missing}
            lacks = "; ".join(f"{p} (for {', '.join(users[p])})" for p in missing)
            self.find(where, "not_ready", f"the worker's credentials lack {lacks}: a run would fail there with 403")
        else:
            self.check.checked.append(f"{where}: the worker holds all {len(needed)} permissions the plan's steps need")

    def _capacity(self, healthy: dict[str, HealthReport]) -> None:
        plan = self.plan
        source, target = healthy.get(plan.source), healthy.get(plan.target)
        if target is None or source is None:
            return
        backend = bindings.backend_ref(self.input.project, self.input.topology, plan.target)
        enough, proof = capacity_proof(plan, source.healthy, target.healthy)
        if enough:
            self.check.checked.append(proof)
        else:
            self.find(backend, "not_ready", proof)

    def _front_ends(self) -> None:
        """Each region's address (what the record holds when it serves) is served by a forwarding
        rule of its load balancing: the target's must be, or a DNS shift would send clients nowhere."""
        plan, project, topology = self.plan, self.input.project, self.input.topology
        for region in dict.fromkeys([plan.source, plan.target]):
            backend = bindings.backend_ref(project, topology, region)
            if getattr(backend, "provider", "gcp") != "gcp":
                continue
            address = topology.regions[region].address
            traffic = self.providers.gcp.traffic
            rule = self.read(backend, "its forwarding rules", lambda: traffic.front_end(backend, address))  # noqa: B023
            if rule is not None:
                self.check.checked.append(f"{region}'s address {address}: served by forwarding rule {rule}")
                continue
            if self.check.findings and self.check.findings[-1].text.startswith("its forwarding rules"):
                continue  # unread: already a finding
            severity: Severity = "not_ready" if region == plan.target else "warning"
            self.find(backend, severity, f"no forwarding rule serves {region}'s address {address} (the topology's)")

    def _quota(self) -> None:
        plan, project, topology = self.plan, self.input.project, self.input.topology
        scale_to = max((s.min_size for s in plan.steps if isinstance(s, ScaleTargetStep)), default=None)
        groups = bindings.group_refs(project, topology, [plan.target])
        if scale_to is None or not groups:
            return
        [group] = groups
        capacity = self.providers.capacity(group)
        size = self.read(group, "its size", lambda: capacity.read_size(group))
        rooms = [
            self.read(group, "its region's instance quota", lambda: capacity.room(group)),
            self.read(group, "its region's CPU quota", lambda: capacity.cpu_room(group)),
        ]
        if size is None or None in rooms:
            return
        more = max(0, scale_to - size.target_size)
        short = [room for room in rooms if room is not None and room.room is not None and more > room.room]
        if short:
            quotas = "; ".join(f"{room.text}: room for {room.room}" for room in short)
            self.find(group, "not_ready", f"the scale-up to {scale_to} needs {more} more instances; {quotas}")
        else:
            texts = "; ".join(room.text for room in rooms if room is not None)
            self.check.checked.append(f"{group}: size {size.target_size}, the scale-up to {scale_to} fits ({texts})")

    def _dns(self) -> None:
        project, topology = self.input.project, self.input.topology
        ref = bindings.dns_record_ref(project, topology)
        dns = self.providers.dns(ref)
        record = self.read(ref, "the record", lambda: dns.read_record(ref))
        if record is None:
            return
        addresses = {binding.address: region for region, binding in topology.regions.items()}
        if not record.exists:
            self.find(ref, "not_ready", "there is no such record: a DNS shift would have nothing to change")
            return
        strangers = [value for value in record.rrdatas if value not in addresses]
        if strangers:
            known = ", ".join(f"{a} ({r})" for a, r in addresses.items())
            self.find(ref, "not_ready", f"holds {', '.join(strangers)}, which is no region's address of the service ({known})")
            return
        serving = ", ".join(addresses[value] for value in record.rrdatas)
        self.check.checked.append(f"{ref}: {record.summary()} (serving: {serving})")

    def _drift(self) -> None:
        """The topology file against the cloud, as ``evac topology diff`` compares them, in the
        plan's two regions: each difference is a warning (what it breaks, the checks above say)."""
        plan, project, service = self.plan, self.input.project, self.input.service
        topology = self.input.topology
        regions = [r for r in dict.fromkeys([plan.source, plan.target]) if isinstance(topology.regions[r], GcpRegionBinding)]
        if not isinstance(topology.dns, CloudDnsBinding) or len(regions) < 2:
            return  # not Google Cloud's alone: discovery reads Google Cloud's load balancing and DNS
        where = "topology"
        deadline = plan.retries.source_deadline.total_seconds()
        if deadline == 0:
            self.check.checked.append(f"{where}: drift not read (the plan never calls {plan.source}'s API)")
            return
        discovery = self.providers.gcp.discovery
        try:
            # The source region's own reads within the plan's source deadline, as a run's.
            with provider_call():
                reading = (activity.info().workflow_run_id if activity.in_activity() else None) or ""
                found = checked(discovery.shared(reading, project, regions, {plan.source: deadline}))
        except Exception as exc:  # noqa: BLE001 - a failure to read is a finding
            text = exc.message if isinstance(exc, ApplicationError) else str(exc)
            self.find(where, "warning", f"its drift from the cloud could not be read: {text}")
            return
        result = compare({service: topology}, found, whole=False)
        for drift in result.drift:
            self.find(f"{where} {drift.where}" if drift.where else where, "warning", f"drift: {drift.text}")
        if not result.drift:
            self.check.checked.append(f"{where}: as the cloud has it in {' and '.join(regions)} (no drift)")
        self.check.checked += [f"{where}: {note.removeprefix(f'{service}: ')}" for note in result.notes]
        self.check.checked += [f"{where}: {region}'s own API was not read ({why})" for region, why in found.unread.items()]

    def _databases(self) -> None:
        plan, project, topology, service = self.plan, self.input.project, self.input.topology, self.input.service
        for step in plan.steps:
            if not getattr(step, "applies_to", lambda _: False)(service):
                continue
            if isinstance(step, (SqlSwitchoverStep, SqlPromoteReplicaStep)):
                primary = bindings.database_ref(project, topology, plan.source)
                replica = bindings.database_ref(project, topology, step.region or plan.target)
                databases = self.providers.databases(replica)
                role = self.read(replica, "its role", lambda: databases.read_role(replica))  # noqa: B023
                if role is None:
                    continue
                if role.role == "absent":
                    self.find(replica, "not_ready", f"there is no such instance: the {step.kind} step has nothing to act on")
                elif role.role == "primary":
                    self.find(replica, "warning", f"is a primary already: the {step.kind} step would change nothing")
                elif role.replicates != primary.name:
                    self.find(replica, "not_ready", f"replicates {role.replicates}, not {primary.name} as the topology says")
                else:
                    self.check.checked.append(f"{replica}: {role.summary()}")
            elif isinstance(step, SpannerLeaderStep):
                ref = bindings.leader_ref(project, topology)
                leaders = self.providers.leaders(ref)
                leader = self.read(ref, "its leader", lambda: leaders.read_leader(ref))  # noqa: B023
                if leader is not None:
                    self.check.checked.append(f"{ref}: {leader.summary()}")
