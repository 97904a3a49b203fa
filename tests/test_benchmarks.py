"""Smoke runs of the benchmark scripts on a tiny budget, so they keep working."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_tutorial_b_grid_quick(tmp_path):
    before = (ROOT / "BENCHMARKS.md").read_text() if (ROOT / "BENCHMARKS.md").exists() else None
    out = subprocess.run(
        [
            sys.executable,
            "benchmarks/tutorial_b_grid.py",
            "--quick",
            "--storage",
            f"sqlite:///{tmp_path / 'b.db'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [line for line in out.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + 5  # header + one row per optimizer
    assert {r.split("|")[1].strip() for r in rows[1:]} == {
        "sgd",
        "rmsprop",
        "adam",
        "adamax",
        "nadam",
    }
    after = (ROOT / "BENCHMARKS.md").read_text() if (ROOT / "BENCHMARKS.md").exists() else None
    assert after == before  # --quick never overwrites the real results
