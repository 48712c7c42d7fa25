"""Evac: regional failover and DR-drill plans run as Temporal workflows."""

__version__ = "0.1.0"
