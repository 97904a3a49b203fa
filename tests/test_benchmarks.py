"""Smoke runs of the benchmark scripts on a tiny budget, so they keep working.

Each script runs with ``--quick`` (digits, seconds) in a subprocess; the tests check the
printed Markdown table and that BENCHMARKS.md, which holds the real results, is untouched.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _benchmarks_md() -> str | None:
    path = ROOT / "BENCHMARKS.md"
    return path.read_text() if path.exists() else None


def _script(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``benchmarks/<script> ARGS`` from the repository's root."""
    return subprocess.run(
        [sys.executable, f"benchmarks/{script}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _chromium() -> bool:
    """Whether the benchmarks can take PNG snapshots (``benchmarks/_common.snapshot``)."""
    return bool(shutil.which("chromium") or shutil.which("chromium-browser"))


def _run_quick(script: str, *args: str) -> list[list[str]]:
    """Run ``benchmarks/<script> --quick ARGS``; return the printed table's cells by row
    (header first), after checking that BENCHMARKS.md was not rewritten."""
    before = _benchmarks_md()
    out = _script(script, "--quick", *args)
    assert out.returncode == 0, out.stderr[-2000:]
    assert _benchmarks_md() == before  # --quick never overwrites the real results
    lines = [line for line in out.stdout.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines]


def test_tutorial_b_grid_quick(tmp_path):
    rows = _run_quick("tutorial_b_grid.py", "--storage", f"sqlite:///{tmp_path / 'b.db'}")
    assert len(rows) == 1 + 5  # header + one row per optimizer
    assert {r[0] for r in rows[1:]} == {"sgd", "rmsprop", "adam", "adamax", "nadam"}


def test_overhead_quick(tmp_path):
    rows = _run_quick("overhead.py", "--storage", f"sqlite:///{tmp_path / 'o.db'}")
    header, body = rows[0], rows[1:]
    assert header[:6] == [
        "configuration",
        "parameters",
        "bare Keras s",
        "hpsearch s",
        "difference s",
        "ratio",
    ]
    assert len(body) == 5 + 1  # five configurations and the total
    assert body[-1][0] == "**total**"
    for row in body:
        assert float(row[2]) > 0 and float(row[3]) > 0 and float(row[5]) > 0
    for row in body[:-1]:  # the same network on both sides: the same parameter count
        assert row[1].replace(",", "").isdigit()


def test_time_to_accuracy_quick(tmp_path):
    plot = tmp_path / "tta.html"
    rows = _run_quick(
        "time_to_accuracy.py",
        "--space",
        "mlp",
        "--storage",
        f"sqlite:///{tmp_path / 't.db'}",
        "--plot",
        str(plot),
    )
    header, body = rows[0], rows[1:]
    assert header[:2] == ["method", "trials"]
    assert header[-1] == "test acc of best"
    assert sum(h.startswith("best at ") for h in header) == 4  # quarters of the budget
    assert [h for h in header if h.startswith("time to ")] == ["time to 90.0%", "time to 95.0%"]
    assert [r[0] for r in body] == [
        "hpsearch (TPE + Hyperband)",
        "KerasTuner Hyperband",
        "RandomizedSearchCV (scikeras)",
    ]
    for row in body:
        assert len(row) == len(header)
        assert int(row[1]) >= 1  # every method finished a trial within the budget
        assert row[-1].endswith("%")  # and its best model has a test accuracy
    assert plot.stat().st_size > 100_000  # plotly.js is embedded: opens offline
    points = plot.with_suffix(".json").read_text()
    png = plot.with_suffix(".png")
    if _chromium():  # CI installs it: the picture BENCHMARKS.md shows
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size > 10_000  # a chart, not a blank page

    # --replot draws the kept points again, trains nothing and leaves them as they were
    plot.unlink()
    png.unlink(missing_ok=True)
    before = _benchmarks_md()
    out = _script(
        "time_to_accuracy.py", "--quick", "--space", "mlp", "--replot", "--plot", str(plot)
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert plot.stat().st_size > 100_000
    assert plot.with_suffix(".json").read_text() == points
    assert png.exists() == _chromium()
    assert _benchmarks_md() == before
    assert "trial" not in out.stdout  # nothing ran


def test_time_to_accuracy_replot_without_points_is_one_line(tmp_path):
    out = _script(
        "time_to_accuracy.py", "--space", "mlp", "--replot", "--plot", str(tmp_path / "none.html")
    )
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        f"--replot: no points in {tmp_path / 'none.json'}: run the benchmark first"
    ]


@pytest.mark.parametrize("space", ["cnn", "cnn_plus"])
def test_time_to_accuracy_cnn_quick(tmp_path, space):
    rows = _run_quick(
        "time_to_accuracy.py",
        "--space",
        space,
        "--budget",
        "5",
        "--methods",
        "kerastuner,randomsearch",
        "--storage",
        f"sqlite:///{tmp_path / 't.db'}",
        "--plot",
        str(tmp_path / "cnn.html"),
    )
    assert [r[0] for r in rows[1:]] == ["KerasTuner Hyperband", "RandomizedSearchCV (scikeras)"]


def test_pruning_quick(tmp_path):
    rows = _run_quick("pruning.py", "--storage", f"sqlite:///{tmp_path / 'p.db'}")
    header, body = rows[0], rows[1:]
    assert header[:3] == ["pruner", "complete/pruned/failed", "epochs"]
    assert [r[0] for r in body] == ["none", "hyperband", "median"]
    none = body[0]
    assert none[header.index("reached target")] == "yes"  # its own best, by definition
    assert none[header.index("epochs vs none")] == "1.00"
    for row in body:
        assert sum(int(n) for n in row[1].split("/")) == 5  # the same trial budget
        assert int(row[2]) > 0


def test_regression_quick(tmp_path):
    """hpsearch's exported best on diabetes beside gradient boosting and a plain Keras MLP."""
    rows = _run_quick("regression.py", "--storage", f"sqlite:///{tmp_path / 'r.db'}")
    header, body = rows[0], rows[1:]
    assert header == ["model", "runs", "test RMSE", "test MAE", "test R²", "seconds"]
    assert [r[0].split(" ")[0] for r in body] == ["hpsearch", "HistGradientBoostingRegressor()",
                                                   "plain"]  # fmt: skip
    for row in body:  # errors in the target's units (diabetes: 25..346)
        assert 20 < float(row[2]) < 400 and float(row[3]) <= float(row[2])


def test_family_choice_quick(tmp_path):
    """The joint MLP-or-CNN study and the CNN-only one, side by side for 25 s on digits."""
    rows = _run_quick("family_choice.py", "--storage", f"sqlite:///{tmp_path / 'f.db'}")
    header = rows[0]
    assert header[:3] == ["study", "trials", "complete/pruned/failed"]
    assert sum(h.startswith("best at ") for h in header) == 6  # 5, 10, ... 60 min of an hour
    assert header[-1] == "time to 90.0%"
    studies = [r for r in rows if r[0].startswith(("MLP or CNN", "CNN only"))]
    assert [r[0] for r in studies] == ["MLP or CNN (mnist_joint)", "CNN only (mnist_cnn)"]
    for row in studies:
        assert int(row[1]) >= 1  # the enqueued first trial at least (it fails on 8x8 digits)
        assert sum(int(n) for n in row[2].split("/")) == int(row[1])
    families = [r for r in rows if r[0] in ("mlp", "cnn")]
    assert [r[0] for r in families] == ["mlp", "cnn"]
    assert sum(int(r[1]) for r in families) == int(studies[0][1])  # every joint trial
    quarters = rows[rows.index(["started", "trials", "cnn", "mlp", "cnn share"]) + 1 :]
    assert len(quarters) == 4 + 1 and quarters[-1][0] == "**all**"
    for row in quarters:
        assert int(row[1]) == int(row[2]) + int(row[3])


def test_seeds_quick(tmp_path):
    rows = _run_quick("seeds.py", "--seeds", "0,1", "--storage", f"sqlite:///{tmp_path / 's.db'}")
    header, body = rows[0], rows[1:]
    assert header[:2] == ["tutorial", "network"]
    assert [r[0] for r in body] == ["A", "B MLP", "B CNN", "D", "E"]
    test_acc = header.index("test acc")
    assert all(r[test_acc].endswith("%") for r in body)
    for row in body:  # two seeds: a mean, a spread and a range that holds the mean
        assert " ± " in row[header.index("test acc ± sd")]
        low, high = (float(v.rstrip("%")) for v in row[header.index("test range")].split(" – "))
        assert low <= float(row[test_acc].rstrip("%")) <= high
        assert row[header.index("reproduced")] == "yes" or row[
            header.index("reproduced")
        ].startswith(("no: best seed", "above: worst seed"))
    # tutorial B validated on the test set, so trained on all 60,000 images: so do we
    trained_on = [r[header.index("trained on")] for r in body]
    assert trained_on == ["train (80%)", "train + validation", "train + validation",
                          "train (90%)", "train (90%)"]  # fmt: skip
    assert [r[header.index("tutorial test acc")] for r in body] == [
        "98.07%",
        "98.16%",
        "99.22%",
        "98.19%",
        "95–98%",
    ]


def test_seeds_schedules_quick(tmp_path):
    db = f"sqlite:///{tmp_path / 's.db'}"
    rows = _run_quick("seeds.py", "--schedules", "--seeds", "0", "--storage", db)
    header, body = rows[0], rows[1:]
    assert header[:3] == ["lr_schedule", "patience", "epochs run"]
    assert [(r[0], r[1].split()[0]) for r in body] == [
        ("constant", "3"),
        ("constant", "0"),
        ("cosine", "3"),
        ("cosine", "0"),
    ]
    for row in body:
        if row[1].startswith("0"):  # no early stopping: every one of the 20 epochs
            assert row[2] == "20"
        else:
            assert 1 <= int(row[2]) <= 20
        assert 0.0 < float(row[header.index("val acc")].rstrip("%")) <= 100.0


def test_seeds_plain_quick():
    rows = _run_quick("seeds.py", "--plain", "--seeds", "0")
    header, body = rows[0], rows[1:]
    assert header[:2] == ["tutorial", "test acc ± sd"]
    assert [r[0] for r in body] == ["A", "B MLP", "B CNN", "D", "E"]
    for row in body:
        assert 0.0 < float(row[1].rstrip("%")) <= 100.0
        assert row[2] == f"{row[1]} – {row[1]}"  # one seed: the range is that seed


@pytest.mark.parametrize("side_by_side", [False, True], ids=["one-after-other", "side-by-side"])
def test_seeds_tuned_quick(tmp_path, side_by_side):
    args = ["--tuned", "--timeout", "5", "--storage", f"sqlite:///{tmp_path / 's.db'}"]
    rows = _run_quick("seeds.py", *args, *(["--side-by-side"] if side_by_side else []))
    header, body = rows[0], rows[1:]
    assert header[:4] == [
        "network",
        "complete/pruned/failed",
        "first start to last end",
        "best trial",
    ]
    assert [r[0] for r in body] == ["MLP (`mnist_mlp.yaml`)", "CNN (`mnist_cnn.yaml`)"]
    for row in body:
        assert row[header.index("test acc")].endswith("%")
        assert int(row[1].split("/")[0]) >= 1  # a COMPLETE trial within the budget


def test_seeds_tuned_quick_one_study_refit_on_all_training_images(tmp_path):
    args = ["--tuned", "--timeout", "5", "--studies", "mnist_mlp", "--full"]
    rows = _run_quick("seeds.py", *args, "--storage", f"sqlite:///{tmp_path / 's.db'}")
    header, body = rows[0], rows[1:]
    assert [r[0] for r in body] == ["MLP (`mnist_mlp.yaml`)"]
    refit = header.index("test acc, re-trained on 60,000")
    assert body[0][refit].endswith("%")
    assert header[refit + 1] == "difference" and body[0][refit + 1].endswith(" pp")


def test_seeds_tuned_rejects_an_unknown_study():
    proc = _script("seeds.py", "--tuned", "--quick", "--studies", "mnist_rnn")
    assert proc.returncode == 2
    assert "--studies: unknown ['mnist_rnn']; allowed: mnist_mlp, mnist_cnn" in proc.stderr


def test_workers_throughput_quick():
    rows = _run_quick("workers_throughput.py")
    assert rows[0][:3] == ["study", "storage", "workers"]
    assert [(r[0], r[1], r[2], r[3]) for r in rows[1:]] == [
        ("tiny", "sqlite", "1", "4"),
        ("tiny", "sqlite", "2", "4"),
    ]
    assert all(r[-1].endswith("/ 0") for r in rows[1:])  # the reader never failed


def test_table_encoding_quick():
    rows = _run_quick("table_encoding.py")
    assert rows[0] == ["categorical columns", "test accuracy", "parameters", "train s"]
    assert [r[0] for r in rows[1:]] == ["one-hot, cap 50", "one-hot, no cap", "embedding 8"]
    assert all(0.5 < float(r[1].split()[0]) <= 1 for r in rows[1:])  # better than chance


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_bookkeeping_quick(sampler):
    rows = _run_quick("bookkeeping.py", "--sampler", sampler)
    assert rows[0][0] == "storage"
    assert [r[0] for r in rows[1:]] == ["memory", "sqlite"]
    assert all(float(r[5]) > 0 for r in rows[1:])  # mean ms per trial


def test_time_to_accuracy_seeds_keep_other_methods_and_summarize(tmp_path):
    """A second seed writes its own points; re-running one method of a seed keeps the other
    methods' points; --summary reports every seed and the median."""
    storage = f"sqlite:///{tmp_path / 't.db'}"

    def quick(seed: int, methods: str) -> list[list[str]]:
        suffix = f"_seed{seed}" if seed else ""
        plot = tmp_path / f"time_to_accuracy_mlp{suffix}_quick.html"
        args = ["--space", "mlp", "--budget", "4", "--storage", storage, "--plot", str(plot)]
        return _run_quick("time_to_accuracy.py", *args, "--seed", str(seed), "--methods", methods)

    quick(0, "randomsearch,kerastuner")
    rows = quick(0, "randomsearch")  # KerasTuner's points of seed 0 are kept
    assert rows[1][0] == "KerasTuner Hyperband (kept: run of " + rows[1][0].split("of ")[1]
    assert rows[2][0] == "RandomizedSearchCV (scikeras)"
    quick(1, "randomsearch")
    kept = json.loads((tmp_path / "time_to_accuracy_mlp_quick.json").read_text())
    assert set(kept) == {"kerastuner", "randomsearch"} and kept["randomsearch"]["budget"] == 4
    summary = _run_quick(
        "time_to_accuracy.py", "--space", "mlp", "--summary", "--plot", str(tmp_path / "x.html")
    )
    header, body = summary[0], summary[1:]
    assert header[1:3] == ["time to 90.0%: seed 0", "time to 90.0%: seed 1"]
    assert [r[0] for r in body] == ["KerasTuner Hyperband", "RandomizedSearchCV (scikeras)"]
    assert body[0][2] == "not run" and body[1][2] != "not run"


def _private_hpsearch_names(source: str) -> list[str]:
    """``hpsearch`` imports and attributes in ``source`` that name a private module or
    name (one starting with ``_``), e.g. ``from hpsearch.engines._queue import top_up``."""
    import ast

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "hpsearch":
            module = node.module or ""
            names = [alias.name for alias in node.names]
            if any(p.startswith("_") for p in module.split(".")) or any(
                n.startswith("_") for n in names
            ):
                found.append(f"from {module} import {', '.join(names)}")
        elif isinstance(node, ast.Import):
            found += [
                f"import {a.name}"
                for a in node.names
                if a.name.split(".")[0] == "hpsearch"
                and any(p.startswith("_") for p in a.name.split("."))
            ]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id == "hpsearch":
                found.append(ast.unparse(node))
    return found


def test_private_names_are_found():
    source = (
        "import hpsearch\n"
        "from hpsearch.engines._queue import top_up\n"
        "from hpsearch.search import _own_seed\n"
        "import hpsearch._progress\n"
        "x = hpsearch.engines._optuna.work\n"
        "from hpsearch.engines import work\n"
        "from _common import table\n"
    )
    assert _private_hpsearch_names(source) == [
        "from hpsearch.engines._queue import top_up",
        "from hpsearch.search import _own_seed",
        "import hpsearch._progress",
        "hpsearch.engines._optuna",
    ]


def test_benchmarks_use_only_the_public_api():
    for script in sorted((ROOT / "benchmarks").glob("*.py")):
        assert _private_hpsearch_names(script.read_text(encoding="utf-8")) == [], script.name


def test_benchmarks_import_names_hpsearch_exports():
    """Every ``from hpsearch.X import name`` of a benchmark is in X's ``__all__``."""
    import ast
    import importlib

    for script in sorted((ROOT / "benchmarks").glob("*.py")):
        for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hpsearch"):
                exported = importlib.import_module(node.module).__all__
                for alias in node.names:
                    assert alias.name in exported, f"{script.name}: {node.module}.{alias.name}"
