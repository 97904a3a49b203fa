"""The Optuna engine: the sampler picks parameters, ``training.train`` fits the model,
every epoch is reported as an intermediate value, every trial lands in storage.

Budget: ``n_trials`` counts trials that finished (COMPLETE, PRUNED, or FAIL for a
reason of their own). The unspent budget waits in the storage as queued slots
(``hpsearch.engines._queue``), so any number of workers stop at exactly
``n_trials``. Trials stopped by Ctrl-C, SIGTERM or a dead worker do not count:
a copy with the same params is queued, so a resumed study ends with exactly
``n_trials`` finished trials and nothing repeated.

A builder that declares its own parameters (KerasTuner's ``hp``, Optuna's ``trial``:
:mod:`hpsearch.models._hp`) builds once on the live trial after the study file's
parameters are suggested, so that its declarations are suggested on the same trial;
the trial then trains a second build replayed from the stored values.
"""

from __future__ import annotations

import json
import math
import shutil
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hpsearch._logs import quiet_optuna
from hpsearch._progress import Progress
from hpsearch.engines._core import (
    StudyInterrupted,
    announce,
    best_value,
    count_stored,
    interrupted,
    open_checked,
    prepare_process,
    warn_drift,
)
from hpsearch.engines._gpus import plan_for
from hpsearch.engines._queue import (
    BudgetExhausted,
    Heartbeat,
    budget_spent,
    counts_toward_budget,
    fail_stale_trials,
    first_of_chain,
    only_queued_trials,
    reap_dead_workers,
    refill,
    requeue,
    stored_budget,
    top_up,
    worker_id,
)
from hpsearch.exceptions import (
    ConfigError,
    HpsearchError,
    NoTrialCompleted,
    SetupError,
    TrialFailed,
)
from hpsearch.storage import set_user_attrs
from hpsearch.study._record import (
    EPOCHS_RUN,
    FAIL_REASON,
    HISTORY,
    INTERRUPTED,
    LATENCY,
    PARAM_COUNT,
    RESUMED_FROM_EPOCH,
    SEED,
    SETUP_ERROR,
    STOPPED_AT_CHANCE,
    TRACEBACK,
    TRAIN_SECONDS,
    WORKER,
    TrialRecord,
    short_reason,
)

if TYPE_CHECKING:
    import optuna

    from hpsearch.data import Dataset
    from hpsearch.study import StudyFile
    from hpsearch.training import TrainResult

__all__ = [
    "ENGINE",
    "StudyInterrupted",
    "announce_run",
    "best_value",
    "budget_spent",
    "counts_toward_budget",
    "open_run",
    "run_optuna",
    "work",
]

ENGINE = "optuna"
POLL_SECONDS = 2.0


def _requeue_interrupted(study: optuna.Study) -> int:
    """Queue interrupted trials (and trials stopped by a set-up error) that were not
    re-queued yet (their worker could not)."""
    return _requeue_stopped(study)


def _requeue_stopped(study: optuna.Study, worker: str | None = None) -> int:
    """Queue a copy of every FAIL trial that did not fail for a reason of its own
    (interrupted, or stopped by a set-up error) and has no copy yet; ``worker``: only
    that worker's."""
    from optuna.trial import TrialState

    from hpsearch.engines._queue import retried

    trials = study.get_trials(deepcopy=False)
    done = retried(trials)
    n = 0
    for t in trials:
        record = TrialRecord.from_trial(t)
        if (
            t.state == TrialState.FAIL
            and record.stopped
            and t.number not in done
            and (worker is None or record.worker == worker)
        ):
            requeue(study, t)
            n += 1
    return n


def last_failure(trials: list[optuna.trial.FrozenTrial]) -> str | None:
    """``trial N: REASON`` of the last trial that failed with a reason, else None."""
    from optuna.trial import TrialState

    reasons = {
        t.number: reason
        for t in trials
        if t.state == TrialState.FAIL
        and (reason := TrialRecord.from_trial(t).fail_reason) is not None
    }
    if not reasons:
        return None
    last = max(reasons)
    return f"trial {last}: {reasons[last]}"


def require_complete(study: optuna.Study) -> None:
    """Raise :class:`NoTrialCompleted` when the study holds no COMPLETE trial.

    The message counts the finished trials by state and quotes the last failure.
    """
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    if any(t.state == TrialState.COMPLETE for t in trials):
        return
    failed = sum(t.state == TrialState.FAIL for t in trials)
    pruned = sum(t.state == TrialState.PRUNED for t in trials)
    last = last_failure(trials)
    raise NoTrialCompleted(
        f"study {study.study_name!r}: no trial completed ({failed} failed, {pruned} pruned)"
        + (f"; last failure: {last}" if last else ""),
        study,
    )


class _Checkpoint:
    """Per-epoch checkpoints of one retry chain (``workers.checkpoints``)."""

    def __init__(self, study_file: StudyFile, study_name: str, chain: int) -> None:
        from hpsearch.artifacts import artifacts_root, trial_artifact_dir

        cfg = study_file.config
        root = artifacts_root(study_file.storage, cfg.workers.checkpoint_dir or cfg.export.dir)
        self.dir = trial_artifact_dir(root / "checkpoints", study_name, chain)

    def load(self) -> tuple[Any, int, dict[str, list[float]]] | None:
        """(model, epochs done, history) of the last finished epoch, if any."""
        meta_file = self.dir / "artifact.json"
        if not meta_file.exists():
            return None
        import keras

        import hpsearch.models._regression  # noqa: F401  (registers a regression's metrics)
        from hpsearch.artifacts import MODEL_FILE

        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            model = keras.models.load_model(self.dir / MODEL_FILE)
        except Exception:  # unreadable (custom objects, half-written): start afresh
            return None
        return model, int(meta["epoch"]), meta["history"]

    def save(self, model: Any, epoch: int, history: Mapping[str, list[float]]) -> None:
        from hpsearch.artifacts import save_atomically

        save_atomically(model, self.dir, {"epoch": epoch, "history": dict(history)})

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


INTERRUPTED_REASON = "interrupted (Ctrl-C or SIGTERM)"


class _Objective:
    """The function Optuna calls for each trial.

    A trial runs in steps: suggest its params, resume from a checkpoint (a re-run of a
    lost trial), train, keep the trained model, and record its outcome. Every outcome
    (complete, pruned, failed, stopped by a set-up error, interrupted) is recorded by
    :meth:`_record` in one storage write; the objective values come from
    :func:`hpsearch.artifacts.objective_values`, which decides what weights to keep too.
    """

    def __init__(
        self,
        study_file: StudyFile,
        dataset: Dataset,
        progress: Progress,
        evaluate: Callable[[optuna.Trial], float | list[float]] | None = None,
    ) -> None:
        self.study_file = study_file
        self.evaluate = evaluate
        self.dataset = dataset
        self.progress = progress
        self.consecutive_failures = 0
        self.last_failure = "?"  # "trial N: reason" of the last trial that failed
        objectives = study_file.objectives
        self.metric = objectives[0].metric
        self.single = len(objectives) == 1
        self.extra_metrics = [o.keras_metric for o in objectives if o.keras_metric]
        self.worker = worker_id()
        self.workers = study_file.config.workers

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        try:
            # the trial as Optuna read it when the trial began (one storage read less)
            frozen = getattr(trial, "_cached_frozen_trial", None) or trial.study._storage.get_trial(
                trial._trial_id
            )
            refill(trial.study, frozen)  # first: the next slot of this one's chain
            seed = self.study_file.trial_seed(frozen)
            set_user_attrs(trial, {WORKER: self.worker, SEED: seed})
            with Heartbeat.around(trial.study, trial._trial_id, self.workers.heartbeat_interval):
                if self.evaluate is not None:
                    return self.evaluate(trial)
                return self._evaluate(_TrialRun(trial, frozen, seed))
        except KeyboardInterrupt:
            # also when the signal came before training started: the slot was popped,
            # so the trial must be marked to be queued again (or the budget loses one)
            if not TrialRecord.from_trial(trial).interrupted:
                set_user_attrs(
                    trial,
                    {FAIL_REASON: INTERRUPTED_REASON, INTERRUPTED: True, WORKER: self.worker},
                )
            raise

    def _evaluate(self, run: _TrialRun) -> float | list[float]:
        self._suggest(run)
        self._resume(run)
        try:
            self._sample_builder(run)
            result = self._train(run)
            values = self._values(result)
            self._keep(run, result)
        except (Exception, KeyboardInterrupt) as exc:
            outcome = _outcome_of(exc)
            self._record(run, outcome)
            if outcome.kind == "failed":
                raise TrialFailed(outcome.reason) from exc
            raise
        finally:
            import keras

            # free_memory=False: gc.collect() per trial slows long runs (see STACK.md)
            keras.backend.clear_session(free_memory=False)
        self._record(run, _Outcome("complete"), result)
        return values[0] if self.single else values

    # -------------------------------------------------------------- the steps
    def _suggest(self, run: _TrialRun) -> None:
        run.params = self.study_file.space.suggest(run.trial)
        self.progress.trial_started(run.trial.number, run.params)

    def _sample_builder(self, run: _TrialRun) -> None:
        """A builder that declares its own parameters (KerasTuner's ``hp`` or Optuna's
        ``trial``) builds once on the live trial, with the study file's values given,
        so that its declarations are suggested on the trial and stored with their
        distributions; what it sampled joins the trial's params. That model is not
        trained: :meth:`_train` builds the trial again from the values (the cost of one
        model construction), from the trial's seed, as a re-training by export does."""
        import keras

        from hpsearch.models import sample_builder

        family = self.study_file.space.family_of(run.params)
        if ":" not in family:
            return
        try:
            declared = sample_builder(
                family,
                run.trial,
                run.params,
                self.study_file.owned_names(family),
                self.dataset.input_shape,
                self.dataset.num_classes,
                api=self.study_file.config.model.api,
            )
        except (ValueError, TypeError) as exc:  # as a build in training.train
            raise TrialFailed(f"model could not be built: {exc}") from exc
        finally:
            keras.backend.clear_session(free_memory=False)
        if declared is None:
            return
        run.params.update(declared)
        fixed = run.frozen.system_attrs.get("fixed_params") or {}
        unused = [name for name in fixed if name not in run.trial.params]
        if unused:
            self.progress.message(
                f"trial {run.trial.number}: search.enqueue gave {', '.join(unused)}, which "
                "neither the study file's space nor the builder declares; ignored"
            )

    def _resume(self, run: _TrialRun) -> None:
        """Open the trial's checkpoint; load it when the trial re-runs a lost one."""
        if not self.workers.checkpoints:
            return
        chain = first_of_chain(run.frozen)
        run.checkpoint = _Checkpoint(self.study_file, run.trial.study.study_name, chain)
        if "retry_history" not in run.frozen.system_attrs:
            return
        loaded = run.checkpoint.load()
        if loaded is None or loaded[1] >= int(run.params["epochs"]):  # nothing left to train
            return
        run.resume = loaded
        run.trial.set_user_attr(RESUMED_FROM_EPOCH, loaded[1])
        retry_of = TrialRecord.from_trial(run.trial).retry_of
        self.progress.message(
            f"trial {run.trial.number}: resuming at epoch {loaded[1] + 1} from the checkpoint "
            f"of trial {chain if retry_of is None else retry_of}"
        )

    def _train(self, run: _TrialRun) -> TrainResult:
        from hpsearch.training import train

        initial_model, initial_epoch = None, 0
        if run.resume is not None:  # the curves and reports of the lost trial first
            initial_model, initial_epoch, done = run.resume
            for epoch in range(initial_epoch):
                self._on_epoch(
                    run, epoch + 1, {k: v[epoch] for k, v in done.items() if epoch < len(v)}
                )
        checkpoint = run.checkpoint
        return train(
            run.params,
            self.dataset,
            family=self.study_file.space.family_of(run.params),
            api=self.study_file.config.model.api,
            seed=run.seed,
            extra_metrics=self.extra_metrics,
            monitor=self.metric,
            monitor_mode="max" if self.study_file.objectives[0].direction == "maximize" else "min",
            measure_latency=any(o.metric == "latency" for o in self.study_file.objectives),
            on_epoch=lambda epoch, logs: self._on_epoch(run, epoch, logs),
            initial_model=initial_model,
            initial_epoch=initial_epoch,
            on_epoch_model=(
                None
                if checkpoint is None
                else lambda model, epoch: checkpoint.save(model, epoch, run.curves)
            ),
        )

    def _on_epoch(self, run: _TrialRun, epoch: int, logs: Mapping[str, float]) -> None:
        """Keep the epoch's curves, show it, report it to Optuna and maybe prune."""
        import optuna

        for key, item in logs.items():
            run.curves.setdefault(key, []).append(float(item))
        run.epochs_done = epoch  # written once at the end: one storage write less per epoch
        self.progress.epoch(run.trial.number, epoch, int(run.params["epochs"]), logs)
        value = logs.get(self.metric)
        if self.single and value is not None and math.isfinite(value):
            run.trial.report(float(value), epoch)
            if run.trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch}")

    def _values(self, result: TrainResult) -> list[float]:
        from hpsearch.artifacts import objective_values

        values = objective_values(self.study_file, result)
        if values is None:
            missing = [o.metric for o in self.study_file.objectives]
            raise TrialFailed(
                f"metric {', '.join(missing)!r} not in Keras' logs ({', '.join(result.metrics)})"
            )
        return values

    def _keep(self, run: _TrialRun, result: TrainResult) -> None:
        """Keep the trained weights for `hpsearch export` while the model is alive
        (before clear_session); never fails the trial."""
        from hpsearch.artifacts import keep_trained_model

        keep_trained_model(run.trial, self.study_file, result)

    # -------------------------------------------------------------- the record
    def _record(self, run: _TrialRun, outcome: _Outcome, result: TrainResult | None = None) -> None:
        """Write what the trial leaves in the storage, in one write, and update the run's
        failure count; Optuna then sets the trial's state from the return or the raise."""
        attrs: dict[str, Any] = {HISTORY: run.curves, EPOCHS_RUN: run.epochs_done}
        if outcome.kind == "complete" and result is not None:
            attrs = self._final_attrs(run, result)
        elif outcome.kind == "interrupted":
            attrs.update({FAIL_REASON: INTERRUPTED_REASON, INTERRUPTED: True})
        elif outcome.kind == "setup":
            # every trial would fail the same way: work() stops the run; the trial does
            # not count toward the budget and its params are queued again
            attrs.update(
                {FAIL_REASON: short_reason(f"set-up error: {outcome.reason}"), SETUP_ERROR: True}
            )
        elif outcome.kind == "failed":
            attrs.update({FAIL_REASON: short_reason(outcome.reason), TRACEBACK: outcome.traceback})
            self.last_failure = f"trial {run.trial.number}: {short_reason(outcome.reason)}"
        set_user_attrs(run.trial, attrs)  # one transaction on RDB storages
        if outcome.kind == "failed":
            self.consecutive_failures += 1
        elif outcome.kind in ("complete", "pruned"):
            self.consecutive_failures = 0
        if run.checkpoint is not None and outcome.kind != "interrupted":
            run.checkpoint.remove()  # an interrupted trial's copy continues from it

    def _final_attrs(self, run: _TrialRun, result: TrainResult) -> dict[str, Any]:
        final: dict[str, Any] = {
            **result.metrics,
            PARAM_COUNT: result.param_count,
            EPOCHS_RUN: result.epochs_run,
            TRAIN_SECONDS: round(result.train_seconds, 3),
            HISTORY: run.curves if run.resume is not None else result.history,
        }
        if result.latency_ms is not None:
            final[LATENCY] = result.latency_ms
        if result.stopped_at_chance is not None:
            final[STOPPED_AT_CHANCE] = result.stopped_at_chance
            self.progress.message(
                f"trial {run.trial.number}: stopped at epoch {result.stopped_at_chance}, no "
                "better than always answering the most common class"
            )
        return final


@dataclass
class _TrialRun:
    """What the steps of one trial share."""

    trial: optuna.Trial
    frozen: optuna.trial.FrozenTrial
    seed: int
    params: dict[str, Any] = field(default_factory=dict)
    curves: dict[str, list[float]] = field(default_factory=dict)
    epochs_done: int = 0
    checkpoint: _Checkpoint | None = None
    resume: tuple[Any, int, dict[str, list[float]]] | None = None


@dataclass(frozen=True)
class _Outcome:
    """How a trial ended: complete, pruned, failed, setup (a set-up error) or interrupted."""

    kind: str
    reason: str = ""
    traceback: str = ""


def _outcome_of(exc: Exception | KeyboardInterrupt) -> _Outcome:
    """The outcome a trial's exception stands for; ``failed`` ones leave the objective as
    :class:`TrialFailed` (Optuna records the trial as FAIL and the study goes on), the
    others as they are (Optuna prunes, work() stops the run)."""
    import optuna

    if isinstance(exc, optuna.TrialPruned):
        return _Outcome("pruned")
    if isinstance(exc, KeyboardInterrupt):
        return _Outcome("interrupted")
    if isinstance(exc, SetupError):
        return _Outcome("setup", exc.reason)
    return _Outcome("failed", _reason(exc), traceback.format_exc()[-4000:])


def _reason(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, TrialFailed) else f"{type(exc).__name__}: {exc}"


def _check_metrics(study_file: StudyFile) -> None:
    """Resolve custom Keras metrics before anything is written."""
    if not any(obj.keras_metric for obj in study_file.objectives):
        return
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


def open_run(
    study_file: StudyFile,
    *,
    role: str = "run",
    progress: Progress | None = None,
    worker: int | None = None,
) -> tuple[optuna.Study, Dataset]:
    """Check the study file, create or join the study, and queue its budget.

    Args:
        role: ``run`` sets the budget (queues slots up to ``n_trials``); ``worker``
            joins a study and leaves its budget as stored (unless it creates it).
        worker: the number of this worker process in a parallel run (seeds its sampler).

    Raises:
        ConfigError: bad input; nothing was written.
    """
    from hpsearch.study import add_search_paths

    add_search_paths(study_file.base_dir)
    study, dataset, created = _create_or_join_checked(study_file, worker)
    if created:
        for i, values in study_file.enqueued():
            path = f"search.enqueue[{i}]"
            study.enqueue_trial(study_file.enqueue_params(values, path=path))
    elif worker is None:
        _reseed_for_resume(study, study_file)
    n_trials = study_file.n_trials
    if not created and role == "worker" and (_wait_for_budget(study) or n_trials is None):
        return study, dataset
    reap_dead_workers(study)
    _requeue_interrupted(study)
    if n_trials is not None:
        _set_budget(study, n_trials, progress)
    return study, dataset


def _create_or_join_checked(
    study_file: StudyFile, worker: int | None
) -> tuple[optuna.Study, Dataset, bool]:
    """Everything that can reject the study happens here, before any file is written."""
    from hpsearch.search import make_pruner, make_sampler

    cfg = study_file.config
    n_objectives = len(study_file.objectives)
    return open_checked(
        study_file,
        engine=ENGINE,
        check=lambda: _check_metrics(study_file),
        samplers=lambda: (
            make_sampler(cfg.search, study_file.space, n_objectives, worker=worker),
            make_pruner(cfg.search, study_file.max_epochs, n_objectives),
        ),
        storage_options={
            "heartbeat_interval": cfg.workers.heartbeat_interval,
            "grace_period": cfg.workers.grace_period,
        },
    )


def _wait_for_budget(study: optuna.Study, seconds: float = 60) -> bool:
    """A joining worker waits for the creator, which queues the budget right after
    creating the study; True once the budget is stored."""
    deadline = time.monotonic() + seconds
    while stored_budget(study) is None and time.monotonic() < deadline:
        time.sleep(0.5)
    return stored_budget(study) is not None


def _set_budget(study: optuna.Study, n_trials: int, progress: Progress | None) -> None:
    stored = stored_budget(study)
    top_up(study, n_trials)  # also restarts a chain of slots a crash broke
    if stored is not None and n_trials < stored and progress is not None:
        progress.message(
            f"note: study {study.study_name!r} has a budget of {stored} trials; this run "
            f"stops after {n_trials} (queued slots stay for later runs and workers)"
        )


def _reseed_for_resume(study: optuna.Study, study_file: StudyFile) -> None:
    """Give a resumed study a sampler seeded for where it stands.

    A sampler seeded with ``search.seed`` in every process would draw the start-up
    proposals of the study's first run again (random and TPE's start-up trials, the
    random draws of QMC's conditional parameters). Seeded from ``search.seed`` and the
    number of trials the study has started, a resumed run proposes new points and
    stays repeatable: ``run -n 3`` then ``run`` gives the same trials every time.
    """
    from optuna.trial import TrialState

    from hpsearch.search import make_sampler

    started = sum(t.state != TrialState.WAITING for t in study.get_trials(deepcopy=False))
    if started:
        cfg = study_file.config
        study.sampler = make_sampler(
            cfg.search, study_file.space, len(study_file.objectives), resume=started
        )


def announce_run(
    study: optuna.Study, study_file: StudyFile, dataset: Dataset, progress: Progress
) -> None:
    """The Optuna engine's first line: the budget (or how much of it is spent)."""
    spent = budget_spent(study)
    n_trials = study_file.n_trials
    timeout = study_file.config.search.timeout
    warn_drift(study, study_file, progress)
    if spent:
        progress.message(
            f"resuming study {study.study_name!r}: {spent} of "
            f"{n_trials or '∞'} trials already finished"
        )
    else:
        what = f"{n_trials or '∞'} trials" + (f", timeout {timeout:g}s" if timeout else "")
        announce(study, study_file, dataset, progress, what)


def work(
    study: optuna.Study,
    study_file: StudyFile,
    dataset: Dataset,
    progress: Progress,
    *,
    deadline: float | None = None,
    max_trials: int | None = None,
    limit: int | None = None,
    evaluate: Callable[[optuna.Trial], float | list[float]] | None = None,
) -> str:
    """Run trials of ``study`` in this process until there is nothing left to do.

    Args:
        deadline: ``time.time()`` after which no new trial starts.
        max_trials: stop after this many trials (a worker process is recycled).
        limit: stop once the study has this many finished trials.
        evaluate: what each trial computes instead of training the study's model
            (``benchmarks/bookkeeping.py`` and the queue tests pass a trivial one);
            the queue, the seed and the heartbeat around it stay as in a real trial.

    Returns:
        Why it stopped: ``done`` (budget spent), ``timeout`` or ``recycle``.

    Raises:
        StudyInterrupted: Ctrl-C or SIGTERM; the running trial was re-queued.
        SetupError: a trial hit a set-up error; it was re-queued.
        HpsearchError: ``search.max_consecutive_failures`` trials failed in a row.
    """
    if study_file.n_trials is not None:
        only_queued_trials(study)
    objective = _Objective(study_file, dataset, progress, evaluate)
    loop = _Loop(study, study_file, progress, objective, limit)
    while True:
        why = loop.stop_reason(deadline, max_trials)
        if why is not None:
            return why
        if not loop.run_one() and not loop.wait_for_others():
            return "done"
        loop.check_failures()


class _Loop:
    """The state of :func:`work`'s loop: trials run, the budget as last read."""

    def __init__(
        self,
        study: optuna.Study,
        study_file: StudyFile,
        progress: Progress,
        objective: _Objective,
        limit: int | None,
    ) -> None:
        self.study, self.study_file, self.progress = study, study_file, progress
        self.objective, self.limit = objective, limit
        self.ran = 0
        self.spent_after_trial: list[int] = []  # budget_spent as read at a trial's end

    def stop_reason(self, deadline: float | None, max_trials: int | None) -> str | None:
        """``timeout``, ``recycle`` or ``done`` when no new trial should start, else None."""
        if deadline is not None and time.time() >= deadline:
            return "timeout"
        if max_trials is not None and self.ran >= max_trials:
            return "recycle"
        if self.limit is not None:
            last = self.spent_after_trial
            spent = last.pop() if last else budget_spent(self.study)
            last.clear()
            if spent >= self.limit:
                return "done"
        return None

    def on_trial_end(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        trials = study.get_trials(deepcopy=False)  # one read for the best and the budget
        self.progress.trial_finished(
            trial, TrialRecord.from_trial(trial), best_value(study, trials)
        )
        if self.limit is not None:
            self.spent_after_trial.append(budget_spent(study, trials))

    def run_one(self) -> bool:
        """Run one trial; False when no queued trial is left to run."""
        try:
            self.study.optimize(
                self.objective,
                n_trials=1,
                catch=(TrialFailed,),
                callbacks=[self.on_trial_end],
                gc_after_trial=False,
            )
        except BudgetExhausted:
            return False
        except SetupError as exc:
            _requeue_stopped(self.study, self.objective.worker)
            stopped = SetupError(
                f"{exc.reason} (trial stopped, queued again for the next run)",
                path=exc.path,
                value=exc.value,
                has_value=exc.has_value,
            )
            raise self.study_file.attribute(stopped) from None
        except KeyboardInterrupt as exc:
            _requeue_stopped(self.study, self.objective.worker)
            raise interrupted(
                exc,
                "the running trial is marked FAIL (interrupted) and queued again; "
                "run the same command again to resume",
            ) from None
        self.ran += 1
        return True

    def wait_for_others(self) -> bool:
        """Every slot is finished or running. A running trial whose worker dies is
        re-queued (heartbeat or dead pid), so wait while others run; False if none does."""
        from optuna.trial import TrialState

        running = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if not running:
            return False
        reap_dead_workers(self.study)
        fail_stale_trials(self.study, self.study_file.config.workers.grace_period)
        self.progress.status(f"waiting for {len(running)} trial(s) running in other workers")
        time.sleep(POLL_SECONDS)
        return True

    def check_failures(self) -> None:
        most = self.study_file.config.search.max_consecutive_failures
        if self.objective.consecutive_failures >= most:
            raise HpsearchError(
                f"{most} trials failed in a row (last: {self.objective.last_failure}); "
                "stopping. Raise search.max_consecutive_failures to go on"
            )


@quiet_optuna()  # our progress lines report failed trials; Optuna adds a traceback each
def run_optuna(study_file: StudyFile, *, quiet: bool = False) -> optuna.Study:
    """Run (or resume) a study in this process until its budget is spent.

    Raises:
        StudyInterrupted: on Ctrl-C, after the running trial was marked FAIL.
        HpsearchError: bad input, or too many trials failed in a row.
    """
    # threads are set before TensorFlow runs anything (open_run may build a model)
    prepare_process(study_file, study_file.config.workers.threads)
    progress = Progress(study_file.objectives[0].metric, study_file.n_trials, quiet=quiet)
    study, dataset = open_run(study_file, progress=progress)
    count_stored(progress, study)
    announce_run(study, study_file, dataset, progress)
    gpus = plan_for(study_file).describe(1)
    if gpus:
        progress.message(f"GPUs: {gpus}")
    timeout = study_file.config.search.timeout
    with progress:
        work(
            study,
            study_file,
            dataset,
            progress,
            deadline=None if timeout is None else time.time() + timeout,
            limit=study_file.n_trials,
        )
    return study
