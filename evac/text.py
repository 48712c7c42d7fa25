"""Text from outside (an alert's name, an operator's reason, a cloud's error) is data: shown, it
must never act. :func:`visible` writes every control character (C0 but tab and newline, DEL, C1)
and every bidirectional-override character as a visible escape (``\\x1b``, ``\\u202e``), so a
terminal, a Markdown export or a chat message shows what was sent instead of obeying it: no
cleared screen, no forged line, no reversed text. Each format's own markup is escaped where that
format is written (rich markup, Markdown tables, Slack's ``<``/``>``/``&``, HTML)."""

from __future__ import annotations

import re

# C0 controls but tab (0x09) and newline (0x0a), DEL and C1 controls, and the Unicode
# bidirectional marks, embeddings, overrides and isolates.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` with every control and bidirectional character written as an escape."""
    return _UNSAFE.sub(_escape, text)
