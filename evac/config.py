"""Configuration: flags first, then environment variables, then a config file.

Evac's own settings come from ``EVAC_*`` variables or the TOML file named by
``EVAC_CONFIG`` (default ``~/.config/evac/config.toml``). The Temporal connection comes
from Temporal's own ``TEMPORAL_*`` variables and profile file (``temporalio.envconfig``):
``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``, ``TEMPORAL_TLS*`` …
Secrets never go into plans, workflow inputs or histories.
"""

from __future__ import annotations

import getpass
import os
import re
import socket
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from temporalio import activity
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfig

from evac.errors import ConfigError, TemporalUnreachable
from evac.resources import ActivityName

if TYPE_CHECKING:
    from evac.alerting.models import GuardianPolicy

DEFAULT_TEMPORAL_ADDRESS = "localhost:7233"
# host:port, the host a name, an IPv4 address or a bracketed IPv6 address.
_ADDRESS = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[-A-Za-z0-9.]*[A-Za-z0-9])?):(?P<port>[0-9]{1,5})\Z")
MAX_IDENTITY = 200
# Mutating cloud calls a second, across every worker (the writes task queue's rate limit).
DEFAULT_WRITE_RATE_LIMIT = 20.0
MAX_WRITE_RATE_LIMIT = 100_000.0
# Mutations one worker runs at once (each waits for its cloud operation to finish): to reach
# write_rate_limit, at least write_rate_limit x a mutation's seconds, over all workers together.
DEFAULT_WRITE_CONCURRENCY = 200
MAX_WRITE_CONCURRENCY = 2000

__all__ = [
    "ConfigError",
    "Settings",
    "TemporalUnreachable",
    "check_address",
    "connect_temporal",
    "default_identity",
    "writes_task_queue",
    "MUTATING_ACTIVITIES",
    "activity_name",
]

# The activities that change cloud resources: every worker serves them on the writes queue
# (workflows/steps.py schedules each mutation and undo there).
MUTATING_ACTIVITIES = frozenset(
    {
        ActivityName.SET_BACKEND_CAPACITY,
        ActivityName.RESIZE_GROUP,
        ActivityName.SET_DNS_RECORD,
        ActivityName.SET_DATABASE_ROLE,
        ActivityName.SET_DATABASE_LEADER,
    }
)


def activity_name(fn: Callable[..., object]) -> str:
    """The name an activity function is registered under."""
    return activity._Definition.must_from_callable(fn).name or ""


def writes_task_queue(task_queue: str) -> str:
    """The task queue of a run's mutating activities (set_backend_capacity, resize_group,
    set_dns_record and their undos): Temporal limits how many of its tasks all workers together
    start a second to ``write_rate_limit``, so Evac keeps within the project's write quota."""
    return f"{task_queue}-writes"


def default_identity() -> str:
    """Who is acting, as Temporal histories show it: ``user@host``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True)
class Settings:
    task_queue: str = "evac"
    gcp_project: str | None = None
    gcp_endpoint: str | None = None
    temporal_ui: str = "http://localhost:8233"
    # Recorded as who started, aborted or approved a run (and the Temporal client identity).
    identity: str = ""
    # How long a follow waits for a worker to answer before giving up (exit 4), in seconds.
    worker_wait: float = 60.0
    # The Prometheus server a drill's `prometheus` stop conditions query (the worker reads it).
    prometheus_url: str | None = None
    # Notification targets (the worker reads them; see docs/notifications.md). Their paths hold
    # tokens: never shown, logged or put into a run.
    notify_webhook_url: str | None = field(default=None, repr=False)
    slack_webhook_url: str | None = field(default=None, repr=False)
    # Approver groups a plan's approval steps name as group:NAME, from the config file only:
    # [approver_groups] sre = ["alice", "bob@laptop"]
    approver_groups: dict[str, list[str]] = field(default_factory=dict)
    # The alert receiver (`evac alerts serve`, docs/alerts.md). Its token authenticates senders: never shown or logged.
    alerts_token: str | None = field(default=None, repr=False)
    # The folder of plans alerts may start (every *.yaml but topology.yaml; the topology beside them).
    alerts_plans: str = ""
    # The alert label naming the region (required) and the service (optional; none: the whole region).
    alerts_region_label: str = "region"
    alerts_service_label: str = "service"
    # The guardians' policy, from the config file only: [alerts_policy] min_duration = "60s", max_per_hour = 5 …
    alerts_policy: GuardianPolicy = field(default_factory=lambda: _default_alerts_policy())
    # The blackouts file (EVAC_BLACKOUTS; default ~/.config/evac/blackouts.yaml; missing: no windows).
    blackouts: str = ""
    # How recently every service must have passed a drill (`evac audit report` flags the rest): 90d, 12h, 90m.
    drill_policy: str = "90d"
    # Mutating cloud calls a second, across every worker (Temporal's rate limit on the writes task
    # queue, see writes_task_queue): at or below the project's Compute Engine write quota.
    write_rate_limit: float = DEFAULT_WRITE_RATE_LIMIT
    # Mutations this worker runs at once (its writes-queue slots, each a thread that waits for
    # the cloud's operation): at least write_rate_limit x a mutation's seconds, or the worker,
    # not the quota, bounds an evacuation (20/s x 10 s operations = 200).
    write_concurrency: int = DEFAULT_WRITE_CONCURRENCY
    # The folder of the TSIG keys an on-premises DNS binding names (tsig_key: NAME → NAME.key, as
    # tsig-keygen writes it; EVAC_TSIG_KEY_DIR). The worker reads them; never in a topology or a run.
    tsig_key_dir: str = ""
    # How often at most the alert receiver's /metrics reads the readiness schedules' latest
    # evaluations from Temporal, in seconds (0: at every scrape); its evac_plan_ready gauges lag by up to this.
    readiness_refresh: float = 30.0

    @classmethod
    def load(cls, **flags: Any) -> Settings:
        """Defaults < config file < EVAC_* environment < flags (None flags are ignored)."""
        settings = cls()
        path = Path(os.environ.get("EVAC_CONFIG", Path.home() / ".config" / "evac" / "config.toml"))
        if path.is_file():
            try:
                data = tomllib.loads(path.read_text())
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"config file {path}: {exc}") from None
            known = {f.name for f in fields(cls)}
            unknown = set(data) - known
            if unknown:
                raise ConfigError(
                    f"config file {path}: unknown keys {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})"
                )
            settings = replace(settings, **data)
        env: dict[str, Any] = {f.name: os.environ.get(f"EVAC_{f.name.upper()}") for f in fields(cls)}
        settings = replace(settings, **{k: v for k, v in env.items() if v})
        settings = replace(settings, **{k: v for k, v in flags.items() if v is not None})
        settings = replace(settings, approver_groups=_approver_groups(settings.approver_groups, path))
        return settings._checked(path)

    def _checked(self, path: Path) -> Settings:
        try:
            worker_wait = float(self.worker_wait)
        except (TypeError, ValueError):
            raise ConfigError(
                f"worker_wait (EVAC_WORKER_WAIT or {path}) must be a number of seconds, not '{self.worker_wait}'"
            ) from None
        if not 0 <= worker_wait <= 86400:
            raise ConfigError(f"worker_wait (EVAC_WORKER_WAIT or {path}) must be between 0 and 86400 seconds")
        for name in ("notify_webhook_url", "slack_webhook_url"):
            _check_webhook_url(getattr(self, name), f"{name} (EVAC_{name.upper()} or {path})")
        identity = self.identity or default_identity()
        if len(identity) > MAX_IDENTITY or not identity.isprintable():
            raise ConfigError(f"identity (EVAC_IDENTITY or {path}) must be printable text of at most {MAX_IDENTITY} characters")
        blackouts = str(Path(self.blackouts or Path.home() / ".config" / "evac" / "blackouts.yaml").expanduser())
        _check_alerts(self, path)
        alerts_policy = _alerts_policy(self.alerts_policy, path)
        _check_drill_policy(self.drill_policy, f"drill_policy (EVAC_DRILL_POLICY or {path})")
        write_rate_limit = _write_rate_limit(self.write_rate_limit, f"write_rate_limit (EVAC_WRITE_RATE_LIMIT or {path})")
        write_concurrency = _write_concurrency(self.write_concurrency, f"write_concurrency (EVAC_WRITE_CONCURRENCY or {path})")
        readiness_refresh = _readiness_refresh(self.readiness_refresh, f"readiness_refresh (EVAC_READINESS_REFRESH or {path})")
        return replace(
            self,
            worker_wait=worker_wait,
            identity=identity,
            blackouts=blackouts,
            alerts_policy=alerts_policy,
            write_rate_limit=write_rate_limit,
            write_concurrency=write_concurrency,
            readiness_refresh=readiness_refresh,
        )


def _write_rate_limit(value: object, where: str) -> float:
    """Writes a second: a number above 0 (TOML's true/false is not one)."""
    try:
        if isinstance(value, bool):
            raise ValueError
        rate = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be a number of writes a second, e.g. 20 or 2.5, not {value!r}") from None
    if not 0 < rate <= MAX_WRITE_RATE_LIMIT:  # also refuses nan and inf
        raise ConfigError(
            f"{where} must be above 0 and at most {MAX_WRITE_RATE_LIMIT:g} writes a second "
            f"(at or below the project's Compute Engine write quota), not {value!r}"
        )
    return rate


def _write_concurrency(value: object, where: str) -> int:
    """Mutations at once: a whole number from 1 to MAX_WRITE_CONCURRENCY (TOML's true/false is not one)."""
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        count: int = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{where} must be a whole number of mutations at once, e.g. 200, not {value!r}") from None
    if not 1 <= count <= MAX_WRITE_CONCURRENCY:
        raise ConfigError(
            f"{where} must be from 1 to {MAX_WRITE_CONCURRENCY} mutations at once "
            f"(at least write_rate_limit x a mutation's seconds), not {value!r}"
        )
    return count


def _readiness_refresh(value: object, where: str) -> float:
    """Seconds between reads of readiness: a number from 0 (every scrape) to 3600 (TOML's true/false is not one)."""
    try:
        if isinstance(value, bool):
            raise ValueError
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be a number of seconds, e.g. 30, not {value!r}") from None
    if not 0 <= seconds <= 3600:  # also refuses nan and inf
        raise ConfigError(f"{where} must be from 0 (every scrape) to 3600 seconds, not {value!r}")
    return seconds


def _approver_groups(value: object, path: Path) -> dict[str, list[str]]:
    """The config file's ``[approver_groups]`` table, checked: group name -> user or user@host entries."""
    from evac.approvals import group_name_problem, identity_problem

    if os.environ.get("EVAC_APPROVER_GROUPS"):
        raise ConfigError(
            f"EVAC_APPROVER_GROUPS is not read: approver groups are set in the config file ({path}) as a table, "
            'e.g. [approver_groups] sre = ["alice", "bob@laptop"]'
        )
    where = f"approver_groups in {path}"
    if not isinstance(value, dict):
        raise ConfigError(f'{where} must be a table, e.g. [approver_groups] sre = ["alice", "bob@laptop"]')
    groups: dict[str, list[str]] = {}
    for name, members in value.items():
        problem = group_name_problem(name)
        if problem is not None:
            raise ConfigError(f"{where}: {problem}")
        if not isinstance(members, list) or not members or not all(isinstance(m, str) for m in members):
            raise ConfigError(f"{where}: group '{name}' must be a non-empty list of user names or user@host")
        for member in members:
            problem = identity_problem(member)
            if member.startswith("group:"):
                problem = f"'{member}': groups do not nest; list the members themselves"
            if problem is not None:
                raise ConfigError(f"{where}: group '{name}': {problem}")
        groups[name] = list(members)
    return groups


def _check_drill_policy(value: object, where: str) -> None:
    """A lookback like 90d, 12h or 90m (what ``evac audit report --policy`` takes)."""
    from evac.control.findable import parse_since
    from evac.errors import BadInput

    try:
        parse_since(value if isinstance(value, str) else repr(value), where)
    except BadInput as exc:
        raise ConfigError(str(exc)) from None


_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}\Z")
_POLICY_DURATIONS = ("min_duration", "cooldown", "approval_timeout")


def _check_alerts(settings: Settings, path: Path) -> None:
    """The receiver's token and label names (the token is never shown, even when wrong)."""
    token = settings.alerts_token
    if token is not None and (
        not isinstance(token, str) or not token or not token.isascii() or not token.isprintable() or " " in token
    ):
        raise ConfigError(
            f"alerts_token (EVAC_ALERTS_TOKEN or {path}) must be printable ASCII text without spaces "
            "(the value is not shown: it is a secret)"
        )
    for name in ("alerts_region_label", "alerts_service_label"):
        value = getattr(settings, name)
        if not isinstance(value, str) or not _LABEL.match(value):
            raise ConfigError(
                f"{name} (EVAC_{name.upper()} or {path}) must be a label name like 'region' "
                f"(letters, digits, '_', '.', '-'), not {value!r}"
            )
    if not isinstance(settings.alerts_plans, str):
        raise ConfigError(f"alerts_plans (EVAC_ALERTS_PLANS or {path}) must be the path of a folder of plans")


def _default_alerts_policy() -> GuardianPolicy:
    from evac.alerting.models import GuardianPolicy

    return GuardianPolicy()


def _alerts_policy(value: object, path: Path) -> GuardianPolicy:
    """The config file's ``[alerts_policy]`` table as the guardians' policy; durations as '60s', '5m', '1h'."""
    import pydantic

    from evac.alerting.models import GuardianPolicy
    from evac.documents import format_path
    from evac.plan import parse_duration

    if isinstance(value, GuardianPolicy):
        return value
    if os.environ.get("EVAC_ALERTS_POLICY"):
        raise ConfigError(
            f"EVAC_ALERTS_POLICY is not read: the alert policy is set in the config file ({path}) as a table, "
            'e.g. [alerts_policy] min_duration = "60s"'
        )
    if not isinstance(value, dict):
        raise ConfigError(f'alerts_policy in {path} must be a table, e.g. [alerts_policy] min_duration = "60s"')
    known = GuardianPolicy.model_fields
    data = dict(value)
    for key in data:
        if key not in known:
            raise ConfigError(f"alerts_policy.{key} in {path} is not a policy key (known: {', '.join(known)})")
    for key, item in data.items():
        if isinstance(item, bool):  # TOML's true/false must not become a count of 1 or 0
            raise ConfigError(f"alerts_policy.{key} in {path} must be a number or text, not {str(item).lower()}")
    for key in _POLICY_DURATIONS:
        if key in data:
            try:
                data[key] = parse_duration(data[key])
            except ValueError as exc:
                raise ConfigError(f"alerts_policy.{key} in {path}: {exc}") from None
    try:
        return GuardianPolicy.model_validate(data, strict=False)
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        raise ConfigError(f"alerts_policy.{format_path(error['loc'])} in {path}: {error['msg']}") from None


def _check_webhook_url(url: object, where: str) -> None:
    """An http(s) URL with a host (or unset); the error never shows the URL (its path is a secret)."""
    if url is None or url == "":
        return
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
        valid = parts is not None and parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid or not isinstance(url, str) or not url.isprintable() or " " in url:
        raise ConfigError(f"{where} must be an http:// or https:// URL with a host (the value is not shown: it holds a token)")


def check_address(address: str, where: str) -> str:
    """``host:port`` or a one-sentence ConfigError naming where the address came from."""
    if "://" in address:
        raise ConfigError(
            f"{where} '{address}' must be host:port without a scheme (e.g. localhost:7233; TLS comes from TEMPORAL_TLS)"
        )
    match = _ADDRESS.match(address)
    if match is None:
        raise ConfigError(f"{where} '{address}' is not host:port (e.g. localhost:7233)")
    if not 1 <= int(match["port"]) <= 65535:
        raise ConfigError(f"{where} '{address}' has port {match['port']}, outside 1-65535")
    return address


async def connect_temporal(address: str | None = None, namespace: str | None = None, identity: str | None = None) -> Client:
    """Connect with Temporal's own configuration (TEMPORAL_* variables, profile file)."""
    try:
        config: dict[str, Any] = dict(ClientConfig.load_client_connect_config())
    except Exception as exc:  # a broken temporal.toml or TEMPORAL_* value: envconfig raises plain errors
        raise ConfigError(f"Temporal client configuration (TEMPORAL_* variables or temporal.toml): {exc}") from None
    if address:
        config["target_host"] = check_address(address, "--address")
    elif "target_host" in config:
        check_address(config["target_host"], "TEMPORAL_ADDRESS (or the temporal.toml profile)")
    if namespace:
        config["namespace"] = namespace
    config.setdefault("target_host", DEFAULT_TEMPORAL_ADDRESS)
    try:
        return await Client.connect(**config, data_converter=pydantic_data_converter, identity=identity or default_identity())
    except (RuntimeError, ValueError) as exc:
        raise TemporalUnreachable(config["target_host"], str(exc)) from None
