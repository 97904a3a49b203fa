"""Platform overhead: the same fixed MLP configurations trained by a bare Keras loop and by
hpsearch (SQLite storage, pruning off), per trial and in total, median over repeats.

    python benchmarks/overhead.py [--repeats 3] [--epochs 3] [--storage URL] [--mnist PATH]
                                  [--quick]

Both sides train the same networks (the bare loop's are written out in plain Keras
and checked to have the same parameter count as hpsearch's ``mlp`` family) on the
same arrays (``hpsearch.data.load_dataset``) with the same seeds, for a fixed number
of epochs (no early stopping, no pruning). hpsearch runs the list as one study whose
trials are all enqueued, through ``hpsearch.run`` (what ``hpsearch run`` calls, minus
the process start-up) with its default ``export.keep: best``. The two sides alternate
which goes first in each repeat, after a one-trial warm-up study. ``--quick`` runs it on digits
(seconds) to keep the script working and never writes BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    SHARED_MNIST,
    data_section,
    run_stamp,
    sqlite_in,
    study_file,
    table,
    warm_up,
    write_section,
)

import hpsearch  # noqa: E402
from hpsearch.study import TrialRecord  # noqa: E402

# (label, parameters); every parameter not named here is the mlp family's default
CONFIGS: list[tuple[str, dict[str, Any]]] = [
    ("1x128 adam b128", {"depth": 1, "width": [128], "dropout": 0.0, "optimizer": "adam",
                         "learning_rate": 1e-3, "batch_size": 128}),
    ("2x512 drop rmsprop b128 (A)", {"depth": 2, "width": [512, 512], "dropout": 0.2,
                                     "optimizer": "rmsprop", "learning_rate": 1e-3,
                                     "batch_size": 128}),
    ("2x512 adam b128 (D)", {"depth": 2, "width": [512, 512], "dropout": 0.0,
                             "optimizer": "adam", "learning_rate": 1e-3, "batch_size": 128}),
    ("256-128-64 nadam b256", {"depth": 3, "width": [256, 128, 64], "dropout": 0.1,
                               "optimizer": "nadam", "learning_rate": 2e-3, "batch_size": 256}),
    ("1024-512-256-128 sgd b64", {"depth": 4, "width": [1024, 512, 256, 128], "dropout": 0.3,
                                  "optimizer": "sgd", "learning_rate": 1e-2, "batch_size": 64}),
]  # fmt: skip


def space(epochs: int) -> dict[str, Any]:
    """A space holding every configuration above (all of them are enqueued)."""
    values = [params for _, params in CONFIGS]

    def choices(key: str) -> dict[str, Any]:
        return {"choices": sorted({p[key] for p in values}, key=str)}

    widths = [w for p in values for w in p["width"]]
    return {
        "depth": choices("depth"),
        "width": {"low": min(widths), "high": max(widths), "per_layer": True},
        "dropout": choices("dropout"),
        "optimizer": choices("optimizer"),
        "learning_rate": choices("learning_rate"),
        "momentum": 0.9,
        "batch_size": choices("batch_size"),
        "epochs": epochs,
        "patience": 0,
        "activation": "relu",
    }


def bare_mlp(params: dict[str, Any], input_shape: tuple[int, ...], num_classes: int) -> Any:
    """The network hpsearch's ``mlp`` family builds, written out in plain Keras."""
    import keras

    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    for width in params["width"]:
        x = keras.layers.Dense(width)(x)
        x = keras.layers.Activation("relu")(x)
        if params["dropout"]:
            x = keras.layers.Dropout(params["dropout"])(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def bare_optimizer(params: dict[str, Any]) -> Any:
    import keras

    lr = params["learning_rate"]
    if params["optimizer"] == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=0.9)
    return {
        "rmsprop": keras.optimizers.RMSprop,
        "adam": keras.optimizers.Adam,
        "adamax": keras.optimizers.Adamax,
        "nadam": keras.optimizers.Nadam,
    }[params["optimizer"]](learning_rate=lr)


def run_bare(dataset: Any, epochs: int, seed: int) -> list[dict[str, float]]:
    """Train every configuration with a plain Keras loop; wall time per configuration."""
    import keras

    out = []
    for i, (_, params) in enumerate(CONFIGS):
        start = time.perf_counter()
        keras.utils.set_random_seed(seed + i)  # hpsearch seeds trial n with seed + n
        model = bare_mlp(params, dataset.input_shape, dataset.num_classes)
        model.compile(
            optimizer=bare_optimizer(params),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        history = model.fit(
            dataset.x_train,
            dataset.y_train,
            validation_data=(dataset.x_val, dataset.y_val),
            batch_size=params["batch_size"],
            epochs=epochs,
            verbose=0,
        )
        out.append(
            {
                "seconds": time.perf_counter() - start,
                "params": model.count_params(),
                "val_accuracy": history.history["val_accuracy"][-1],
            }
        )
        keras.backend.clear_session(free_memory=False)
    return out


def run_hpsearch(raw: dict[str, Any], folder: Path, storage: str) -> dict[str, Any]:
    """Run the configurations as one hpsearch study; total and per-trial wall time."""
    sf = study_file(raw, folder, storage)
    start = time.perf_counter()
    study = hpsearch.run(sf, quiet=True)
    total = time.perf_counter() - start
    trials = sorted(study.trials, key=lambda t: t.number)
    if [t.state.name for t in trials] != ["COMPLETE"] * len(CONFIGS):
        raise SystemExit(f"hpsearch study {sf.name}: not every trial completed: {trials}")
    records = [TrialRecord.from_trial(t) for t in trials]
    per_trial = [
        {
            "seconds": (t.datetime_complete - t.datetime_start).total_seconds(),
            "fit_seconds": r.train_seconds,
            "params": r.param_count,
            "val_accuracy": r.metrics["val_accuracy"],
        }
        for t, r in zip(trials, records, strict=True)
    ]
    return {"total": total, "trials": per_trial}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per configuration")
    parser.add_argument("--storage", default=None, help="default: SQLite in a temporary folder")
    parser.add_argument("--mnist", default=str(SHARED_MNIST))
    parser.add_argument("--quick", action="store_true", help="digits, 2 repeats: a smoke run")
    args = parser.parse_args()
    repeats = min(args.repeats, 2) if args.quick else args.repeats

    stamp = run_stamp()
    seed = 0
    bare_runs: list[list[dict[str, float]]] = []
    hp_runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hpsearch-overhead-") as tmp:
        folder = Path(tmp)
        storage = args.storage or sqlite_in(folder)
        dataset = None
        for r in range(repeats):
            raw = {
                "name": f"overhead_{stamp}_r{r}" + ("_quick" if args.quick else ""),
                "data": data_section(args.quick, args.mnist),
                "model": {"family": "mlp"},
                "space": space(args.epochs),
                "search": {
                    "sampler": "tpe",
                    "pruner": "none",
                    "n_trials": len(CONFIGS),
                    "seed": seed,
                    "enqueue": [params for _, params in CONFIGS],
                },
            }
            if dataset is None:  # the arrays hpsearch trains on (cached for the process)
                dataset = warm_up(raw, folder, storage)
            if r % 2 == 0:
                bare_runs.append(run_bare(dataset, args.epochs, seed))
                hp_runs.append(run_hpsearch(raw, folder, storage))
            else:
                hp_runs.append(run_hpsearch(raw, folder, storage))
                bare_runs.append(run_bare(dataset, args.epochs, seed))
            print(
                f"repeat {r + 1}/{repeats}: bare {sum(b['seconds'] for b in bare_runs[-1]):.1f}s, "
                f"hpsearch {hp_runs[-1]['total']:.1f}s",
                flush=True,
            )

    rows = []
    for i, (label, _) in enumerate(CONFIGS):
        bare = statistics.median(run[i]["seconds"] for run in bare_runs)
        hp = statistics.median(run["trials"][i]["seconds"] for run in hp_runs)
        bare_params = bare_runs[0][i]["params"]
        hp_params = hp_runs[0]["trials"][i]["params"]
        if bare_params != hp_params:
            raise SystemExit(
                f"{label}: bare model has {bare_params} parameters, hpsearch's {hp_params}"
            )
        rows.append(
            [
                label,
                f"{hp_params:,}",
                f"{bare:.2f}",
                f"{hp:.2f}",
                f"{hp - bare:+.2f}",
                f"{hp / bare:.3f}",
                f"{bare_runs[0][i]['val_accuracy']:.4f}",
                f"{hp_runs[0]['trials'][i]['val_accuracy']:.4f}",
            ]
        )
    bare_total = statistics.median(sum(b["seconds"] for b in run) for run in bare_runs)
    hp_total = statistics.median(run["total"] for run in hp_runs)
    rows.append(
        [
            "**total**",
            "",
            f"{bare_total:.2f}",
            f"{hp_total:.2f}",
            f"{hp_total - bare_total:+.2f}",
            f"{hp_total / bare_total:.3f}",
            "",
            "",
        ]
    )
    per_trial = (hp_total - bare_total) / len(CONFIGS)
    body = table(
        [
            "configuration",
            "parameters",
            "bare Keras s",
            "hpsearch s",
            "difference s",
            "ratio",
            "bare val acc",
            "hpsearch val acc",
        ],
        rows,
    )
    data = f"{len(dataset.x_train)} train / {len(dataset.x_val)} validation {dataset.name}"
    body += (
        f"\n\n{len(CONFIGS)} configurations x {args.epochs} epoch(s) on {data} images, "
        f"median of {repeats} repeat(s). Per configuration: "
        "bare = build, compile and fit; hpsearch = the trial's stored start to completion "
        "(sampling, training, per-epoch reports, the kept best model, bookkeeping). "
        "Total: bare = the sum of the fits; hpsearch = the whole `hpsearch.run` call (study "
        f"creation, enqueueing, trials, SQLite). Overhead per trial: **{per_trial:+.2f} s**. "
        "Both sides use the same seeds, hence the same initial weights: their validation "
        "accuracies agree up to TensorFlow's non-deterministic CPU kernels."
    )
    print(body)
    if not args.quick:
        write_section("overhead", "Platform overhead: bare Keras loop vs hpsearch", body)


if __name__ == "__main__":
    main()
