"""The embedded stack: Temporal dev server, emulator and worker as child processes.

``evac dev up`` and ``evac demo`` start it; the end-to-end tests start the same pieces.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def find_binary(name: str) -> str:
    """A console script of this environment (``temporal``, ``temporal-test-server``…).

    Looks beside the running interpreter first (the project's .venv), then on PATH.
    """
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(
            f"'{name}' is not installed in this environment; run 'make test' or 'pip install -e .[test]'"
        )
    return found
