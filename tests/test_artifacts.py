"""hpsearch.artifacts: where kept models go, which are kept, and finding them again.

No Keras: a trained model is a stand-in whose ``save`` writes a file, as
``keras.Model.save`` does; the trials are real Optuna trials in SQLite.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import optuna
import pytest
from conftest import small_study

from hpsearch.artifacts import (
    ARTIFACT_ATTR,
    artifacts_root,
    find_artifact,
    keep_trained_model,
    objective_values,
    trial_artifact_dir,
)
from hpsearch.study import study_from_dict


class FakeModel:
    """Saves like ``keras.Model.save``: one file at the path given."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def save(self, path: Path) -> None:
        if self.fail:
            raise OSError("No space left on device")
        Path(path).write_bytes(b"weights")


def result(accuracy: float, params: int = 100, model: Any = None, **metrics: float) -> Any:
    """What ``training.train`` returns, as far as keeping a model needs it."""
    return SimpleNamespace(
        model=model or FakeModel(),
        metrics={"val_accuracy": accuracy, **metrics},
        param_count=params,
        latency_ms=None,
        epochs_run=2,
    )


# ------------------------------------------------------------------ where
def test_artifacts_sit_beside_a_storage_file_or_in_export_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert artifacts_root(f"sqlite:///{tmp_path}/runs.db") == tmp_path / "runs_artifacts"
    assert artifacts_root("sqlite:///runs.db") == tmp_path / "runs_artifacts"  # from the cwd
    assert artifacts_root(f"journal:///{tmp_path}/j.log") == tmp_path / "j_artifacts"
    assert artifacts_root("x.jsonl") == tmp_path / "x_artifacts"
    assert artifacts_root("sqlite:///runs.db", "kept") == tmp_path / "kept"  # export.dir wins
    assert artifacts_root("sqlite:///runs.db", "/abs/kept") == Path("/abs/kept")


def test_artifacts_of_a_database_server_go_to_the_data_folder_without_credentials(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    root = artifacts_root("postgresql+psycopg://me:secret@db.example:5433/runs")
    assert root == tmp_path / "hpsearch" / "artifacts" / "postgresql_db.example_5433_runs"
    assert "secret" not in str(root)
    redis = artifacts_root("redis://:pw@cache.example:6379/0")
    assert redis == tmp_path / "hpsearch" / "artifacts" / "redis_cache.example_6379_0"


def test_a_trial_folder_name_is_safe_for_any_study_name(tmp_path):
    assert trial_artifact_dir(tmp_path, "mnist", 3) == tmp_path / "mnist" / "trial_3"
    odd = trial_artifact_dir(tmp_path, "../a b/c", 0)
    assert odd.parent.parent == tmp_path and odd.name == "trial_0"
    assert "/" not in odd.parent.name and " " not in odd.parent.name


# ------------------------------------------------------------------ objective_values
def test_objective_values_come_from_the_model_and_the_logs():
    sf = study_from_dict(
        small_study(objective=["val_accuracy", "params", "latency"], search__pruner="none")
        | {"name": "s"}
    )
    trained = result(0.8, params=1234)
    trained.latency_ms = 0.5
    assert objective_values(sf, trained) == [0.8, 1234.0, 0.5]
    trained.metrics = {"accuracy": 0.9}  # no val_accuracy: the engine fails this trial
    assert objective_values(sf, trained) is None


# ------------------------------------------------------------------ keep_trained_model
def kept_study(tmp_path: Path, keep: str, **changes: Any) -> tuple[Any, optuna.Study]:
    raw = small_study(export={"keep": keep}, **changes)
    raw |= {"name": "kept", "storage": f"sqlite:///{tmp_path / 'runs.db'}"}
    sf = study_from_dict(raw)
    study = optuna.create_study(study_name="kept", storage=sf.storage, directions=sf.directions)
    return sf, study


def run_trial(study: optuna.Study, sf: Any, trained: Any) -> optuna.trial.FrozenTrial:
    """One trial as the engine runs it: suggest, train (here: ``trained``), keep, tell."""
    trial = study.ask()
    sf.space.suggest(trial)
    trial.set_user_attr("seed", 10 + trial.number)
    keep_trained_model(trial, sf, trained)
    study.tell(trial, trained.metrics["val_accuracy"])
    return study.trials[trial.number]


def kept_trials(tmp_path: Path) -> list[str]:
    root = tmp_path / "runs_artifacts" / "kept"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_keep_best_keeps_a_trial_while_it_is_best(tmp_path):
    sf, study = kept_study(tmp_path, "best")
    first = run_trial(study, sf, result(0.8))
    folder = Path(first.user_attrs[ARTIFACT_ATTR])
    assert folder == tmp_path / "runs_artifacts" / "kept" / "trial_0"
    meta = json.loads((folder / "artifact.json").read_text())
    assert (meta["study"], meta["trial"], meta["seed"], meta["values"]) == ("kept", 0, 10, [0.8])
    assert meta["params"] == first.params and (folder / "model.keras").read_bytes() == b"weights"

    worse = run_trial(study, sf, result(0.7))
    assert ARTIFACT_ATTR not in worse.user_attrs and kept_trials(tmp_path) == ["trial_0"]
    tie = run_trial(study, sf, result(0.8))  # as good as the best: kept too
    assert kept_trials(tmp_path) == ["trial_0", "trial_2"] and ARTIFACT_ATTR in tie.user_attrs
    run_trial(study, sf, result(0.9))  # better: those it beats are deleted
    assert kept_trials(tmp_path) == ["trial_3"]
    assert not [p for p in (tmp_path / "runs_artifacts" / "kept").iterdir() if ".tmp" in p.name]


def test_keep_all_and_none(tmp_path):
    sf, study = kept_study(tmp_path, "all")
    for accuracy in (0.8, 0.7, 0.9):
        run_trial(study, sf, result(accuracy))
    assert kept_trials(tmp_path) == ["trial_0", "trial_1", "trial_2"]

    other = tmp_path / "none"
    other.mkdir()
    sf, study = kept_study(other, "none")
    trial = run_trial(study, sf, result(0.8))
    assert ARTIFACT_ATTR not in trial.user_attrs and not (other / "runs_artifacts").exists()


def test_a_model_that_cannot_be_saved_is_noted_and_the_trial_goes_on(tmp_path):
    sf, study = kept_study(tmp_path, "all")
    trial = run_trial(study, sf, result(0.8, model=FakeModel(fail=True)))
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert trial.user_attrs["artifact_error"] == "OSError: No space left on device"
    assert ARTIFACT_ATTR not in trial.user_attrs and kept_trials(tmp_path) == []


# ------------------------------------------------------------------ find_artifact
def test_find_artifact_checks_that_the_folder_is_that_trials(tmp_path):
    sf, study = kept_study(tmp_path, "all")
    trial = run_trial(study, sf, result(0.8))
    folder = Path(trial.user_attrs[ARTIFACT_ATTR])
    assert find_artifact(study, trial, sf.storage) == folder

    other = copy.deepcopy(trial)
    other.params = {**trial.params, "width": 999}
    assert find_artifact(study, other, sf.storage) is None  # not the same trial's params
    (folder / "model.keras").unlink()
    assert find_artifact(study, trial, sf.storage) is None  # no model left


def test_find_artifact_follows_a_storage_moved_with_its_artifacts(tmp_path):
    sf, study = kept_study(tmp_path, "all")
    trial = run_trial(study, sf, result(0.8))
    moved = tmp_path / "moved"
    moved.mkdir()
    (tmp_path / "runs_artifacts").rename(moved / "runs_artifacts")
    assert find_artifact(study, trial, sf.storage) is None  # the recorded path is gone
    found = find_artifact(study, trial, f"sqlite:///{moved / 'runs.db'}")
    assert found == moved / "runs_artifacts" / "kept" / "trial_0"


@pytest.mark.parametrize("keep", ["best", "all"])
def test_a_study_made_again_under_the_same_name_replaces_old_artifacts(tmp_path, keep):
    sf, study = kept_study(tmp_path, keep)
    run_trial(study, sf, result(0.8))
    optuna.delete_study(study_name="kept", storage=sf.storage)
    study = optuna.create_study(study_name="kept", storage=sf.storage, direction="maximize")
    again = run_trial(study, sf, result(0.5))
    folder = Path(again.user_attrs[ARTIFACT_ATTR])
    assert json.loads((folder / "artifact.json").read_text())["values"] == [0.5]
