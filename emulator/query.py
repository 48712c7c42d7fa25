"""Query parameters: a Google API refuses one that its method does not define (400
"Cannot bind query parameter"), except the system parameters every Google API accepts.

Without this, a misspelt or unsupported parameter (``filter`` where the emulator has no
filtering) would be silently ignored, and code would pass here and fail on Google Cloud.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from emulator.errors import ApiError

SYSTEM_PARAMETERS = {
    "$alt",
    "$.xgafv",
    "access_token",
    "alt",
    "callback",
    "fields",
    "key",
    "oauth_token",
    "prettyPrint",
    "quotaUser",
    "upload_protocol",
    "uploadType",
    "userIp",
}


async def refuse_unknown_parameters(request: Request) -> None:
    """FastAPI dependency of every Google route."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = query_parameters(route.dependant) | SYSTEM_PARAMETERS
    for name in request.query_params:
        if name not in known:
            raise ApiError(
                400,
                "badRequest",
                f'Invalid JSON payload received. Unknown name "{name}": Cannot bind query parameter. '
                f"Field '{name}' could not be found in request message.",
            )


def query_parameters(dependant: Dependant) -> set[str]:
    """The names of the query parameters a route takes, its dependencies' included."""
    names = {param.alias for param in dependant.query_params}
    for dependency in dependant.dependencies:
        names |= query_parameters(dependency)
    return names
