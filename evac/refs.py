"""What every provider's resource references have in common: the kinds the engine knows.

The engine (``workflows/``) passes references through without looking inside: it asks only
which kind a reference is (``isinstance`` against the classes here), which control plane
serves calls about it (``control_plane``: a region's API, or ``GLOBAL``) and how to name it in
a sentence (``str``). What a reference holds (project, backend service, HAProxy backend, DNS
server) is its provider's (``providers/<name>/refs.py``); pydantic fields that carry one use
the tagged unions of ``evac/resources.py`` (``AnyBackendRef`` …), so each is read back as the
provider's own class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TypeVar

from pydantic import BaseModel, ConfigDict

# The control plane of a resource that no one region's API serves (a global backend service,
# Cloud DNS, a DNS server set): a call about it does not depend on any one region being up.
GLOBAL = "global"


class ResourceRef(BaseModel, ABC):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @property
    @abstractmethod
    def control_plane(self) -> str:
        """Whose API serves calls about it: a region's name, or GLOBAL."""


class GroupRef(ResourceRef):
    """A region's capacity that can be resized (a managed instance group)."""

    region: str


class BackendRef(ResourceRef):
    """A region's share of a service's load balancing, and the health of what serves it."""

    @property
    @abstractmethod
    def region(self) -> str:
        """The region (or data centre) whose share this is."""


class DnsRecordRef(ResourceRef):
    """The record that sends a service's clients to the serving region."""

    name: str
    type: str


class DatabaseRef(ResourceRef):
    """One region's instance of a service's replicated database (a Cloud SQL instance): which
    role it plays (primary, replica, none) is what the data steps read and change."""

    region: str

    @property
    @abstractmethod
    def name(self) -> str:
        """The instance's name, as a replica names the primary it replicates."""


class LeaderRef(ResourceRef):
    """A database whose writes are led from one region of several (a Spanner database's
    default leader)."""


Ref = TypeVar("Ref", bound=ResourceRef)


def narrowed(ref: ResourceRef, kind: type[Ref]) -> Ref:
    """``ref`` as a provider's own ``kind`` of reference. Another provider's is a programming
    error: the activities dispatch on a reference's provider before calling its code."""
    if not isinstance(ref, kind):
        raise TypeError(f"{ref} is not a {kind.__name__}: the wrong provider was called")
    return ref
