"""Configuration: flags first, then environment variables, then a config file.

Evac's own settings come from ``EVAC_*`` variables or the TOML file named by
``EVAC_CONFIG`` (default ``~/.config/evac/config.toml``). The Temporal connection comes
from Temporal's own ``TEMPORAL_*`` variables and profile file (``temporalio.envconfig``):
``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``, ``TEMPORAL_TLS*`` …
Secrets never go into plans, workflow inputs or histories.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfig

DEFAULT_TEMPORAL_ADDRESS = "localhost:7233"


class ConfigError(Exception):
    """A setting that cannot be used; the message names it and where it came from."""


@dataclass(frozen=True)
class Settings:
    task_queue: str = "evac"
    gcp_project: str | None = None
    gcp_endpoint: str | None = None
    temporal_ui: str = "http://localhost:8233"

    @classmethod
    def load(cls, **flags: Any) -> "Settings":
        """Defaults < config file < EVAC_* environment < flags (None flags are ignored)."""
        settings = cls()
        path = Path(os.environ.get("EVAC_CONFIG", Path.home() / ".config" / "evac" / "config.toml"))
        if path.is_file():
            try:
                data = tomllib.loads(path.read_text())
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"config file {path}: {exc}") from None
            known = {f.name for f in fields(cls)}
            unknown = set(data) - known
            if unknown:
                raise ConfigError(f"config file {path}: unknown keys {', '.join(sorted(unknown))}")
            settings = replace(settings, **data)
        env = {f.name: os.environ.get(f"EVAC_{f.name.upper()}") for f in fields(cls)}
        settings = replace(settings, **{k: v for k, v in env.items() if v})
        return replace(settings, **{k: v for k, v in flags.items() if v is not None})


class TemporalUnreachable(Exception):
    def __init__(self, address: str, detail: str):
        reason = "connection refused" if "refused" in detail.lower() else detail
        super().__init__(
            f"cannot reach Temporal at {address} ({reason}); is it running? "
            "('evac dev up' starts one locally; TEMPORAL_ADDRESS or --address points elsewhere)"
        )


async def connect_temporal(address: str | None = None, namespace: str | None = None) -> Client:
    """Connect with Temporal's own configuration (TEMPORAL_* variables, profile file)."""
    config: dict[str, Any] = dict(ClientConfig.load_client_connect_config())
    if address:
        config["target_host"] = address
    if namespace:
        config["namespace"] = namespace
    config.setdefault("target_host", DEFAULT_TEMPORAL_ADDRESS)
    try:
        return await Client.connect(**config, data_converter=pydantic_data_converter)
    except RuntimeError as exc:
        raise TemporalUnreachable(config["target_host"], str(exc)) from None
