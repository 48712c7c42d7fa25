"""The alerting layer: alert-driven failover, from an alert's arrival to a guardian's decision.

The evidence, policy and decision models (``models``), the policy as pure functions
(``policy``), the parsing of Alertmanager, Cloud Monitoring and Pub/Sub payloads (``payloads``),
the receiver that signals guardians (``receiver``), and what a guardian and the kill switch
answer when asked (``status``). The workflows are ``workflows/guardian.py`` and
``workflows/auto_switch.py``; the front doors ``evac.control.alerts`` and ``evac/cli/``.

This package re-exports nothing: import the module you use (``from evac.alerting import policy``).
"""
