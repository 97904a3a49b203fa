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

from typing import TYPE_CHECKING, Any

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

    from hpsearch.data._arrays import Arrays
    from hpsearch.export import ExportResult

__all__ = [
    "Arrays",
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


def __getattr__(name: str) -> Any:
    # hpsearch.Arrays loads on first use: `import hpsearch` imports no NumPy
    if name == "Arrays":
        from hpsearch.data._arrays import Arrays

        return Arrays
    raise AttributeError(f"module 'hpsearch' has no attribute {name!r}")


def run(
    study: StudyFile | str,
    *,
    quiet: bool = False,
    workers: int | None = None,
    data: Any = None,
) -> optuna.Study:
    """Run (or resume) a study until its budget is spent; return the Optuna study.

    Args:
        study: a loaded :class:`StudyFile` or the path of a study file.
        quiet: print nothing.
        workers: worker processes on this machine (default: the file's
            ``workers.count``, 1); they share the budget.
        data: arrays to run on instead of the file's data set: ``(x, y)``,
            ``(x_train, y_train, x_test, y_test)``, a dict, an :class:`Arrays` or a
            ``tf.data.Dataset`` of ``(x, y)``. The file's ``data`` split settings
            (``validation``, ``test``, ``subset``, ``seed``, ``scale``, ``image_shape``)
            apply; the study records the arrays' fingerprint and shapes. They stay in
            this process: ``workers`` must be 1.

    Example (trains models, so not run as a test):
        >>> study = hpsearch.run("studies/quickstart.yaml", data=(x, y))  # doctest: +SKIP
    """
    from hpsearch.engines import run_study

    study_file = study if isinstance(study, StudyFile) else load_study_file(study)
    if data is None:
        return run_study(study_file, quiet=quiet, workers=workers)
    from hpsearch.data._arrays import registered
    from hpsearch.study import with_arrays

    count = workers or study_file.config.workers.count
    if count > 1:
        raise study_file.attribute(
            ConfigError(
                "arrays given with data= stay in this process, so they run with one worker; "
                "for worker processes save them to an .npz (data: {name: npz, path: ...})",
                path="workers.count",
                value=count,
                has_value=True,
            )
        )
    with registered(data, study_file.config.data.memory_limit_mb) as key:
        return run_study(with_arrays(study_file, key), quiet=quiet, workers=1)


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
    data: Any = None,
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
        data: the arrays of a study run with ``hpsearch.run(..., data=...)``; such a
            study cannot be exported without them.

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
        data=data,
    )
