"""Logging: structlog everywhere, JSON lines in services, readable console on a terminal.

Every line written inside an activity carries the workflow id, run id, service and step;
lines from workflow code (``workflow.logger``) carry the workflow's own context and are
dropped while the workflow replays, so a replay never duplicates them.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any

import structlog
from temporalio import activity, workflow
from temporalio.runtime import LogForwardingConfig, LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

from evac.resources import StepContext

# Keys that workflow code passes in ``extra=`` and that every rendered line should show.
WORKFLOW_EXTRA_KEYS = ("service", "step", "plan", "digest", "status", "error")


def _temporal_context(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    if activity.in_activity():
        info = activity.info()
        event.setdefault("workflow_id", info.workflow_id)
        event.setdefault("run_id", info.workflow_run_id)
        event.setdefault("activity", info.activity_type)
        event.setdefault("attempt", info.attempt)
        # The SDK's own lines about an activity (retries, failures) have no step bound; the
        # service is still known from the run's id (failover/<service>).
        if info.workflow_id:
            event.setdefault("service", info.workflow_id.rpartition("/")[2])
    return event


def _flatten_workflow_extra(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """workflow.logger puts its context under ``temporal_workflow``; lift the useful keys."""
    record = event.get("_record")
    wf = getattr(record, "temporal_workflow", None) if record is not None else None
    if isinstance(wf, dict):
        event.setdefault("workflow_id", wf.get("workflow_id"))
        event.setdefault("run_id", wf.get("run_id"))
    for key in WORKFLOW_EXTRA_KEYS:
        value = getattr(record, key, None) if record is not None else None
        if value is not None:
            event.setdefault(key, value)
    return event


def configure_logging(*, json: bool | None = None, level: str = "INFO") -> None:
    """Route structlog and stdlib logging (Temporal's, workflow.logger) through one renderer."""
    if json is None:
        json = not sys.stderr.isatty()
    # The context goes into fields of the line, not into the message text.
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _temporal_context,
    ]
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, _flatten_workflow_extra],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if json else _identity,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def _identity(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    return event


@contextlib.contextmanager
def step_logging(context: StepContext) -> Iterator[structlog.stdlib.BoundLogger]:
    """Bind service and step for every line logged while an activity serves that step."""
    with structlog.contextvars.bound_contextvars(service=context.service, step=context.step):
        yield structlog.get_logger("evac.activity")


def workflow_log_extra(service: str, step: str) -> dict[str, Any]:
    """``extra=`` for workflow.logger calls: service and step on the line."""
    return {"service": service, "step": step}


def forward_core_logs() -> None:
    """The SDK's native core logs to stderr on its own; send its warnings through our logging
    so that a worker or an alert receiver writes JSON lines only."""
    logging_config = LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
        forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
    )
    Runtime.set_default(Runtime(telemetry=TelemetryConfig(logging=logging_config)), error_if_already_set=False)


__all__ = ["configure_logging", "forward_core_logs", "step_logging", "workflow_log_extra"]
