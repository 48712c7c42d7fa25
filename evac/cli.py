"""``evac``: the command line. Each command turns options into one call of a plain function.

Exit codes: 0 done; 1 the run did not succeed (rolled back, aborted, rollback incomplete);
2 bad input (plan, topology, arguments); 3 refused (service busy, run not found or ended);
4 cannot reach Temporal or start the embedded stack; 130 interrupted.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import signal
import socket
import sys
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from urllib.parse import quote
from typing import Any, Awaitable, Callable, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.live import Live
from temporalio.client import Client
from temporalio.service import RPCError

from evac import control, render
from evac.config import ConfigError, Settings, TemporalUnreachable, connect_temporal
from evac.documents import InvalidDocument
from evac.plan import Plan, default_topology_path, load_plan
from evac.runs import WORKFLOW_ID_PREFIX, AbortRequest, FailoverProgress, RunStatus, Trigger, failover_workflow_id
from evac.stack import ROOT, Stack, StackConfig, StackError
from evac.topology import Topology, load_topology

EXIT_RUN_FAILED, EXIT_BAD_INPUT, EXIT_REFUSED, EXIT_UNAVAILABLE, EXIT_INTERRUPTED = 1, 2, 3, 4, 130
DEMO_DIR = ROOT / "plans" / "demo"
POLL_SECONDS = 0.5

app = typer.Typer(help="Evac: regional failover and DR drills as Temporal workflows.", no_args_is_help=True)
plan_app = typer.Typer(help="Work with plan files.", no_args_is_help=True)
dev_app = typer.Typer(help="The embedded stack for a laptop: Temporal dev server, emulator, worker.", no_args_is_help=True)
emulator_app = typer.Typer(help="Evac's Google Cloud emulator.", no_args_is_help=True)
app.add_typer(plan_app, name="plan")
app.add_typer(dev_app, name="dev")
app.add_typer(emulator_app, name="emulator")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")


class Output(str, Enum):
    text = "text"
    json = "json"


OutputOption = typer.Option(Output.text, "--output", "-o", help="text for people, json for scripts")


class _Globals:
    address: str | None = None
    namespace: str | None = None


@app.callback()
def _root(
    address: str = typer.Option(None, "--address", help="Temporal frontend host:port (env TEMPORAL_ADDRESS)"),
    namespace: str = typer.Option(None, "--namespace", help="Temporal namespace (env TEMPORAL_NAMESPACE)"),
) -> None:
    _Globals.address, _Globals.namespace = address, namespace


def fail(message: str, code: int) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def run_async(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine, turning the errors a user can meet into one sentence and an exit code."""
    try:
        return asyncio.run(make())  # type: ignore[arg-type]
    except KeyboardInterrupt:
        fail("interrupted", EXIT_INTERRUPTED)
    except (control.ServiceBusy, control.RunNotFound, control.NotRunning) as exc:
        fail(str(exc), EXIT_REFUSED)
    except ConfigError as exc:
        fail(str(exc), EXIT_BAD_INPUT)
    except RPCError as exc:
        fail(f"Temporal refused the request: {exc.message}", EXIT_UNAVAILABLE)
    except (TemporalUnreachable, control.NoWorkerAnswered) as exc:
        fail(str(exc), EXIT_UNAVAILABLE)


async def _client() -> Client:
    return await connect_temporal(_Globals.address, _Globals.namespace)


def _who() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


def _load(plan_path: Path, topology_path: Path | None) -> tuple[Plan, Topology]:
    if not plan_path.is_file():
        fail(f"plan file {plan_path} not found", EXIT_BAD_INPUT)
    topology_path = topology_path or default_topology_path(plan_path)
    try:
        topology = load_topology(topology_path)
        return load_plan(plan_path, topology), topology
    except InvalidDocument as exc:
        for error in exc.errors:
            err.print(f"[red]{error}[/]", highlight=False, soft_wrap=True)
        noun = "error" if len(exc.errors) == 1 else "errors"
        fail(f"{len(exc.errors)} {noun}; nothing was started", EXIT_BAD_INPUT)


def _workflow_id(run: str) -> str:
    """``failover/checkout`` or just ``checkout``."""
    return run if run.startswith(WORKFLOW_ID_PREFIX) else failover_workflow_id(run)


# --- plan --------------------------------------------------------------------------


@plan_app.command("check")
def plan_check(
    file: Path = typer.Argument(..., help="The plan YAML file"),
    topology: Path = typer.Option(None, "--topology", "-t", help="Topology YAML (default: topology.yaml beside the plan)"),
    output: Output = OutputOption,
) -> None:
    """Validate a plan against its topology; every error names file, place and problem."""
    plan, _ = _load(file, topology)
    if output == Output.json:
        out.print_json(json.dumps({"file": str(file), "valid": True, "digest": plan.digest(), "plan": plan.model_dump(mode="json")}))
        return
    out.print(
        f"[green]{file}: valid[/] — plan '{plan.name}': {', '.join(plan.services)} "
        f"{plan.source} → {plan.target}, {len(plan.steps)} steps, digest {plan.digest()[:12]}",
        highlight=False,
    )


# --- failover, status, abort --------------------------------------------------------


async def follow(client: Client, workflow_ids: list[str], run_ids: list[str | None], output: Output) -> list[FailoverProgress]:
    """Show the runs' steps as they go, until every run has ended; returns the final records."""
    interactive = output == Output.text and out.is_terminal
    seen: dict[tuple[str, int], str] = {}
    latest: dict[str, FailoverProgress] = {}
    waiting_note_shown = False

    def print_transitions(progress: FailoverProgress) -> None:
        for step in progress.steps:
            key = (progress.service, step.index)
            if seen.get(key) != step.status.value and step.status.value != "pending":
                seen[key] = step.status.value
                if output == Output.text:
                    out.print(render.step_line(progress, step), highlight=False, soft_wrap=True)

    live = Live(console=out, refresh_per_second=4, transient=False) if interactive else None
    if live:
        live.start()
    try:
        while True:
            for workflow_id, run_id in zip(workflow_ids, run_ids):
                try:
                    latest[workflow_id] = await control.progress(client, workflow_id, run_id)
                except (control.NoWorkerAnswered, RPCError) as exc:
                    if not waiting_note_shown and output == Output.text:
                        err.print(f"[yellow]waiting: {exc}[/]")
                        waiting_note_shown = True
                    continue
            if live:
                live.update(render.runs_view(latest.values(), now=datetime.now(timezone.utc)))
            else:
                for progress in latest.values():
                    print_transitions(progress)
            if len(latest) == len(workflow_ids) and all(p.status.finished for p in latest.values()):
                return [latest[w] for w in workflow_ids]
            await asyncio.sleep(POLL_SECONDS)
    finally:
        if live:
            live.stop()


def _report(results: list[FailoverProgress], output: Output, settings: Settings, *, single: bool = False) -> int:
    """Print the final records; the exit code says whether every run succeeded."""
    if output == Output.json:
        out.print(render.to_json(results[0] if single else results), highlight=False)
    else:
        out.print()
        for progress in results:
            for line in render.outcome_lines(progress):
                out.print(line, highlight=False, soft_wrap=True)
            out.print(f"  Web UI: {history_url(settings, progress)}", highlight=False)
    return 0 if all(p.status == RunStatus.SUCCEEDED for p in results) else EXIT_RUN_FAILED


def history_url(settings: Settings, progress: FailoverProgress) -> str:
    workflow_id = quote(progress.workflow_id, safe="")
    return f"{settings.temporal_ui}/namespaces/{_Globals.namespace or 'default'}/workflows/{workflow_id}/{progress.run_id}/history"


async def failover_run(
    plan: Plan, topology: Topology, trigger: Trigger, settings: Settings, *, wait: bool, output: Output, client: Client | None = None
) -> int:
    client = client or await _client()
    started = await control.start_failover(client, control.failover_inputs(plan, topology, trigger), settings.task_queue)
    if output == Output.text:
        for run in started:
            out.print(f"started [bold]{run.workflow_id}[/] (run {run.run_id})", highlight=False)
    if not wait:
        if output == Output.json:
            out.print_json(json.dumps([run.__dict__ for run in started]))
        return 0
    results = await follow(client, [r.workflow_id for r in started], [r.run_id for r in started], output)
    return _report(results, output, settings)


@app.command()
def failover(
    plan_file: Path = typer.Option(..., "--plan", "-p", help="The plan YAML file"),
    topology: Path = typer.Option(None, "--topology", "-t", help="Topology YAML (default: topology.yaml beside the plan)"),
    wait: bool = typer.Option(None, "--wait/--no-wait", help="Follow the run until it ends (default: on a terminal)"),
    reason: str = typer.Option("", "--reason", help="Why: recorded in the run's history"),
    output: Output = OutputOption,
) -> None:
    """Start a failover by a plan (one run per service) and follow it live."""
    plan, topo = _load(plan_file, topology)
    settings = _settings()
    if settings.gcp_project and settings.gcp_project != topo.project:
        fail(
            f"the topology is for project '{topo.project}' but EVAC_GCP_PROJECT is '{settings.gcp_project}'; nothing was started",
            EXIT_BAD_INPUT,
        )
    follow_it = out.is_terminal if wait is None else wait
    trigger = Trigger(kind="manual", by=_who(), reason=reason)
    code = run_async(lambda: failover_run(plan, topo, trigger, settings, wait=follow_it, output=output))
    raise typer.Exit(code)


@app.command()
def status(
    run: str = typer.Argument(..., help="Run id (failover/<service>) or service name"),
    run_id: str = typer.Option(None, "--run-id", help="A specific earlier run (default: the latest)"),
    watch: bool = typer.Option(False, "--watch", "-w", help="Keep following until the run ends"),
    output: Output = OutputOption,
) -> None:
    """Show a run's steps: state, attempts, duration, before → after."""
    workflow_id = _workflow_id(run)
    settings = _settings()

    async def show() -> int:
        client = await _client()
        if watch:
            results = await follow(client, [workflow_id], [run_id], output)
            return _report(results, output, settings, single=True)
        progress = await control.progress(client, workflow_id, run_id)
        if output == Output.json:
            out.print(render.to_json(progress), highlight=False, soft_wrap=True)
        else:
            out.print(render.progress_table(progress, now=datetime.now(timezone.utc)))
            for line in render.outcome_lines(progress):
                out.print(line, highlight=False, soft_wrap=True)
        return 0

    raise typer.Exit(run_async(show))


@app.command()
def abort(
    run: str = typer.Argument(..., help="Run id (failover/<service>) or service name"),
    reason: str = typer.Option(..., "--reason", help="Why: recorded in the run's history"),
    output: Output = OutputOption,
) -> None:
    """Abort a running failover: it stops and restores what it changed, in reverse order."""
    workflow_id = _workflow_id(run)
    request = AbortRequest(by=_who(), reason=reason)

    async def go() -> str:
        return await control.abort(await _client(), workflow_id, request)

    run_id = run_async(go)
    if output == Output.json:
        out.print_json(json.dumps({"workflow_id": workflow_id, "run_id": run_id, "aborted_by": request.by, "reason": reason}))
    else:
        out.print(f"abort requested for {workflow_id} (run {run_id}); it is rolling back. Follow: evac status {workflow_id} --watch", highlight=False)


def _settings() -> Settings:
    try:
        return Settings.load()
    except ConfigError as exc:
        fail(str(exc), EXIT_BAD_INPUT)


# --- worker, emulator, dev stack, demo ----------------------------------------------


@app.command()
def worker() -> None:
    """Run a worker (the same as 'python worker.py'); stop with Ctrl-C or SIGTERM."""
    import worker as worker_module

    try:
        worker_module.main(_Globals.address, _Globals.namespace)
    except TemporalUnreachable as exc:
        fail(str(exc), EXIT_UNAVAILABLE)


@emulator_app.command("serve")
def emulator_serve(
    topology: Path = typer.Option(..., "--topology", "-t", help="Topology YAML the world is seeded from"),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8480, "--port", min=1, max=65535),
    operation_delay: float = typer.Option(0.5, "--operation-delay", min=0, help="Seconds until an operation is DONE"),
    warmup: float = typer.Option(2.0, "--warmup", min=0, help="Seconds until a new instance is HEALTHY"),
    state_file: Path = typer.Option(None, "--state-file", help="JSON file that keeps the world across restarts"),
    wait_deadline: float = typer.Option(120.0, "--wait-deadline", min=0, help="Longest an operations.wait call blocks (Google: about 2 min)"),
    dns_port: int = typer.Option(None, "--dns-port", min=1, max=65535, help="Also answer DNS queries on this UDP port"),
) -> None:
    """Serve the Google Cloud emulator (Compute + Cloud DNS subset, admin API) for a topology."""
    from emulator.persistence import StateFileError
    from emulator.server import serve

    try:
        serve(
            topology,
            host,
            port,
            operation_delay=operation_delay,
            warmup=warmup,
            state_file=state_file,
            wait_deadline=wait_deadline,
            dns_port=dns_port,
        )
    except InvalidDocument as exc:
        for error in exc.errors:
            err.print(f"[red]{error}[/]", highlight=False, soft_wrap=True)
        fail("cannot use the topology", EXIT_BAD_INPUT)
    except StateFileError as exc:
        fail(str(exc), EXIT_BAD_INPUT)


def _start_stack(config: StackConfig) -> Stack:
    stack = Stack(config)
    with err.status("starting Temporal dev server, emulator and worker…"):
        try:
            stack.start()
        except StackError as exc:
            fail(str(exc), EXIT_UNAVAILABLE)
    return stack


def _wait_for_signal() -> None:
    stop = asyncio.Event()

    async def wait() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()

    asyncio.run(wait())


@dev_app.command("up")
def dev_up(
    topology: Path = typer.Option(DEMO_DIR / "topology.yaml", "--topology", "-t", help="Topology the emulator serves"),
    state_dir: Path = typer.Option(Path(".evac"), "--state-dir", help="Where the Temporal SQLite file and logs go"),
    ui: bool = typer.Option(True, "--ui/--headless", help="Serve the Temporal Web UI"),
) -> None:
    """Start the embedded stack and keep it up until Ctrl-C."""
    try:
        load_topology(topology)
    except InvalidDocument as exc:
        for error in exc.errors:
            err.print(f"[red]{error}[/]", highlight=False)
        fail("cannot use the topology", EXIT_BAD_INPUT)
    config = StackConfig(topology=topology, state_dir=state_dir, ui=ui)
    stack = _start_stack(config)
    try:
        out.print("[green]embedded stack is up[/] (logs in " + str(stack.log_dir) + ")", highlight=False)
        if ui:
            out.print(f"  Temporal Web UI  {config.ui_url}", highlight=False)
        out.print("  use it from another shell:", highlight=False)
        for key, value in config.client_env().items():
            out.print(f"    export {key}={value}", highlight=False)
        out.print("  press Ctrl-C to stop", highlight=False)
        _wait_for_signal()
    finally:
        with err.status("stopping…"):
            stack.stop()


@app.command()
def demo(
    keep: bool = typer.Option(False, "--keep", help="Keep the stack (and Web UI) up after the run until Ctrl-C"),
    state_dir: Path = typer.Option(Path(".evac/demo"), "--state-dir", help="Where the demo's Temporal file and logs go"),
) -> None:
    """Start the embedded stack, fail the demo services over, show the outcome, stop."""
    plan, topology = _load(DEMO_DIR / "failover.yaml", DEMO_DIR / "topology.yaml")
    config = StackConfig(topology=DEMO_DIR / "topology.yaml", state_dir=state_dir, fresh_history=True)
    settings = Settings(task_queue=config.task_queue, gcp_endpoint=config.emulator_url, temporal_ui=config.ui_url)
    stack = _start_stack(config)
    try:
        out.print(
            f"[bold]Evac demo[/]: plan '{plan.name}' fails {', '.join(plan.services)} over from {plan.source} to {plan.target}",
            highlight=False,
        )
        out.print(f"Temporal Web UI: {config.ui_url}   emulator: {config.emulator_url}", highlight=False)
        trigger = Trigger(kind="manual", by=_who(), reason="make demo")

        async def go() -> int:
            client = await connect_temporal(config.temporal_address, "default")
            return await failover_run(plan, topology, trigger, settings, wait=True, output=Output.text, client=client)

        code = run_async(go)
        _show_world(config, plan, topology)
        if keep:
            out.print(f"the stack stays up: {config.ui_url} — press Ctrl-C to stop", highlight=False)
            _wait_for_signal()
    finally:
        with err.status("stopping the embedded stack…"):
            stack.stop()
    if code == 0:
        out.print("[bold green]demo failover completed[/]")
    else:
        out.print("[bold red]demo failover did not complete[/]")
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
            binding = spec.regions[plan.source]
            traffic = httpx.get(f"{config.emulator_url}/emulator/v1/traffic/{binding.backend_service}", timeout=5).json()
        except (httpx.HTTPError, ValueError) as exc:
            err.print(f"[yellow]could not read the emulator's world: {exc}[/]")
            return
        out.print(f"  {service}: {spec.dns.record} → {_answers(answer)}; traffic share {_shares(traffic)}", highlight=False)


def _answers(answer: dict[str, Any]) -> str:
    return ", ".join(answer.get("rrdatas", [])) or "(no record)"


def _shares(traffic: dict[str, Any]) -> str:
    return ", ".join(f"{region} {info['share']:.0%}" for region, info in traffic.get("regions", {}).items())


def main() -> None:
    """Entry point of the ``evac`` script.

    Ends with ``os._exit``: the Temporal client's native threads can outlive the event loop
    and abort a normally finishing process during interpreter teardown
    (temporalio/sdk-python#300). Output is flushed first; nothing else is left to clean up.
    """
    code = 0
    try:
        app()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        err.print("interrupted")
        code = EXIT_INTERRUPTED
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)
