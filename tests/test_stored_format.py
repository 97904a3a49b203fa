"""Studies written by earlier versions still open: ``tests/fixtures/old_format.db`` was
made by main before the typed records (2026-12-02, ``hpsearch run`` of a 3-trial digits
study named ``old_format``), and every reader goes through today's records."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

import hpsearch
from hpsearch.cli import app
from hpsearch.config import apply_overrides
from hpsearch.results import study_file_of
from hpsearch.study import StudyMeta, study_from_dict

FIXTURE = Path(__file__).parent / "fixtures" / "old_format.db"


@pytest.fixture
def old_db(tmp_path: Path) -> str:
    shutil.copy(FIXTURE, tmp_path / "old.db")
    return f"sqlite:///{tmp_path / 'old.db'}"


def test_the_previous_format_reads_as_study_meta(old_db):
    study = optuna.load_study(study_name="old_format", storage=old_db)
    meta = StudyMeta.of(study)
    assert meta.recorded and meta.engine == "optuna" and meta.version == "0.1.0"
    assert meta.objectives == ["val_accuracy"]
    assert meta.config is not None and meta.config["search"]["n_trials"] == 3
    assert meta.data["train"] == 225 and meta.fingerprint
    assert StudyMeta.from_dict(meta.to_dict()) == meta
    assert meta.to_dict() == study.user_attrs["hpsearch"]  # the same stored form


def test_the_cli_reads_a_study_of_the_previous_format(old_db, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["status", "--storage", old_db])
    assert result.exit_code == 0 and "old_format" in result.output and "optuna" in result.output
    result = runner.invoke(app, ["best", "old_format", "--storage", old_db, "--json"])
    assert result.exit_code == 0, result.output
    best = json.loads(result.output)[0]
    assert set(best["params"]) >= {"depth", "width", "optimizer", "learning_rate"}
    out = tmp_path / "pages"
    result = runner.invoke(app, ["dashboard", "old_format", "--storage", old_db, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "old_format.html").stat().st_size > 100_000


def test_a_study_of_the_previous_format_resumes(old_db):
    study = hpsearch.open_study("old_format", storage=old_db)
    stored = study_file_of(study)
    raw = apply_overrides(stored.config.model_dump(mode="json"), ["search.n_trials=4"])
    raw["storage"] = old_db
    resumed = hpsearch.run(study_from_dict(raw, source=stored.source), quiet=True)
    complete = [t for t in resumed.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 4
    assert StudyMeta.of(resumed).version == "0.1.0"  # the record of its creation is kept
