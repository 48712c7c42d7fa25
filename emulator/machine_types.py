"""Machine types: the vCPUs and memory of a Compute Engine machine type, from its name.

Google names its predefined machine types ``<series>-<class>-<vCPUs>`` (``e2-standard-4``: 4
vCPUs, 16 GB), the memory per vCPU set by the class (``standard`` 4 GB, ``highmem`` 8 GB,
``highcpu`` 1 GB), plus E2's shared-core ``e2-micro`` / ``e2-small`` / ``e2-medium`` (2 vCPUs
counted against the CPUS quota). The emulator derives a type's shape from its name, so any
such name a topology sets (``emulator.machine_types``) is served by ``machineTypes.get``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

DEFAULT_MACHINE_TYPE = "e2-standard-2"
"""The machine type of a group the topology sets none for."""

CATALOGUE = ("e2-standard-2", "e2-standard-4", "e2-standard-8", "e2-standard-16", "n2-standard-4", "n2-standard-8")
"""The machine types ``machineTypes.list`` answers in every zone (with those the world uses)."""

_PREDEFINED = re.compile(r"^[a-z][a-z0-9]*-(standard|highmem|highcpu)-([1-9][0-9]{0,2})\Z")
_MB_PER_VCPU = {"standard": 4096, "highmem": 8192, "highcpu": 1024}
_SHARED_CORE = {"e2-micro": 1024, "e2-small": 2048, "e2-medium": 4096}


@dataclass(frozen=True)
class MachineType:
    name: str
    guest_cpus: int
    memory_mb: int
    shared_cpu: bool = False

    @property
    def id(self) -> int:
        """The same for a name in every emulator."""
        return 2000 + int.from_bytes(hashlib.sha256(self.name.encode()).digest()[:4], "big")

    @property
    def description(self) -> str:
        memory = self.memory_mb / 1024
        return f"{self.guest_cpus} vCPUs, {memory:g} GB RAM"


def machine_type(name: str) -> MachineType | None:
    """The shape of a predefined machine type, or None when the name is not one."""
    if name in _SHARED_CORE:
        return MachineType(name, 2, _SHARED_CORE[name], shared_cpu=True)
    match = _PREDEFINED.match(name)
    if match is None:
        return None
    vcpus = int(match.group(2))
    return MachineType(name, vcpus, vcpus * _MB_PER_VCPU[match.group(1)])


def vcpus_of(name: str) -> int:
    """A machine type's vCPUs (what one instance counts against its region's CPUS quota)."""
    found = machine_type(name)
    if found is None:
        raise ValueError(f"'{name}' is not a predefined machine type")
    return found.guest_cpus
