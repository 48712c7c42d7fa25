"""Databases: which region's instance of a service's database is primary (Cloud SQL), and which
region leads a multi-region database's writes (Spanner), read and changed through the
reference's provider."""

from __future__ import annotations

from temporalio import activity

from activities.errors import provider_call
from evac.logging import step_logging
from evac.resources import (
    ActivityName,
    Change,
    DatabaseLeader,
    DatabaseRole,
    ReadDatabaseLeader,
    ReadDatabaseRole,
    ReadReplicationLag,
    ReplicationLag,
    SetDatabaseLeader,
    SetDatabaseRole,
)
from providers.registry import Providers


class DatabaseActivities:
    def __init__(self, providers: Providers):
        self._providers = providers

    @activity.defn(name=ActivityName.READ_DATABASE_ROLE, no_thread_cancel_exception=True)
    def read_database_role(self, input: ReadDatabaseRole) -> DatabaseRole:
        with step_logging(input.context), provider_call():
            return self._providers.databases(input.database).read_role(input.database)

    @activity.defn(name=ActivityName.SET_DATABASE_ROLE, no_thread_cancel_exception=True)
    def set_database_role(self, input: SetDatabaseRole) -> Change:
        """Switch over, promote, create or delete (``SetDatabaseRole``); returns what it found
        before. Reports only once the operation is done and the roles read back."""
        with step_logging(input.context) as log, provider_call():
            return self._providers.databases(input.database).set_role(input, log)

    @activity.defn(name=ActivityName.READ_REPLICATION_LAG, no_thread_cancel_exception=True)
    def read_replication_lag(self, input: ReadReplicationLag) -> ReplicationLag:
        with step_logging(input.context), provider_call():
            return self._providers.databases(input.database).replication_lag(input.database)

    @activity.defn(name=ActivityName.READ_DATABASE_LEADER, no_thread_cancel_exception=True)
    def read_database_leader(self, input: ReadDatabaseLeader) -> DatabaseLeader:
        with step_logging(input.context), provider_call():
            return self._providers.leaders(input.database).read_leader(input.database)

    @activity.defn(name=ActivityName.SET_DATABASE_LEADER, no_thread_cancel_exception=True)
    def set_database_leader(self, input: SetDatabaseLeader) -> Change:
        """Make ``desired`` the leader; returns what it found before. Reports only once the schema
        change is done."""
        with step_logging(input.context) as log, provider_call():
            return self._providers.leaders(input.database).set_leader(input, log)
