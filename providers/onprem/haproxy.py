"""HAProxy's backends through its Runtime API (the ``stats socket`` at ``level admin``, on TCP
``host:port`` or a UNIX socket path).

One command per connection: send ``COMMAND\\n``, read until HAProxy closes. A ``set`` answers an
empty line when it succeeds and a sentence when it does not; a ``show`` answers its table and an
empty line. Reads come from ``show servers state BACKEND`` (weights, administrative state,
operational state) and ``show stat BACKEND 4 -1`` (the status column the stats page shows), both
parsed by their header names, not column numbers. A ``set`` is checked by reading it back.

Errors become :class:`~providers.errors.ProviderError`, the cause kept:

* connection refused, no complete answer within the timeout, the connection closed before
  the answer was complete — TRANSIENT;
* "No such backend.", "No such server.", "Can't find backend.", "No such proxy." — NOT_FOUND;
* any other sentence in answer to a command — REFUSED, with HAProxy's sentence;
* a ``set`` that HAProxy accepted but that reads back otherwise (someone else set it between)
  — CONTENDED.

Health: a server counts as healthy when its administrative state is ``ready`` (not drained, not
in maintenance) and it is operationally UP (HAProxy's checks pass, or it has no checks and HAProxy
sends it traffic). A server that is UP but drained takes no new traffic, so it is not counted.
"""

from __future__ import annotations

import csv
import re
import socket
import time
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from providers.errors import ErrorKind, ProviderError

DEFAULT_TIMEOUT = 5.0

AdminState = Literal["ready", "drain", "maint"]

# srv_admin_state is a bit field (HAProxy's enum srv_admin): forced, inherited, configured or
# DNS-resolution maintenance; forced or inherited drain. Maintenance wins over drain.
MAINT_FLAGS = 0x01 | 0x02 | 0x04 | 0x20
DRAIN_FLAGS = 0x08 | 0x10
# srv_op_state (HAProxy's enum srv_state).
OPERATIONAL_STATES = {0: "DOWN", 1: "STARTING", 2: "UP", 3: "STOPPING"}
NOT_FOUND_ANSWERS = ("No such backend.", "No such server.", "Can't find backend.", "No such proxy.")
# Names HAProxy accepts for proxies and servers; anything else could smuggle a second command (;).
_TOKEN = re.compile(r"[A-Za-z0-9._:-]+")


class HAProxyConfig(BaseModel):
    """Where the Runtime API listens: ``host:port`` or the path of a UNIX socket (holds a ``/``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str
    timeout: float = Field(default=DEFAULT_TIMEOUT, gt=0, description="seconds for one command, connect to last byte")

    @field_validator("address")
    @classmethod
    def _address(cls, address: str) -> str:
        if "/" not in address and not address.rpartition(":")[2].isdigit():
            raise ValueError(f"the Runtime API address is host:port or a UNIX socket path, not {address!r}")
        return address


class ServerState(BaseModel):
    """One server of a backend as HAProxy sees it now."""

    model_config = ConfigDict(frozen=True)

    backend: str
    server: str
    weight: int = Field(description="the weight a user or the configuration set (srv_uweight)")
    initial_weight: int = Field(description="the weight the configuration gives it (srv_iweight): its full share")
    admin: AdminState
    operational: str = Field(description="UP, DOWN, STARTING or STOPPING (srv_op_state)")
    status: str = Field(description="show stat's status column: UP, DOWN, DRAIN, MAINT, no check, UP 1/3 …")

    @property
    def healthy(self) -> bool:
        return self.admin == "ready" and self.operational == "UP"


def admin_state(flags: int) -> AdminState:
    if flags & MAINT_FLAGS:
        return "maint"
    if flags & DRAIN_FLAGS:
        return "drain"
    return "ready"


class HAProxyRuntime:
    """Reads and sets the servers of HAProxy's backends (see the module's docstring)."""

    def __init__(self, config: HAProxyConfig) -> None:
        self.config = config

    # reads

    def servers(self, backend: str) -> list[ServerState]:
        """Every server of ``backend``, in configuration order."""
        rows = self._table(f"show servers state {_token(backend)}", header_prefix="# ", separator=" ")
        statuses = {row["svname"]: row["status"] for row in self._table(f"show stat {_token(backend)} 4 -1", "# ", ",")}
        return [
            ServerState(
                backend=backend,
                server=row["srv_name"],
                weight=int(row["srv_uweight"]),
                initial_weight=int(row["srv_iweight"]),
                admin=admin_state(int(row["srv_admin_state"])),
                operational=OPERATIONAL_STATES.get(int(row["srv_op_state"]), row["srv_op_state"]),
                status=statuses.get(row["srv_name"], "unknown"),
            )
            for row in rows
            if row.get("be_name") == backend
        ]

    def server(self, backend: str, server: str) -> ServerState:
        """One server of ``backend`` (NOT_FOUND when the backend has none of that name)."""
        for state in self.servers(backend):
            if state.server == server:
                return state
        raise ProviderError(ErrorKind.NOT_FOUND, f"no server {server} in backend {backend} at {self._where}")

    def healthy(self, backend: str) -> tuple[int, int]:
        """(healthy servers, all servers) of ``backend``: healthy is ready and UP (module docstring)."""
        states = self.servers(backend)
        return sum(state.healthy for state in states), len(states)

    # changes: each returns the state before, to undo with

    def set_weight(self, backend: str, server: str, weight: int) -> ServerState:
        """Set ``server``'s weight (0–256) and return its state before."""
        return self._set_checked(backend, server, "weight", int(weight), lambda state: state.weight)

    def set_state(self, backend: str, server: str, state: AdminState) -> ServerState:
        """Put ``server`` in ``state`` (ready, drain or maint) and return its state before."""
        return self._set_checked(backend, server, "state", state, lambda found: found.admin)

    def _set_checked(
        self, backend: str, server: str, field: str, value: object, read: Callable[[ServerState], object]
    ) -> ServerState:
        """``set server … FIELD VALUE``, read back (CONTENDED when it reads otherwise); the state before."""
        before = self.server(backend, server)
        self._set(backend, server, f"{field} {value}")
        after = read(self.server(backend, server))
        if after != value:
            raise ProviderError(
                ErrorKind.CONTENDED,
                f"set {field} of {backend}/{server} to {value} at {self._where}: reads back {after} "
                "(someone else changed it; read it again)",
            )
        return before

    # the Runtime API

    @property
    def _where(self) -> str:
        return f"HAProxy's Runtime API {self.config.address}"

    def _set(self, backend: str, server: str, change: str) -> None:
        command = f"set server {_token(backend)}/{_token(server)} {' '.join(_token(t) for t in change.split())}"
        answer = self._command(command, complete="\n").strip()
        if answer:
            raise self._refusal(command, answer)

    def _table(self, command: str, header_prefix: str, separator: str) -> list[dict[str, str]]:
        """A ``show`` command's answer as rows keyed by the names in its header line."""
        answer = self._command(command, complete="\n\n")
        lines = [line for line in answer.splitlines() if line.strip()]
        headers = [i for i, line in enumerate(lines) if line.startswith(header_prefix)]
        if not headers:
            raise self._refusal(command, answer.strip())
        start = headers[0]
        names = lines[start].removeprefix(header_prefix).split(separator)
        if separator == " ":
            return [dict(zip(names, line.split(), strict=False)) for line in lines[start + 1 :]]
        return list(csv.DictReader(lines[start + 1 :], fieldnames=names))

    def _refusal(self, command: str, answer: str) -> ProviderError:
        kind = ErrorKind.NOT_FOUND if answer in NOT_FOUND_ANSWERS else ErrorKind.REFUSED
        return ProviderError(kind, f"{self._where} refused {command!r}: {answer}")

    def _command(self, command: str, complete: str) -> str:
        """Send one command on a connection of its own and read the whole answer (it ends with
        ``complete``) before the timeout: a shorter one is TRANSIENT."""
        timeout = self.config.timeout
        deadline = time.monotonic() + timeout
        chunks: list[bytes] = []
        try:
            with self._connect(timeout) as sock:
                sock.sendall(command.encode() + b"\n")
                while True:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError
                    sock.settimeout(left)
                    data = sock.recv(65536)
                    if not data:
                        break
                    chunks.append(data)
        except TimeoutError as exc:
            raise ProviderError(
                ErrorKind.TRANSIENT, f"{command!r} at {self._where}: no complete answer within {timeout:g} s"
            ) from exc
        except OSError as exc:
            raise ProviderError(ErrorKind.TRANSIENT, f"{command!r} at {self._where}: {exc.strerror or exc}") from exc
        answer = b"".join(chunks).decode("utf-8", "replace")
        if not answer.endswith(complete):
            raise ProviderError(
                ErrorKind.TRANSIENT,
                f"{command!r} at {self._where}: the connection closed before the answer was complete "
                f"({len(answer)} characters received)",
            )
        return answer

    def _connect(self, timeout: float) -> socket.socket:
        address = self.config.address
        if "/" in address:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(address)
            except BaseException:
                sock.close()
                raise
            return sock
        host, _, port = address.rpartition(":")
        return socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)


def _token(value: str) -> str:
    """``value`` if it is a name HAProxy accepts; REFUSED otherwise (it would not be one command)."""
    if not _TOKEN.fullmatch(value):
        raise ProviderError(ErrorKind.REFUSED, f"{value!r} is not a name HAProxy's Runtime API accepts")
    return value
