"""The audit layer: records derived from Temporal histories alone, and what is made of them.

A run's record (``record``) and its timeline, Markdown and HTML (``render``); a region
evacuation's record from the runs of its chain (``evacuation``, ``evacuation_render``); the
evidence report across runs (``evidence``). Pure code, no I/O: the front doors that read
histories and visibility are ``evac.control.audit`` and ``evac.control.evidence``.

This package re-exports nothing: import the module you use (``from evac.audit import record``).
"""
