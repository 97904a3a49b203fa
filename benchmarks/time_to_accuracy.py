"""Time to accuracy: one search space searched by hpsearch, KerasTuner's Hyperband and
scikit-learn's RandomizedSearchCV (over scikeras) under the same wall-clock budget.

    python benchmarks/time_to_accuracy.py --space mlp|cnn|cnn_plus [--budget SECONDS]
        [--methods hpsearch,kerastuner,randomsearch] [--seed N] [--storage URL]
        [--mnist PATH] [--plot FILE.html] [--quick]
    python benchmarks/time_to_accuracy.py --space cnn_plus --summary
    python benchmarks/time_to_accuracy.py --space cnn_plus --seed 3 --replot

Every method sees the same arrays (``hpsearch.data.load_dataset``: the same training and
validation split) and the same space (``MLP_SPACE`` / ``CNN_SPACE`` / ``CNN_PLUS_SPACE`` in
``_common.py``; ``cnn_plus`` adds batch normalization, shifted training images and a cosine
learning rate to the CNN space) and builds its networks with hpsearch's model builders and
optimizers, so only the search differs:

* ``hpsearch``: ``hpsearch.run`` with TPE and the Hyperband pruner (epochs 1 to the
  space's maximum, factor 3), early stopping with patience 3, ``search.timeout`` = budget;
  ``hpsearch-median`` is the same with the median pruner; ``hpsearch-fast`` uses
  ``search.sampler_options`` / ``pruner_options``: multivariate TPE (``group``) after 5
  random start-up trials instead of 10, and Hyperband from 2 epochs instead of 1. Every
  hpsearch method sets ``chance_patience: 2``: a trial stuck at chance stops after 2 epochs.
* ``kerastuner``: ``keras_tuner.Hyperband(objective="val_accuracy", max_epochs=<the
  space's epochs>, factor=3)`` with the same early stopping; no new trial after the budget.
* ``randomsearch``: ``RandomizedSearchCV`` over hpsearch's tag-fixed scikeras
  ``KerasClassifier``, scored on the validation split (``PredefinedSplit``), so its score
  is validation accuracy too. scikeras has no early stopping: the number of epochs is
  sampled (1 to the maximum) like the other parameters.

A result counts when its trial (candidate) finished within the budget; a trial that is
running when the budget ends is stopped (KerasTuner, scikit-learn) or finishes but does not
count (hpsearch starts no new trial after its timeout, but cannot stop a running one).
hpsearch counts COMPLETE trials only (a pruned trial leaves no model); KerasTuner counts
every trial, short Hyperband rounds included. The test accuracy is that of the best model
found within the budget: hpsearch's through ``hpsearch.export_trial``, KerasTuner's
checkpoint of the best epoch, scikit-learn's fitted candidate.

Prints a table (best validation accuracy at fixed times, the time to reach each target, the
best model's test accuracy), writes a plotly page of the best-so-far curves (``--plot``,
self-contained HTML, a PNG taken by headless Chromium when there is one, which the section
shows, and the raw points as JSON) and, without ``--quick``, replaces its section of
BENCHMARKS.md. ``--replot`` draws the kept points of ``--space`` / ``--seed`` again.
``--quick`` runs every method for a few seconds on digits to keep the script working.

``--seed N`` (default 0) seeds every method's search and its networks' initial weights
(hpsearch's ``search.seed``, KerasTuner's ``seed``, scikit-learn's ``random_state``); a run
with seed N other than 0 writes ``..._seedN`` files and section. The points of each seed are
kept in its JSON file, per method: a run of some methods replaces theirs and keeps the
others' (each with its own budget and date), so one method can be re-run alone.
``--summary`` runs nothing: it reads the JSON files of every seed of ``--space`` and writes,
per method, each seed's time to the targets and their median, over the shortest budget
among them.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as dt
import json
import math
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    CNN_PLUS_SPACE,
    CNN_SPACE,
    MLP_SPACE,
    ROOT,
    SHARED_MNIST,
    data_section,
    pct,
    run_stamp,
    secs,
    snapshot,
    sqlite_in,
    study_file,
    table,
    warm_up,
    write_section,
)

import hpsearch  # noqa: E402

SPACES = {
    "mlp": ("mlp", MLP_SPACE),
    "cnn": ("cnn", CNN_SPACE),
    "cnn_plus": ("cnn", CNN_PLUS_SPACE),
}
SPACE_TITLES = {"mlp": "MLP", "cnn": "CNN", "cnn_plus": "CNN + batch norm, shifts, cosine rate"}
TARGETS = {"mlp": (0.980, 0.983), "cnn": (0.992,), "cnn_plus": (0.992,)}
QUICK_TARGETS = (0.90, 0.95)  # digits: reachable in seconds, so the code path runs
HPSEARCH = {  # method -> search settings
    "hpsearch": {"sampler": "tpe", "pruner": "hyperband"},
    "hpsearch-median": {"sampler": "tpe", "pruner": "median"},
    # fewer random start-up trials, the space's params modelled jointly (per-layer widths
    # as a group), and no pruning after a single epoch
    "hpsearch-fast": {
        "sampler": "tpe",
        "sampler_options": {"n_startup_trials": 5, "multivariate": True, "group": True},
        "pruner": "hyperband",
        "pruner_options": {"min_resource": 2},
    },
}
LABELS = {
    "hpsearch": "hpsearch (TPE + Hyperband)",
    "hpsearch-median": "hpsearch (TPE + median)",
    "hpsearch-fast": "hpsearch (multivariate TPE, 5 start-up trials + Hyperband from 2 epochs)",
    "kerastuner": "KerasTuner Hyperband",
    "randomsearch": "RandomizedSearchCV (scikeras)",
}
CHECKPOINTS = (60, 150, 300, 600, 1200, 1800, 3600, 7200)
# hpsearch stops a trial stuck at chance for 2 epochs (off by default; runs before
# 2026-12-01 had no such stop)
CHANCE_PATIENCE = 2


@dataclass
class Result:
    """One method's run: (seconds since its start, validation accuracy) per finished trial."""

    method: str
    points: list[tuple[float, float]] = field(default_factory=list)
    test_accuracy: float | None = None
    wall: float = 0.0
    budget: float | None = None
    date: str = ""  # UTC day of the run

    def best_at(self, seconds: float) -> float | None:
        if self.budget is not None and seconds > self.budget:
            return None  # not measured: the run stopped before
        values = [v for t, v in self.points if t <= seconds]
        return max(values) if values else None

    def time_to(self, target: float, within: float | None = None) -> float | None:
        for t, _ in sorted(self.points):
            if within is not None and t > within:
                break
            if (self.best_at(t) or 0.0) >= target:
                return t
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "points": self.points,
            "test_accuracy": self.test_accuracy,
            "wall": self.wall,
            "budget": self.budget,
            "date": self.date,
        }

    @classmethod
    def from_json(cls, method: str, item: dict[str, Any]) -> Result:
        return cls(
            method,
            points=[(float(t), float(v)) for t, v in item.get("points", [])],
            test_accuracy=item.get("test_accuracy"),
            wall=float(item.get("wall") or 0.0),
            budget=item.get("budget"),
            date=str(item.get("date") or ""),
        )

    def curve(self) -> tuple[list[float], list[float]]:
        xs, ys, best = [], [], -1.0
        for t, v in sorted(self.points):
            best = max(best, v)
            xs.append(t)
            ys.append(best)
        return xs, ys


def load_points(path: Path) -> dict[str, Result]:
    """The results a run kept in ``path`` (its JSON of points), by method."""
    if not path.exists():
        return {}
    return {m: Result.from_json(m, item) for m, item in json.loads(path.read_text()).items()}


class BudgetSpent(Exception):
    """Raised by the deadline callback when scikit-learn starts a fit after the budget."""


def deadline_callback(deadline: float, refuse_late_start: bool) -> Any:
    """A Keras callback that stops training at ``deadline`` (``time.monotonic()``)."""
    import keras

    class Deadline(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.deadline = deadline
            self.refuse_late_start = refuse_late_start

        def on_train_begin(self, logs: Any = None) -> None:
            if self.refuse_late_start and time.monotonic() >= self.deadline:
                raise BudgetSpent

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if time.monotonic() >= self.deadline:
                self.model.stop_training = True

    return Deadline()


def test_accuracy(model: Any, dataset: Any) -> float:
    probs = np.asarray(model.predict(dataset.x_test, batch_size=256, verbose=0))
    return float(np.mean(probs.argmax(axis=1) == dataset.y_test))


# ------------------------------------------------------------------ hpsearch
def run_hpsearch(
    method: str, raw: dict[str, Any], folder: Path, storage: str, budget: float, seed: int
) -> Result:
    from optuna.trial import TrialState

    raw = copy.deepcopy(raw)
    raw["name"] += f"_{method}"
    raw["search"] = {**HPSEARCH[method], "timeout": budget, "seed": seed}
    raw["space"] = {"chance_patience": CHANCE_PATIENCE, **raw["space"]}
    sf = study_file(raw, folder, storage)
    t0 = dt.datetime.now()  # Optuna stores naive local times
    start = time.perf_counter()
    study = hpsearch.run(sf)
    result = Result(method, wall=time.perf_counter() - start)
    best = None
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        elapsed = (trial.datetime_complete - t0).total_seconds()
        if elapsed <= budget:
            result.points.append((elapsed, float(trial.value)))
            if best is None or trial.value > best.value:
                best = trial
    if best is not None:
        exported = hpsearch.export_trial(
            sf.name,
            storage=storage,
            trial=best.number,
            out=folder / f"export-{sf.name}",
            formats="keras",
        )
        result.test_accuracy = float(exported.card["test"]["accuracy"])
    return result


# ------------------------------------------------------------------ KerasTuner
def kt_params(hp: Any, space: Any) -> dict[str, Any]:
    """The trial's parameters, the searched ones asked from a KerasTuner ``hp``."""
    from hpsearch.config import ChoiceParam
    from hpsearch.space import layer_names

    def ask(name: str, spec: Any) -> Any:
        if isinstance(spec, ChoiceParam):
            return hp.Choice(name, list(spec.choices))
        sampling = "log" if spec.log else "linear"
        if spec.is_int:
            return hp.Int(name, int(spec.low), int(spec.high), sampling=sampling)
        return hp.Float(name, float(spec.low), float(spec.high), sampling=sampling)

    params = dict(space.fixed)
    for dim in space.ordered():  # the depth first, a conditional parameter after what it reads
        if not dim.searched or not space.uses(dim.name, params):
            continue  # fixed, or its conditions fail (momentum without sgd): not asked
        if dim.per_layer:
            names = layer_names(dim.name, space.depth_of(params))
            params[dim.name] = [ask(key, dim.spec) for key in names]
        else:
            params[dim.name] = ask(dim.name, dim.spec)
    return params


def run_kerastuner(sf: Any, dataset: Any, folder: Path, budget: float, seed: int) -> Result:
    import keras
    import keras_tuner as kt

    from hpsearch.models import build_model
    from hpsearch.training import make_optimizer, steps_per_epoch, steps_per_execution

    space, family = sf.space, sf.config.model.family

    class HyperModel(kt.HyperModel):
        def build(self, hp: Any) -> Any:
            params = kt_params(hp, space)
            model = build_model(family, params, dataset.input_shape, dataset.num_classes)
            n_train, batch_size = len(dataset.x_train), int(params["batch_size"])
            model.compile(
                # as hpsearch does (a cosine rate needs the steps): only the search differs
                optimizer=make_optimizer(params, steps_per_epoch(n_train, batch_size)),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
                steps_per_execution=steps_per_execution(n_train, batch_size),
            )
            return model

        def fit(self, hp: Any, model: Any, *args: Any, **kwargs: Any) -> Any:
            batch_size = int(kt_params(hp, space)["batch_size"])
            return model.fit(*args, batch_size=batch_size, **kwargs)

    result = Result("kerastuner")
    ids: list[str] = []
    start = time.monotonic()
    deadline = start + budget

    class Tuner(kt.Hyperband):
        def _configure_tensorboard_dir(self, *args: Any, **kwargs: Any) -> None:
            # KerasTuner 1.4 imports tensorboard for every trial on TensorFlow, only to
            # patch TensorBoard callbacks (we pass none); TensorFlow 2.21 no longer
            # installs tensorboard
            return None

        def pre_create_trial(self) -> None:
            if time.monotonic() >= deadline:  # the oracle stops at max_trials
                self.oracle.max_trials = len(self.oracle.trials)

        def on_trial_end(self, trial: Any) -> None:
            super().on_trial_end(trial)
            elapsed = time.monotonic() - start
            stored = self.oracle.trials[trial.trial_id]
            if elapsed <= budget and stored.status == "COMPLETED" and stored.score is not None:
                result.points.append((elapsed, float(stored.score)))
                ids.append(trial.trial_id)

    tuner = Tuner(
        HyperModel(),
        objective="val_accuracy",
        max_epochs=sf.max_epochs,
        factor=3,
        hyperband_iterations=1000,  # as many sweeps as fit in the budget
        seed=seed,
        directory=str(folder / "kerastuner"),
        project_name=sf.name,
        overwrite=True,
    )
    callbacks = [deadline_callback(deadline, refuse_late_start=False)]
    patience = int(space.fixed.get("patience", 0) or 0)
    if patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=patience))
    tuner.search(
        dataset.x_train,
        dataset.y_train,
        validation_data=(dataset.x_val, dataset.y_val),
        callbacks=callbacks,
        verbose=0,
    )
    result.wall = time.monotonic() - start
    if result.points:
        best = max(range(len(ids)), key=lambda i: result.points[i][1])
        with warnings.catch_warnings():  # the checkpoint's optimizer state is not needed
            warnings.simplefilter("ignore")
            model = tuner.load_model(tuner.oracle.trials[ids[best]])
        result.test_accuracy = test_accuracy(model, dataset)
    return result


# ------------------------------------------------------------------ scikit-learn
def run_randomsearch(sf: Any, dataset: Any, budget: float, seed: int) -> Result:
    from sklearn.model_selection import PredefinedSplit, RandomizedSearchCV

    from hpsearch.engines import build_estimator

    result = Result("randomsearch")
    kept: dict[str, Any] = {}
    start = time.monotonic()

    def score(estimator: Any, x: Any, y: Any) -> float:
        accuracy = float(np.mean(estimator.predict(x) == y))
        elapsed = time.monotonic() - start
        if elapsed <= budget:
            result.points.append((elapsed, accuracy))
            if accuracy > kept.get("accuracy", -1.0):
                kept.update(accuracy=accuracy, estimator=estimator)
        return accuracy

    estimator = build_estimator(sf, seed)  # hpsearch's tag-fixed scikeras KerasClassifier
    estimator.set_params(callbacks=[deadline_callback(start + budget, refuse_late_start=True)])
    x = np.concatenate([dataset.x_train, dataset.x_val])
    y = np.concatenate([dataset.y_train, dataset.y_val])
    folds = np.r_[np.full(len(dataset.x_train), -1), np.zeros(len(dataset.x_val), dtype=int)]
    search = RandomizedSearchCV(
        estimator,
        sf.space.distributions(),
        n_iter=max(100, int(budget)),  # more than fit in the budget
        scoring=score,
        cv=PredefinedSplit(folds),
        refit=False,
        error_score="raise",
        random_state=seed,
    )
    with contextlib.suppress(BudgetSpent):  # the first fit started after the budget
        search.fit(x, y)
    result.wall = time.monotonic() - start
    if "estimator" in kept:
        result.test_accuracy = test_accuracy(kept["estimator"].model_, dataset)
    return result


# ------------------------------------------------------------------ report
def checkpoints(budget: float) -> list[float]:
    times = [float(t) for t in CHECKPOINTS if t < budget] + [float(budget)]
    if len(times) < 3:
        times = [budget * k / 4 for k in range(1, 5)]
    return times


def plot(
    results: list[Result],
    targets: tuple[float, ...],
    budget: float,
    path: Path,
    title: str,
    write_points: bool = True,
) -> list[Path]:
    import plotly.graph_objects as go
    from plotly.colors import qualitative

    unit, scale = ("minutes", 60.0) if budget >= 180 else ("seconds", 1.0)
    fig = go.Figure()
    fig.update_layout(
        template="plotly_white",  # as hpsearch's dashboards
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        title=title,
        xaxis_title=f"wall time ({unit})",
        yaxis_title="best validation accuracy so far",
        legend={"orientation": "h", "y": -0.2},
    )
    for i, result in enumerate(results):
        xs, ys = result.curve()
        if not xs:
            continue
        fig.add_trace(
            go.Scatter(
                x=[x / scale for x in [*xs, budget]],
                y=[*ys, ys[-1]],
                mode="lines+markers",
                line={"shape": "hv", "width": 2, "color": qualitative.Plotly[i]},
                name=LABELS[result.method],
            )
        )
    for target in targets:
        fig.add_hline(y=target, line_dash="dot", line_color="#888", annotation_text=pct(target, 1))
    # the race near the targets: a first trial far below starts off the chart
    bests = [y for r in results for y in r.curve()[1]] or list(targets)
    low = max(min(bests), min(targets) - 0.02)
    high = min(1.0, max(*bests, *targets) + 0.002)
    fig.update_yaxes(range=[low - 0.002, high], tickformat=".1%")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(path, include_plotlyjs=True)  # self-contained: opens offline
    written = [path]
    if snapshot(fig, path.with_suffix(".png")):  # for BENCHMARKS.md; needs Chromium
        written.append(path.with_suffix(".png"))
    if write_points:
        points = {r.method: r.to_json() for r in results}
        path.with_suffix(".json").write_text(json.dumps(points, indent=1))
    return [*written, path.with_suffix(".json")]


def plot_title(space: str, budget: float, seed: int) -> str:
    title = f"Time to accuracy, MNIST {SPACE_TITLES[space]} space, {budget:.0f} s per method"
    return title + (f", seed {seed}" if seed else "")


def replot(space: str, seed: int, quick: bool, path: Path) -> None:
    """Draw the kept points of one space and seed again (``--replot``): the HTML page
    and, with Chromium, the PNG that BENCHMARKS.md shows; nothing is trained."""
    kept = load_points(path.with_suffix(".json"))
    if not kept:
        sys.exit(f"--replot: no points in {path.with_suffix('.json')}: run the benchmark first")
    results = sorted(kept.values(), key=lambda r: list(LABELS).index(r.method))
    budget = max(r.budget or max((t for t, _ in r.points), default=0.0) for r in results)
    targets = QUICK_TARGETS if quick else TARGETS[space]
    title = plot_title(space, budget, seed)
    for written in plot(results, targets, budget, path, title, write_points=False):
        print(written.relative_to(ROOT) if written.is_relative_to(ROOT) else written)


def median_seconds(values: list[float | None]) -> float | None:
    """The median, a run that never reached the target counting as the slowest."""
    middle = statistics.median(math.inf if v is None else v for v in values)
    return None if math.isinf(middle) else middle


def summarize(space: str, folder: Path, quick: bool) -> None:
    """Per method, each seed's time to the targets and the median (``--summary``); with
    ``quick``, of the ``--quick`` runs, printed only."""
    end = "_quick" if quick else ""
    runs: dict[str, dict[int, Result]] = {}
    names = [f"time_to_accuracy_{space}{end}.json", f"time_to_accuracy_{space}_seed*{end}.json"]
    for path in sorted({p for name in names for p in folder.glob(name)}):
        if path.stem.endswith("_quick") != quick:
            continue
        stem = path.stem.removesuffix("_quick")
        seed = int(stem.rsplit("_seed", 1)[1]) if "_seed" in stem else 0
        for method, result in load_points(path).items():
            runs.setdefault(method, {})[seed] = result
    if not runs:
        sys.exit(f"--summary: no results of --space {space} in {folder}: run it first")
    budgets = [
        r.budget or max((t for t, _ in r.points), default=0.0)
        for m in runs.values()
        for r in m.values()
    ]
    budget = min(budgets)
    seeds = sorted({seed for m in runs.values() for seed in m})
    targets = QUICK_TARGETS if quick else TARGETS[space]
    header = ["method", *(f"time to {pct(t, 1)}: seed {s}" for t in targets for s in seeds)]
    header += [f"median time to {pct(t, 1)}" for t in targets]
    header += [f"best at {secs(budget)}: seed {s}" for s in seeds] + [
        f"median best at {secs(budget)}"
    ]
    rows = []
    for method in [m for m in LABELS if m in runs]:
        by_seed = runs[method]
        row = [LABELS[method]]
        for target in targets:
            row += [
                secs(by_seed[s].time_to(target, budget)) if s in by_seed else "not run"
                for s in seeds
            ]
        for target in targets:
            row.append(secs(median_seconds([r.time_to(target, budget) for r in by_seed.values()])))
        bests = [by_seed[s].best_at(budget) if s in by_seed else None for s in seeds]
        row += [pct(b) if s in by_seed else "not run" for s, b in zip(seeds, bests, strict=True)]
        measured = [b for b in bests if b is not None]
        row.append(pct(statistics.median(measured) if measured else None))
        rows.append(row)
    body = table(header, rows)
    dates = sorted({r.date for m in runs.values() for r in m.values() if r.date})
    body += (
        f"\n\nFrom the points kept in `dashboards/time_to_accuracy_{space}*.json` (runs of "
        + ", ".join(dates or ["unknown dates"])
        + f"), cut to the shortest budget among them ({budget:g} s): a target reached later in "
        "a longer run counts as not reached (—). The median counts a run that never reached "
        "the target as the slowest; with an even number of runs it is the mean of the middle two."
    )
    print(body)
    if quick:
        return
    write_section(
        f"time_to_accuracy_{space}_seeds",
        f"Time to accuracy over seeds: MNIST {SPACE_TITLES[space]}",
        body,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--space", choices=sorted(SPACES), default="mlp")
    parser.add_argument("--budget", type=float, default=None, help="seconds per method")
    parser.add_argument("--methods", default="hpsearch,kerastuner,randomsearch")
    parser.add_argument("--storage", default="sqlite:///benchmarks/results.db")
    parser.add_argument("--mnist", default=str(SHARED_MNIST))
    parser.add_argument("--plot", default=None, help="HTML file for the best-so-far curves")
    parser.add_argument("--quick", action="store_true", help="digits, seconds: a smoke run")
    parser.add_argument("--seed", type=int, default=0, help="seeds every method (default 0)")
    parser.add_argument(
        "--summary", action="store_true", help="report the kept runs of every seed; run nothing"
    )
    parser.add_argument(
        "--replot", action="store_true", help="draw the kept points of --space/--seed again"
    )
    args = parser.parse_args()
    if args.summary:
        summarize(
            args.space, Path(args.plot).parent if args.plot else ROOT / "dashboards", args.quick
        )
        return
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(LABELS))
    if unknown:
        parser.error(f"--methods: unknown {', '.join(unknown)}; allowed: {', '.join(LABELS)}")
    budget = args.budget or (8.0 if args.quick else 3600.0)
    targets = QUICK_TARGETS if args.quick else TARGETS[args.space]
    family, space = SPACES[args.space]
    space = dict(space)
    if args.quick:
        space["epochs"] = 5 if family == "mlp" else 3
    suffix = (f"_seed{args.seed}" if args.seed else "") + ("_quick" if args.quick else "")
    plot_path = Path(
        args.plot or ROOT / "dashboards" / f"time_to_accuracy_{args.space}{suffix}.html"
    )
    if args.replot:
        replot(args.space, args.seed, args.quick, plot_path)
        return

    raw = {
        "name": f"tta_{args.space}_{run_stamp()}{suffix}",
        "data": data_section(args.quick, args.mnist),
        "model": {"family": family},
        "space": space,
        "objective": "val_accuracy",
        "search": {"sampler": "tpe", "pruner": "hyperband", "timeout": budget, "seed": args.seed},
    }
    results = []
    with tempfile.TemporaryDirectory(prefix="hpsearch-tta-") as tmp:
        folder = Path(tmp)
        scratch = sqlite_in(folder, "scratch.db")
        sf = study_file(raw, folder, scratch)
        dataset = warm_up(raw, folder, scratch)
        for method in methods:
            print(f"--- {LABELS[method]}: {budget:g} s", flush=True)
            if method in HPSEARCH:
                result = run_hpsearch(method, raw, folder, args.storage, budget, args.seed)
            elif method == "kerastuner":
                result = run_kerastuner(sf, dataset, folder, budget, args.seed)
            else:
                random_raw = copy.deepcopy(raw)
                random_raw["name"] += "_random"
                random_raw["space"]["epochs"] = {"low": 1, "high": sf.max_epochs}
                random_raw["search"] = {"engine": "sklearn", "method": "random"}
                random_sf = study_file(random_raw, folder, scratch)
                result = run_randomsearch(random_sf, dataset, budget, args.seed)
            result.budget, result.date = budget, dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
            print(
                f"--- {LABELS[method]}: {len(result.points)} results within the budget, "
                f"best {pct(result.best_at(budget))}, {result.wall:.0f} s wall",
                flush=True,
            )
            results.append(result)

    # the other methods' points of this seed, from an earlier run (each with its budget)
    kept = load_points(plot_path.with_suffix(".json"))
    earlier = {m for m in kept if m not in methods}
    results += [kept[m] for m in earlier]
    results.sort(key=lambda r: list(LABELS).index(r.method))
    budget_all = max([budget, *(r.budget or budget for r in results)])
    times = checkpoints(budget_all)
    header = ["method", "trials"]
    header += [f"best at {secs(t)}" for t in times]
    header += [f"time to {pct(t, 1)}" for t in targets]
    header += ["test acc of best"]
    rows = []
    for result in results:
        label = LABELS[result.method]
        if result.method in earlier:
            label += (
                f" (kept: run of {result.date or 'an earlier day'}, {result.budget or budget:g} s)"
            )
        row = [label, str(len(result.points))]
        row += [pct(result.best_at(t)) for t in times]
        row += [secs(result.time_to(t)) for t in targets]
        row += [pct(result.test_accuracy)]
        rows.append(row)
    body = table(header, rows)
    title = plot_title(args.space, budget, args.seed)
    written = plot(results, targets, budget_all, plot_path, title)
    space_text = ", ".join(f"{k}={json.dumps(v)}" for k, v in space.items())
    body += (
        f"\n\nSeed {args.seed}. Same budget of {budget:g} s wall time for each method run by "
        "this command, one after the other "
        f"on the same {len(dataset.x_train)} training / {len(dataset.x_val)} validation "
        f"{dataset.name} images; test accuracy on the {len(dataset.x_test)} test images. "
        "Best validation accuracy so far at fixed times, time until the best reaches each "
        "target (— = not within the budget), over trials that finished within the budget "
        "(see the script's docstring for what counts). Wall times including the overrun of "
        "the last trial: "
        + ", ".join(f"{LABELS[r.method]} {r.wall:.0f} s" for r in results if r.wall)
        + f".\n\nSpace: `{space_text}` (scikit-learn samples epochs from 1 to "
        f"{space['epochs']} instead of stopping early). Curves: "
        + ", ".join(f"`{p.relative_to(ROOT) if p.is_relative_to(ROOT) else p}`" for p in written)
        + "."
    )
    body += "".join(
        f"\n\n![{title}]({p.relative_to(ROOT)})"
        for p in written
        if p.suffix == ".png" and p.is_relative_to(ROOT)
    )
    print(body)
    if not args.quick:
        write_section(
            f"time_to_accuracy_{args.space}{suffix}",
            f"Time to accuracy: MNIST {SPACE_TITLES[args.space]} "
            f"(hpsearch, KerasTuner, scikit-learn){f', seed {args.seed}' if args.seed else ''}",
            body,
        )


if __name__ == "__main__":
    main()
