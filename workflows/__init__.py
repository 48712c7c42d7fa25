"""Workflows: deterministic orchestration, no I/O. One module per workflow."""
