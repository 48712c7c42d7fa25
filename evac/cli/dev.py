"""Dev-stack commands: ``evac worker``, ``evac emulator serve``, ``evac dev up``, ``evac dev webhook``,
``evac demo``."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import typer

from evac.cli.base import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_UNAVAILABLE,
    Output,
    State,
    address_option,
    connection,
    err,
    fail,
    fail_with,
    namespace_option,
    out,
    run_async,
    settings,
)
from evac.cli.run import failover_run
from evac.config import Settings, connect_temporal
from evac.control import load_documents
from evac.documents import InvalidDocument
from evac.errors import BadInput, FrontDoorError
from evac.plan import Plan
from evac.runs import Trigger
from evac.stack import ROOT, Stack, StackConfig, StackError
from evac.topology import Topology, gcp_regions, load_topology

DEMO_DIR = ROOT / "plans" / "demo"
WATCH_SECONDS = 0.5


def worker(address: str = address_option(), namespace: str = namespace_option()) -> None:
    """Run a worker (the same as 'python worker.py'); stop with Ctrl-C or SIGTERM."""
    import worker as worker_module

    connection(address, namespace)
    try:
        worker_module.main(State.address, State.namespace)
    except FrontDoorError as exc:
        fail_with(exc)


def _port_taken(host: str, port: int) -> str | None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def emulator_serve(
    topology: Path = typer.Option(None, "--topology", "-t", help="Topology YAML the world is seeded from"),
    generate: int = typer.Option(None, "--generate", help="Serve a generated topology of N services (instead of --topology)"),
    generated_topology_out: Path = typer.Option(
        None, "--generated-topology-out", help="With --generate: also write the topology YAML to this file"
    ),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8480, "--port", min=1, max=65535),
    operation_delay: float = typer.Option(0.5, "--operation-delay", min=0, help="Seconds until an operation is DONE"),
    warmup: float = typer.Option(2.0, "--warmup", min=0, help="Seconds until a new instance is HEALTHY"),
    state_file: Path = typer.Option(None, "--state-file", help="JSON file that keeps the world across restarts"),
    wait_deadline: float = typer.Option(
        120.0, "--wait-deadline", min=0, help="Longest an operations.wait call blocks (Google: about 2 min)"
    ),
    dns_port: int = typer.Option(None, "--dns-port", min=1, max=65535, help="Also answer DNS queries on this UDP port"),
    write_quota_per_second: int = typer.Option(
        None, "--write-quota-per-second", min=1, help="Most writes the project may make per second (default: no limit)"
    ),
    write_quota_per_minute: int = typer.Option(
        None, "--write-quota-per-minute", min=1, help="Most writes the project may make per minute (default: no limit)"
    ),
    call_latency: float = typer.Option(
        0.0, "--call-latency", min=0, max=60, help="Seconds added before answering every Compute and DNS call"
    ),
) -> None:
    """Serve the Google Cloud emulator (Compute + Cloud DNS subset, admin API) for a topology."""
    from emulator.persistence import StateFileError
    from emulator.server import serve

    try:
        world = _emulator_world(topology, generate, generated_topology_out)
    except (InvalidDocument, BadInput) as exc:
        fail_with(exc)
    taken = _port_taken(host, port)
    if taken:
        fail(
            f"cannot serve the emulator on {host}:{port}: {taken.lower()} "
            "(another emulator or 'evac dev up'? choose another --port)",
            EXIT_UNAVAILABLE,
        )
    try:
        serve(
            world,
            host,
            port,
            operation_delay=operation_delay,
            warmup=warmup,
            state_file=state_file,
            wait_deadline=wait_deadline,
            dns_port=dns_port,
            write_quota_per_second=write_quota_per_second,
            write_quota_per_minute=write_quota_per_minute,
            call_latency=call_latency,
        )
    except InvalidDocument as exc:
        fail_with(exc)
    except StateFileError as exc:
        fail(str(exc), EXIT_BAD_INPUT)


def _emulator_world(topology: Path | None, generate: int | None, out: Path | None) -> Topology:
    """The topology ``evac emulator serve`` serves: read from ``--topology`` or generated
    (and then also written to ``out``)."""
    if topology is not None and generate is not None:
        raise BadInput("--topology and --generate both name the world to serve; give one of them")
    if topology is None and generate is None:
        raise BadInput("name the world to serve: --topology FILE, or --generate N for a generated one")
    if out is not None and generate is None:
        raise BadInput("--generated-topology-out writes a generated topology: it needs --generate N")
    if topology is not None:
        return load_topology(topology)
    assert generate is not None
    document, world = _generated(generate, "--generate")
    if out is not None:
        _write_topology(document, out, "--generated-topology-out")
    return world


def _generated(
    services: int, flag: str | None, regions: str | None = None, project: str | None = None
) -> tuple[dict[str, Any], Topology]:
    """A generated topology of ``services`` services: its document and the validated model."""
    from emulator.generate import DEFAULT_PROJECT, DEFAULT_REGIONS, generate_topology, validated

    region_list = [r.strip() for r in regions.split(",")] if regions is not None else list(DEFAULT_REGIONS)
    try:
        document = generate_topology(services, region_list, project or DEFAULT_PROJECT)
        return document, validated(document)
    except ValueError as exc:
        raise BadInput(f"{flag}: {exc}" if flag else str(exc)) from None


def _write_topology(document: dict[str, Any], path: Path, flag: str) -> None:
    from emulator.generate import topology_yaml

    try:
        path.write_text(topology_yaml(document))
    except OSError as exc:
        raise BadInput(f"{flag} {path}: cannot write the generated topology there: {exc.strerror or exc}") from None


def emulator_generate(
    services: int = typer.Argument(..., help="How many services the topology has"),
    output_file: Path = typer.Option(None, "--output-file", "-o", help="Write the YAML here (default: standard output)"),
    regions: str = typer.Option(
        "europe-west1,us-central1,asia-east1", "--regions", help="Comma-separated regions each service is served in"
    ),
    project: str = typer.Option("evac-gen", "--project", help="The project id of the generated world"),
) -> None:
    """Write a generated topology of N services (each served in every region, one DNS zone) as YAML."""
    from emulator.generate import topology_yaml

    try:
        document, _ = _generated(services, None, regions, project)
        if output_file is None:
            sys.stdout.write(topology_yaml(document))
        else:
            _write_topology(document, output_file, "--output-file")
    except BadInput as exc:
        fail_with(exc)


def _start_stack(config: StackConfig) -> Stack:
    stack = Stack(config)
    with err.status("starting Temporal dev server, emulator and worker…"):
        try:
            stack.start()
        except StackError as exc:
            fail(str(exc), EXIT_UNAVAILABLE)
    return stack


def _watch(stack: Stack | None) -> str | None:
    """Wait for Ctrl-C or SIGTERM (None), or for a process of the stack to exit (which one)."""
    stop = asyncio.Event()

    async def wait() -> str | None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        while not stop.is_set():
            exited = stack.exited() if stack else None
            if exited:
                name, code = exited
                return f"the {name} exited (status {code}); see {stack.log_path(name) if stack else ''}"
            try:
                await asyncio.wait_for(stop.wait(), WATCH_SECONDS)
            except TimeoutError:
                pass
        return None

    return asyncio.run(wait())


def dev_up(
    topology: Path = typer.Option(
        DEMO_DIR / "topology.yaml",
        "--topology",
        "-t",
        help="Topology the emulator serves (and, for its on-premises bindings, Debian's BIND 9 and HAProxy)",
    ),
    state_dir: Path = typer.Option(
        Path(".evac"), "--state-dir", help="Where the Temporal SQLite file, logs, on-premises configs and TSIG keys go"
    ),
    ui: bool = typer.Option(True, "--ui/--headless", help="Serve the Temporal Web UI"),
    temporal_port: int = typer.Option(7233, "--temporal-port", min=1, max=65535),
    ui_port: int = typer.Option(8233, "--ui-port", min=1, max=65535),
    emulator_port: int = typer.Option(8480, "--emulator-port", min=1, max=65535),
) -> None:
    """Start the embedded stack and keep it up until Ctrl-C; stops at once, saying so, if a
    piece of it dies (exit 4)."""
    try:
        load_topology(topology)
    except InvalidDocument as exc:
        fail_with(exc)
    config = StackConfig(
        topology=topology, state_dir=state_dir, ui=ui, temporal_port=temporal_port, ui_port=ui_port, emulator_port=emulator_port
    )
    stack = _start_stack(config)
    died: str | None = None
    try:
        pids = ", ".join(f"{name} {process.pid}" for name, process in stack.processes.items())
        out.print(f"[green]embedded stack is up[/] (pids: {pids}; logs in {stack.log_dir})", highlight=False)
        if ui:
            out.print(f"  Temporal Web UI  {config.ui_url}", highlight=False)
        out.print("  use it from another shell:", highlight=False)
        for key, value in config.client_env().items():
            out.print(f"    export {key}={value}", highlight=False)
        out.print("  press Ctrl-C to stop", highlight=False)
        died = _watch(stack)
    finally:
        with err.status("stopping…"):
            stack.stop()
    if died:
        fail(f"{died}; stopped the rest of the stack", EXIT_UNAVAILABLE)
    out.print("stopped", highlight=False)


def dev_webhook(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(9000, "--port", min=1, max=65535),
    status: int = typer.Option(
        200, "--status", min=200, max=599, help="Answer every POST with this (500: rehearse a failing receiver)"
    ),
    output: Output = typer.Option(
        Output.text, "--output", "-o", help="text: one summary line each; json: each body as one JSON line"
    ),
) -> None:
    """Receive notifications on a local webhook and print each one, until Ctrl-C (point
    EVAC_NOTIFY_WEBHOOK_URL or EVAC_SLACK_WEBHOOK_URL of the worker at it)."""
    import json
    import threading
    from datetime import datetime

    from evac.dev_webhook import make_server, summary

    taken = _port_taken(host, port)
    if taken:
        fail(f"cannot receive on {host}:{port}: {taken.lower()} (choose another --port)", EXIT_UNAVAILABLE)
    lock = threading.Lock()

    def received(_path: str, body: Any) -> None:
        with lock:
            if output == Output.json:
                out.print(json.dumps(body, separators=(",", ":")), highlight=False, soft_wrap=True, markup=False)
            else:
                out.print(f"{datetime.now():%H:%M:%S}  {summary(body)}", highlight=False, soft_wrap=True)

    server = make_server(host, port, status, received)
    thread = threading.Thread(target=server.serve_forever, name="webhook", daemon=True)
    thread.start()
    err.print(f"receiving notifications on http://{host}:{port}/ (answering {status}); Ctrl-C stops", highlight=False)
    try:
        _watch(None)
    finally:
        server.shutdown()
        server.server_close()
    err.print("stopped", highlight=False)


def demo(
    keep: bool = typer.Option(False, "--keep", help="Keep the stack (and Web UI) up after the run until Ctrl-C"),
    state_dir: Path = typer.Option(Path(".evac/demo"), "--state-dir", help="Where the demo's Temporal file and logs go"),
) -> None:
    """Start the embedded stack, fail the demo services over, show the outcome, stop."""
    try:
        plan, topology = load_documents(DEMO_DIR / "failover.yaml", DEMO_DIR / "topology.yaml")
    except InvalidDocument as exc:
        fail_with(exc)
    config = StackConfig(topology=DEMO_DIR / "topology.yaml", state_dir=state_dir, fresh_history=True)
    base = settings()
    demo_settings = Settings(
        task_queue=config.task_queue,
        gcp_endpoint=config.emulator_url,
        temporal_ui=config.ui_url,
        identity=base.identity,
        worker_wait=base.worker_wait,
    )
    stack = _start_stack(config)
    code = EXIT_INTERRUPTED
    try:
        out.print(
            f"[bold]Evac demo[/]: plan '{plan.name}' fails {', '.join(plan.services)} over from {plan.source} to {plan.target}",
            highlight=False,
        )
        lasts = "" if keep else " (while the demo runs: 'evac demo --keep' keeps them up after it)"
        out.print(f"Temporal Web UI: {config.ui_url}   emulator: {config.emulator_url}{lasts}", highlight=False)
        trigger = Trigger(kind="manual", by=demo_settings.identity, reason="make demo")

        async def go() -> int:
            client = await connect_temporal(config.temporal_address, "default", identity=demo_settings.identity)
            # The worker was just started here: it may not have polled yet, and need not have.
            return await failover_run(
                plan, topology, trigger, demo_settings, wait=True, output=Output.text, require_worker=False, connected=client
            )

        code = run_async(go)
        _show_world(config, plan, topology)
        if keep:
            out.print(f"the stack stays up: {config.ui_url} — press Ctrl-C to stop", highlight=False)
            died = _watch(stack)
            if died:
                err.print(f"[bold red]error:[/] {died}", highlight=False)
    finally:
        with err.status("stopping the embedded stack…"):
            stack.stop()
    if code == 0:
        out.print("[bold green]demo failover completed[/]")
    else:
        out.print("[bold red]demo failover did not complete[/]")
    if not keep:
        out.print(
            f"the stack is stopped, so the Web UI links above no longer answer: 'evac dev up --state-dir {state_dir}' "
            "brings these runs back, or run 'evac demo --keep'",
            highlight=False,
        )
    raise typer.Exit(code)


def _show_world(config: StackConfig, plan: Plan, topology: Topology) -> None:
    """What the emulator now says: where DNS points and which region gets the traffic."""
    import httpx

    for service in plan.services:
        spec = topology.services[service]
        try:
            answer = httpx.get(
                f"{config.emulator_url}/emulator/v1/resolve", params={"name": spec.dns.record, "type": spec.dns.type}, timeout=5
            ).json()
            binding = gcp_regions(spec).get(plan.source)
            if binding is None:
                continue  # not a Google Cloud region: not the emulator's to show
            traffic = httpx.get(f"{config.emulator_url}/emulator/v1/traffic/{binding.backend_service}", timeout=5).json()
        except (httpx.HTTPError, ValueError) as exc:
            err.print(f"[yellow]could not read the emulator's world: {exc}[/]")
            return
        out.print(f"  {service}: {spec.dns.record} → {_answers(answer)}; traffic share {_shares(traffic)}", highlight=False)


def _answers(answer: dict[str, Any]) -> str:
    return ", ".join(answer.get("rrdatas", [])) or "(no record)"


def _shares(traffic: dict[str, Any]) -> str:
    return ", ".join(f"{region} {info['share']:.0%}" for region, info in traffic.get("regions", {}).items())
