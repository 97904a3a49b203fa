"""What every engine does around its trials, written once.

The Optuna engine (:mod:`hpsearch.engines._optuna`), the scikit-learn engine
(:mod:`hpsearch.engines._sklearn`) and the parallel supervisor
(:mod:`hpsearch.engines._workers`) all open a run the same way: everything that can
reject the study is checked before anything is written (:func:`open_checked`), the study
is created or joined with a record of what produced it (:func:`create_or_join`), one
line announces it (:func:`announce`, after :func:`warn_drift`), progress counts what the
study already holds (:func:`count_stored`), and Ctrl-C or SIGTERM becomes
:class:`StudyInterrupted` (:func:`interrupted`, :func:`exit_code`).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hpsearch._progress import Progress
from hpsearch._version import __version__
from hpsearch.exceptions import ConfigError, HpsearchError, Terminated

if TYPE_CHECKING:
    import optuna

    from hpsearch.data import Dataset
    from hpsearch.study import StudyFile

__all__ = [
    "StudyInterrupted",
    "announce",
    "best_value",
    "check_model_builder",
    "config_drift",
    "count_stored",
    "create_or_join",
    "exit_code",
    "handle_sigterm",
    "interrupted",
    "open_checked",
    "prepare_process",
    "warn_drift",
]


class StudyInterrupted(HpsearchError):
    """Ctrl-C or SIGTERM; the running trial was marked FAIL (interrupted) and re-queued.

    ``sigterm`` tells the two apart (exit codes 143 and 130).
    """

    def __init__(self, message: str, *, sigterm: bool = False) -> None:
        super().__init__(message)
        self.sigterm = sigterm


def interrupted(exc: KeyboardInterrupt, kept: str) -> StudyInterrupted:
    """The :class:`StudyInterrupted` for ``exc``; ``kept`` says what the study keeps.

    >>> str(interrupted(KeyboardInterrupt(), "finished candidates are stored"))
    'interrupted: finished candidates are stored'
    >>> interrupted(Terminated(), "").sigterm
    True
    """
    return StudyInterrupted(f"interrupted: {kept}", sigterm=isinstance(exc, Terminated))


def exit_code(exc: BaseException) -> int:
    """130 for Ctrl-C, 143 for SIGTERM (the shell's convention)."""
    return 143 if isinstance(exc, Terminated) or getattr(exc, "sigterm", False) else 130


def handle_sigterm() -> None:
    """Turn SIGTERM into :class:`Terminated` in this process (main thread only)."""

    def raise_terminated(signum: int, frame: Any) -> None:
        raise Terminated

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, raise_terminated)


def prepare_process(study_file: StudyFile, threads: int | None = None) -> None:
    """What a run changes in its process, when it opens (never when a file is read):
    TensorFlow's threads and quiet import, and the study folder on the import path
    (a user builder or data loader named by module)."""
    from hpsearch.study import add_search_paths
    from hpsearch.training import configure_tensorflow

    configure_tensorflow(threads)  # before anything imports TensorFlow
    add_search_paths(study_file.base_dir)


def best_value(
    study: optuna.Study, trials: list[optuna.trial.FrozenTrial] | None = None
) -> float | None:
    """The best value of the first objective so far (None before any COMPLETE trial).

    ``trials``: the study's trials if just read (saves a storage read).
    """
    from optuna.study import StudyDirection
    from optuna.trial import TrialState

    if trials is None:
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    values = [t.values[0] for t in trials if t.state == TrialState.COMPLETE and t.values]
    if not values:
        return None
    return max(values) if study.directions[0] == StudyDirection.MAXIMIZE else min(values)


def count_stored(progress: Progress, study: optuna.Study) -> None:
    """Start ``progress`` from the trials ``study`` holds (a resumed run counts them)."""
    progress.set_counts(study, best_value(study))


def check_model_builder(study_file: StudyFile, dataset: Dataset) -> None:
    """Build a user builder's model once with the space's first values, before anything
    is written: a builder that cannot be called or returns no ``keras.Model`` is a
    :class:`SetupError` (one line, exit code 2), not a run of failed trials. A builder
    that declares its own parameters gets each at its default (or low end, or first
    choice); the sklearn engine refuses one (its space must be known before it starts)."""
    users = [f.name for f in study_file.space.families.values() if f.is_user]
    if not users:
        return
    from hpsearch.training import configure_tensorflow

    configure_tensorflow()  # quiet TensorFlow's import (a no-op once configured)
    from hpsearch.models import builder_api, check_builder

    api = study_file.config.model.api
    for family in users:
        if study_file.config.search.engine == "sklearn" and builder_api(family, api) != "params":
            raise ConfigError(
                "this builder declares its own parameters (model.api); the sklearn engine "
                "needs its whole space before it starts: use search.engine: optuna",
                path="model.family",
                value=family,
                has_value=True,
            )
        check_builder(
            family,
            study_file.space.example_params(family),
            dataset.input_shape,
            dataset.num_classes,
            api=api,
            owned=study_file.owned_names(family),
        )


def open_checked(
    study_file: StudyFile,
    *,
    engine: str,
    storage_options: dict[str, Any] | None = None,
    samplers: Callable[[], tuple[Any, Any]] | None = None,
    objective_names: list[str] | None = None,
    check: Callable[[], None] | None = None,
) -> tuple[optuna.Study, Dataset, bool]:
    """Check everything that can reject the study, then create or join it.

    The data set is loaded, ``check`` runs, a user builder builds once and the storage
    opens before the study is written; any :class:`ConfigError` on the way names the
    study file and nothing is written.

    Args:
        engine: recorded on a new study (``optuna`` or ``sklearn``).
        storage_options: passed to :func:`hpsearch.storage.open_storage`.
        samplers: makes the study's (sampler, pruner); None for Optuna's defaults.
        objective_names: what the study's values are (default: the objectives' metrics).

    Returns:
        The study, its data set, and True if this call created the study.
    """
    from hpsearch.data import load_dataset
    from hpsearch.storage import open_storage

    try:
        if check is not None:
            check()
        dataset = load_dataset(study_file.config.data, study_file.base_dir, study_file.task)
        _check_streaming(engine, dataset)
        check_model_builder(study_file, dataset)
        sampler, pruner = samplers() if samplers is not None else (None, None)
        storage = open_storage(study_file.storage, **(storage_options or {}))
        study, created = create_or_join(
            study_file,
            storage,
            sampler,
            pruner,
            dataset.summary(),
            engine=engine,
            objective_names=objective_names,
        )
    except ConfigError as exc:
        raise study_file.attribute(exc) from None
    return study, dataset, created


def _check_streaming(engine: str, dataset: Dataset) -> None:
    from hpsearch.data._images import streams

    if engine == "sklearn" and streams(dataset.x_train):
        raise ConfigError(
            "this image folder is above data.memory_limit_mb, so it is streamed from disk; "
            "the sklearn engine needs arrays in memory: raise the limit, or use "
            "search.engine: optuna",
            path="data.memory_limit_mb",
        )


def create_or_join(
    study_file: StudyFile,
    storage: Any,
    sampler: Any,
    pruner: Any,
    dataset_summary: dict[str, Any],
    engine: str = "optuna",
    objective_names: list[str] | None = None,
) -> tuple[optuna.Study, bool]:
    """Create the study, or load it if it exists (to resume); True if this call created
    it. Records what produced the study (configuration, data, engine).

    When several workers start at once, the storage's unique study name decides
    which one creates it.
    """
    import optuna

    kwargs: dict[str, Any] = {
        "storage": storage,
        "study_name": study_file.name,
        "sampler": sampler,
        "pruner": pruner,
    }
    try:
        study = optuna.create_study(directions=study_file.directions, **kwargs)  # type: ignore[arg-type]
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(**kwargs)
        created = False
    wanted = [d.upper() for d in study_file.directions]
    have = [d.name for d in study.directions]
    if wanted != have:
        raise ConfigError(
            f"study {study_file.name!r} already exists in this storage with directions "
            f"{', '.join(have).lower()}; choose another name or storage",
            path="objective",
        )
    from hpsearch.study import StudyMeta

    if created or not StudyMeta.of(study).recorded:
        StudyMeta(
            version=__version__,
            engine=engine,
            source=str(study_file.source) if study_file.source else None,
            config=study_file.config.model_dump(mode="json"),
            objectives=objective_names or [o.metric for o in study_file.objectives],
            data=dataset_summary,
        ).write(study)
    return study, created


def config_drift(study: optuna.Study, study_file: StudyFile) -> list[str]:
    """The sections (data, model, space, objective) that differ from the stored study's."""
    from hpsearch.study import StudyMeta

    stored = StudyMeta.of(study).config
    if not stored:
        return []
    current = study_file.config.model_dump(mode="json")
    # a setting added to hpsearch since the study was stored (model.api) is no drift
    # while it has its default
    changed = study_file.config.model_dump(mode="json", exclude_defaults=True)
    for key, section in current.items():
        old = stored.get(key)
        if isinstance(section, dict) and isinstance(old, dict):
            given = changed.get(key) or {}
            current[key] = {k: v for k, v in section.items() if k in old or k in given}
    return [
        key for key in ("data", "model", "space", "objective") if stored.get(key) != current[key]
    ]


def warn_drift(study: optuna.Study, study_file: StudyFile, progress: Progress) -> None:
    """Warn when the study was created from a different file (its trials are not alike)."""
    drift = config_drift(study, study_file)
    if drift:
        progress.message(
            f"warning: study {study.study_name!r} was created with a different "
            f"{', '.join(drift)}; new trials are added to it (use another name to start afresh)"
        )


def announce(
    study: optuna.Study,
    study_file: StudyFile,
    dataset: Dataset,
    progress: Progress,
    what: str,
) -> None:
    """The run's first line: the study, ``what`` it runs, its data and its storage."""
    from hpsearch.data._images import streams

    streamed = ", streamed from disk" if streams(dataset.x_train) else ""
    task = "regression" if dataset.regression else f"{dataset.num_classes} classes"
    progress.message(
        f"study {study.study_name!r}: {what}, data {dataset.name} "
        f"({len(dataset.x_train)} train / {len(dataset.x_val)} validation, {task}{streamed}), "
        f"storage {study_file.storage}"
    )
