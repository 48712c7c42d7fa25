"""The emulator's FastAPI application: Compute Engine and Cloud DNS routes, the admin API,
Google-shaped errors, injected faults, and the request log around every API call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response

from emulator import (
    admin,
    backend_services,
    cloudsql,
    dns,
    frontends,
    iam,
    instance_groups,
    monitoring,
    operations,
    regions,
    replica_lag,
    spanner,
    templates,
    traffic,
)
from emulator.core import Emulator, Settings
from emulator.errors import ApiError, install_error_handlers, unexpected_error
from emulator.load import SimulatedLoad
from emulator.nameserver import start_name_server
from emulator.persistence import StateFileError, StateStore
from emulator.requestlog import APPLIED, LoggedRequest, is_api_call, is_mutation
from emulator.seed import seed_world
from emulator.state import rfc3339
from evac.topology import Topology

Handler = Callable[[Request], Awaitable[Response]]

GOOGLE_API_ROUTERS = (
    backend_services.router,
    instance_groups.router,
    operations.router,
    regions.router,
    frontends.router,
    templates.router,
    dns.router,
    cloudsql.router,
    spanner.router,
    replica_lag.router,
    iam.router,
)
"""The routers serving Google's APIs (the contract tests check each of their routes)."""


def create_app(
    topology: Topology,
    *,
    operation_delay: float = 0.5,
    warmup: float = 2.0,
    state_file: str | Path | None = None,
    wait_deadline: float = 120.0,
    dns_address: tuple[str, int] | None = None,
    clock: Callable[[], float] = time.time,
    write_quota_per_second: int | None = None,
    write_quota_per_minute: int | None = None,
    call_latency: float = 0.0,
) -> FastAPI:
    """An emulator seeded from ``topology``, or resumed from ``state_file`` when that exists.

    ``operation_delay``: seconds an operation or DNS change takes to be DONE;
    ``warmup``: seconds a new instance takes to serve;
    ``state_file``: JSON file the world is saved to after every change (written off the event loop);
    ``wait_deadline``: longest an ``operations.wait`` call blocks (Google: about 2 minutes);
    ``dns_address``: (host, UDP port) for a name server answering from the managed zones,
    started with the app (port 0: any free port, then in ``app.state.dns_address``);
    ``clock``: the emulator's time (a test can move it to count the simulated load exactly);
    ``write_quota_per_second`` / ``write_quota_per_minute``: the project's write quota, each
    None for no limit (``emulator/quota.py``); ``call_latency``: seconds added before
    answering every Compute and DNS call. Both can be changed at run time (admin API).
    Raises ``StateFileError`` when ``state_file`` is not a state file of this topology.
    """
    store = StateStore(state_file) if state_file is not None else None
    world = (store.load() if store else None) or seed_world(topology, clock())
    if world.project != topology.project:
        raise StateFileError(f"{state_file} holds project '{world.project}', the topology '{topology.project}'")
    emulator = Emulator(
        topology=topology,
        world=world,
        settings=Settings(
            operation_delay=operation_delay,
            warmup=warmup,
            wait_deadline=wait_deadline,
            write_quota_per_second=write_quota_per_second,
            write_quota_per_minute=write_quota_per_minute,
            call_latency=call_latency,
        ),
        store=store,
        clock=clock,
    )
    emulator.save_now()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if dns_address is None:
            yield
            return
        transport = await start_name_server(emulator, *dns_address)
        app.state.dns_address = transport.get_extra_info("sockname")[:2]
        try:
            yield
        finally:
            transport.close()

    app = FastAPI(title="Evac Google Cloud emulator", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.emulator = emulator
    # The simulated clients' requests, counted up to each call the emulator serves.
    load = app.state.load = SimulatedLoad(emulator, since=emulator.now())
    install_error_handlers(app)
    for router in (*GOOGLE_API_ROUTERS, admin.router, iam.admin_router, traffic.router, monitoring.router):
        app.include_router(router)

    @app.middleware("http")
    async def around_every_call(request: Request, call_next: Handler) -> Response:
        path, method = request.url.path, request.method
        if not is_api_call(path):
            load.advance()
            response = await _serve(request, call_next)
            if method != "GET" and response.status_code < 400:
                await emulator.save()
            return response

        mutation = is_mutation(method, path)
        strike = emulator.faults.strike(method, path)
        delay = strike.latency + emulator.latency.of(mutation)
        if delay:
            await asyncio.sleep(delay)
        request.state.operation_fault = strike.operation
        # When the emulator takes the call in: what the write quota counts and the log shows.
        taken_in = time.time()
        refusal = strike.error or _regional_api_outage(emulator, path) or iam.permission_refusal(emulator, method, path)
        if refusal is None and mutation:
            refusal = emulator.quota.admit(taken_in)
        if refusal is not None:
            request.state.error_reason = refusal.reason
            response = refusal.response()
        else:
            load.advance()
            response = await _serve(request, call_next)

        effect = None
        if mutation and response.status_code < 400:
            await emulator.save()
            effect = getattr(request.state, "effect", APPLIED)
        elif mutation:
            effect = f"refused: {response.status_code} {getattr(request.state, 'error_reason', '')}".strip()
        emulator.requests.record(
            LoggedRequest(
                time=rfc3339(taken_in),
                method=method,
                path=path,
                requestId=request.query_params.get("requestId"),
                status=response.status_code,
                effect=effect,
                faults=strike.fault_ids,
            )
        )
        return response

    return app


async def _serve(request: Request, call_next: Handler) -> Response:
    try:
        return await call_next(request)
    except Exception as exc:  # noqa: BLE001 - a bug must still answer in Google's shape
        return unexpected_error(request, exc)


def _regional_api_outage(emulator: Emulator, path: str) -> ApiError | None:
    """A region whose API is down refuses calls about its resources (a Cloud SQL instance's
    calls too: the instance, or its operation, is in the region)."""
    world = emulator.world
    if not world.api_outages:
        return None
    sql_region = cloudsql.instance_region(emulator, path)
    for region in world.api_outages:
        if f"/regions/{region}/" in path or f"/zones/{region}-" in path or sql_region == region:
            return ApiError(503, "backendError", f"The service is currently unavailable in {region} (emulated outage).")
    return None
