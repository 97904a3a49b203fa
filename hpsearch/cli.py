"""The ``hpsearch`` command: a thin layer over the Python API.

User mistakes print one line (``error: FILE: KEY: got VALUE; allowed: ...``) and
exit with code 2; ``--debug`` shows the traceback. Neither ``--help`` nor
``validate`` imports TensorFlow.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from hpsearch._version import __version__
from hpsearch.exceptions import HpsearchError

if TYPE_CHECKING:
    from hpsearch.export import ExportResult
    from hpsearch.predict import Predictions
    from hpsearch.study import StudyFile

app = typer.Typer(
    help="Hyperparameter search for Keras models: a YAML study file, real Keras trials "
    "through Optuna, every trial kept in SQLite (or PostgreSQL).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console(highlight=False, soft_wrap=True)
if not out.is_terminal:  # piped or captured: never cut table cells to 80 columns
    out = Console(highlight=False, soft_wrap=True, width=240)
err = Console(stderr=True, highlight=False, soft_wrap=True)
_state = {"debug": False}

StudyArg = Annotated[str, typer.Argument(help="A study file (YAML), or a study name.")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", "-s", help="Override a field: key.path=value (value parsed as YAML). Repeatable."
    ),
]
StorageOpt = Annotated[
    str | None,
    typer.Option(
        "--storage",
        help="Storage URL (sqlite:///x.db, postgresql://..., journal:///x.log); "
        "default: the study file's, else $HPSEARCH_STORAGE, else ./hpsearch.db.",
    ),
]


WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers",
        "-w",
        min=1,
        help="Worker processes on this machine (default: workers.count of the study file, 1). "
        "TensorFlow's threads are split between them.",
    ),
]


RayOpt = Annotated[
    str | None,
    typer.Option(
        "--ray",
        metavar="ADDRESS",
        help="Start the workers as Ray actors on the Ray cluster at ADDRESS (auto, "
        "ray://head:10001, head:6379, or local to start one on this machine); "
        "shortcut for --set workers.ray.address=ADDRESS. Needs a PostgreSQL or Redis storage.",
    ),
]


@contextmanager
def _guard() -> Iterator[None]:
    """Turn user errors into one line on stderr and exit code 2."""
    try:
        yield
    except HpsearchError as exc:
        if _state["debug"]:
            raise
        from hpsearch.engines import StudyInterrupted, exit_code

        if isinstance(exc, StudyInterrupted):
            err.print(str(exc), markup=False)
            raise typer.Exit(exit_code(exc)) from None
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(getattr(exc, "exit_code", 2)) from None
    except KeyboardInterrupt as exc:
        from hpsearch.engines import exit_code

        err.print("interrupted")
        raise typer.Exit(exit_code(exc)) from None


def _version(value: bool) -> None:
    if value:
        out.print(f"hpsearch {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = None,
) -> None:
    _state["debug"] = debug


@app.command()
def run(
    study: Annotated[str, typer.Argument(help="The study file (YAML).")],
    set_: SetOpt = None,
    n_trials: Annotated[
        int | None,
        typer.Option("--n-trials", "-n", min=1, help="Shortcut for --set search.n_trials=N."),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", min=0.001, help="Shortcut for --set search.timeout=SECONDS."),
    ] = None,
    storage: StorageOpt = None,
    workers: WorkersOpt = None,
    ray: RayOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing.")] = False,
) -> None:
    """Run a study, or resume it: finished trials are kept, the rest of the budget runs."""
    with _guard():
        from hpsearch.engines import handle_sigterm, run_study
        from hpsearch.results import best_trials
        from hpsearch.study import load_study_file

        handle_sigterm()
        overrides = [*(set_ or []), *([f"workers.ray.address={ray}"] if ray else [])]
        study_file = load_study_file(
            study, overrides, n_trials=n_trials, timeout=timeout, storage=storage
        )
        result = run_study(study_file, quiet=quiet, workers=workers)
        if not quiet:
            best = best_trials(result)
            if best:
                _print_best(result, best)
            out.print(
                f"\nstorage: {study_file.storage}  study: {study_file.name}\n"
                f"next:    hpsearch browse {study}   |   hpsearch dashboard {study}   |   "
                f"hpsearch export {study}"
            )


@app.command()
def worker(
    study: StudyArg,
    storage: StorageOpt = None,
    workers: WorkersOpt = None,
    set_: SetOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing.")] = False,
) -> None:
    """Join a study from this machine and work until its budget is spent.

    Start one on every machine that shares the storage (PostgreSQL for several
    machines): the study is created by whoever starts first, every worker takes
    trials from the same queue, and the study stops at exactly n_trials.
    STUDY is a study file, or the name of a study already in the storage.
    """
    with _guard():
        from hpsearch.engines import handle_sigterm, require_complete, run_parallel
        from hpsearch.engines._gpus import worker_count

        handle_sigterm()
        study_file = _study_file_for(study, storage, set_ or [])
        result = run_parallel(
            study_file, worker_count(study_file, workers), role="worker", quiet=quiet
        )
        require_complete(result)


@app.command()
def retry(
    study: StudyArg,
    storage: StorageOpt = None,
    trials: Annotated[
        str | None,
        typer.Option("--trials", help="Only these trial numbers, e.g. 3,7,12."),
    ] = None,
    queue_only: Annotated[
        bool,
        typer.Option("--queue-only", help="Queue the copies and return; workers run them."),
    ] = False,
    workers: WorkersOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing.")] = False,
) -> None:
    """Run failed trials again with the same params (each one once).

    A retried trial no longer counts toward the budget; its copy does. With
    workers.checkpoints, a copy continues from the last epoch the failed trial
    finished.
    """
    with _guard():
        from hpsearch.engines import handle_sigterm, retry_failed, run_study

        handle_sigterm()
        study_file = _study_file_for(study, storage, [])
        numbers = _parse_numbers(trials)
        queued = retry_failed(study_file, numbers)
        if not queued:
            out.print("no failed trials to retry")
            return
        out.print(f"queued {len(queued)} failed trial(s) again: {', '.join(map(str, queued))}")
        if not queue_only:
            run_study(study_file, quiet=quiet, workers=workers)


def _parse_numbers(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise HpsearchError(f"--trials: got {text!r}; allowed: trial numbers like 3,7,12") from None


def _study_file_for(study: str, storage: str | None, overrides: list[str]) -> Any:
    """A study file, or the configuration stored with a study of that name."""
    from hpsearch.study import is_study_file, load_study_file

    if is_study_file(study):
        return load_study_file(study, overrides, storage=storage)
    from hpsearch.config import apply_overrides
    from hpsearch.results import open_study, study_file_of
    from hpsearch.study import study_from_dict

    stored = study_file_of(open_study(study, storage))
    raw = stored.config.model_dump(mode="json")
    raw["storage"] = storage or stored.storage
    return study_from_dict(apply_overrides(raw, overrides), source=stored.source)


@app.command()
def validate(
    study: Annotated[str, typer.Argument(help="The study file (YAML).")],
    set_: SetOpt = None,
    storage: StorageOpt = None,
) -> None:
    """Check a study file and show its space, grid size and epoch budget (spends nothing).

    ``--storage`` is checked as a URL (scheme, database driver) without connecting.
    """
    with _guard():
        from hpsearch.engines import _gpus
        from hpsearch.search import resolve_sampler_name
        from hpsearch.study import load_study_file

        sf = load_study_file(study, set_ or [], storage=storage)
        sampler = resolve_sampler_name(sf.config.search, len(sf.objectives))
        if sf.config.workers.ray is None:  # on Ray, the cluster's GPUs count, not this machine's
            _gpus.plan_for(sf)  # GPUs this machine does not show: an error before "valid"
        out.print(f"{study}: valid")
        _print_setup(sf, sampler)
        _print_space(sf)
        _print_budget(sf)
        _print_workers(sf)


def _print_setup(sf: StudyFile, sampler: str) -> None:
    """``validate``: the study, data, model, objective and search lines."""
    cfg = sf.config
    data = cfg.data
    out.print(f"  study     {sf.name}  (storage {sf.storage})")
    out.print(
        f"  data      {data.name}"
        + (f" from {data.path}" if data.path else "")
        + (f", subset {data.subset}" if data.subset else "")
        + f", validation {data.validation}, scale {data.scale}"
        + f", task {sf.task}"
        + (", target standardized" if data.standardize_target else "")
    )
    style = {"keras_tuner": "KerasTuner", "optuna": "Optuna"}.get(sf.builder_api or "")
    declares = f"  ({style} style: declares its own parameters)" if style else ""
    out.print(f"  model     {cfg.model.family_text}{declares}")
    search = cfg.search
    if search.engine == "sklearn":
        scoring = search.scoring or (
            "neg_root_mean_squared_error" if sf.task == "regression" else "accuracy"
        )
        out.print(f"  objective maximize mean CV {scoring}")
        out.print(
            f"  search    scikit-learn {search.method}, cv {search.cv}, "
            f"refit {search.refit}, seed {search.seed}"
        )
    else:
        out.print("  objective " + ", ".join(f"{o.direction} {o.metric}" for o in sf.objectives))
        out.print(f"  search    sampler {sampler}, pruner {search.pruner}, seed {search.seed}")


def _print_space(sf: StudyFile) -> None:
    """``validate``: the parameters and their values, and the grid size."""
    table = Table("parameter", "values", box=None, padding=(0, 2))
    for name, text in sf.space.describe():
        table.add_row(name, text)
    out.print(table)
    if sf.define_by_run:
        out.print("  + what the builder declares while it builds (replacing a default above)")
        return
    grid = sf.space.grid_size()
    out.print(f"  grid size     {grid if grid is not None else 'infinite (continuous ranges)'}")


def _print_budget(sf: StudyFile) -> None:
    """``validate``: the budget, the most epochs it can train and the enqueued trials."""
    search = sf.config.search
    n = sf.n_trials
    epochs = sf.max_epochs
    unit = "candidates" if search.engine == "sklearn" else "trials"
    budget = f"{n} {unit}" if n else "no trial limit"
    if search.timeout:
        budget += f", timeout {search.timeout:g}s"
    out.print(f"  budget        {budget}")
    out.print(f"  max epochs    {_max_epochs(sf, n, epochs)}")
    if search.enqueue:
        out.print(f"  first trials  {len(search.enqueue)} enqueued")


def _max_epochs(sf: StudyFile, n: int | None, epochs: int) -> str:
    """The most epochs ``n`` trials (or candidates) train, and how that is counted."""
    search = sf.config.search
    if search.engine == "sklearn":
        fits = (n or 0) * search.cv + int(search.refit)
        return (
            f"{fits * epochs} ({n} candidates x {search.cv} folds"
            + (" + 1 refit" if search.refit else "")
            + f" x up to {epochs} epochs"
            + ("; halving searches train fewer" if search.method.startswith("halving") else "")
            + ")"
        )
    if n:
        return f"{n * epochs} ({n} trials x up to {epochs} epochs)"
    return f"up to {epochs} per trial, until the timeout"


def _print_workers(sf: StudyFile) -> None:
    """``validate``: the worker settings (Optuna engine only) and their GPUs on this machine."""
    from hpsearch.engines._gpus import plan_for, worker_count

    w = sf.config.workers
    if sf.config.search.engine != "optuna":
        return
    n = w.count if w.ray is not None else worker_count(sf)
    out.print(
        f"  workers       {n}, recycled every {w.recycle_after} trials, heartbeat "
        f"{w.heartbeat_interval}s (grace {w.grace_period}s)"
        + (", per-epoch checkpoints" if w.checkpoints else "")
    )
    if w.ray is not None:
        _print_ray(sf)
        return
    plan = plan_for(sf)
    gpus = plan.describe(n)
    if gpus:
        found = f"  (found by {plan.source})" if plan.devices else ""
        out.print(f"  GPUs          {gpus}{found}")


def _print_ray(sf: StudyFile) -> None:
    """``validate``: where Ray places the workers and what each reserves."""
    ray = sf.config.workers.ray
    assert ray is not None
    memory = f", {ray.memory_mb} MB" if ray.memory_mb else ""
    gpus = (
        f"{ray.num_gpus:g} GPU"
        if ray.num_gpus is not None
        else f"GPUs from workers.gpus ({sf.config.workers.gpus}) on the cluster"
    )
    out.print(
        f"  ray           workers as actors on {ray.address}, each {ray.num_cpus:g} CPU, "
        f"{gpus}{memory}"
    )


def _print_best(study: Any, trials: list[Any]) -> None:
    from hpsearch.study import RefitRecord, StudyMeta, TrialRecord

    names = StudyMeta.of(study).objectives or ["value"]
    multi = len(trials) > 1 or len(study.directions) > 1
    out.print("\nPareto-optimal trials:" if multi else "\nbest trial:")
    for t in trials:
        values = ", ".join(f"{n}={v:.6g}" for n, v in zip(names, t.values, strict=False))
        out.print(f"  trial {t.number}: {values}")
        for key, value in t.params.items():
            text = f"{value:.6g}" if isinstance(value, float) else str(value)
            out.print(f"    {key:<20} {text}")
        for key, value in TrialRecord.from_trial(t).shown().items():
            if isinstance(value, list):
                text = ", ".join(f"{v:.4g}" for v in value)
            else:
                text = f"{value:.6g}" if isinstance(value, float) else str(value)
            out.print(f"    {key:<20} {text}")
    refit = RefitRecord.of(study)
    if refit is not None:
        score = (
            f"val_rmse {refit.val_rmse:.6g}"
            if refit.val_rmse is not None
            else f"val_accuracy {refit.val_accuracy or 0.0:.6g}"
        )
        out.print(
            f"  refit of trial {refit.trial} on all training data: {score}, "
            f"val_loss {refit.val_loss:.6g}"
        )


@app.command()
def best(
    study: StudyArg,
    storage: StorageOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the best trial's parameters and metrics (every Pareto trial if multi-objective)."""
    with _guard():
        from hpsearch.results import best_trials, open_study
        from hpsearch.study import TrialRecord

        result = open_study(study, storage)
        trials = best_trials(result)
        if as_json:
            out.print_json(
                json.dumps(
                    [
                        {
                            "number": t.number,
                            "values": t.values,
                            "params": t.params,
                            "metrics": TrialRecord.from_trial(t).summary(),
                        }
                        for t in trials
                    ]
                )
            )
            return
        if not trials:
            raise HpsearchError(f"study {result.study_name!r} has no COMPLETE trial yet")
        _print_best(result, trials)


@app.command()
def status(
    study: Annotated[
        str | None, typer.Argument(help="A study file: list the studies in its storage.")
    ] = None,
    storage: StorageOpt = None,
) -> None:
    """List the studies in a storage with their trial counts and best values."""
    with _guard():
        from hpsearch.results import list_studies

        url = storage
        if study is not None and url is None:
            from hpsearch.study import load_study_file

            url = load_study_file(study).storage
        rows = list_studies(url)
        table = Table(
            "study",
            "engine",
            "direction",
            "complete",
            "pruned",
            "failed",
            "running",
            "queued",
            "best",
            box=None,
            padding=(0, 2),
        )
        for row in rows:
            best_txt = "—" if row.best is None else ", ".join(f"{v:.4f}" for v in row.best)
            table.add_row(
                row.name,
                row.engine,
                ",".join(row.directions),
                str(row.counts.get("COMPLETE", 0)),
                str(row.counts.get("PRUNED", 0)),
                str(row.counts.get("FAIL", 0)),
                str(row.counts.get("RUNNING", 0)),
                str(row.counts.get("WAITING", 0)),
                best_txt,
            )
        if rows:
            out.print(table)
        else:
            out.print("no studies")


@app.command()
def export(
    study: StudyArg,
    trial: Annotated[
        int | None,
        typer.Option("--trial", "-t", min=0, help="Trial number (default: the best trial)."),
    ] = None,
    out_dir: Annotated[
        str | None,
        typer.Option("--out", "-o", help="Output folder (default: exports/STUDY-trialN)."),
    ] = None,
    formats: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="Comma-separated: keras, savedmodel, onnx (needs hpsearch\\[onnx]).",
        ),
    ] = "keras,savedmodel",
    full: Annotated[
        bool, typer.Option("--full", help="Re-train on train+validation before exporting.")
    ] = False,
    retrain: Annotated[
        bool,
        typer.Option("--retrain", help="Re-train from the stored params and seed even if kept."),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --out.")] = False,
    storage: StorageOpt = None,
) -> None:
    """Export a trial's model (model.keras, SavedModel, ONNX) with a model card and its
    test-set accuracy."""
    with _guard():
        from hpsearch.export import export_trial

        result = export_trial(
            study,
            storage=storage,
            trial=trial,
            out=out_dir,
            formats=formats,
            full=full,
            retrain=retrain,
            force=force,
            on_message=lambda text: err.print(text, markup=False),
        )
        _print_export(result)


def _print_export(result: ExportResult) -> None:
    """``export``: what was exported where, its validation and test scores, the files."""
    card = result.card
    metric = card.primary_metric
    value = card.trial.values.get(metric)
    how = {"kept": "kept weights", "retrained": "re-trained", "retrained_full": "re-trained"}
    test = card.test
    val_text = f"{metric}={value:.4f}" if isinstance(value, float) else f"{metric}=?"
    out.print(
        f"exported trial {result.trial} of {card.study.name!r} "
        f"({how[card.weights.source]}"
        + (", train+validation" if card.retrained_full else "")
        + f") to {result.out}"
    )
    if card.regression:
        r2 = "?" if test.r2 is None else f"{test.r2:.4f}"
        scores = f"test MAE={test.mae:.6g} RMSE={test.rmse:.6g} R²={r2}"
    else:
        scores = f"test accuracy={test.accuracy:.4f}"
    out.print(
        f"  validation {val_text} (search)   {scores} loss={test.loss:.4f} ({test.samples} samples)"
    )
    out.print(f"  files: {', '.join(result.files)}")


def _print_values(result: Predictions, output: str | None) -> None:
    """``predict`` with a regression model: one value per input (CSV)."""
    rows = ["input,value", *(f"{n},{v}" for n, v in zip(result.names, result.labels, strict=True))]
    if output is not None:
        Path(output).write_text("\n".join(rows) + "\n", encoding="utf-8")
    else:
        for row in rows:
            out.print(row, markup=False)
    summary = f"{len(result.labels)} inputs"
    if result.mae is not None and result.rmse is not None:
        summary += f", MAE={result.mae:.6g} RMSE={result.rmse:.6g} against their targets"
    if output is not None:
        summary += f"; values written to {output}"
    (out if output is not None else err).print(summary, markup=False)


@app.command()
def predict(
    model_dir: Annotated[str, typer.Argument(help="A folder written by hpsearch export.")],
    inputs: Annotated[
        list[str], typer.Argument(help="An .npz, .npy or .csv file, or PNG images / a folder.")
    ],
    key: Annotated[
        str | None, typer.Option("--key", help="The .npz array with the inputs (default x).")
    ] = None,
    output: Annotated[
        str | None,
        typer.Option("--out", "-o", help="Write a CSV with every class probability here."),
    ] = None,
) -> None:
    """Print the predicted label and its probability for every input (CSV on stdout)."""
    with _guard():
        import csv

        from hpsearch.predict import predict as run_predict

        result = run_predict(model_dir, inputs, key=key)
        if result.values is not None:
            _print_values(result, output)
            return
        if output is not None:
            with open(output, "w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(["input", "label", "probability", *result.class_names])
                for name, label, probs in zip(
                    result.names, result.labels, result.probabilities, strict=True
                ):
                    writer.writerow(
                        [name, label, f"{probs.max():.6f}", *(f"{p:.6f}" for p in probs)]
                    )
        else:
            out.print("input,label,probability", markup=False)
            for name, label, probs in zip(
                result.names, result.labels, result.probabilities, strict=True
            ):
                out.print(f"{name},{label},{probs.max():.6f}", markup=False)
        summary = f"{len(result.labels)} inputs"
        if result.accuracy is not None:
            summary += f", accuracy={result.accuracy:.4f} against their labels"
        if output is not None:
            summary += f"; probabilities written to {output}"
        (out if output is not None else err).print(summary, markup=False)


@app.command()
def dashboard(
    targets: Annotated[
        list[str],
        typer.Argument(
            help="Study files, study names, or dashboard definitions (dashboards/NAME.yaml)."
        ),
    ],
    storage: StorageOpt = None,
    out_dir: Annotated[
        str | None,
        typer.Option("--out", "-o", help="Folder for the HTML pages (default: ./dashboards)."),
    ] = None,
) -> None:
    """Render an offline HTML page per study, or a comparison from a dashboard definition."""
    with _guard():
        from hpsearch.dashboards import render

        for page in render(targets, storage=storage, out_dir=out_dir):
            out.print(f"wrote {page.path}  ({page.title}: {page.n_trials} trials)", markup=False)


@app.command()
def browse(
    study: Annotated[
        str | None,
        typer.Argument(help="A study file or a study name (default: every study in the storage)."),
    ] = None,
    storage: StorageOpt = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to bind; 0.0.0.0 exposes it to the network.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", "-p", min=0, max=65535, help="Port (0: any free port).")
    ] = 8080,
) -> None:
    """Start optuna-dashboard on a study's storage (safe while the study runs); Ctrl-C stops it."""
    with _guard():
        from hpsearch.browse import serve

        def ready(server: Any) -> None:
            out.print(
                f"optuna-dashboard on {server.storage_url}\n{server.url}  (Ctrl-C to stop)",
                markup=False,
            )
            sys.stdout.flush()

        serve(study, storage=storage, host=host, port=port, on_ready=ready)


app.command("ls", help="Alias of status.")(status)


def main() -> None:
    """Entry point of the ``hpsearch`` console script."""
    try:
        app()
    except SystemExit:
        raise
    except BaseException:
        if _state["debug"]:
            raise
        raise
    sys.exit(0)
