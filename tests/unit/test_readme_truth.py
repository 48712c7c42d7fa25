"""What the README shows of the project's own files is what those files hold."""

from __future__ import annotations

import re

import yaml

from tests.conftest import DEMO, ROOT


def test_the_readmes_plan_excerpt_is_the_demo_plan_step_for_step():
    readme = (ROOT / "README.md").read_text()
    [excerpt] = re.findall(r"A plan \(see .*?\n\n```yaml\n(.*?)```", readme, re.S)
    shown = yaml.safe_load(excerpt)
    plan = yaml.safe_load((DEMO / "failover.yaml").read_text())
    assert [(s["name"], s["kind"]) for s in shown["steps"]] == [(s["name"], s["kind"]) for s in plan["steps"]]
    for step_shown, step in zip(shown["steps"], plan["steps"], strict=True):
        assert {k: step[k] for k in step_shown} == step_shown  # every field it shows is the plan's (some are left out)
    assert {k: plan[k] for k in shown if k != "steps"} == {k: v for k, v in shown.items() if k != "steps"}


def test_nothing_in_the_project_points_at_files_outside_it():
    """The project's code and docs name only the project's own files (``shared/`` is the
    workplace's, not the project's: a new clone has none)."""
    files = [*ROOT.glob("*.md"), *ROOT.glob("docs/*.md"), *ROOT.glob("*.py")]
    for folder in ("evac", "workflows", "activities", "emulator", "bench"):
        files += (ROOT / folder).rglob("*.py")
    pointing = [str(f.relative_to(ROOT)) for f in files if re.search(r"(?<![\w.])shared/\w+\.md", f.read_text())]
    assert pointing == []
