"""Search engines: Optuna (default) and scikit-learn's search classes over scikeras.

Each writes its trials as Optuna trials in the study's storage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpsearch.engines._optuna import StudyInterrupted, budget_spent, run_optuna

if TYPE_CHECKING:
    import optuna

    from hpsearch.config import StudyFile

__all__ = ["StudyInterrupted", "budget_spent", "run_optuna", "run_sklearn", "run_study"]


def run_sklearn(study_file: StudyFile, *, quiet: bool = False) -> optuna.Study:
    """Run a ``search.engine: sklearn`` study (imports scikeras and TensorFlow)."""
    from hpsearch.training import configure_tensorflow

    configure_tensorflow()  # before scikeras imports TensorFlow
    from hpsearch.engines._sklearn import run_sklearn as _run

    return _run(study_file, quiet=quiet)


def run_study(study_file: StudyFile, *, quiet: bool = False) -> optuna.Study:
    """Run a study with the engine its file names."""
    if study_file.config.search.engine == "sklearn":
        return run_sklearn(study_file, quiet=quiet)
    return run_optuna(study_file, quiet=quiet)
