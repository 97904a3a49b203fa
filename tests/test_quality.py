"""The checks that keep the code base in shape run with the tests, so CI fails on them:
ruff (lint and format), mypy, and the layering contract (import-linter's ``layers``
contract in pyproject.toml: a module imports only from the layers below its own).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = BIN / name
    if found.exists():
        return str(found)
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]'")
    return path


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "hpsearch", "tests", "benchmarks"],
        ["ruff", "format", "--check", "hpsearch", "tests", "benchmarks"],
        ["mypy"],
        ["lint-imports"],
    ],
    ids=["ruff-check", "ruff-format", "mypy", "layers"],
)
def test_code_quality_check_passes(command):
    proc = subprocess.run(
        [_tool(command[0]), *command[1:]],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
