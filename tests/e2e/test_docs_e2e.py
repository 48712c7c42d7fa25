"""Every command in the fenced shell blocks of README.md and docs/*.md runs as written, in
order, against a real stack, and exits as its comment says ("# … exit 3 …"; 0 otherwise).

A command that cannot run here (it serves until Ctrl-C, or is the test suite itself) is named
in SKIPPED with the test that covers it instead; a skip that no longer matches any command
fails, so the list cannot go stale either.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from evac.stack import find_binary
from tests.conftest import ROOT
from tests.e2e.conftest import E2E

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELLS = ("sh", "bash", "console", "shell")
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
EXIT = re.compile(r"\s#\s.*?\bexit (\d+)")

SKIPPED = {
    r"^make (demo|test)\b": "the two commands: `make test` is this suite, `make demo` runs `evac demo` on fixed ports",
    r"^make venv && \. \.venv/bin/activate$": "sets up the shell this test already runs in",
    r"^(\w+=\S+ )?evac dev up\b": "serves until Ctrl-C: test_cli_e2e.py::test_dev_up_stops_and_says_so_when_a_piece_of_the_stack_dies",  # noqa: E501
    r"^evac dev webhook\b": "serves until Ctrl-C: test_dev_webhook_e2e.py",
    r"^evac emulator serve\b": "serves until stopped: tests/emulator serve the same app; test_cli_e2e.py checks a port in use",
    r"^python -m emulator .*&$": "a second emulator for `dig`: tests/emulator/test_nameserver.py",
    r"^dig\b": "needs dig: tests/emulator/test_nameserver.py asks the name server directly",
    r"^evac failover --plan plans/hybrid/": "needs the hybrid stack's BIND and HAProxy: test_hybrid_e2e.py runs the hybrid plans",
}


@dataclass(frozen=True)
class Command:
    document: str
    line: int
    text: str

    @property
    def expected_exit(self) -> int:
        match = EXIT.search(self.text.splitlines()[0])
        return int(match.group(1)) if match else 0


def commands(path: Path) -> list[Command]:
    """The commands of a document's shell blocks: ``$ `` lines of console blocks (output lines
    are not commands), every line of sh blocks; comments dropped, continuations joined."""
    text = path.read_text()
    found: list[Command] = []
    for block in FENCE.finditer(text):
        language, body = block.group(1), block.group(2)
        if language not in SHELLS:
            continue
        first_line = text.count("\n", 0, block.start(2)) + 1
        lines = body.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            start = i
            i += 1
            if language == "console":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            while line.endswith("\\") and i < len(lines):
                line += "\n" + lines[i]
                i += 1
            found.append(Command(path.name, first_line + start, line))
    return found


def skip_reason(command: Command) -> str | None:
    return next((why for pattern, why in SKIPPED.items() if re.search(pattern, command.text)), None)


def test_every_skipped_command_still_exists_in_the_documents():
    every = [c for path in DOCUMENTS for c in commands(path)]
    assert every, "no shell blocks found"
    for pattern in SKIPPED:
        assert any(re.search(pattern, c.text) for c in every), f"SKIPPED names a command the documents no longer have: {pattern}"


def script(path: Path, emulator: str) -> str:
    """The document's commands as one bash script (so variables and files carry over), each
    followed by a check of its exit code."""
    out = ["E=" + shlex.quote(f"http://{emulator}")]  # a reader who skipped ahead has it from the worked example
    for command in commands(path):
        if skip_reason(command):
            continue
        text = command.text.replace("localhost:8480", emulator).replace("127.0.0.1:8480", emulator)
        where = shlex.quote(f"{command.document}:{command.line}: {command.text.splitlines()[0]}")
        out += [
            text,
            f"rc=$?; if [ $rc -ne {command.expected_exit} ]; then "
            f'echo "exited $rc, expected {command.expected_exit}: "{where} >&2; exit 99; fi',
        ]
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("document", [p for p in DOCUMENTS if any(not skip_reason(c) for c in commands(p))], ids=lambda p: p.name)
def test_the_documents_commands_run_as_written(e2e: E2E, document: Path, tmp_path: Path):
    emulator = e2e.stack.config.emulator_url.removeprefix("http://")
    # Commands name plans/… relative to the clone; a plan that probes the emulator at its usual
    # address probes this test's emulator instead.
    shutil.copytree(ROOT / "plans", tmp_path / "plans")
    for plan in (tmp_path / "plans").rglob("*.yaml"):
        plan.write_text(plan.read_text().replace("localhost:8480", emulator))
    env = {**e2e.env, "PATH": f"{Path(find_binary('evac')).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", "-c", script(document, emulator)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    assert "Traceback" not in result.stderr + result.stdout
