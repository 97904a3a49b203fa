"""Search engines: Optuna (default) and scikit-learn's search classes over scikeras.

Each writes its trials as Optuna trials in the study's storage.

For scripts that drive the Optuna engine's loop themselves (``benchmarks/bookkeeping.py``):
:func:`create_or_join` makes or loads the study, :func:`top_up` queues its budget,
:func:`work` runs the queued trials (``evaluate=`` instead of training) and reports to a
:class:`Progress`. :func:`build_estimator` is the scikeras classifier the sklearn engine
searches (``benchmarks/time_to_accuracy.py`` fits it with its own search).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpsearch._progress import Progress
from hpsearch.engines._core import StudyInterrupted, create_or_join, exit_code, handle_sigterm
from hpsearch.engines._gpus import apply_in_process, detect_gpus, plan_for, worker_count
from hpsearch.engines._optuna import require_complete, run_optuna, work
from hpsearch.engines._queue import budget_spent, top_up
from hpsearch.engines._workers import run_parallel

if TYPE_CHECKING:
    import optuna

    from hpsearch.engines._sklearn import StudyClassifier, StudyRegressor
    from hpsearch.study import StudyFile

__all__ = [
    "Progress",
    "StudyInterrupted",
    "budget_spent",
    "build_estimator",
    "create_or_join",
    "detect_gpus",
    "exit_code",
    "handle_sigterm",
    "require_complete",
    "retry_failed",
    "run_optuna",
    "run_parallel",
    "run_sklearn",
    "run_study",
    "top_up",
    "work",
]


def build_estimator(study_file: StudyFile, seed: int) -> StudyClassifier | StudyRegressor:
    """The scikeras classifier (regressor for a regression) of a study file (as
    ``search.engine: sklearn`` searches it); imports scikeras and TensorFlow."""
    from hpsearch.training import configure_tensorflow

    configure_tensorflow()  # before scikeras imports TensorFlow
    from hpsearch.engines._sklearn import build_estimator as _build

    return _build(study_file, seed)


def run_sklearn(study_file: StudyFile, *, quiet: bool = False) -> optuna.Study:
    """Run a ``search.engine: sklearn`` study (imports scikeras and TensorFlow)."""
    from hpsearch.training import configure_tensorflow

    configure_tensorflow()  # before scikeras imports TensorFlow
    from hpsearch.engines._sklearn import run_sklearn as _run

    return _run(study_file, quiet=quiet)


def run_study(
    study_file: StudyFile, *, quiet: bool = False, workers: int | None = None
) -> optuna.Study:
    """Run a study with the engine its file names.

    Args:
        workers: worker processes (default ``workers.count``, or one per GPU with
            ``workers.gpus``: :func:`hpsearch.engines._gpus.worker_count`); with more
            than one, see :func:`run_parallel`; with ``workers.ray``, Ray actors on a
            cluster (``workers.count`` of them unless given).

    Raises:
        NoTrialCompleted: the run ended and the study holds no COMPLETE trial (its
            ``study`` attribute is the Optuna study, failures and all).
    """
    if study_file.config.workers.ray is not None:
        from hpsearch.engines._ray import run_on_ray  # Ray itself is imported there, late

        study = run_on_ray(study_file, workers or study_file.config.workers.count, quiet=quiet)
        require_complete(study)
        return study
    n = worker_count(study_file, workers)  # with GPUs, one per GPU unless count says
    if n == 1:
        apply_in_process(plan_for(study_file))  # this process is worker 1: its GPU only
    if n > 1:
        study = run_parallel(study_file, n, quiet=quiet)
    elif study_file.config.search.engine == "sklearn":
        study = run_sklearn(study_file, quiet=quiet)
    else:
        study = run_optuna(study_file, quiet=quiet)
    require_complete(study)
    return study


def retry_failed(study_file: StudyFile, numbers: list[int] | None = None) -> list[int]:
    """Queue a copy of every failed trial (or of trials ``numbers``) not retried yet.

    Returns:
        The numbers of the trials queued again.

    Raises:
        HpsearchError: a trial in ``numbers`` does not exist or did not fail.
    """
    from optuna.trial import TrialState

    from hpsearch.engines._queue import requeue, retried
    from hpsearch.exceptions import HpsearchError
    from hpsearch.results import open_study
    from hpsearch.study import StudyMeta

    study = open_study(study_file.name, study_file.storage)
    if StudyMeta.of(study).engine == "sklearn":
        raise HpsearchError("retry works on optuna-engine studies; re-run a sklearn study instead")
    trials = study.get_trials(deepcopy=False)
    done = retried(trials)
    by_number = {t.number: t for t in trials}
    for n in numbers or ():
        t = by_number.get(n)
        if t is None or t.state != TrialState.FAIL:
            state = "no such trial" if t is None else f"it is {t.state.name}"
            raise HpsearchError(
                f"--trials: trial {n} cannot be retried ({state}); only FAIL trials can"
            )
    queued = []
    for t in trials:
        wanted = numbers is None or t.number in numbers
        if t.state == TrialState.FAIL and t.number not in done and wanted:
            requeue(study, t)
            queued.append(t.number)
    return queued
