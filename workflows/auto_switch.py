"""AutoSwitchWorkflow: the global kill switch for automatic failover (``evac auto disable | enable``).

A singleton (id ``evac-auto-switch``), started by the first change with signal-with-start.
Each ``set`` signal turns automatic decisions on or off and is recorded (who, why, when), so
the switch is itself on the record; the ``switch`` query answers the switch and its changes.
Every region's guardian reads it (``gather_facts``) before each decision. After
``SWITCH_CHANGES_LIMIT`` changes it continues as new, carrying the switch and its newest changes.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from evac import workflow_types
    from evac.alerting import status as guardian_status
    from evac.alerting.models import KillSwitch, SwitchChange
    from evac.alerting.status import SwitchChangeRecord, SwitchRecord
    from evac.approvals import message_problem


@workflow.defn(name=workflow_types.AUTO_SWITCH)
class AutoSwitchWorkflow:
    @workflow.init
    def __init__(self, input: SwitchRecord) -> None:
        self._record = input.model_copy(deep=True)
        self._changes_this_run = 0

    @workflow.signal(name="set")
    def set(self, change: SwitchChange) -> None:
        """Apply and record one change. Repeating the switch's state is recorded in its changes
        (who said it, and why) but leaves the switch as it was set first: who disabled it, since when.
        A malformed change (a forged identity, a reason of megabytes: see evac.approvals
        message_problem) changes nothing and is not recorded: a signal cannot be refused."""
        problem = message_problem(change.by, change.reason)
        if problem is not None:
            workflow.logger.warning("kill switch change ignored", extra={"error": problem})
            return
        at = workflow.now()
        current = self._record.switch
        if current.at is None or current.enabled != change.enabled:
            self._record.switch = KillSwitch(enabled=change.enabled, by=change.by, reason=change.reason, at=at)
        self._record.changes.append(SwitchChangeRecord(enabled=change.enabled, by=change.by, reason=change.reason, at=at))
        self._changes_this_run += 1
        workflow.logger.warning(
            "automatic failover %s",
            "enabled" if change.enabled else "disabled",
            extra={"by": change.by, "reason": change.reason},
        )

    @workflow.query
    def switch(self) -> SwitchRecord:
        return self._record

    @workflow.run
    async def run(self, input: SwitchRecord) -> None:
        await workflow.wait_condition(lambda: self._changes_this_run >= guardian_status.SWITCH_CHANGES_LIMIT)
        await workflow.wait_condition(workflow.all_handlers_finished)
        record = self._record
        carried = SwitchRecord(
            switch=record.switch, changes=record.changes[-guardian_status.SWITCH_CHANGES_KEPT :], runs=record.runs + 1
        )
        workflow.logger.info("kill switch continues as new", extra={"changes": len(record.changes), "runs": carried.runs})
        workflow.continue_as_new(carried)
