"""hpsearch.results on tiny studies made without training: open_study, list_studies,
best_trials, study_file_of.

The studies are made as ``hpsearch run`` makes them (``create_or_join`` records what
produced them, ``work`` runs the queued budget) with a trivial ``evaluate``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from conftest import small_study

from hpsearch import best_trials, list_studies, open_study
from hpsearch.engines import Progress, create_or_join, top_up, work
from hpsearch.exceptions import ConfigError, HpsearchError, StudyNotFoundError
from hpsearch.results import study_file_of
from hpsearch.search import make_pruner, make_sampler
from hpsearch.storage import open_storage
from hpsearch.study import study_from_dict


def make_study(url: str, name: str, n_trials: int = 3, engine: str = "optuna", **changes: Any):
    """An hpsearch study with ``n_trials`` finished trials; trial i has value (i+1)/10."""
    raw = small_study(search__n_trials=n_trials, **changes) | {"name": name, "storage": url}
    sf = study_from_dict(raw)
    study, _ = create_or_join(
        sf,
        open_storage(url),
        make_sampler(sf.config.search, sf.space, len(sf.objectives)),
        make_pruner(sf.config.search, 2, len(sf.objectives)),
        {"name": "digits"},
        engine=engine,
    )
    top_up(study, n_trials)

    def evaluate(trial: optuna.Trial) -> float | list[float]:
        sf.space.suggest(trial)
        value = (trial.number + 1) / 10
        return value if len(sf.objectives) == 1 else [value, 100.0 * (trial.number + 1)]

    progress = Progress("val_accuracy", n_trials, quiet=True)
    work(study, sf, None, progress, evaluate=evaluate)
    return sf, study


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


# ------------------------------------------------------------------ open_study
def test_open_study_by_file_by_name_and_with_another_storage(tmp_path, url):
    make_study(url, "tiny")
    file = tmp_path / "tiny.yaml"
    file.write_text(yaml.safe_dump(small_study() | {"name": "tiny", "storage": url}))
    assert len(open_study(file).trials) == 3
    assert open_study(str(file)).study_name == "tiny"
    assert open_study("tiny", url).best_value == pytest.approx(0.3)

    elsewhere = tmp_path / "elsewhere.yaml"  # a file naming a storage that does not exist
    missing = tmp_path / "missing.db"
    elsewhere.write_text(
        yaml.safe_dump(small_study() | {"name": "tiny", "storage": f"sqlite:///{missing}"})
    )
    with pytest.raises(ConfigError, match=r"no database at .*missing\.db"):
        open_study(elsewhere)
    assert not missing.exists()  # reading creates no database
    assert open_study(elsewhere, url).study_name == "tiny"  # the storage given wins


def test_open_study_names_the_studies_a_storage_has(url):
    make_study(url, "alpha", 1)
    make_study(url, "beta", 1)
    with pytest.raises(StudyNotFoundError) as info:
        open_study("gamma", url)
    assert str(info.value) == f"no study 'gamma' in {url} (studies there: alpha, beta)"


def test_open_study_uses_the_default_storage(tmp_path, monkeypatch, url):
    make_study(url, "tiny", 1)
    monkeypatch.setenv("HPSEARCH_STORAGE", url)
    assert open_study("tiny").study_name == "tiny"


# ------------------------------------------------------------------ list_studies
def test_list_studies_gives_engine_counts_and_best(url):
    make_study(url, "optuna_one", 3)
    make_study(url, "by_sklearn", 2, engine="sklearn")
    make_study(url, "two_goals", 2, objective=["val_accuracy", "params"])
    optuna.create_study(study_name="empty", storage=url)
    rows = {row.name: row for row in list_studies(url)}
    assert sorted(rows) == ["by_sklearn", "empty", "optuna_one", "two_goals"]
    one = rows["optuna_one"]
    assert (one.engine, one.directions, one.counts) == ("optuna", ["maximize"], {"COMPLETE": 3})
    assert one.best == [pytest.approx(0.3)]
    assert rows["by_sklearn"].engine == "sklearn"
    assert rows["two_goals"].directions == ["maximize", "minimize"]
    assert rows["two_goals"].best is None  # no single best with two objectives
    assert (rows["empty"].counts, rows["empty"].best) == ({}, None)


def test_list_studies_of_a_missing_database_creates_nothing(tmp_path):
    with pytest.raises(ConfigError, match="no database at"):
        list_studies(f"sqlite:///{tmp_path / 'none.db'}")
    assert not list(tmp_path.iterdir())


def test_list_studies_counts_every_state(url):
    _, study = make_study(url, "mixed", 2)
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.WAITING))
    (row,) = list_studies(url)
    assert row.counts == {"COMPLETE": 2, "FAIL": 1, "WAITING": 1}


# ------------------------------------------------------------------ best_trials
def test_best_trials_of_one_and_of_two_objectives(url):
    _, one = make_study(url, "one", 3)
    assert [t.number for t in best_trials(one)] == [2]
    _, two = make_study(url, "two", 3, objective=["val_accuracy", "params"])
    # value and params both grow with the number: every trial is on the Pareto front
    assert sorted(t.number for t in best_trials(two)) == [0, 1, 2]
    two.add_trial(optuna.trial.create_trial(values=[0.05, 1000.0]))  # beaten by every one
    assert sorted(t.number for t in best_trials(two)) == [0, 1, 2]
    assert best_trials(optuna.create_study(study_name="x", storage=url)) == []


# ------------------------------------------------------------------ study_file_of
def test_study_file_of_rebuilds_the_file_a_study_ran_with(url):
    sf, study = make_study(url, "tiny", 1, search__seed=11)
    again = study_file_of(open_study("tiny", url))
    assert again.name == "tiny" and again.config == sf.config
    assert again.config.search.seed == 11
    plain = optuna.create_study(study_name="plain", storage=url)
    with pytest.raises(HpsearchError, match="study 'plain' was not created by hpsearch"):
        study_file_of(plain)
