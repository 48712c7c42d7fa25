"""The building blocks every document model (topology, plan, blackouts) and every provider's
topology binding share: strict models, whole numbers, region names, DNS names, addresses."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Strict

# Lowercase letters, digits and '-', 2 to 63 characters (a Google Cloud region is one).
_REGION = re.compile(r"^[a-z][a-z0-9-]{0,61}[a-z0-9]\Z")
NOT_A_REGION = "is not a region name (like europe-west1, or a data centre like dc-ams)"


class StrictModel(BaseModel):
    """Every document model refuses unknown keys: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# A whole number that must be written as one: YAML reads true/false/yes/no/on/off as booleans,
# and a boolean must never become a count of 1 or 0.
Count = Annotated[int, Strict()]


def _region(value: str) -> str:
    if not _REGION.match(value):
        raise ValueError(f"'{value}' {NOT_A_REGION}")
    return value


def _fully_qualified(value: str) -> str:
    if not value.endswith("."):
        raise ValueError(f"'{value}' must be fully qualified (end with '.')")
    return value


def _ip_address(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"'{value}' is not an IPv4 or IPv6 address") from None
    return value


Region = Annotated[str, AfterValidator(_region)]
"""Where a service runs: a Google Cloud region, or a data centre (its binding says which)."""
DnsName = Annotated[str, AfterValidator(_fully_qualified)]
IpAddress = Annotated[str, AfterValidator(_ip_address)]


def inside(record: str, zone: str) -> bool:
    """Whether a DNS name is the zone's apex or below it (DNS names ignore case)."""
    record, zone = record.lower(), zone.lower()
    return record == zone or record.endswith("." + zone)
