"""``evac``: the command line. Each command turns options into calls of plain functions
(:mod:`evac.control`, :mod:`evac.stack`); this module only lays out the command table.

Exit codes: 0 done (every run succeeded); 1 a run did not succeed (rolled back, aborted,
rollback incomplete, terminated); 2 bad input (plan, topology, arguments); 3 refused (service
busy, run unknown or ended); 4 Temporal unreachable, no worker, or the embedded stack could not
start; 130 interrupted (the runs go on). With ``--output json`` errors are JSON on stdout too.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

import typer

from evac.cli import alert_serve, alerts, audit, dev, evacuate, evidence, findable, operate, readiness, run, schedule, topology
from evac.cli.base import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    State,
    address_option,
    connection,
    err,
    interrupted,
    namespace_option,
    out,
)

app = typer.Typer(help="Evac: regional failover and DR drills as Temporal workflows.", no_args_is_help=True)
plan_app = typer.Typer(help="Work with plan files.", no_args_is_help=True)
dev_app = typer.Typer(help="The embedded stack for a laptop: Temporal dev server, emulator, worker.", no_args_is_help=True)
emulator_app = typer.Typer(help="Evac's Google Cloud emulator.", no_args_is_help=True)
app.add_typer(plan_app, name="plan")
app.add_typer(dev_app, name="dev")
app.add_typer(emulator_app, name="emulator")
schedule_app = typer.Typer(help="Drills on a cadence (Temporal Schedules), with blackout windows.", no_args_is_help=True)
app.add_typer(schedule_app, name="schedule")
runs_app = typer.Typer(help="Find runs: failovers and drills, by service, region, kind, trigger, outcome.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
audit_app = typer.Typer(help="Audit runs from their Temporal histories: timelines, exports, proof.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
alerts_app = typer.Typer(
    help="Failover on regional alerts: the receiver, and what each region's guardian decided.", no_args_is_help=True
)
app.add_typer(alerts_app, name="alerts")
auto_app = typer.Typer(help="The kill switch for automatic failovers (recorded, global).", no_args_is_help=True)
app.add_typer(auto_app, name="auto")
readiness_app = typer.Typer(help="Know before the incident: would a plan work now?", no_args_is_help=True)
app.add_typer(readiness_app, name="readiness")
readiness_app.command("check")(readiness.check)
readiness_app.command("serve")(readiness.serve)
readiness_app.command("status")(readiness.status)
readiness_app.command("pause")(readiness.pause)
readiness_app.command("unpause")(readiness.unpause)
readiness_app.command("delete")(readiness.delete)
topology_app = typer.Typer(help="The topology file and the cloud: drift between them.", no_args_is_help=True)
app.add_typer(topology_app, name="topology")
topology_app.command("diff")(topology.diff)
app.command("discover")(topology.discover)

# Run commands.
app.command("failover")(run.failover)
app.command("drill")(run.drill)
app.command("evacuate")(evacuate.evacuate)
app.command("failback")(evacuate.failback)
app.command("status")(run.status)
app.command("abort")(run.abort)
app.command("approve")(operate.approve)
app.command("reject")(operate.reject)
app.command("pause")(operate.pause)
app.command("resume")(operate.resume)
app.command("watch")(operate.watch)
plan_app.command("check")(run.plan_check)
runs_app.command("list")(findable.runs_list)
app.command("setup")(findable.setup)
audit_app.command("show")(audit.show)
audit_app.command("export")(audit.export)
audit_app.command("verify")(audit.verify)
audit_app.command("report")(evidence.report)
alerts_app.command("serve")(alert_serve.serve)
alerts_app.command("status")(alerts.status)
auto_app.command("disable")(alerts.auto_disable)
auto_app.command("enable")(alerts.auto_enable)
# Dev-stack commands.
app.command("worker")(dev.worker)
app.command("demo")(dev.demo)
dev_app.command("up")(dev.dev_up)
dev_app.command("webhook")(dev.dev_webhook)
emulator_app.command("serve")(dev.emulator_serve)
emulator_app.command("generate")(dev.emulator_generate)
# Schedule commands.
schedule_app.command("create")(schedule.create)
schedule_app.command("list")(schedule.list_)
schedule_app.command("describe")(schedule.describe)
schedule_app.command("pause")(schedule.pause)
schedule_app.command("unpause")(schedule.unpause)
schedule_app.command("trigger")(schedule.trigger)
schedule_app.command("delete")(schedule.delete)


def _version() -> str:
    try:
        return version("evac")
    except PackageNotFoundError:
        return "unknown"


def _show_version(value: bool) -> None:
    if value:
        out.print(f"evac {_version()}", highlight=False)
        raise typer.Exit(0)


@app.callback()
def _root(
    address: str = address_option(),
    namespace: str = namespace_option(),
    _version_flag: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Print the version and exit"
    ),
) -> None:
    connection(address, namespace)


def _wants_json(argv: list[str]) -> bool:
    return any(a in ("--output=json", "-ojson") for a in argv) or any(
        a in ("--output", "-o") and b == "json" for a, b in zip(argv, argv[1:], strict=False)
    )


def _exit_code_of(action: Callable[[], object]) -> int:
    try:
        action()
    except typer.Exit as exc:
        return exc.exit_code
    return EXIT_INTERRUPTED


def main() -> None:
    """Entry point of the ``evac`` script.

    Ends with ``os._exit``: the Temporal client's native threads can outlive the event loop
    and abort a normally finishing process during interpreter teardown
    (temporalio/sdk-python#300). Output is flushed first; nothing else is left to clean up.
    """
    code = 0
    try:
        result = app(standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except (KeyboardInterrupt, typer.Abort):
        code = _exit_code_of(interrupted)
    except typer.Exit as exc:
        code = exc.exit_code
    except Exception as exc:
        if not (hasattr(exc, "format_message") and hasattr(exc, "exit_code")):
            raise
        # A usage error (typer's click): its own message, or JSON for scripts.
        code = exc.exit_code if exc.exit_code != 1 else EXIT_BAD_INPUT
        if _wants_json(sys.argv[1:]):
            out.print(
                json.dumps({"error": exc.format_message(), "exit_code": code}), highlight=False, soft_wrap=True, markup=False
            )
        else:
            exc.show()  # type: ignore[attr-defined]
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


__all__ = ["app", "main", "State", "err"]
