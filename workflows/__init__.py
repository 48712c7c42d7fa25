"""Workflows: deterministic orchestration, no I/O. One module per workflow; the engine they
compose is ``saga.py`` (undos and rollback), ``steps.py`` (the step table) and
``plan_run.py`` (preflight, steps, rollback and the end of a run). ``registry.py`` lists them
all for the worker; this package imports nothing, so that a run's sandbox imports only its
own workflow's modules."""
