"""Trained weights kept per trial, so that ``hpsearch export`` need not re-train.

``export.keep`` in the study file chooses what is kept:

* ``best`` (default): only what the best trial needs (every Pareto-optimal trial
  when there are several objectives). A trial's model is saved when it is at
  least as good as the best so far; artifacts of trials that it beats are
  deleted.
* ``all``: every COMPLETE trial's model.
* ``none``: nothing; export re-trains from the stored params and seed.

Artifacts live in a folder next to the storage (``/data/runs.db`` →
``/data/runs_artifacts/<study>/trial_<n>/``), or in ``export.dir``. Each holds
``model.keras`` (the network as trained, taking scaled inputs) and
``artifact.json`` (which study and trial it belongs to). A model is written to a
temporary folder first and renamed into place, so a half-written artifact is
never seen. The path is recorded as the trial's user attribute ``artifact``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpsearch._version import __version__
from hpsearch.atomic import atomic_dir, plain_permissions
from hpsearch.study._record import ARTIFACT, ARTIFACT_ERROR, TrialRecord, short_reason

if TYPE_CHECKING:
    import keras
    import optuna

    from hpsearch.study import StudyFile
    from hpsearch.training import TrainResult

__all__ = [
    "ARTIFACT_ATTR",
    "artifacts_root",
    "find_artifact",
    "keep_trained_model",
    "objective_values",
    "plain_permissions",
    "trial_artifact_dir",
]

ARTIFACT_ATTR = ARTIFACT  # the trial attribute naming its kept model (TrialRecord.artifact)
MODEL_FILE = "model.keras"
META_FILE = "artifact.json"


def artifacts_root(storage: str, folder: str | None = None) -> Path:
    """The folder that holds a storage's artifacts (absolute).

    ``folder`` (``export.dir``) wins; a relative one is taken from the working
    directory, like a relative SQLite URL. Otherwise: beside a SQLite or journal
    file (``runs.db`` → ``runs_artifacts``); for a database server, which has no
    "beside", in the user's data folder, one folder per server and database
    (``~/.local/share/hpsearch/artifacts/postgresql_HOST_PORT_DB``; never the
    working directory, which changes from one command to the next).
    """
    from hpsearch.storage import journal_path, sqlite_path

    if folder:
        return Path(folder).expanduser().resolve()
    file = sqlite_path(storage) or journal_path(storage)
    if file is not None:
        file = file.expanduser().resolve()
        return file.with_name(f"{file.stem}_artifacts")
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data_home / "hpsearch" / "artifacts" / _server_key(storage)


def _server_key(url: str) -> str:
    """``postgresql://user:secret@db.example:5432/runs`` → ``postgresql_db.example_5432_runs``
    (no credentials in a folder name)."""
    try:
        from sqlalchemy.engine import make_url

        u = make_url(url)
        parts = [u.drivername.split("+")[0], u.host or "", str(u.port or ""), u.database or ""]
    except Exception:  # not an SQLAlchemy URL (redis://...)
        scheme, _, rest = url.partition("://")
        parts = [scheme, rest.rpartition("@")[2]]
    return _safe_name("_".join(p for p in parts if p))


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "study"


def trial_artifact_dir(root: Path, study_name: str, number: int) -> Path:
    """Where trial ``number`` of ``study_name`` keeps its model."""
    return root / _safe_name(study_name) / f"trial_{number}"


# ----------------------------------------------------------------- which to keep
def objective_values(study_file: StudyFile, result: TrainResult) -> list[float] | None:
    """The values the engine returns for a trained model (None if a metric is missing).

    Mirrors the Optuna engine: ``params`` and ``latency`` come from the model,
    everything else from Keras' logs.
    """
    values = []
    for obj in study_file.objectives:
        if obj.metric == "params":
            values.append(float(result.param_count))
        elif obj.metric == "latency":
            values.append(float(result.latency_ms or 0.0))
        elif obj.metric in result.metrics:
            values.append(float(result.metrics[obj.metric]))
        else:
            return None
    return values


def _dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """Whether ``a`` is no worse than ``b`` everywhere and better somewhere."""
    better = False
    for x, y, d in zip(a, b, directions, strict=True):
        if d == "maximize":
            x, y = -x, -y
        if x > y:
            return False
        if x < y:
            better = True
    return better


def best_set(candidates: Mapping[int, Sequence[float]], directions: Sequence[str]) -> set[int]:
    """The trial numbers a ``keep: best`` study keeps: those no other candidate beats.

    With one objective these are the trials tied for the best value (Optuna's
    ``best_trial`` is one of them); with several, the Pareto front.

    Example:
        >>> best_set({0: [0.9], 1: [0.95], 2: [0.95]}, ["maximize"])
        {1, 2}
    """
    return {
        n
        for n, v in candidates.items()
        if not any(_dominates(w, v, directions) for m, w in candidates.items() if m != n)
    }


def _complete_values(study: optuna.Study) -> dict[int, list[float]]:
    from optuna.trial import TrialState

    return {
        t.number: list(t.values)
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.values
    }


# ------------------------------------------------------------------ the hook
def keep_trained_model(trial: optuna.Trial, study_file: StudyFile, result: TrainResult) -> None:
    """Save a trial's trained model if the study keeps it (the engine's hook).

    Called by the engine right after training, while the model is alive. Never
    fails the trial: a model that cannot be saved is reported as the user
    attribute ``artifact_error`` and export re-trains it instead.
    """
    cfg = study_file.config.export
    if cfg.keep == "none":
        return
    values = objective_values(study_file, result)
    if values is None:  # the engine fails this trial
        return
    study = trial.study
    directions = study_file.directions
    if cfg.keep == "best":
        candidates = _complete_values(study)
        candidates[trial.number] = values
        if trial.number not in best_set(candidates, directions):
            _drop_superseded(study, study_file, directions)
            return
    root = artifacts_root(study_file.storage, cfg.dir)
    target = trial_artifact_dir(root, study.study_name, trial.number)
    meta = {
        "study": study.study_name,
        "trial": trial.number,
        "params": dict(trial.params),
        "seed": TrialRecord.from_trial(trial).seed,
        "values": values,
        "metrics": result.metrics,
        "epochs_run": result.epochs_run,
        "hpsearch": __version__,
    }
    try:
        save_atomically(result.model, target, meta)
    except Exception as exc:  # disk full, permissions: the trial itself is fine
        trial.set_user_attr(ARTIFACT_ERROR, short_reason(f"{type(exc).__name__}: {exc}"))
        return
    trial.set_user_attr(ARTIFACT, str(target))
    if cfg.keep == "best":
        _drop_superseded(study, study_file, directions, keep=trial.number, values=values)


def save_atomically(model: keras.Model, target: Path, meta: dict[str, Any]) -> None:
    """Write ``model.keras`` and ``artifact.json`` into ``target`` all at once.

    Everything goes to a temporary sibling folder that is renamed into place
    (:func:`hpsearch.atomic.atomic_dir`), so a crash leaves either the old folder
    or the new one, never a mix. An existing ``target`` is replaced: a study of the
    same name was deleted and made again.
    """
    with atomic_dir(target, replace=True) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.save(tmp / MODEL_FILE)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")


def _drop_superseded(
    study: optuna.Study,
    study_file: StudyFile,
    directions: Sequence[str],
    *,
    keep: int | None = None,
    values: list[float] | None = None,
) -> None:
    """Delete the artifacts of trials no longer needed by ``keep: best``.

    A finished trial keeps its artifact while it is best (or Pareto-optimal)
    among the COMPLETE trials and the one being saved (``keep``); failed and
    pruned trials never need one. Trials still running elsewhere are left alone.
    """
    from optuna.trial import TrialState

    candidates = _complete_values(study)
    if keep is not None and values is not None:
        candidates[keep] = values
    needed = best_set(candidates, directions)
    root = artifacts_root(study_file.storage, study_file.config.export.dir)
    for t in study.get_trials(deepcopy=False):
        path = TrialRecord.from_trial(t).artifact
        if not path or t.number in needed or t.number == keep:
            continue
        if t.state in (TrialState.RUNNING, TrialState.WAITING):
            continue
        _remove_artifact(Path(path), root)


def _remove_artifact(path: Path, root: Path) -> None:
    """Delete an artifact folder, only if it is one of ours under ``root``."""
    try:
        path = path.resolve()
        if path.is_relative_to(root.resolve()) and (path / META_FILE).is_file():
            shutil.rmtree(path, ignore_errors=True)
    except OSError:
        pass


# ------------------------------------------------------------------ reading
def find_artifact(
    study: optuna.Study, trial: optuna.trial.FrozenTrial, storage: str, folder: str | None = None
) -> Path | None:
    """The folder of ``trial``'s kept model, if it still exists and is really that trial's.

    The path recorded on the trial is tried first, then the same layout under
    the artifacts folder of ``storage`` (for a storage moved together with its
    artifacts folder).
    """
    candidates = []
    kept = TrialRecord.from_trial(trial).artifact
    if kept:
        candidates.append(Path(kept))
    candidates.append(
        trial_artifact_dir(artifacts_root(storage, folder), study.study_name, trial.number)
    )
    for path in candidates:
        try:
            meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if (
            meta.get("study") == study.study_name
            and meta.get("trial") == trial.number
            and meta.get("params") == trial.params
            and (path / MODEL_FILE).is_file()
        ):
            return path
    return None
