"""A local webhook receiver for a laptop: ``evac dev webhook`` prints every notification
posted to it, so a new user can watch Evac's notifications without a Slack workspace.

The standard library's threading HTTP server: it answers every POST with the status it was
told to (200 by default; 500 rehearses a receiver that keeps failing) and hands each body to a
callback. Loopback by default; it is a development tool, not a production endpoint.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY = 1024 * 1024


def summary(body: Any) -> str:
    """One line for a notification: Evac's JSON body, a Slack message's fallback text, or the raw JSON."""
    if isinstance(body, dict) and "event" in body and "service" in body:
        fields = [str(body.get(key)) for key in ("event", "service", "kind") if body.get(key)]
        if body.get("step"):
            fields.append(f"step={body['step']}")
        if body.get("outcome") or body.get("status"):
            fields.append(f"status={body.get('outcome') or body['status']}")
        if body.get("detail"):
            fields.append(f"— {body['detail']}")
        return " ".join(fields)
    if isinstance(body, dict) and isinstance(body.get("text"), str):
        return f"slack: {body['text']}"
    return json.dumps(body, separators=(",", ":"))


def make_server(host: str, port: int, status: int, received: Callable[[str, Any], None]) -> ThreadingHTTPServer:
    """A server that answers POSTs with ``status`` and passes (path, parsed JSON body) to ``received``."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._answer(413, "body over 1 MiB")
                return
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                self._answer(400, "body is not JSON")
                return
            received(self.path, body)
            self._answer(status, "ok" if status < 400 else "failing on purpose (--status)")

        def _answer(self, code: int, text: str) -> None:
            data = text.encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the CLI prints what matters, one line per notification

    return ThreadingHTTPServer((host, port), Handler)
