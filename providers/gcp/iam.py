"""The worker's own permissions on a project, as Google answers them: Cloud Resource Manager's
``projects.testIamPermissions`` (the caller's credentials, no role listing needed). A readiness
check asks it for what a plan's steps need (``evac/permissions.py``), so that a run cannot fail
halfway for a 403."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.api_core import exceptions as gexc

from activities.budget import call_timeout
from providers.gcp.clients import GcpClients
from providers.gcp.errors import idempotent

# testIamPermissions takes at most this many permissions a call.
MAX_PER_CALL = 100


class GcpIam:
    def __init__(self, clients: GcpClients):
        self._clients = clients

    def missing(self, project: str, permissions: Sequence[str]) -> list[str]:
        """Those of ``permissions`` the worker's credentials do not hold on ``project``, in order."""
        self._clients.require_project(project)
        url = f"{self._clients.resource_manager_url}/v1/projects/{project}:testIamPermissions"
        held: set[str] = set()
        for start in range(0, len(permissions), MAX_PER_CALL):
            asked = list(permissions[start : start + MAX_PER_CALL])

            def test(asked: list[str] = asked) -> dict[str, Any]:
                response = self._clients.rest_session().post(url, json={"permissions": asked}, timeout=call_timeout())
                if response.status_code >= 400:
                    raise gexc.from_http_response(response)  # type: ignore[no-untyped-call]
                answer: dict[str, Any] = response.json()
                return answer

            held.update(idempotent(f"test the worker's permissions on project {project}", test).get("permissions", []))
        return [p for p in permissions if p not in held]
