"""Workflows: deterministic orchestration, no I/O. One module per workflow; the engine they
compose is ``saga.py`` (undos and rollback) and ``steps.py`` (the step table)."""

from __future__ import annotations

from workflows.failover import FailoverWorkflow

# Every workflow the worker registers (and the replay tests replay against).
WORKFLOWS = [FailoverWorkflow]
