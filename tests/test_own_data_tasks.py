"""Your own data meets regression: a regression CSV with string columns and gaps, arrays
with numeric targets from the Python API, and a loader returning numbers (real Keras,
tiny, offline)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import hpsearch_cli as _cli

import hpsearch
from hpsearch.study import StudyMeta

CITIES = ["paris", "lyon", "nice", "lille"]


def _houses(path: Path, n: int = 300) -> Path:
    """price = 3 * area + 10 * rooms + a city premium: string cities and gaps in both
    feature kinds."""
    rng = np.random.default_rng(0)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["city", "rooms", "area", "price"])
        for i in range(n):
            city = str(rng.choice(CITIES))
            rooms, area = int(rng.integers(1, 6)), float(rng.normal(60, 20))
            price = 3 * area + 10 * rooms + {"paris": 80, "nice": 40}.get(city, 0)
            writer.writerow(
                [
                    "" if i % 29 == 0 else city,
                    "NA" if i % 31 == 0 else rooms,
                    f"{area:.2f}",
                    f"{price + rng.normal(0, 2):.3f}",
                ]
            )
    return path


def _study(tmp_path: Path, data: dict, **extra: object) -> Path:
    doc = {
        "name": "own",
        "data": data,
        "space": {"depth": 1, "width": 32, "epochs": 25, "optimizer": "adam"},
        "search": {"n_trials": 1, "sampler": "random"},
        "storage": f"sqlite:///{tmp_path / 'runs.db'}",
        **extra,
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.slow
def test_a_regression_csv_with_string_columns_runs_exports_and_predicts_raw_rows(tmp_path):
    _houses(tmp_path / "houses.csv")
    data = {"name": "csv", "path": "houses.csv", "label_column": "price"}
    study = _study(tmp_path, data | {"standardize_target": True}, space={
        "depth": 1, "width": 32, "epochs": 40, "optimizer": "adam", "learning_rate": 0.01,
    })  # fmt: skip
    run = _cli("run", str(study), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    stored = hpsearch.open_study(str(study))
    meta = StudyMeta.of(stored)
    assert meta.task == "regression" and stored.directions[0].name == "MINIMIZE"
    assert "val_rmse" in stored.best_trial.user_attrs

    out = tmp_path / "export"
    exported = _cli("export", str(study), "--out", str(out), cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr[-2000:]
    card = json.loads((out / "model_card.json").read_text())
    assert card["data"]["task"] == "regression" and card["data"]["table"] is not None
    assert card["test"]["r2"] > 0.8  # the rule is learnable: prices in their own units

    # raw rows, columns reordered, an unseen city and gaps: values in the target's units
    new = tmp_path / "new.csv"
    new.write_text("area,city,rooms\n50,paris,2\n50,marseille,2\n70,,NA\n")
    pred = _cli("predict", str(out), str(new), cwd=tmp_path)
    assert pred.returncode == 0, pred.stderr[-2000:]
    lines = pred.stdout.strip().splitlines()
    assert lines[0] == "input,value" and len(lines) == 4
    values = [float(line.rsplit(",", 1)[1]) for line in lines[1:]]
    assert abs(values[0] - (3 * 50 + 10 * 2 + 80)) < 30
    assert all(np.isfinite(values))


def test_arrays_with_numeric_targets_are_a_regression_and_export_needs_them(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 4)).astype("float32")
    y = (x @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.25).astype("float32")
    study = _study(tmp_path, {"name": "digits"})  # data: replaced by the arrays
    result = hpsearch.run(str(study), data=(x, y), quiet=True)
    assert result.directions[0].name == "MINIMIZE"
    assert StudyMeta.of(result).task == "regression"
    trial = result.best_trial
    assert {"val_rmse", "val_mae"} <= set(trial.user_attrs)

    with pytest.raises(hpsearch.HpsearchError, match=r"data=\(x, y\)"):
        hpsearch.export_trial(str(study), out=tmp_path / "nope")
    assert not (tmp_path / "nope").exists()
    done = hpsearch.export_trial(str(study), out=tmp_path / "ex", data=(x, y))
    assert done.card.test.rmse is not None and done.card.test.accuracy is None


LOADER = """
import numpy as np

def dosage():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, size=(200, 3)).astype("float32")
    return x, (10 * x[:, 0] + 5).astype("float32")
"""


def test_a_loader_returning_numbers_runs_as_a_regression_when_the_file_says_so(tmp_path):
    (tmp_path / "doses.py").write_text(LOADER)
    study = _study(tmp_path, {"name": "doses:dosage"}, task="regression")
    run = _cli("run", str(study), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    stored = hpsearch.open_study(str(study))
    assert StudyMeta.of(stored).task == "regression"
    assert stored.best_trial.user_attrs["val_rmse"] >= 0
