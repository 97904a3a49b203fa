"""The Optuna engine: the sampler picks parameters, ``training.train`` fits the model,
every epoch is reported as an intermediate value, every trial lands in storage.

Budget: ``n_trials`` counts trials that finished (COMPLETE, PRUNED, or FAIL for a
reason of their own). Trials stopped by Ctrl-C or by a dead worker do not count,
and their parameters are run again, so a resumed study ends with exactly
``n_trials`` finished trials and nothing repeated.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hpsearch import __version__
from hpsearch._progress import Progress
from hpsearch.exceptions import ConfigError, HpsearchError, TrialFailed

if TYPE_CHECKING:
    import optuna

    from hpsearch.config import StudyFile
    from hpsearch.data import Dataset

__all__ = ["ENGINE", "budget_spent", "run_optuna"]

ENGINE = "optuna"
INTERRUPTED = "interrupted"


class StudyInterrupted(HpsearchError):
    """The user pressed Ctrl-C; the running trial was marked FAIL (interrupted)."""


def counts_toward_budget(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether a finished trial used up one unit of ``n_trials``."""
    from optuna.trial import TrialState

    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    if trial.state == TrialState.FAIL:
        return "fail_reason" in trial.user_attrs and not trial.user_attrs.get(INTERRUPTED)
    return False


def budget_spent(study: optuna.Study) -> int:
    """How many trials of the budget a study has used."""
    return sum(counts_toward_budget(t) for t in study.get_trials(deepcopy=False))


def best_value(study: optuna.Study) -> float | None:
    """The best value of the first objective so far (None before any COMPLETE trial)."""
    from optuna.study import StudyDirection
    from optuna.trial import TrialState

    values = [
        t.values[0]
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.values
    ]
    if not values:
        return None
    return max(values) if study.directions[0] == StudyDirection.MAXIMIZE else min(values)


def create_or_load(
    study_file: StudyFile,
    storage: Any,
    sampler: Any,
    pruner: Any,
    dataset_summary: dict[str, Any],
    engine: str = ENGINE,
    objective_names: list[str] | None = None,
) -> optuna.Study:
    """Create the study (or load it to resume) and record what produced it."""
    import optuna

    study = optuna.create_study(
        storage=storage,
        study_name=study_file.name,
        sampler=sampler,
        pruner=pruner,
        directions=study_file.directions,  # type: ignore[arg-type]
        load_if_exists=True,
    )
    wanted = [d.upper() for d in study_file.directions]
    have = [d.name for d in study.directions]
    if wanted != have:
        raise ConfigError(
            f"study {study_file.name!r} already exists in this storage with directions "
            f"{', '.join(have).lower()}; choose another name or storage",
            path="objective",
        )
    if "hpsearch" not in study.user_attrs:
        study.set_user_attr(
            "hpsearch",
            {
                "version": __version__,
                "engine": engine,
                "source": str(study_file.source) if study_file.source else None,
                "config": study_file.config.model_dump(mode="json"),
                "objectives": objective_names or [o.metric for o in study_file.objectives],
                "data": dataset_summary,
            },
        )
    return study


def config_drift(study: optuna.Study, study_file: StudyFile) -> list[str]:
    """The sections (data, model, space, objective) that differ from the stored study's."""
    stored = study.user_attrs.get("hpsearch", {}).get("config")
    if not stored:
        return []
    current = study_file.config.model_dump(mode="json")
    return [
        key for key in ("data", "model", "space", "objective") if stored.get(key) != current[key]
    ]


def _requeue(study: optuna.Study, study_file: StudyFile) -> int:
    """Queue the params of interrupted trials again (once each); return how many."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    done = {t.user_attrs.get("retry_of") for t in trials}
    n = 0
    for t in trials:
        if t.state == TrialState.FAIL and t.user_attrs.get(INTERRUPTED) and t.number not in done:
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
            n += 1
    return n


class _Objective:
    """The function Optuna calls for each trial."""

    def __init__(self, study_file: StudyFile, dataset: Dataset, progress: Progress) -> None:
        self.study_file = study_file
        self.dataset = dataset
        self.progress = progress
        self.consecutive_failures = 0
        objectives = study_file.objectives
        self.metric = objectives[0].metric
        self.single = len(objectives) == 1
        self.extra_metrics = [o.keras_metric for o in objectives if o.keras_metric]
        self.seed = study_file.config.search.seed or 0

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        import optuna

        from hpsearch.training import train

        params = self.study_file.space.suggest(trial)
        seed = self.seed + trial.number
        trial.set_user_attr("seed", seed)
        epochs = int(params["epochs"])
        curves: dict[str, list[float]] = {}
        self.progress.trial_started(trial.number, params)

        def on_epoch(epoch: int, logs: Mapping[str, float]) -> None:
            for key, item in logs.items():
                curves.setdefault(key, []).append(float(item))
            trial.set_user_attr("epochs_run", epoch)
            self.progress.epoch(trial.number, epoch, epochs, logs)
            value = logs.get(self.metric)
            if self.single and value is not None and math.isfinite(value):
                trial.report(float(value), epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at epoch {epoch}")

        direction = self.study_file.objectives[0].direction
        try:
            result = train(
                params,
                self.dataset,
                family=self.study_file.config.model.family,
                seed=seed,
                extra_metrics=self.extra_metrics,
                monitor=self.metric,
                monitor_mode="max" if direction == "maximize" else "min",
                measure_latency=any(o.metric == "latency" for o in self.study_file.objectives),
                on_epoch=on_epoch,
            )
            # keep the trained weights for `hpsearch export` while the model is alive
            # (before clear_session below); never fails the trial
            from hpsearch.artifacts import keep_trained_model

            keep_trained_model(trial, self.study_file, result)
        except optuna.TrialPruned:
            trial.set_user_attr("history", curves)
            self.consecutive_failures = 0
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("fail_reason", "interrupted by the user (Ctrl-C)")
            trial.set_user_attr(INTERRUPTED, True)
            trial.set_user_attr("history", curves)
            raise
        except Exception as exc:
            self.consecutive_failures += 1
            reason = str(exc) if isinstance(exc, TrialFailed) else f"{type(exc).__name__}: {exc}"
            trial.set_user_attr("fail_reason", reason[:500])
            trial.set_user_attr("traceback", traceback.format_exc()[-4000:])
            trial.set_user_attr("history", curves)
            raise TrialFailed(reason) from exc
        finally:
            import keras

            # free_memory=False: gc.collect() per trial slows long runs (see STACK.md)
            keras.backend.clear_session(free_memory=False)
        self.consecutive_failures = 0
        metrics = result.metrics
        for key, value in metrics.items():
            trial.set_user_attr(key, value)
        trial.set_user_attr("params", result.param_count)
        trial.set_user_attr("epochs_run", result.epochs_run)
        trial.set_user_attr("train_seconds", round(result.train_seconds, 3))
        trial.set_user_attr("history", result.history)
        if result.latency_ms is not None:
            trial.set_user_attr("latency", result.latency_ms)
        values = []
        for obj in self.study_file.objectives:
            if obj.metric == "params":
                values.append(float(result.param_count))
            elif obj.metric == "latency":
                values.append(float(result.latency_ms or 0.0))
            elif obj.metric in metrics:
                values.append(float(metrics[obj.metric]))
            else:
                raise TrialFailed(
                    f"metric {obj.metric!r} not in Keras' logs ({', '.join(metrics)})"
                )
        return values[0] if self.single else values


def _check_metrics(study_file: StudyFile) -> None:
    """Resolve custom Keras metrics before anything is written."""
    from hpsearch.training import configure_tensorflow, resolve_metric

    configure_tensorflow()
    for i, obj in enumerate(study_file.objectives):
        if obj.keras_metric:
            try:
                resolve_metric(obj.keras_metric)
            except ConfigError:
                raise
            except Exception:
                path = (
                    "objective.metric"
                    if len(study_file.objectives) == 1
                    else f"objective[{i}].metric"
                )
                raise ConfigError(
                    "not a Keras metric; use val_accuracy, val_loss, accuracy, loss, params, "
                    "latency, a Keras metric name (e.g. val_sparse_top_k_categorical_accuracy) "
                    "or module:function",
                    path=path,
                    value=obj.metric,
                    has_value=True,
                ) from None


def run_optuna(study_file: StudyFile, *, quiet: bool = False) -> optuna.Study:
    """Run (or resume) a study until its budget is spent.

    Raises:
        StudyInterrupted: on Ctrl-C, after the running trial was marked FAIL.
        HpsearchError: bad input, or too many trials failed in a row.
    """
    import optuna

    from hpsearch.config._loader import add_search_paths
    from hpsearch.data import load_dataset
    from hpsearch.search import make_pruner, make_sampler
    from hpsearch.storage import open_storage

    # our progress lines report failed trials; Optuna would add a traceback per failure
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    add_search_paths(study_file.base_dir)
    cfg = study_file.config
    try:
        # everything that can reject the study happens before any file is written
        _check_metrics(study_file)
        dataset = load_dataset(cfg.data, study_file.base_dir)
        sampler = make_sampler(cfg.search, study_file.space, len(study_file.objectives))
        pruner = make_pruner(cfg.search, study_file.max_epochs, len(study_file.objectives))
        storage = open_storage(study_file.storage)
        study = create_or_load(study_file, storage, sampler, pruner, dataset.summary())
    except ConfigError as exc:
        raise study_file.attribute(exc) from None

    n_trials = study_file.n_trials
    timeout = cfg.search.timeout
    spent = budget_spent(study)
    if not study.get_trials(deepcopy=False):
        for values in cfg.search.enqueue:
            study.enqueue_trial(study_file.space.to_optuna_params(values, path="search.enqueue"))
    requeued = _requeue(study, study_file)

    progress = Progress(study_file.objectives[0].metric, n_trials, quiet=quiet)
    progress.set_counts(study, best_value(study))
    drift = config_drift(study, study_file)
    if drift:
        progress.message(
            f"warning: study {study.study_name!r} was created with a different "
            f"{', '.join(drift)}; new trials are added to it (use another name to start afresh)"
        )
    if spent:
        progress.message(
            f"resuming study {study.study_name!r}: {spent} of "
            f"{n_trials or '∞'} trials already finished"
            + (f", re-running {requeued} interrupted" if requeued else "")
        )
    else:
        progress.message(
            f"study {study.study_name!r}: {n_trials or '∞'} trials"
            + (f", timeout {timeout:g}s" if timeout else "")
            + f", data {dataset.name} ({len(dataset.x_train)} train / "
            f"{len(dataset.x_val)} validation), storage {study_file.storage}"
        )
    objective = _Objective(study_file, dataset, progress)
    max_failures = cfg.search.max_consecutive_failures

    def on_trial_end(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        progress.trial_finished(trial, best_value(study))

    start = time.monotonic()
    with progress:
        while n_trials is None or spent < n_trials:
            remaining = None if timeout is None else timeout - (time.monotonic() - start)
            if remaining is not None and remaining <= 0:
                break
            try:
                study.optimize(
                    objective,
                    n_trials=1,
                    catch=(TrialFailed,),
                    callbacks=[on_trial_end],
                    gc_after_trial=False,
                )
            except KeyboardInterrupt:
                raise StudyInterrupted(
                    "interrupted: the running trial is marked FAIL (interrupted) and will be "
                    "re-run; run the same command again to resume"
                ) from None
            if objective.consecutive_failures >= max_failures:
                raise HpsearchError(
                    f"{max_failures} trials failed in a row (last: "
                    f"{study.trials[-1].user_attrs.get('fail_reason', '?')}); stopping. "
                    "Raise search.max_consecutive_failures to go on"
                )
            spent = budget_spent(study)
    return study
