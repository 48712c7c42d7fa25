"""Google Cloud's names and URLs: what a region, a zone, a project id and a resource name look
like, and the URL a backend names its instance group by."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

REGION_NAME = re.compile(r"^[a-z]+-[a-z]+[0-9]+\Z")
_ZONE = re.compile(r"^[a-z]+-[a-z]+[0-9]+-[a-z]\Z")
_RESOURCE = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?\Z")
_PROJECT = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]\Z")

COMPUTE_URL = "https://www.googleapis.com/compute/v1"


def instance_group_url(project: str, group: str, *, region: str, zone: str | None = None) -> str:
    """The URL a backend names its instance group by: zonal when ``zone`` is set, else regional."""
    location = f"zones/{zone}" if zone else f"regions/{region}"
    return f"{COMPUTE_URL}/projects/{project}/{location}/instanceGroups/{group}"


def _region(value: str) -> str:
    if not REGION_NAME.match(value):
        raise ValueError(f"'{value}' is not a Google Cloud region name (like europe-west1)")
    return value


def _resource(value: str) -> str:
    if not _RESOURCE.match(value):
        raise ValueError(f"'{value}' is not a valid resource name (lowercase letters, digits and '-', 1-63 characters)")
    return value


def _project(value: str) -> str:
    if not _PROJECT.match(value):
        raise ValueError(f"'{value}' is not a valid Google Cloud project id")
    return value


def _zone(value: str) -> str:
    if not _ZONE.match(value):
        raise ValueError(f"'{value}' is not a Google Cloud zone name (like europe-west1-b)")
    return value


Region = Annotated[str, AfterValidator(_region)]
Zone = Annotated[str, AfterValidator(_zone)]
ResourceName = Annotated[str, AfterValidator(_resource)]
ProjectId = Annotated[str, AfterValidator(_project)]
