"""Every way a front-door call (CLI, alert receiver, schedules) can fail, in one list.

Each branch has one meaning, and the CLI one exit code per branch (``evac.cli.EXIT_CODES``)::

    FrontDoorError
    ├── BadInput                 2  nothing was started; fix the input and try again
    │   ├── ConfigError             a setting cannot be used (config file, --address, identity)
    │   ├── InvalidRequest          Temporal refused an argument (a malformed --run-id …)
    │   ├── WrongProject            the topology is for another project than EVAC_GCP_PROJECT
    │   ├── UnknownApproverGroup    a plan names an approver group the config lacks (approvals.py)
    │   ├── InvalidSchedule         a schedule's name, cron, time zone, jitter or bake (control/schedules.py)
    │   ├── NotAnExport             'evac audit verify' was given a file that is no audit export (control/audit.py)
    │   ├── InvalidAlertsRequest    a bad region or reason for 'evac alerts status' / 'evac auto' (control/alerts.py)
    │   └── InvalidEvacuation       an evacuation that cannot start as asked: unknown region, service or
    │                               tier, a target that does not serve a service, a window out of range
    │   (documents.InvalidDocument, a plan or topology with errors, also means 2)
    ├── Refused                  3  the request makes no sense for the run as it is
    │   ├── ServiceBusy             the service already has a run
    │   ├── EvacuationRunning       the region already has an evacuation running
    │   ├── EvacuationNotFound      no evacuation under that id
    │   ├── RunNotFound             no such run (FailbackNotFound: no such failback, control/audit.py)
    │   ├── SearchAttributeConflict a search attribute is registered with another type
    │   ├── NotRunning              the run has ended (an abort, approval or pause that raced its end, too)
    │   ├── UpdateRefused           the run's validator refused an approval, rejection, pause or resume
    │   │                           (control/operate.py; the run is untouched)
    │   ├── BlackoutInEffect        a manual start inside a blackout window (blackouts.py)
    │   ├── NotAnAuditRun           'evac audit' on a workflow that is no failover, drill or evacuation (control/audit.py)
    │   ├── GuardianNotFound        no guardian runs for the region asked about (control/alerts.py)
    │   └── ScheduleExists, ScheduleNotFound, ScheduleBusy   (control/schedules.py)
    └── Unavailable              4  the machinery is not there to do it
        ├── TemporalUnreachable     no connection to Temporal
        ├── TemporalUnavailable     Temporal answered "unavailable" or did not answer in time
        │                           (transient: a follow waits it out, within a bound)
        ├── NamespaceNotFound       the namespace does not exist
        ├── TemporalRefused         a permanent refusal: permission denied, unauthenticated …
        ├── NoWorker                no worker polls the task queue: refused before starting
        ├── NoWorkerAnswered        a run's live record needs a worker and none answered
        └── WorkerWaitExpired       following gave up waiting for a worker; the run still exists

The branches listed with a module live beside the code that raises them; every one of them is
here. Errors from the Temporal SDK are translated at one boundary, :func:`from_rpc`, with the cause
kept. Messages are one sentence a person can act on.
"""

from __future__ import annotations

import re

from temporalio.service import RPCError, RPCStatusCode


class FrontDoorError(Exception):
    """Base of every error a front door turns into one sentence."""


class BadInput(FrontDoorError):
    pass


class Refused(FrontDoorError):
    pass


class Unavailable(FrontDoorError):
    pass


class ConfigError(BadInput):
    """A setting that cannot be used; the message names it and where it came from."""


class InvalidRequest(BadInput):
    pass


class WrongProject(BadInput):
    def __init__(self, topology_project: str, guard: str):
        super().__init__(
            f"the topology is for project '{topology_project}' but EVAC_GCP_PROJECT is '{guard}'; nothing was started"
        )


class ServiceBusy(Refused):
    """A service already has a run; Evac never starts a second one for it."""

    def __init__(self, service: str, workflow_id: str, run_id: str | None):
        self.service, self.workflow_id, self.run_id = service, workflow_id, run_id
        held = f" (run {run_id})" if run_id else ""
        super().__init__(
            f"service '{service}' already has a failover running: {workflow_id}{held}; "
            f"watch it with 'evac status {workflow_id}' or stop it with 'evac abort {workflow_id} --reason …'"
        )


class InvalidEvacuation(BadInput):
    """The evacuation asked for cannot start as given; the message names what is wrong."""

    def __init__(self, problem: str):
        super().__init__(f"{problem}; nothing was started")


class EvacuationRunning(Refused):
    """A region already has an evacuation running; Evac never starts a second one for it."""

    def __init__(self, region: str, workflow_id: str, run_id: str | None):
        self.region, self.workflow_id, self.run_id = region, workflow_id, run_id
        held = f" (run {run_id})" if run_id else ""
        super().__init__(
            f"region '{region}' already has an evacuation running: {workflow_id}{held}; "
            f"watch it with 'evac watch {workflow_id}' or stop it with 'evac abort {workflow_id} --reason …'; "
            "nothing was started"
        )


class EvacuationNotFound(Refused):
    def __init__(self, workflow_id: str, run_id: str | None = None):
        which = f"run {run_id} of evacuation '{workflow_id}'" if run_id else f"evacuation '{workflow_id}'"
        super().__init__(f"no {which} (evacuations are named evacuation/<region>)")


class RunNotFound(Refused):
    def __init__(self, workflow_id: str, run_id: str | None = None):
        which = f"run {run_id} of '{workflow_id}'" if run_id else f"failover run '{workflow_id}'"
        super().__init__(f"no {which} (runs are named failover/<service>)")


class SearchAttributeConflict(Refused):
    def __init__(self, name: str, registered: str, wanted: str, namespace: str):
        super().__init__(
            f"search attribute {name} is registered on namespace '{namespace}' as {registered}, "
            f"Evac needs {wanted}; change it on the cluster (nothing was added)"
        )


class NotRunning(Refused):
    def __init__(self, workflow_id: str, what: str = "abort"):
        super().__init__(f"run '{workflow_id}' has already ended; there is nothing to {what}")


class TemporalUnreachable(Unavailable):
    def __init__(self, address: str, detail: str):
        reason = "connection refused" if "refused" in detail.lower() else detail
        super().__init__(
            f"cannot reach Temporal at {address} ({reason}); is it running? "
            "('evac dev up' starts one locally; TEMPORAL_ADDRESS or --address points elsewhere)"
        )


class TemporalUnavailable(Unavailable):
    def __init__(self, message: str):
        super().__init__(f"Temporal is unavailable or did not answer in time ({message}); try again shortly")


class NamespaceNotFound(Unavailable):
    def __init__(self, namespace: str):
        super().__init__(
            f"namespace '{namespace}' does not exist on this Temporal server "
            "(--namespace or TEMPORAL_NAMESPACE; 'temporal operator namespace list' shows the namespaces)"
        )


class TemporalRefused(Unavailable):
    def __init__(self, message: str):
        super().__init__(f"Temporal refused the request: {message}")


class NoWorker(Unavailable):
    def __init__(self, task_queue: str, namespace: str):
        super().__init__(
            f"no worker polls task queue '{task_queue}' in namespace '{namespace}', so a run would wait unwatched; "
            "start one ('evac worker' or 'evac dev up'), or pass --allow-no-worker to queue the run anyway; nothing was started"
        )


class NoWorkerAnswered(Unavailable):
    """A run's live record needs a worker to answer the query, and none did."""

    def __init__(self, workflow_id: str, detail: str = ""):
        self.workflow_id = workflow_id
        more = f" ({detail})" if detail else ""
        super().__init__(
            f"no worker answered for run '{workflow_id}'{more}; start one with 'evac worker', "
            "or read the run's history in the Temporal Web UI"
        )


class WorkerWaitExpired(Unavailable):
    def __init__(self, workflow_ids: list[str], waited: float):
        runs = ", ".join(workflow_ids)
        first = workflow_ids[0] if workflow_ids else "failover/<service>"
        super().__init__(
            f"no worker has picked up {runs} in {waited:.0f}s; the run exists and will go on when a worker polls "
            f"(start one with 'evac worker'); follow it with 'evac status {first} --watch' "
            f"or stop it with 'evac abort {first} --reason …'"
        )


_TRANSIENT = frozenset({RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED})


def is_transient(exc: RPCError) -> bool:
    """Temporal was briefly unavailable or slow: worth waiting out (within a bound)."""
    return exc.status in _TRANSIENT


def _namespace_not_found(exc: RPCError) -> bool:
    details = getattr(exc.grpc_status, "details", None) or []
    return any(detail.type_url.endswith("NamespaceNotFoundFailure") for detail in details)


def from_rpc(exc: RPCError, *, namespace: str, workflow_id: str | None = None, run_id: str | None = None) -> FrontDoorError:
    """The one translation of a Temporal RPC error (raise it ``from exc``)."""
    # Only the namespace's own refusal: "execution not found … WorkflowId{namespace='default'…}" is a run.
    if exc.status == RPCStatusCode.NOT_FOUND and (
        _namespace_not_found(exc) or re.match(r"^namespace\b.*\bnot found", exc.message.lower())
    ):
        return NamespaceNotFound(namespace)
    if exc.status == RPCStatusCode.NOT_FOUND and workflow_id is not None:
        return RunNotFound(workflow_id, run_id)
    if exc.status == RPCStatusCode.INVALID_ARGUMENT:
        what = f" (run id '{run_id}')" if run_id and "runid" in exc.message.lower().replace(" ", "") else ""
        return InvalidRequest(f"Temporal refused the request as invalid{what}: {exc.message}")
    if is_transient(exc):
        return TemporalUnavailable(exc.message)
    return TemporalRefused(exc.message)
