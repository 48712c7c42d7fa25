"""What every command shares: consoles, ``--output``, connection options, and errors as one
sentence with an exit code (JSON on stdout with ``--output json``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from enum import Enum
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.errors import MarkupError
from rich.markup import escape
from rich.segment import Segment
from temporalio.client import Client

from evac import control
from evac.config import Settings, connect_temporal
from evac.control import StartedRun
from evac.control.policy import RECORDED_IN_THE_RUN
from evac.documents import InvalidDocument
from evac.errors import BadInput, FrontDoorError, Refused, Unavailable
from evac.plan import Plan
from evac.text import visible

EXIT_OK, EXIT_RUN_FAILED, EXIT_BAD_INPUT, EXIT_REFUSED, EXIT_UNAVAILABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
# A run stopped past its point of no return: nothing was rolled back; what is left is by hand.
EXIT_PAST_POINT_OF_NO_RETURN = 5
# One exit code per branch of the error tree (evac.errors).
EXIT_CODES: dict[type[Exception], int] = {
    BadInput: EXIT_BAD_INPUT,
    InvalidDocument: EXIT_BAD_INPUT,
    Refused: EXIT_REFUSED,
    Unavailable: EXIT_UNAVAILABLE,
}


class _Console(Console):
    """A console that shows text from outside as data (evac/text.py): every control character in
    what it prints is written as a visible escape, whatever printed it. Its own cursor moves and
    styles (control segments, the terminal codes it adds for styles) are untouched."""

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        return super()._render_buffer(Segment(visible(s.text), s.style, s.control) if s.control is None else s for s in buffer)

    def print(self, *objects: Any, **kwargs: Any) -> None:
        """As Console.print; text from outside that reads as broken markup (``[/]`` in a reason)
        is printed as it is, never a crash."""
        try:
            super().print(*objects, **kwargs)
        except MarkupError:
            super().print(*objects, **{**kwargs, "markup": False})


out = _Console(soft_wrap=True)
err = _Console(stderr=True, soft_wrap=True)
T = TypeVar("T")


class Output(str, Enum):  # noqa: UP042 (typer offers the members of a (str, Enum) as choices)
    text = "text"
    json = "json"


class State:
    """Per-invocation state: how to speak, where to connect, what this process started."""

    output: Output = Output.text
    address: str | None = None
    namespace: str | None = None
    started: list[StartedRun] = []


def set_output(output: Output) -> None:
    State.output = output


def output_option() -> Any:
    return typer.Option(Output.text, "--output", "-o", help="text for people, json for scripts (errors too)")


def address_option() -> Any:
    return typer.Option(None, "--address", help="Temporal frontend host:port (env TEMPORAL_ADDRESS; also before the command)")


def namespace_option() -> Any:
    return typer.Option(None, "--namespace", help="Temporal namespace (env TEMPORAL_NAMESPACE; also before the command)")


def connection(address: str | None, namespace: str | None) -> None:
    """Flags given after the command win over the same flags before it."""
    State.address = address or State.address
    State.namespace = namespace or State.namespace


def begin(output: Output, address: str | None, namespace: str | None) -> Settings:
    """What every command that talks to Temporal does first: how to speak, where to connect, settings."""
    set_output(output)
    connection(address, namespace)
    return settings()


def print_json(value: Any) -> None:
    out.print(json.dumps(value, default=str), highlight=False, soft_wrap=True, markup=False)


def fail(message: str, code: int, **more: object) -> NoReturn:
    if State.output == Output.json:
        out.print(json.dumps({"error": message, "exit_code": code, **more}), highlight=False, soft_wrap=True, markup=False)
    else:
        err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True, markup=True)
    raise typer.Exit(code)


def fail_with(exc: Exception) -> NoReturn:
    """An error of the tree as one sentence and its exit code (a document's errors, each on its line)."""
    code = next(code for kind, code in EXIT_CODES.items() if isinstance(exc, kind))
    if isinstance(exc, InvalidDocument):
        if State.output == Output.text:
            for error in exc.errors:
                err.print(f"[red]{error}[/]", highlight=False, soft_wrap=True)
        noun = "error" if len(exc.errors) == 1 else "errors"
        fail(f"{len(exc.errors)} {noun}; nothing was started", code, errors=[str(e) for e in exc.errors])
    fail(str(exc), code)


def interrupted() -> NoReturn:
    runs = State.started
    if not runs:
        fail("interrupted (this command started no run)", EXIT_INTERRUPTED)
    names = " ".join(run.workflow_id for run in runs)
    first = runs[0].workflow_id
    fail(
        f"interrupted; the run(s) continue: {names} — follow with 'evac status {first} --watch', "
        f"abort with 'evac abort {first} --reason …'",
        EXIT_INTERRUPTED,
        runs=[run.workflow_id for run in runs],
    )


def run_async(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine, turning the errors a user can meet into one sentence and an exit code."""
    try:
        return asyncio.run(make())  # type: ignore[arg-type]
    except KeyboardInterrupt:
        interrupted()
    except (FrontDoorError, InvalidDocument) as exc:
        fail_with(exc)


class FollowNotices:
    """What a command that follows runs says on stderr while it waits: that no worker has
    answered for a run yet, and that Temporal cannot be reached; each once."""

    def __init__(self, worker_wait: float) -> None:
        self._worker_wait = worker_wait
        self._told_waiting: set[str] = set()
        self._told_unavailable = False

    def tell(self, waiting_for_worker: Iterable[str], temporal_unavailable: str | None) -> None:
        for workflow_id in waiting_for_worker:
            if workflow_id not in self._told_waiting:
                self._told_waiting.add(workflow_id)
                err.print(
                    f"[yellow]waiting for a worker to answer for {workflow_id} (giving up after {self._worker_wait:.0f}s)…[/]",
                    highlight=False,
                )
        if temporal_unavailable and not self._told_unavailable:
            self._told_unavailable = True
            err.print(f"[yellow]{temporal_unavailable}; still trying…[/]", highlight=False)


def settings() -> Settings:
    try:
        return Settings.load()
    except FrontDoorError as exc:
        fail_with(exc)


async def client(config: Settings) -> Client:
    return await connect_temporal(State.address, State.namespace, identity=config.identity)


def blackouts_for(config: Settings, plan: Plan | None, override: bool, reason_given: bool, dry_run: bool) -> control.Blackouts:
    """The configuration's blackout windows, for a start to apply (none for a dry run: it changes
    nothing, so it is never refused). The start's policy is asked here too, so that a start it
    would refuse is refused before connecting; the start itself decides again and records it."""
    if dry_run:
        return control.NO_BLACKOUTS
    try:
        blackouts = control.Blackouts.load(config.blackouts)
        control.blackout_override(
            blackouts, plan.blackouts if plan else [], override=override, reason_given=reason_given, now=datetime.now(UTC)
        )
    except (InvalidDocument, FrontDoorError) as exc:
        fail_with(exc)
    return blackouts


def tell_overridden(overridden: Iterable[str | None], what: str = "run") -> None:
    """The blackout window(s) a start recorded as overridden, each once, on stderr."""
    if State.output != Output.text:
        return
    for text in dict.fromkeys(t for t in overridden if t):
        err.print(f"[yellow]{text}; starting anyway (--override-blackout, recorded in the {what})[/]", highlight=False)


def started_json(started: StartedRun | control.StartedEvacuation) -> dict[str, Any]:
    """What a start returned, for ``--output json``; the blackout window only when one was overridden."""
    return {key: value for key, value in vars(started).items() if key != "blackout_override" or value is not None}


def reason_or_fail(
    value: str | None,
    *,
    option: str = "--reason",
    required: bool = True,
    not_done: str = "nothing was started",
    must_say: str = RECORDED_IN_THE_RUN,
) -> str:
    """:func:`evac.control.recorded_reason`, its refusal as one sentence and exit 2."""
    try:
        return control.recorded_reason(value, option=option, required=required, not_done=not_done, must_say=must_say)
    except FrontDoorError as exc:
        fail_with(exc)
