"""``evac alerts status`` and ``evac auto disable | enable``: what the region guardians know and
decided, and the kill switch of automatic failover.

Each command turns its options into a call of :mod:`evac.control.alerts` and shows the result
(``--output json`` for scripts); errors are one sentence with an exit code.
"""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.markup import escape
from rich.table import Table

from evac.alerting.models import Decision, KillSwitch
from evac.alerting.status import GuardianStatus, SwitchRecord
from evac.cli.base import (
    Output,
    address_option,
    begin,
    client,
    fail_with,
    namespace_option,
    out,
    output_option,
    print_json,
    run_async,
)
from evac.control import alerts
from evac.errors import FrontDoorError, NoWorkerAnswered
from evac.plan import format_duration

# How many of a guardian's decisions and alerts the text output shows (JSON has them all).
LAST_DECISIONS = 15
FIRING_SHOWN = 10
VERDICT_STYLE = {"fire": "bold green", "hold": "cyan", "suppressed": "bold yellow", "withdrawn": "dim"}


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%SZ}"


def _switch_line(switch: KillSwitch | None) -> str:
    if switch is None:
        return "automatic failover: [yellow]unknown[/] (no worker answered for the kill switch)"
    by, why = escape(switch.by), f": {escape(switch.reason)}" if switch.reason else ""
    if switch.enabled:
        return "automatic failover: [green]enabled[/]" + (f" (enabled by {by} at {_when(switch.at)}{why})" if switch.by else "")
    return f"automatic failover: [bold red]DISABLED[/] by {by} at {_when(switch.at)}{why} ('evac auto enable' turns it on)"


def _policy_line(found: GuardianStatus) -> str:
    policy = found.policy
    evidence = f"evidence held {format_duration(policy.min_duration)} from {policy.min_alerts} alert(s)"
    if policy.min_services > 1:
        evidence += f" or naming {policy.min_services} services"
    return (
        f"policy: {evidence}; cooldown {format_duration(policy.cooldown)}; at most {policy.max_per_hour} an hour"
        + (f"; approvers {', '.join(policy.approvers)}" if policy.approvers else "")
        + ("; region-wide alerts evacuate the region" if policy.region_wide == "evacuate" else "")
    )


def _decision_row(decision: Decision) -> list[str]:
    style = VERDICT_STYLE.get(decision.verdict, "")
    run = f"\n{decision.workflow_id} {decision.run_id or ''}".rstrip() if decision.workflow_id else ""
    return [
        _when(decision.at),
        f"[{style}]{decision.verdict}[/]",
        escape(decision.service or "(region)"),
        escape(decision.reason + run),
        decision.guard or "",
    ]


def _show(found: GuardianStatus) -> None:
    state = found.state
    out.print(f"[bold]{found.region}[/] ({found.workflow_id}, run {state.runs})", highlight=False)
    out.print(f"  {_policy_line(found)}", highlight=False)
    plans = ", ".join(f"{p.service} -> {p.target} ({p.plan}, {'auto' if p.auto else 'approval'})" for p in found.plans)
    out.print(escape(f"  plans: {plans or 'none (alerts are recorded; nothing can start)'}"), highlight=False)
    kept = f", {state.not_kept} firing alert(s) not kept (each service keeps at most its first ones)" if state.not_kept else ""
    out.print(f"  received {state.received} alert(s), {state.duplicates} duplicate(s){kept}", highlight=False)
    if not state.firing:
        out.print("  firing: none", highlight=False)
    else:
        held = ""
        if state.evidence_since is not None:
            seconds = max(0, int((datetime.now(UTC) - state.evidence_since).total_seconds()))
            held = f", evidence since {_when(state.evidence_since)} ({seconds}s)"
        out.print(f"  firing: {len(state.firing)} alert(s){held}", highlight=False)
        for key, alert in sorted(state.firing.items())[:FIRING_SHOWN]:
            service = alert.service or "whole region"
            out.print(escape(f"    {alert.name} [{key}] {service}, since {_when(alert.starts_at)}"), highlight=False)
        if len(state.firing) > FIRING_SHOWN:
            out.print(f"    … and {len(state.firing) - FIRING_SHOWN} more (--output json lists them)", highlight=False)
    if found.wake_at is not None:
        out.print(f"  next decision at {_when(found.wake_at)} (or at the next alert)", highlight=False)
    if state.decisions:
        shown = state.decisions[-LAST_DECISIONS:]
        table = Table(title=f"  decisions (newest last, {len(shown)} of {len(state.decisions)})", title_justify="left")
        for column in ("at", "verdict", "service", "why", "guard"):
            table.add_column(column, overflow="fold")
        for decision in shown:
            table.add_row(*_decision_row(decision))
        out.print(table)
    else:
        out.print("  decisions: none yet", highlight=False)
    if state.started:
        table = Table(title="  failovers it started (newest last)", title_justify="left")
        for column in ("at", "service", "run", "target", "approval", "evidence"):
            table.add_column(column, overflow="fold")
        for started in state.started:
            table.add_row(
                _when(started.at),
                escape(started.service),
                f"{started.workflow_id} {started.run_id}",
                started.target,
                "required" if started.approval_required else "-",
                f"{len(started.evidence)} alert(s)",
            )
        out.print(table)
    if state.evacuations:
        table = Table(title="  evacuations it started (newest last)", title_justify="left")
        for column in ("at", "run", "services", "evidence"):
            table.add_column(column, overflow="fold")
        for evacuation in state.evacuations:
            table.add_row(
                _when(evacuation.at),
                f"{evacuation.workflow_id} {evacuation.run_id}",
                str(evacuation.services),
                f"{len(evacuation.evidence)} alert(s)",
            )
        out.print(table)


def status(
    region: str = typer.Argument(None, help="One region's guardian (default: every running guardian)"),
    output: Output = output_option(),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """What each region's guardian holds and decided: firing alerts, evidence, decisions and why, failovers started."""
    config = begin(output, address, namespace)
    try:
        if region is not None:
            alerts.check_region(region)
    except FrontDoorError as exc:
        fail_with(exc)

    async def go() -> tuple[SwitchRecord | None, list[GuardianStatus]]:
        temporal = await client(config)
        try:
            switch: SwitchRecord | None = await alerts.read_switch(temporal)
        except NoWorkerAnswered:
            switch = None
        return switch, await alerts.status(temporal, region)

    switch, found = run_async(go)
    if output == Output.json:
        print_json(
            {
                "switch": switch.model_dump(mode="json") if switch else None,
                "guardians": [g.model_dump(mode="json") for g in found],
            }
        )
        return
    out.print(_switch_line(switch.switch if switch else None), highlight=False)
    if not found:
        out.print("no guardian is running (one starts with the first alert for a region)", highlight=False)
    for guardian in found:
        out.print("")
        _show(guardian)


def _set_switch(enabled: bool, reason: str | None, output: Output, address: str | None, namespace: str | None) -> None:
    config = begin(output, address, namespace)
    try:
        text = alerts.check_reason(reason, required=not enabled)
    except FrontDoorError as exc:
        fail_with(exc)

    async def go() -> KillSwitch:
        temporal = await client(config)
        act = alerts.enable if enabled else alerts.disable
        return await act(temporal, config.identity, text, task_queue=config.task_queue)

    switch = run_async(go)
    if output == Output.json:
        print_json(switch.model_dump(mode="json"))
        return
    if switch.enabled == enabled and switch.at is not None and (switch.by, switch.reason) != (config.identity, text or ""):
        state = "enabled" if enabled else "disabled"
        why = f" ({escape(switch.reason)})" if switch.reason else ""
        out.print(
            f"automatic failover was already {state} by {escape(switch.by)} since {_when(switch.at)}{why}; "
            "your change is recorded beside it in the switch's history",
            highlight=False,
        )
        return
    out.print(_switch_line(switch), highlight=False)


def auto_disable(
    reason: str = typer.Option(
        ..., "--reason", help="Why: recorded with who disabled it, and shown by every suppressed decision"
    ),
    output: Output = output_option(),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """Stop automatic failover in every region (alerts are still recorded; runs already started go on)."""
    _set_switch(False, reason, output, address, namespace)


def auto_enable(
    reason: str = typer.Option(None, "--reason", help="Why (recorded with who enabled it)"),
    output: Output = output_option(),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """Let the region guardians fail services over automatically again."""
    _set_switch(True, reason, output, address, namespace)
