"""hpsearch: hyperparameter search for Keras models.

A study file declares the data, the model family, the search space, the
objective(s), the sampler, pruner and budget. The same steps the CLI runs are
available here for notebooks:

    >>> import hpsearch
    >>> study_file = hpsearch.load_study_file("studies/quickstart.yaml", ["search.n_trials=5"])
    >>> study_file.name, study_file.n_trials, study_file.directions
    ('quickstart', 5, ['maximize'])

Running it trains Keras models (minutes), so these lines are not run as tests:

    >>> study = hpsearch.run(study_file)  # doctest: +SKIP
    >>> best = hpsearch.best_trials(study)[0]  # doctest: +SKIP
    >>> record = hpsearch.TrialRecord.from_trial(best)  # doctest: +SKIP
    >>> print(best.params, record.metrics["val_accuracy"], record.epochs_run)  # doctest: +SKIP

``run`` returns an ``optuna.Study`` stored in SQLite (``hpsearch.db`` in the working
directory unless the file names a ``storage``).

Importing this package does not import TensorFlow; running a study does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpsearch._version import __version__
from hpsearch.config import StudyConfig
from hpsearch.exceptions import (
    ConfigError,
    HpsearchError,
    NoTrialCompleted,
    SetupError,
    StudyNotFoundError,
)
from hpsearch.results import best_trials, list_studies, open_study
from hpsearch.study import StudyFile, TrialRecord, load_study_file

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    import optuna

    from hpsearch.export import ExportResult

__all__ = [
    "ConfigError",
    "HpsearchError",
    "NoTrialCompleted",
    "SetupError",
    "StudyConfig",
    "StudyFile",
    "StudyNotFoundError",
    "TrialRecord",
    "__version__",
    "best_trials",
    "export_trial",
    "list_studies",
    "load_study_file",
    "open_study",
    "run",
]


def run(study: StudyFile | str, *, quiet: bool = False, workers: int | None = None) -> optuna.Study:
    """Run (or resume) a study until its budget is spent; return the Optuna study.

    Args:
        study: a loaded :class:`StudyFile` or the path of a study file.
        quiet: print nothing.
        workers: worker processes on this machine (default: the file's
            ``workers.count``, 1); they share the budget.
    """
    from hpsearch.engines import run_study

    study_file = study if isinstance(study, StudyFile) else load_study_file(study)
    return run_study(study_file, quiet=quiet, workers=workers)


def export_trial(
    study: str | Path,
    *,
    storage: str | None = None,
    trial: int | None = None,
    out: str | Path | None = None,
    formats: str | Sequence[str] = "keras,savedmodel",
    full: bool = False,
    retrain: bool = False,
    force: bool = False,
    on_message: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export a study's best trial (or ``trial=N``) as a ready-to-load Keras model with a
    model card (:func:`hpsearch.export.export_trial` has the details).

    Args:
        study: a study file or a study name.
        storage: a storage URL overriding the file's (or the default).
        trial: the trial number (default: the best trial).
        out: the export folder (default: ``exports/STUDY-trialN``).
        formats: ``keras``, ``savedmodel`` and/or ``onnx`` (comma-separated or a list).
        full: re-train on train+validation first.
        retrain: re-train from the stored params and seed even if weights were kept.
        force: replace an existing ``out``.
        on_message: called with each note (warnings, the ONNX check) as it happens.

    Example (it trains a model unless the search kept the trial's weights, so it is
    not run as a test):
        >>> result = hpsearch.export_trial("studies/quickstart.yaml")  # doctest: +SKIP
        >>> result.card.test.accuracy  # on the held-out test split  # doctest: +SKIP
    """
    from hpsearch.export import export_trial as _export

    return _export(
        study,
        storage=storage,
        trial=trial,
        out=out,
        formats=formats,
        full=full,
        retrain=retrain,
        force=force,
        on_message=on_message,
    )
