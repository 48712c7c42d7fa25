"""Programs from Debian's packages that some tests run as real daemons (prometheus, named, haproxy …)."""

from __future__ import annotations

import os
import shutil

import pytest


def debian_binary(name: str, package: str) -> str:
    """A program from one of Debian's packages (prometheus, bind9, haproxy …): missing, the test
    skips on a laptop and fails under CI=true (.ci/run installs it)."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        message = f"Debian's {package} is not installed (apt-get install {package}; .ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found
