"""Reading results back: open a study by file or name, list studies, best trials."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hpsearch.exceptions import HpsearchError, StudyNotFoundError
from hpsearch.study import StudyFile, StudyMeta, default_storage, is_study_file, load_study_file

if TYPE_CHECKING:
    import optuna

__all__ = [
    "StudyRow",
    "best_trials",
    "list_studies",
    "open_study",
    "study_file_of",
    "study_target",
]


def study_target(study: str | Path, storage: str | None = None) -> tuple[str, str]:
    """The (study name, storage URL) that a command's STUDY argument and ``--storage``
    name: a study file's own, or a study name in ``storage`` (default
    :func:`hpsearch.study.default_storage`).

    >>> study_target("quickstart", "sqlite:///runs.db")
    ('quickstart', 'sqlite:///runs.db')
    """
    if is_study_file(study):
        sf = load_study_file(study, storage=storage)
        return sf.name, sf.storage
    return str(study), storage or default_storage()


def open_study(study: str | Path, storage: str | None = None) -> optuna.Study:
    """Load a finished or running study, given its study file or its name.

    Args:
        study: a study file (its ``name`` and ``storage`` are used) or a study name.
        storage: a storage URL that overrides the file's (or the default).

    Raises:
        StudyNotFoundError: no such study in the storage.

    Example (a study file finds its study through its ``name`` and ``storage``):
        >>> study = open_study("studies/quickstart.yaml")  # doctest: +SKIP
        >>> study.best_trial.params  # doctest: +SKIP

    A name and a storage URL work for any Optuna study (here one made without hpsearch):
        >>> import optuna
        >>> url = "sqlite:///results-example.db"
        >>> made = optuna.create_study(study_name="demo", storage=url)
        >>> made.add_trial(optuna.trial.create_trial(value=0.5, params={"x": 1},
        ...     distributions={"x": optuna.distributions.IntDistribution(0, 3)}))
        >>> open_study("demo", url).best_trial.params
        {'x': 1}
        >>> open_study("other", url)
        Traceback (most recent call last):
        hpsearch.exceptions.StudyNotFoundError: no study 'other' in ... (studies there: demo)
    """
    import optuna

    from hpsearch.storage import open_storage

    name, url = study_target(study, storage)
    backend = open_storage(url, create=False, heartbeat=False)
    try:
        return optuna.load_study(study_name=name, storage=backend)
    except KeyError:
        names = optuna.get_all_study_names(storage=backend)
        known = ", ".join(names) if names else "none"
        raise StudyNotFoundError(f"no study {name!r} in {url} (studies there: {known})") from None


@dataclass
class StudyRow:
    """One line of ``hpsearch status``."""

    name: str
    engine: str
    directions: list[str]
    counts: dict[str, int]
    best: list[float] | None


def list_studies(storage: str | None = None) -> list[StudyRow]:
    """Every study in a storage with its trial counts and best value.

    Example:
        >>> import optuna
        >>> url = "sqlite:///list-example.db"
        >>> study = optuna.create_study(study_name="demo", storage=url, direction="maximize")
        >>> for value in (0.25, 0.75):
        ...     study.add_trial(optuna.trial.create_trial(value=value))
        >>> study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
        >>> [(row.name, row.directions, row.counts, row.best) for row in list_studies(url)]
        [('demo', ['maximize'], {'COMPLETE': 2, 'FAIL': 1}, [0.75])]
    """
    import optuna

    from hpsearch.storage import open_storage

    backend = open_storage(storage or default_storage(), create=False, heartbeat=False)
    rows = []
    for name in optuna.get_all_study_names(storage=backend):
        study = optuna.load_study(study_name=name, storage=backend)
        counts: dict[str, int] = {}
        for t in study.get_trials(deepcopy=False):
            counts[t.state.name] = counts.get(t.state.name, 0) + 1
        best: list[float] | None = None
        if len(study.directions) == 1 and counts.get("COMPLETE"):
            best = [study.best_value]
        rows.append(
            StudyRow(
                name,
                StudyMeta.of(study).engine,
                [d.name.lower() for d in study.directions],
                counts,
                best,
            )
        )
    return rows


def best_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The best trial, or every Pareto-optimal trial of a multi-objective study.

    Example:
        >>> import optuna
        >>> study = optuna.create_study(directions=["maximize", "minimize"])
        >>> for accuracy, params in [(0.9, 5000), (0.8, 900), (0.7, 1200)]:
        ...     study.add_trial(optuna.trial.create_trial(values=[accuracy, params]))
        >>> sorted(t.values for t in best_trials(study))  # the third is beaten by the second
        [[0.8, 900], [0.9, 5000]]
        >>> best_trials(optuna.create_study())  # nothing finished yet
        []
    """
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return []
    if len(study.directions) > 1:
        return list(study.best_trials)
    return [study.best_trial]


def study_file_of(study: optuna.Study) -> StudyFile:
    """Rebuild the validated study file a stored study was run with.

    hpsearch stores the configuration (after overrides) on the study, so export
    and re-training need nothing but the storage.

    Raises:
        HpsearchError: the study was not made by hpsearch.
    """
    from hpsearch.study import study_from_dict

    meta = StudyMeta.of(study)
    if meta.config is None:
        raise HpsearchError(f"study {study.study_name!r} was not created by hpsearch")
    config = dict(meta.config)
    config["name"] = study.study_name
    source = Path(meta.source) if meta.source else None
    return study_from_dict(config, source=source)
