"""Regression: the test RMSE of hpsearch's best network on diabetes (or California housing)
beside scikit-learn's ``HistGradientBoostingRegressor`` and a plain Keras MLP with default
settings, all on the same split.

    python benchmarks/regression.py [--study diabetes|california_housing] [--n-trials 15]
        [--data-path PATH] [--seeds 0,1,2] [--storage URL] [--quick]

hpsearch runs the shipped study (``studies/diabetes.yaml``; ``california_housing`` is the
same study on ``data.name: california_housing``, from ``keras.datasets`` or ``--data-path``,
a local copy of Keras' ``california_housing.npz``) and exports its best trial: the model
card's test RMSE is the exported model's, in the target's units. The baselines train on
the same training split (the validation split is hpsearch's for selection and stays
unused by them) and are measured on the same test split: ``HistGradientBoostingRegressor()``
with scikit-learn's defaults, and a plain Keras MLP (two Dense(64, relu) layers, a linear
output, Adam at its default rate, mean squared error, batch 32, 100 epochs, on the raw
target) as a first script would write it. The Keras MLP and the gradient boosting run once
per ``--seeds`` value (mean and range in the table). ``--quick`` runs 3 short trials and
5-epoch baselines to keep the script working, and never writes BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, run_stamp, sqlite_in, study_file, table, write_section  # noqa: E402

import hpsearch  # noqa: E402
from hpsearch.data import load_dataset  # noqa: E402


def _errors(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    err = np.asarray(pred, dtype="float64").reshape(-1) - truth
    total = float(np.sum((truth - truth.mean()) ** 2))
    return {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "r2": 1.0 - float(np.sum(err**2)) / total,
    }


def _original(y: np.ndarray, target: dict[str, float] | None) -> np.ndarray:
    y = np.asarray(y, dtype="float64")
    return y * target["std"] + target["mean"] if target else y


def _hpsearch(raw: dict[str, Any], folder: Path, storage: str) -> tuple[dict[str, Any], Any]:
    sf = study_file(raw, folder, storage)
    t0 = time.perf_counter()
    study = hpsearch.run(sf, quiet=True)
    seconds = time.perf_counter() - t0
    result = hpsearch.export_trial(
        str(sf.source), storage=sf.storage, out=folder / "export", formats="keras", force=True
    )
    test = result.card.test
    row = {"rmse": test.rmse, "mae": test.mae, "r2": test.r2, "seconds": seconds}
    row["trials"] = len(study.trials)
    return row, sf


def _hgb(ds: Any, seed: int) -> dict[str, float]:
    from sklearn.ensemble import HistGradientBoostingRegressor

    x = ds.x_train.reshape(len(ds.x_train), -1)
    t0 = time.perf_counter()
    model = HistGradientBoostingRegressor(random_state=seed).fit(
        x, _original(ds.y_train, ds.target)
    )
    seconds = time.perf_counter() - t0
    pred = model.predict(ds.x_test.reshape(len(ds.x_test), -1))
    return {**_errors(pred, _original(ds.y_test, ds.target)), "seconds": seconds}


def _plain_keras(ds: Any, seed: int, epochs: int) -> dict[str, float]:
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input(shape=ds.input_shape),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer="adam", loss="mse")
    t0 = time.perf_counter()
    model.fit(ds.x_train, _original(ds.y_train, ds.target), epochs=epochs, verbose=0)
    seconds = time.perf_counter() - t0
    pred = model.predict(ds.x_test, verbose=0)
    return {**_errors(pred, _original(ds.y_test, ds.target)), "seconds": seconds}


def _summary(name: str, runs: list[dict[str, float]]) -> list[str]:
    def cell(key: str, fmt: str) -> str:
        values = [r[key] for r in runs if r.get(key) is not None]
        if not values:
            return "—"
        mean = statistics.fmean(values)
        if len(values) == 1:
            return format(mean, fmt)
        return f"{format(mean, fmt)} ({format(min(values), fmt)}–{format(max(values), fmt)})"

    return [name, str(len(runs)), cell("rmse", ".2f"), cell("mae", ".2f"), cell("r2", ".3f"),
            cell("seconds", ".1f")]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--study", choices=["diabetes", "california_housing"], default="diabetes")
    parser.add_argument("--n-trials", type=int, default=None, help="default: the study's")
    parser.add_argument("--data-path", default=None, help="california_housing: a local copy")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--storage", default=None)
    parser.add_argument("--quick", action="store_true", help="3 short trials: a smoke run")
    args = parser.parse_args()
    import yaml

    raw = yaml.safe_load((ROOT / "studies" / "diabetes.yaml").read_text())
    raw["name"] = f"regression_{args.study}_{run_stamp()}"
    raw["data"]["name"] = args.study
    if args.data_path:
        raw["data"]["path"] = str(Path(args.data_path).resolve())
    if args.n_trials:
        raw["search"]["n_trials"] = args.n_trials
    seeds = [int(s) for s in args.seeds.split(",")]
    epochs = 100
    if args.quick:
        raw["search"]["n_trials"], raw["space"]["epochs"], epochs, seeds = 3, 5, 5, seeds[:1]
    with tempfile.TemporaryDirectory(prefix="hpsearch-regression-") as tmp:
        folder = Path(tmp)
        row, sf = _hpsearch(raw, folder, args.storage or sqlite_in(folder))
        ds = load_dataset(sf.config.data, sf.base_dir, sf.task)
        rows = [
            _summary(f"hpsearch best of {row['trials']} trials (exported)", [row]),
            _summary("HistGradientBoostingRegressor()", [_hgb(ds, s) for s in seeds]),
            _summary("plain Keras MLP 2x64", [_plain_keras(ds, s, epochs) for s in seeds]),
        ]
    header = ["model", "runs", "test RMSE", "test MAE", "test R²", "seconds"]
    body = (
        f"{args.study}: {len(ds.x_train)} train / {len(ds.x_val)} validation / "
        f"{len(ds.x_test)} test samples (data.seed {sf.config.data.seed}); errors in the "
        "target's units, on the test split only.\n\n" + table(header, rows)
    )
    print(body)
    if not args.quick:
        write_section(f"regression-{args.study}", f"Regression: {args.study}, test RMSE", body)


if __name__ == "__main__":
    main()
