"""What alert senders post, parsed into :class:`evac.alerting.models.AlertEvidence` (pure: no I/O).

Three deliveries are read:

- a Prometheus **Alertmanager** webhook (payload version 4): ``alerts[]`` with ``status``,
  ``labels``, ``annotations``, ``startsAt``, ``endsAt`` and ``fingerprint``;
- a **Google Cloud Monitoring** webhook notification (schema version 1.2): one ``incident``
  with ``incident_id``, ``state`` open/closed, ``resource.labels``, ``policy_name``,
  ``started_at`` / ``ended_at`` (epoch seconds) and ``summary``;
- the same notification delivered by a **Pub/Sub push** subscription: an envelope whose
  ``message.data`` is the notification's JSON, base64-encoded.

An alert names its region (required) and its service (optional: none means the whole region)
by labels whose names are configurable (default ``region`` and ``service``). Senders add fields
over time, so the models allow extra keys; what Evac needs must be there and well-formed, or
:class:`ParseError` says, in one sentence, where it is wrong (``alerts[3].labels has no 'region'``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from evac.alerting.models import MAX_ALERT_KEY, MAX_ALERT_NAME, MAX_ALERT_SERVICE, MAX_ALERT_SUMMARY, AlertEvidence
from evac.document_types import Region
from evac.documents import format_path
from evac.text import visible

MAX_SUMMARY = MAX_ALERT_SUMMARY
# An alert's name as evidence (it reaches trigger reasons, status lines and notifications).
MAX_NAME = MAX_ALERT_NAME
MAX_KEY = MAX_ALERT_KEY
MAX_SERVICE = MAX_ALERT_SERVICE
ALERTMANAGER_VERSION = "4"
CLOUD_MONITORING_VERSION = "1.2"
# Alertmanager writes Go's zero time for "no end yet".
_ZERO_TIME_YEAR = 1
M = TypeVar("M", bound=BaseModel)


class ParseError(ValueError):
    """A delivery Evac cannot use; the message is one sentence naming where it is wrong."""


@dataclass(frozen=True)
class Labels:
    """Which label names carry the region and the service (``alerts_region_label``, ``alerts_service_label``)."""

    region: str = "region"
    service: str = "service"


class _Payload(BaseModel):
    # Senders add fields: keep what is there, read what Evac needs.
    model_config = ConfigDict(extra="allow", populate_by_name=True)


# --- Alertmanager -----------------------------------------------------------------------------


class AlertmanagerAlert(_Payload):
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: str | None = Field(
        default=None, description="Alertmanager's hash of the labels; computed the same way from the labels when absent"
    )


class AlertmanagerWebhook(_Payload):
    """Alertmanager's webhook body (``webhook_configs``), version 4."""

    version: str
    group_key: str = Field(alias="groupKey")
    status: Literal["firing", "resolved"]
    receiver: str = ""
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL")
    truncated_alerts: int = Field(default=0, alias="truncatedAlerts")
    alerts: list[AlertmanagerAlert]


# --- Google Cloud Monitoring ------------------------------------------------------------------


class MonitoredResource(_Payload):
    type: str = ""
    labels: dict[str, str] = Field(default_factory=dict)


class IncidentMetric(_Payload):
    type: str = ""
    display_name: str = Field(default="", alias="displayName")
    labels: dict[str, str] = Field(default_factory=dict)


class IncidentMetadata(_Payload):
    system_labels: dict[str, str] = Field(default_factory=dict)
    user_labels: dict[str, str] = Field(default_factory=dict)


class Incident(_Payload):
    incident_id: str
    state: Literal["open", "closed"]
    policy_name: str = ""
    condition_name: str = ""
    started_at: int = Field(description="Epoch seconds")
    ended_at: int | None = Field(default=None, description="Epoch seconds; null while open")
    summary: str = ""
    url: str = ""
    resource: MonitoredResource = Field(default_factory=MonitoredResource)
    metric: IncidentMetric = Field(default_factory=IncidentMetric)
    policy_user_labels: dict[str, str] = Field(default_factory=dict)
    metadata: IncidentMetadata = Field(default_factory=IncidentMetadata)


class CloudMonitoringNotification(_Payload):
    """A Cloud Monitoring webhook notification (schema version 1.2)."""

    version: str
    incident: Incident


class PubSubMessage(_Payload):
    data: str = Field(description="The notification's JSON, base64-encoded")
    message_id: str = Field(default="", alias="messageId")
    attributes: dict[str, str] = Field(default_factory=dict)


class PubSubPush(_Payload):
    """A Pub/Sub push subscription's envelope around one message."""

    message: PubSubMessage
    subscription: str = ""


# --- Parsing ----------------------------------------------------------------------------------


def _one_line(text: str, limit: int) -> str:
    """An alert's text as evidence: one line (newlines and tabs are spaces), every other control
    character a visible escape (evac/text.py), at most ``limit`` characters. It reaches trigger
    reasons, `evac status` and notifications: it must not forge a line or drive a terminal."""
    return visible(" ".join(text.split()))[:limit]


def _json(body: bytes | str, where: str) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        detail = f"{exc.msg} at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        raise ParseError(f"{where} is not JSON ({detail})") from None
    except RecursionError:
        raise ParseError(f"{where} is nested too deeply to be an alert notification") from None
    except ValueError:  # an integer of more digits than Python converts (sys.get_int_max_str_digits)
        raise ParseError(f"{where} holds a number of more than {sys.get_int_max_str_digits():,} digits") from None


def _model(model: type[M], data: Any, prefix: str = "") -> M:
    if not isinstance(data, dict):
        raise ParseError(f"{prefix or 'the body'} must be a JSON object, not {_json_type(data)}")
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        where = format_path([*([prefix] if prefix else []), *error["loc"]])
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        if error["type"] == "missing":
            raise ParseError(f"{where} is required{more}") from None
        raise ParseError(f"{where}: {_message(error)}{more}") from None


def _message(error: Mapping[str, Any]) -> str:
    if error["type"] == "literal_error":
        return f"{error['msg'][0].lower()}{error['msg'][1:]}, not {json.dumps(error['input'])[:60]}"
    msg = str(error["msg"])
    return msg[0].lower() + msg[1:]


def _json_type(value: Any) -> str:
    names = {list: "a list", str: "text", bool: "a boolean", int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


_REGION: pydantic.TypeAdapter[str] = pydantic.TypeAdapter(Region)


def _region(value: str, where: str) -> str:
    try:
        return _REGION.validate_python(value)
    except pydantic.ValidationError:
        # repr: a control character in the label is shown escaped, never printed as is.
        raise ParseError(
            f"{where} {value[:80]!r} is not a region name (like europe-west1, or a data centre like dc-ams)"
        ) from None


def _service(value: str | None, where: str) -> str | None:
    if not value:
        return None
    if len(value) > MAX_SERVICE or not value.isprintable():
        raise ParseError(f"{where} must be printable text of at most {MAX_SERVICE} characters")
    return value


def _key(value: str, where: str) -> str:
    if not value or len(value) > MAX_KEY or not value.isprintable():
        raise ParseError(f"{where} must be printable text of 1 to {MAX_KEY} characters")
    return value


def labels_fingerprint(labels: Mapping[str, str]) -> str:
    """A stable key for an alert that came without a fingerprint: a hash of its sorted labels."""
    canonical = json.dumps(sorted(labels.items()), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def parse_alertmanager(body: bytes | str, labels: Labels = Labels()) -> list[AlertEvidence]:
    """An Alertmanager webhook body -> one piece of evidence per alert (firing or resolved)."""
    data = _json(body, "the body")
    if isinstance(data, dict) and "version" in data and data["version"] != ALERTMANAGER_VERSION:
        raise ParseError(
            f"version {json.dumps(data['version'])[:40]} is not Alertmanager's webhook version {ALERTMANAGER_VERSION}"
        )
    webhook = _model(AlertmanagerWebhook, data)
    return alertmanager_evidence(webhook, labels)


def alertmanager_evidence(webhook: AlertmanagerWebhook, labels: Labels = Labels()) -> list[AlertEvidence]:
    if not webhook.alerts:
        raise ParseError("alerts is empty: the delivery reports no alert")
    evidence = []
    for i, alert in enumerate(webhook.alerts):
        where = f"alerts[{i}]"
        name = alert.labels.get("alertname", "")
        named = f" (alert '{name[:80]}')" if name else ""
        region = alert.labels.get(labels.region)
        if not region:
            raise ParseError(f"{where}.labels has no '{labels.region}'{named}, so Evac cannot tell which region it concerns")
        key = alert.fingerprint if alert.fingerprint is not None else labels_fingerprint(alert.labels)
        ends_at = alert.ends_at if alert.ends_at is not None and alert.ends_at.year > _ZERO_TIME_YEAR else None
        evidence.append(
            AlertEvidence(
                source="alertmanager",
                key=_key(key, f"{where}.fingerprint"),
                name=_one_line(name or key, MAX_NAME),
                region=_region(region, f"{where}.labels.{labels.region}"),
                service=_service(alert.labels.get(labels.service), f"{where}.labels.{labels.service}"),
                firing=alert.status == "firing",
                starts_at=_utc(alert.starts_at),
                ends_at=_utc(ends_at) if ends_at is not None else None,
                summary=_one_line(alert.annotations.get("summary") or alert.annotations.get("description") or "", MAX_SUMMARY),
            )
        )
    return evidence


def parse_cloud_monitoring(body: bytes | str, labels: Labels = Labels()) -> list[AlertEvidence]:
    """A Cloud Monitoring webhook notification -> the evidence of its one incident."""
    return _cloud_monitoring(_json(body, "the body"), labels, prefix="")


def parse_pubsub(body: bytes | str, labels: Labels = Labels()) -> list[AlertEvidence]:
    """A Pub/Sub push envelope whose ``message.data`` is a Cloud Monitoring notification."""
    push = _model(PubSubPush, _json(body, "the body"))
    try:
        data = base64.b64decode(push.message.data, validate=True)
    except (binascii.Error, ValueError):
        raise ParseError("message.data is not base64 (Pub/Sub sends the notification base64-encoded)") from None
    return _cloud_monitoring(_json(data, "message.data (decoded)"), labels, prefix="message.data")


def _cloud_monitoring(data: Any, labels: Labels, prefix: str) -> list[AlertEvidence]:
    if isinstance(data, dict) and "version" in data and data["version"] != CLOUD_MONITORING_VERSION:
        where = f"{prefix}.version" if prefix else "version"
        raise ParseError(
            f"{where} {json.dumps(data['version'])[:40]} is not the Cloud Monitoring notification version "
            f"{CLOUD_MONITORING_VERSION}"
        )
    notification = _model(CloudMonitoringNotification, data, prefix)
    return [incident_evidence(notification.incident, labels, f"{prefix}.incident" if prefix else "incident")]


def _label(incident: Incident, name: str) -> tuple[str, str] | None:
    """The first place that has the label: the resource's, the metric's, the policy's user labels."""
    places: Sequence[tuple[str, Mapping[str, str]]] = (
        ("resource.labels", incident.resource.labels),
        ("metric.labels", incident.metric.labels),
        ("policy_user_labels", incident.policy_user_labels),
        ("metadata.user_labels", incident.metadata.user_labels),
    )
    for where, found in places:
        if found.get(name):
            return where, found[name]
    return None


def incident_evidence(incident: Incident, labels: Labels = Labels(), where: str = "incident") -> AlertEvidence:
    named = f" (incident '{incident.incident_id[:80]}', policy '{incident.policy_name[:80]}')"
    region = _label(incident, labels.region)
    if region is None:
        raise ParseError(
            f"{where} has no '{labels.region}' label in resource.labels, metric.labels or policy_user_labels{named}, "
            "so Evac cannot tell which region it concerns"
        )
    service = _label(incident, labels.service)
    try:
        starts_at = datetime.fromtimestamp(incident.started_at, UTC)
        ends_at = datetime.fromtimestamp(incident.ended_at, UTC) if incident.ended_at else None
    except (OverflowError, OSError, ValueError):
        raise ParseError(f"{where}.started_at or ended_at is not a time in epoch seconds{named}") from None
    return AlertEvidence(
        source="cloud_monitoring",
        key=_key(incident.incident_id, f"{where}.incident_id"),
        name=_one_line(incident.policy_name or incident.condition_name or incident.incident_id, MAX_NAME),
        region=_region(region[1], f"{where}.{region[0]}.{labels.region}"),
        service=_service(service[1], f"{where}.{service[0]}.{labels.service}") if service else None,
        firing=incident.state == "open",
        starts_at=starts_at,
        ends_at=ends_at,
        summary=_one_line(incident.summary, MAX_SUMMARY),
    )


Parser = Literal["alertmanager", "cloud_monitoring", "pubsub"]
PARSERS = {
    "alertmanager": parse_alertmanager,
    "cloud_monitoring": parse_cloud_monitoring,
    "pubsub": parse_pubsub,
}
"""Each delivery format's parser, by name (the receiver's endpoints)."""


def parse(kind: Parser, body: bytes | str, labels: Labels = Labels()) -> list[AlertEvidence]:
    """Parse a delivery of ``kind``; raises :class:`ParseError` naming where it is wrong."""
    return PARSERS[kind](body, labels)
