"""Who may decide an approval step, and why a request to approve, reject, pause or resume a
run is refused — pure functions, shared by the front door and the workflow's update validators.

An approver entry in a plan is one of:

- ``user@host`` — exactly that identity;
- ``user`` — that user from any host (``user@anyhost``), or the bare identity ``user``;
- ``group:NAME`` — every member of the group ``NAME`` of the configuration's
  ``approver_groups`` table (members are entries of the first two forms).

Groups are resolved by the front door when a run starts and recorded in its input, so the
workflow decides from its history alone. Identities are asserted by the client
(``EVAC_IDENTITY``); Temporal's own authorization decides who may call the namespace at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Literal

from evac.errors import BadInput

if TYPE_CHECKING:
    from evac.plan import Plan
    from evac.runs import ApprovalDecision, FailoverInput, FailoverProgress, StepRecord

GROUP_PREFIX = "group:"
GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\Z")
# A user name, or user@host: printable, no spaces, no second '@'.
_IDENTITY = re.compile(r"^[^\s@]+(?:@[^\s@]+)?\Z")
MAX_ENTRY = 200


class UnknownApproverGroup(BadInput):
    """A plan names an approver group that the configuration does not define."""


# The longest reason an operator's message may carry (the CLI refuses longer ones first).
MAX_REASON = 1000
# The most pauses one run takes: each is kept in its record, which must stay far below
# Temporal's payload limits however often someone pauses it.
MAX_PAUSES = 50


def identity_problem(entry: str) -> str | None:
    """Why ``entry`` is not a user name or ``user@host`` (None: it is one). Shown escaped (repr):
    an identity with a control character must never reach a terminal as it is."""
    if not entry or len(entry) > MAX_ENTRY or not entry.isprintable() or not _IDENTITY.match(entry):
        shown = repr(entry[:80]) + ("…" if len(entry) > 80 else "")
        return f"{shown} is not a user name or user@host (no spaces, at most one '@', at most {MAX_ENTRY} characters)"
    return None


def message_problem(by: str, reason: str) -> str | None:
    """Why an operator's message (approve, reject, pause, resume, abort) is malformed, or None.
    Workflows check it in their validators as the CLI does before sending, so that a namespace
    user calling Temporal directly can neither forge a record (a ``by`` with a newline or an
    escape code) nor grow a run past Temporal's payload limits (a reason of megabytes)."""
    problem = identity_problem(by)
    if problem is not None:
        return f"by: {problem}"
    if len(reason) > MAX_REASON:
        return f"the reason is {len(reason):,} characters long; at most {MAX_REASON:,}"
    if not reason.isprintable():
        return "the reason must be printable text on one line (no control characters)"
    return None


def approver_problem(entry: str) -> str | None:
    """Why ``entry`` cannot be an approver of a plan step (None: it can)."""
    if entry.startswith(GROUP_PREFIX):
        name = entry.removeprefix(GROUP_PREFIX)
        if not GROUP_NAME.match(name):
            return f"'{entry}': a group is written group:NAME, NAME letters, digits, '_', '.' or '-'"
        return None
    return identity_problem(entry)


def group_name_problem(name: str) -> str | None:
    if not GROUP_NAME.match(name):
        return f"group name '{name}' must be letters, digits, '_', '.' or '-' (at most 63, starting with a letter or digit)"
    return None


def matches(entry: str, identity: str) -> bool:
    """Whether one non-group approver entry names ``identity``."""
    if "@" in entry:
        return identity == entry
    return identity == entry or identity.startswith(entry + "@")


def same_user(identity: str, other: str) -> bool:
    """Whether two identities are one user: ``alice@laptop`` and ``alice@desktop`` are (four eyes
    means another person, not another host)."""
    return identity.split("@", 1)[0] == other.split("@", 1)[0]


def may_decide(approvers: Iterable[str], identity: str, groups: Mapping[str, Sequence[str]]) -> bool:
    """Whether ``identity`` is among ``approvers``, groups expanded from ``groups``.

    A group missing from ``groups`` names nobody (the front door refuses such a plan at start).
    """
    for entry in approvers:
        if entry.startswith(GROUP_PREFIX):
            members = groups.get(entry.removeprefix(GROUP_PREFIX), ())
            if any(matches(member, identity) for member in members):
                return True
        elif matches(entry, identity):
            return True
    return False


def groups_used(plan: Plan) -> list[str]:
    """The group names the plan's approval steps name, in order of first use."""
    names: dict[str, None] = {}
    for step in plan.steps:
        for entry in getattr(step, "approvers", ()):
            if entry.startswith(GROUP_PREFIX):
                names[entry.removeprefix(GROUP_PREFIX)] = None
    return list(names)


def resolve_groups(plan: Plan, configured: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """The members of every group the plan names, from the configuration's ``approver_groups``:
    what a run records in its input. A group the configuration lacks is bad input."""
    missing = [name for name in groups_used(plan) if name not in configured]
    if missing:
        known = ", ".join(sorted(configured)) or "none"
        raise UnknownApproverGroup(
            f"plan '{plan.name}' names approver group{'s' if len(missing) > 1 else ''} "
            f"{', '.join(GROUP_PREFIX + m for m in missing)}, which the configuration's approver_groups "
            f"does not define (it defines: {known}); nothing was started"
        )
    return {name: list(configured[name]) for name in groups_used(plan)}


def approvers_text(approvers: Iterable[str]) -> str:
    return ", ".join(approvers)


# --- refusals (the update validators' sentences) -------------------------------------------


def waiting_approval(progress: FailoverProgress) -> StepRecord | None:
    """The approval step that waits for a decision now, if any."""
    for record in progress.steps:
        if record.kind == "approval" and record.status == "running" and record.approval and record.approval.decision is None:
            return record
    return None


def approval_refusal(
    input: FailoverInput,
    progress: FailoverProgress,
    decision: ApprovalDecision,
    action: Literal["approve", "reject"],
) -> str | None:
    """Why ``decision`` must be refused (one sentence), or None when it may be taken."""
    run = progress.workflow_id
    if progress.status != "running":
        return f"run {run} is {progress.status}; no approval step is waiting"
    if decision.step is not None:
        named = [r for r in progress.steps if r.name == decision.step]
        if not named:
            steps = ", ".join(f"'{r.name}'" for r in progress.steps)
            return f"run {run} has no step named '{decision.step}' (its steps: {steps})"
        record = next((r for r in named if r.kind == "approval"), None)
        if record is None:
            return f"step '{decision.step}' of run {run} is a {named[0].kind} step, not an approval step"
        waiting = waiting_approval(progress)
        if waiting is None or waiting.name != decision.step:
            return f"step '{decision.step}' of run {run} is not waiting for approval (it is {_state_of(record)})"
        record = waiting
    else:
        found = waiting_approval(progress)
        if found is None:
            return f"no approval step of run {run} is waiting now"
        record = found
    approval = record.approval
    assert approval is not None
    if not decision.by:
        return "the request names no identity (set EVAC_IDENTITY)"
    if not may_decide(approval.approvers, decision.by, input.approver_groups):
        return f"'{decision.by}' is not among the approvers of step '{record.name}' ({approvers_text(approval.approvers)})"
    if action == "approve" and input.plan.four_eyes and same_user(decision.by, input.trigger.by):
        return (
            f"the plan requires four eyes: run {run} was started by '{input.trigger.by}', so '{decision.by}' "
            f"may not approve step '{record.name}'; another approver must"
        )
    if action == "reject" and not decision.reason.strip():
        return f"a rejection of step '{record.name}' needs a reason"
    return None


def _state_of(record: StepRecord) -> str:
    if record.approval is not None and record.approval.decision is not None:
        by = f" by {record.approval.by}" if record.approval.by else ""
        return f"{record.approval.decision}{by}"
    return str(record.status)


def pause_refusal(progress: FailoverProgress, abort_requested: bool) -> str | None:
    """Why the run cannot be paused now (one sentence), or None."""
    run = progress.workflow_id
    if progress.status != "running" or abort_requested:
        state = "being aborted" if progress.status == "running" else str(progress.status).replace("_", " ")
        return f"run {run} is {state}; only a running run that has a plan step left can be paused"
    if progress.pause is not None:
        pause = progress.pause
        return f"run {run} is already paused by {pause.by} ({pause.reason})"
    if not any(record.status == "pending" for record in progress.steps):
        return f"run {run} has no plan step left to hold before; it can no longer be paused"
    return None


def resume_refusal(progress: FailoverProgress) -> str | None:
    run = progress.workflow_id
    if progress.pause is None:
        return f"run {run} is not paused"
    return None
