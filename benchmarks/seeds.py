"""Seed results: the tutorials' own networks (../shared/SEEDS.md) trained as single fixed
trials through hpsearch, their test accuracy beside the tutorials' numbers; with
``--tuned``, the best MLP and CNN that hpsearch finds within a time budget each.

    python benchmarks/seeds.py [--seeds 0,1,2] [--storage URL] [--mnist PATH] [--quick]
    python benchmarks/seeds.py --plain [--seeds 0,1,2] [--mnist PATH] [--quick]
    python benchmarks/seeds.py --schedules [--seeds 0,1,2] [--storage URL] [--mnist PATH]
    python benchmarks/seeds.py --tuned [--timeout 3600] [--side-by-side] [--full]
        [--studies mnist_mlp,mnist_cnn] [--storage URL] [--mnist PATH] [--quick]

Each tutorial network is a study whose space is all fixed values, run for one trial per
seed (``hpsearch.run`` with ``search.seed``, which seeds the weights, dropout and shuffling)
and exported (``hpsearch.export_trial``, which measures the test-set accuracy: the only
place the test split is used). MNIST's 60,000 training images are split into training and
validation as the tutorial did (A: 20 % validation; the others 10 %); tutorial B validated
on the test set, so it trained on all 60,000: its networks are exported with ``full=True``
(re-trained on training + validation for the epochs the trial kept). The 10,000 test
images are the tutorials' test set. A tutorial's figure counts as reproduced when it lies
within the range of our seeds' test accuracies. ``--plain`` trains the same networks with
a plain Keras script each, written as the tutorial wrote it, for the same seeds: what this
Keras version gives for the tutorials' own code, without hpsearch.

``--tuned`` runs ``studies/mnist_mlp.yaml`` and ``studies/mnist_cnn.yaml`` (or those named
by ``--studies``) with ``search.timeout`` instead of their trial counts, then exports each
best trial; ``--full`` also re-trains it on all 60,000 training images, as scikit-learn's
``refit`` does, and measures that model too. ``--schedules`` trains the MLP study's first
trial (tutorial A's network) with a constant and a cosine learning rate, with and without
early stopping: the choices that study searches. Each mode replaces its own section of
BENCHMARKS.md; ``--quick`` runs on digits in seconds to keep the script working and never
writes it.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    ROOT,
    SHARED_MNIST,
    data_section,
    pct,
    run_stamp,
    study_file,
    table,
    write_section,
)

import hpsearch  # noqa: E402
from hpsearch.study import TrialRecord  # noqa: E402


@dataclass
class Network:
    """A tutorial's network as an hpsearch study: family, fixed space, what it reported."""

    key: str
    description: str
    family: str
    space: dict[str, Any]
    reported: tuple[float, float]  # test accuracy (low, high) as the tutorial reports it
    validation: float = 0.1
    objective: Any = "val_accuracy"
    parameters: int | None = None  # the tutorial's parameter count, when it gives one
    full: bool = False  # the tutorial trained on all 60,000 images (validated on the test set)


NETWORKS = [
    Network(
        "A",
        "MLP 784-512-512-10, dropout 0.2, rmsprop, batch 128, 20 epochs, best val_loss "
        "weights kept",
        "mlp",
        # the dropout rate is not in the notes; 0.2 is the Keras MNIST MLP example's.
        # patience 20 of 20 epochs never stops early but restores the best val_loss
        # weights at the end, as the tutorial's ModelCheckpoint(save_best_only) did
        {"depth": 2, "width": 512, "dropout": 0.2, "optimizer": "rmsprop",
         "learning_rate": "default", "batch_size": 128, "epochs": 20, "patience": 20},
        (0.9807, 0.9807),
        validation=0.2,
        objective={"metric": "val_loss", "direction": "minimize"},
        parameters=669_706,
    ),
    Network(
        "B MLP",
        "MLP 784-512-512-10, dropout 0.5 after the second layer, adam, batch 64, 10 epochs",
        "mlp",
        # create_DNN()'s widths are not stated; 512 as in tutorials A and D
        {"depth": 2, "width": 512, "dropout": {"value": [0.0, 0.5]}, "optimizer": "adam",
         "learning_rate": "default", "batch_size": 64, "epochs": 10},
        (0.9816, 0.9816),
        full=True,
    ),
    Network(
        "B CNN",
        "CNN conv 10@5x5, pool, conv 20@5x5, pool, dense 50, dropout 0.5, adam, batch 64, "
        "10 epochs",
        "cnn",
        # as studies/mnist_cnn.yaml's first trial: no dropout between the blocks (hpsearch's
        # conv_dropout would act after both), dense width 50 (not in the notes)
        {"blocks": 2, "filters": {"value": [10, 20]}, "kernel_size": 5, "padding": "valid",
         "pooling": "max", "pool_size": 2, "conv_dropout": 0.0, "dense_width": 50,
         "dropout": 0.5, "optimizer": "adam", "learning_rate": "default", "batch_size": 64,
         "epochs": 10},
        (0.9922, 0.9922),
        full=True,
    ),
    Network(
        "D",
        "MLP 784-512-512-10, no dropout, adam, batch 128, 20 epochs",
        "mlp",
        {"depth": 2, "width": 512, "dropout": 0.0, "optimizer": "adam",
         "learning_rate": "default", "batch_size": 128, "epochs": 20},
        (0.9819, 0.9819),
    ),
    Network(
        "E",
        "MLP 784-784-32-10, plain SGD, batch 500, 20 epochs",
        "mlp",
        {"depth": 2, "width": {"value": [784, 32]}, "dropout": 0.0, "optimizer": "sgd",
         "learning_rate": "default", "momentum": 0.0, "batch_size": 500, "epochs": 20},
        (0.95, 0.98),
        parameters=640_890,
    ),
]  # fmt: skip

TUNED = {  # study file -> the tutorials' best test accuracy for that kind of network
    "mnist_mlp": ("MLP", 0.9819),
    "mnist_cnn": ("CNN", 0.9922),
}


def reported(low: float, high: float) -> str:
    return pct(low) if low == high else f"{100 * low:.0f}–{100 * high:.0f}%"


def difference(value: float, low: float, high: float) -> str:
    if value > high:
        return f"{100 * (value - high):+.2f} pp"
    if value < low:
        return f"{100 * (value - low):+.2f} pp"
    return "within"


def reproduced(tests: list[float], low: float, high: float) -> str:
    """Whether the tutorial's figure (range) overlaps the range of our seeds."""
    if max(tests) < low:
        return f"no: best seed {100 * (max(tests) - low):+.2f} pp"
    if min(tests) > high:
        return f"above: worst seed {100 * (min(tests) - high):+.2f} pp"
    return "yes"


def export(name: str, storage: str, folder: Path, *, full: bool = False) -> dict[str, Any]:
    """Export the study's best trial into ``folder``; return its model card."""
    out = folder / (name + ("_full" if full else ""))
    result = hpsearch.export_trial(name, storage=storage, out=out, formats="keras", full=full)
    return result.card


def mean_sd(values: list[float]) -> str:
    if len(values) == 1:
        return pct(values[0])
    return f"{pct(statistics.mean(values))} ± {100 * statistics.stdev(values):.2f}"


def fixed_trial(
    args: argparse.Namespace,
    folder: Path,
    name: str,
    net: Network,
    space: dict[str, Any],
    seed: int,
) -> tuple[Any, dict[str, Any]]:
    """Run ``space`` (all fixed) as a one-trial study; export it; the trial and its card."""
    raw = {
        "name": name,
        "data": data_section(args.quick, args.mnist, validation=net.validation),
        "model": {"family": net.family},
        "space": space,
        "objective": net.objective,
        "search": {"sampler": "random", "pruner": "none", "n_trials": 1, "seed": seed},
    }
    sf = study_file(raw, folder, args.storage)
    trial = hpsearch.run(sf).trials[0]
    if trial.state.name != "COMPLETE":
        stored = TrialRecord.from_trial(trial).to_attrs()
        raise SystemExit(f"{name}: the trial is {trial.state.name}: {stored}")
    return trial, export(sf.name, args.storage, folder, full=net.full)


def run_networks(args: argparse.Namespace, stamp: str, folder: Path) -> str:
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for net in NETWORKS:
        space = {**net.space, "activation": "relu"}
        if args.quick and net.family == "cnn":
            space["padding"] = "same"  # two 5x5 valid convolutions do not fit 8x8 digits
        vals, tests, epochs, seconds = [], [], [], []
        for seed in seeds:
            name = f"seeds_{stamp}_{net.key.replace(' ', '_').lower()}_seed{seed}"
            trial, card = fixed_trial(args, folder, name, net, space, seed)
            tests.append(card["test"]["accuracy"])
            record = TrialRecord.from_trial(trial)
            vals.append(record.metrics["val_accuracy"])
            epochs.append(str(record.epochs_run))
            seconds.append(record.train_seconds)
        count = TrialRecord.from_trial(trial).param_count
        params = f"{count:,}"
        if net.parameters is not None and not args.quick:
            params += " ✓" if count == net.parameters else " ✗"
        rows.append(
            [
                net.key,
                net.description,
                params,
                "train + validation" if net.full else f"train ({1 - net.validation:.0%})",
                "/".join(dict.fromkeys(epochs)),
                pct(statistics.mean(vals)),
                pct(statistics.mean(tests)),
                mean_sd(tests),
                f"{pct(min(tests))} – {pct(max(tests))}",
                reported(*net.reported),
                difference(statistics.mean(tests), *net.reported),
                reproduced(tests, *net.reported),
                f"{statistics.mean(seconds):.0f}",
            ]
        )
    body = table(
        [
            "tutorial",
            "network",
            "parameters",
            "trained on",
            "epochs",
            "val acc",
            "test acc",
            "test acc ± sd",
            "test range",
            "tutorial test acc",
            "difference",
            "reproduced",
            "train s",
        ],
        rows,
    )
    body += (
        f"\n\n{len(seeds)} fixed trial(s) per network (seeds {args.seeds}: weights, dropout "
        "and shuffling; the same validation split), trained through `hpsearch.run` and "
        "measured on the test set by `hpsearch.export_trial`; val acc, test acc and "
        "difference are means over the seeds, sd the sample standard deviation. "
        "Reproduced: the tutorial's figure lies within the range of our seeds. ✓: the same "
        "parameter count as the tutorial states. A keeps its best-val_loss epoch (patience "
        "20 of 20 restores it); the others keep their last epoch. Tutorial B validated on "
        "the test set and so trained on all 60,000 images: its networks are re-trained on "
        "training + validation (`export_trial(full=True)`) for the epochs the trial ran "
        "before the test; A (20 % held out) and D and E (10 %) trained on what their "
        "validation split left, as here. Every network here sees the test set once."
    )
    return body


@functools.cache
def plain_data(quick: bool, mnist: str) -> tuple[Any, Any, Any, Any, int]:
    """The tutorials' data handling, loaded once per process: pixels scaled to [0, 1],
    one-hot labels; (x_train, y_train, x_test, y_test, image side)."""
    import keras
    import numpy as np

    if quick:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        digits = load_digits()
        x_tr, x_te, y_tr, y_te = train_test_split(
            digits.images / 16.0, digits.target, test_size=0.2, random_state=0
        )
        side = 8
    else:
        with np.load(mnist) as f:
            x_tr, y_tr, x_te, y_te = (f[k] for k in ("x_train", "y_train", "x_test", "y_test"))
        x_tr, x_te = x_tr / 255.0, x_te / 255.0
        side = 28
    onehot = keras.utils.to_categorical
    return x_tr.astype("float32"), onehot(y_tr, 10), x_te.astype("float32"), onehot(y_te, 10), side


# the tutorials' MLPs: hidden widths and the dropout after each; optimizer, batch, epochs
PLAIN_MLPS = {
    "A": ([512, 512], [0.2, 0.2]),
    "B MLP": ([512, 512], [0.0, 0.5]),
    "D": ([512, 512], [0.0, 0.0]),
    "E": ([784, 32], [0.0, 0.0]),
}
PLAIN_TRAINING = {
    "A": ("rmsprop", 128, 20), "B MLP": ("adam", 64, 10), "B CNN": ("adam", 64, 10),
    "D": ("adam", 128, 20), "E": ("sgd", 500, 20),
}  # fmt: skip


def plain_keras(key: str, seed: int, quick: bool, mnist: str) -> float:
    """Tutorial ``key``'s network trained by the tutorial's own kind of script, in plain
    Keras (no hpsearch): its data handling, validation and checkpointing; test accuracy."""
    import keras
    from keras import layers

    x_tr, y_tr, x_te, y_te, side = plain_data(quick, mnist)
    keras.utils.set_random_seed(seed)
    if key == "B CNN":
        pad = "same" if quick else "valid"
        model = keras.Sequential([
            keras.Input((side, side, 1)),
            layers.Conv2D(10, 5, activation="relu", padding=pad), layers.MaxPooling2D(2),
            layers.Conv2D(20, 5, activation="relu", padding=pad), layers.Dropout(0.5),
            layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(50, activation="relu"),
            layers.Dropout(0.5), layers.Dense(10, activation="softmax"),
        ])  # fmt: skip
        x_tr, x_te = x_tr.reshape(-1, side, side, 1), x_te.reshape(-1, side, side, 1)
    else:
        x_tr, x_te = x_tr.reshape(-1, side * side), x_te.reshape(-1, side * side)
        inputs = keras.Input((side * side,))
        h = inputs
        for width, rate in zip(*PLAIN_MLPS[key], strict=True):
            h = layers.Dense(width, activation="relu")(h)
            if rate:
                h = layers.Dropout(rate)(h)
        model = keras.Model(inputs, layers.Dense(10, activation="softmax")(h))
    optimizer, batch, epochs = PLAIN_TRAINING[key]
    fit: dict[str, Any] = {}
    if key.startswith("B"):
        fit["validation_data"] = (x_te, y_te)  # as tutorial B did: trains on all 60,000
    else:
        fit["validation_split"] = 0.2 if key == "A" else 0.1
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    with tempfile.TemporaryDirectory(prefix="hpsearch-seeds-plain-") as tmp:
        best = Path(tmp) / "best.keras"
        # A: ModelCheckpoint(save_best_only=True) on val_loss, reloaded at the end
        callbacks = (
            [keras.callbacks.ModelCheckpoint(best, save_best_only=True)] if key == "A" else []
        )
        model.fit(
            x_tr, y_tr, batch_size=batch, epochs=epochs, callbacks=callbacks, verbose=0, **fit
        )
        if callbacks:
            model = keras.models.load_model(best)
    return float(model.evaluate(x_te, y_te, verbose=0)[1])


def run_plain(args: argparse.Namespace) -> str:
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for net in NETWORKS:
        tests = [plain_keras(net.key, seed, args.quick, args.mnist) for seed in seeds]
        print(f"{net.key}: {', '.join(pct(t) for t in tests)}", flush=True)
        rows.append(
            [
                net.key,
                mean_sd(tests),
                f"{pct(min(tests))} – {pct(max(tests))}",
                reported(*net.reported),
                difference(statistics.mean(tests), *net.reported),
                reproduced(tests, *net.reported),
            ]
        )
    body = table(
        ["tutorial", "test acc ± sd", "test range", "tutorial test acc", "difference",
         "reproduced"],
        rows,
    )  # fmt: skip
    return body + (
        f"\n\nThe tutorials' networks trained by a plain Keras script each, as the tutorial "
        f"wrote it (no hpsearch), seeds {args.seeds} (`keras.utils.set_random_seed`): one-hot "
        "labels, `validation_split` (A 0.2, D and E 0.1: Keras holds out the last images), "
        "tutorial B validating on the test set and so training on all 60,000 images (its CNN "
        "with its dropout after the second convolution), A reloading its best val_loss "
        "checkpoint. It tells what this Keras version gives for the tutorials' own code, "
        "beside hpsearch's numbers (section *Seed results: the tutorials' networks through "
        "hpsearch*)."
    )


def tuned_overrides(args: argparse.Namespace, stem: str, name: str) -> list[str]:
    """The ``--set`` overrides that turn a study file's trial count into a time budget."""
    overrides = [f"name={name}", "search.n_trials=null", f"search.timeout={args.timeout}"]
    if args.quick:
        overrides += ["data.name=digits", "data.validation=0.2", "search.enqueue=[]"]
        if stem == "mnist_cnn":
            overrides.append("space.padding=same")
    else:
        overrides.append(f"data.path={Path(args.mnist).resolve()}")
    if args.side_by_side:
        overrides.append("workers.threads=1")  # one core each
    return overrides


def search_side_by_side(args: argparse.Namespace, names: dict[str, str]) -> None:
    """Run every study file at the same time, each as its own ``hpsearch run`` process."""
    procs = []
    for stem, name in names.items():
        cmd = [sys.executable, "-m", "hpsearch", "run", str(ROOT / "studies" / f"{stem}.yaml")]
        for override in tuned_overrides(args, stem, name):
            cmd += ["--set", override]
        cmd += ["--storage", args.storage, "--quiet"]
        procs.append((stem, subprocess.Popen(cmd)))  # relative storage paths as given
    for stem, proc in procs:
        if proc.wait() != 0:
            raise SystemExit(f"{stem}: hpsearch run exited with {proc.returncode}")


def run_tuned(args: argparse.Namespace, stamp: str, folder: Path) -> str:
    stems = args.studies.split(",")
    names = {stem: f"{stem}_tuned_{stamp}" for stem in stems}
    if args.side_by_side:
        search_side_by_side(args, names)
    rows = []
    for stem in stems:
        kind, best_reported = TUNED[stem]
        name = names[stem]
        if args.side_by_side:
            study = hpsearch.open_study(name, storage=args.storage)
        else:
            sf = hpsearch.load_study_file(
                ROOT / "studies" / f"{stem}.yaml",
                tuned_overrides(args, stem, name),
                storage=args.storage,
            )
            study = hpsearch.run(sf)
        states: dict[str, int] = {}
        for t in study.trials:
            states[t.state.name] = states.get(t.state.name, 0) + 1
        started = min(t.datetime_start for t in study.trials if t.datetime_start)
        ended = max(t.datetime_complete for t in study.trials if t.datetime_complete)
        card = export(name, args.storage, folder)
        best = study.best_trial
        test = card["test"]["accuracy"]
        refit = []
        if args.full:
            full = export(name, args.storage, folder, full=True)["test"]["accuracy"]
            refit = [pct(full), f"{100 * (full - best_reported):+.2f} pp"]
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in best.params.items())  # fmt: skip
        rows.append(
            [
                f"{kind} (`{stem}.yaml`)",
                f"{states.get('COMPLETE', 0)}/{states.get('PRUNED', 0)}/{states.get('FAIL', 0)}",
                f"{(ended - started).total_seconds() / 60:.0f} min",
                str(best.number),
                pct(TrialRecord.from_trial(best).metrics["val_accuracy"]),
                pct(test),
                pct(best_reported),
                f"{100 * (test - best_reported):+.2f} pp",
                *refit,
                f"{TrialRecord.from_trial(best).param_count:,}",
                params,
            ]
        )
    body = table(
        [
            "network",
            "complete/pruned/failed",
            "first start to last end",
            "best trial",
            "val acc",
            "test acc",
            "tutorials' best",
            "difference",
            *(["test acc, re-trained on 60,000", "difference"] if args.full else []),
            "parameters",
            "best parameters",
        ],
        rows,
    )
    body += (
        f"\n\nEach study file run with `search.timeout={args.timeout:g}` (seconds; the trial "
        "running at the timeout finishes) instead of its trial count"
        + (
            ", both at the same time, each as its own `hpsearch run` process with one "
            "TensorFlow thread (`workers.threads=1`: one core each)"
            if args.side_by_side
            else ", one after the other"
            if len(names) > 1
            else ", alone on the machine"
        )
        + "; the best trial "
        "exported by `hpsearch.export_trial`"
        + (
            ", and again with `full=True`: re-trained on all 60,000 training images "
            "(training + validation) for the epochs it kept, its validation accuracy "
            "having chosen it, as scikit-learn's `refit` does"
            if args.full
            else ""
        )
        + ". Studies "
        + " and ".join(f"`{n}`" for n in names.values())
        + " in the storage of the command above."
    )
    return body


# The learning-rate schedule and early stopping that studies/mnist_mlp.yaml searches,
# tried on tutorial A's network as that study's first trial trains it (10 % validation,
# early stopping on val_accuracy)
SCHEDULE_NET = Network(
    "A (mnist_mlp.yaml's first trial)",
    "MLP 784-512-512-10, dropout 0.2, rmsprop 1e-3, batch 128, up to 20 epochs",
    "mlp",
    {"depth": 2, "width": 512, "dropout": 0.2, "optimizer": "rmsprop",
     "learning_rate": 0.001, "batch_size": 128, "epochs": 20, "activation": "relu"},
    (0.9807, 0.9807),
)  # fmt: skip
SCHEDULES = [("constant", 3), ("constant", 0), ("cosine", 3), ("cosine", 0)]


def run_schedules(args: argparse.Namespace, stamp: str, folder: Path) -> str:
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for schedule, patience in SCHEDULES:
        space = {**SCHEDULE_NET.space, "lr_schedule": schedule, "patience": patience}
        vals, tests, epochs = [], [], []
        for seed in seeds:
            name = f"schedules_{stamp}_{schedule}_p{patience}_seed{seed}"
            trial, card = fixed_trial(args, folder, name, SCHEDULE_NET, space, seed)
            vals.append(TrialRecord.from_trial(trial).metrics["val_accuracy"])
            tests.append(card["test"]["accuracy"])
            epochs.append(TrialRecord.from_trial(trial).epochs_run)
        rows.append(
            [
                schedule,
                f"{patience} (best weights kept)" if patience else "0 (all epochs)",
                "/".join(str(e) for e in epochs),
                pct(statistics.mean(vals)),
                mean_sd(tests),
                f"{pct(min(tests))} – {pct(max(tests))}",
            ]
        )
    body = table(
        ["lr_schedule", "patience", "epochs run", "val acc", "test acc ± sd", "test range"], rows
    )
    return body + (
        f"\n\n{SCHEDULE_NET.description}: `studies/mnist_mlp.yaml`'s first trial (tutorial "
        "A's network), trained through `hpsearch.run` as a fixed trial per seed (seeds "
        f"{args.seeds}) and tested by `hpsearch.export_trial`, under each learning-rate "
        "schedule and early-stopping setting that the study file searches. `cosine` decays "
        "the rate to 0 at epoch 20; patience 3 stops after 3 epochs without a better "
        "val_accuracy and restores the best epoch's weights. 10 % of the 60,000 training "
        "images validate."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tuned", action="store_true", help="search each space instead")
    parser.add_argument("--timeout", type=float, default=None, help="--tuned: seconds each")
    parser.add_argument(
        "--side-by-side",
        action="store_true",
        help="--tuned: run both searches at the same time, one core each",
    )
    parser.add_argument(
        "--studies",
        default=",".join(TUNED),
        help="--tuned: the study files under studies/ to search, comma-separated",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="--tuned: also re-train each best trial on all training images and test it",
    )
    parser.add_argument(
        "--plain",
        action="store_true",
        help="train the tutorials' networks with plain Keras scripts instead (no hpsearch)",
    )
    parser.add_argument(
        "--schedules",
        action="store_true",
        help="train tutorial A's network under each learning-rate schedule and patience",
    )
    parser.add_argument(
        "--seeds", default="0,1,2", help="networks: the seeds to train each one with"
    )
    parser.add_argument("--storage", default="sqlite:///benchmarks/results.db")
    parser.add_argument("--mnist", default=str(SHARED_MNIST))
    parser.add_argument("--quick", action="store_true", help="digits, seconds: a smoke run")
    args = parser.parse_args()
    unknown = set(args.studies.split(",")) - set(TUNED)
    if unknown:
        parser.error(f"--studies: unknown {sorted(unknown)}; allowed: {', '.join(TUNED)}")
    if args.timeout is None:
        args.timeout = 10.0 if args.quick else 3600.0
    stamp = run_stamp() + ("_quick" if args.quick else "")
    if args.plain:
        body = run_plain(args)
        print(body)
        if not args.quick:
            write_section(
                "seeds_plain", "Seed results: the tutorials' own scripts in plain Keras", body
            )
        return
    with tempfile.TemporaryDirectory(prefix="hpsearch-seeds-") as tmp:
        if args.tuned:
            body = run_tuned(args, stamp, Path(tmp))
        elif args.schedules:
            body = run_schedules(args, stamp, Path(tmp))
        else:
            body = run_networks(args, stamp, Path(tmp))
    print(body)
    if args.quick:
        return
    if args.tuned:
        stems = args.studies.split(",")
        if stems == list(TUNED):
            write_section("seeds_tuned", "Seed results: the best MLP and CNN hpsearch finds", body)
        else:
            kinds = " and ".join(TUNED[s][0] for s in stems)
            write_section(f"seeds_tuned_{'_'.join(stems)}",
                          f"Seed results: the best {kinds} hpsearch finds", body)  # fmt: skip
    elif args.schedules:
        write_section(
            "seeds_schedules",
            "Learning-rate schedule and early stopping: tutorial A's network",
            body,
        )
    else:
        write_section("seeds", "Seed results: the tutorials' networks through hpsearch", body)


if __name__ == "__main__":
    main()
