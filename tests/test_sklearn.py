"""The scikit-learn engine: GridSearchCV & co. over scikeras, stored as Optuna trials."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState
from sklearn.base import is_classifier
from sklearn.model_selection import StratifiedKFold, check_cv
from typer.testing import CliRunner

import hpsearch
from hpsearch.cli import app
from hpsearch.data import load_dataset
from hpsearch.engines import StudyInterrupted
from hpsearch.engines._sklearn import KerasClassifier, StudyClassifier, run_search


def sklearn_study(write_study, name="study", **search):
    return write_study(
        name,
        data={"name": "digits", "subset": 450, "validation": 0.2, "seed": 0},
        space={
            "optimizer": {"choices": ["adam", "rmsprop"]},
            "width": {"choices": [16, 32]},
            "depth": 1,
            "epochs": 1,
            "batch_size": 64,
        },
        search={"engine": "sklearn", "method": "grid", "cv": 3, "seed": 0, **search},
    )


def test_classifier_tags_make_cv_stratified():
    est = KerasClassifier(model=None)
    assert is_classifier(est)
    y = np.repeat(np.arange(3), 10)
    assert isinstance(check_cv(4, y, classifier=is_classifier(est)), StratifiedKFold)


def test_grid_stores_every_candidate_as_cv_results_say(write_study, storage_url):
    path = sklearn_study(write_study)
    study, search = run_search(hpsearch.load_study_file(path), quiet=True)
    assert isinstance(search.cv, int) and is_classifier(search.estimator)
    ds = load_dataset(hpsearch.load_study_file(path).config.data, path.parent)
    # the folds scikit-learn used are stratified: every class in every validation fold
    folds = check_cv(search.cv, ds.y_train, classifier=True)
    assert isinstance(folds, StratifiedKFold)
    for _, test in folds.split(ds.x_train, ds.y_train):
        assert len(np.unique(ds.y_train[test])) == 10

    stored = optuna.load_study(study_name="study", storage=storage_url)
    trials = stored.get_trials()
    assert len(trials) == 4 and all(t.state == TrialState.COMPLETE for t in trials)
    results = search.cv_results_
    for i, params in enumerate(results["params"]):
        trial = next(t for t in trials if t.params == params)
        assert trial.value == pytest.approx(results["mean_test_score"][i])
        assert trial.user_attrs["fold_scores"] == pytest.approx(
            [results[f"split{k}_test_score"][i] for k in range(3)]
        )
        assert trial.user_attrs["std_test_score"] == pytest.approx(results["std_test_score"][i])
        assert trial.user_attrs["mean_fit_time"] > 0
        assert trial.distributions["optimizer"] == CategoricalDistribution(["adam", "rmsprop"])
    meta = stored.user_attrs
    assert meta["hpsearch"]["engine"] == "sklearn"
    assert meta["sklearn"]["search"] == "GridSearchCV" and meta["sklearn"]["cv"] == 3
    ranking = meta["sklearn"]["ranking"]
    assert ranking[str(stored.best_trial.number)] == 1 and sorted(ranking.values()) == [1, 2, 3, 4]
    assert meta["refit"]["trial"] == stored.best_trial.number
    assert 0.0 <= meta["refit"]["val_accuracy"] <= 1.0

    listed = CliRunner().invoke(app, ["status", "--storage", storage_url])
    assert "sklearn" in listed.output
    best = CliRunner().invoke(app, ["best", "study", "--storage", storage_url])
    assert best.exit_code == 0 and "cv_accuracy" in best.output and "refit" in best.output


def test_random_search_stores_n_iter_trials_with_distributions(write_study, storage_url):
    path = write_study(
        data={"name": "digits", "subset": 300, "seed": 0},
        space={
            "learning_rate": {"low": 1e-3, "high": 1e-2, "log": True},
            "width": {"low": 8, "high": 32},
            "depth": 1,
            "epochs": 1,
        },
        search={"engine": "sklearn", "method": "random", "n_iter": 3, "cv": 2, "refit": False},
    )
    study = hpsearch.run(hpsearch.load_study_file(path), quiet=True)
    trials = study.get_trials()
    assert len(trials) == 3
    for t in trials:
        assert 1e-3 <= t.params["learning_rate"] <= 1e-2 and 8 <= t.params["width"] <= 32
        assert t.distributions["learning_rate"] == FloatDistribution(1e-3, 1e-2, log=True)
    assert "refit" not in study.user_attrs


def test_halving_search_stores_candidates_with_their_resource(write_study, storage_url):
    path = write_study(
        data={"name": "digits", "subset": 600, "seed": 0},
        space={
            "width": {"choices": [8, 16, 32]},
            "depth": 1,
            "epochs": 3,
        },
        search={
            "engine": "sklearn",
            "method": "halving_grid",
            "cv": 2,
            "refit": False,
            "resource": "epochs",
        },
    )
    study, search = run_search(hpsearch.load_study_file(path), quiet=True)
    trials = study.get_trials()
    assert len(trials) == len(search.cv_results_["params"])
    rounds = sorted({t.user_attrs["iteration"] for t in trials})
    assert rounds == list(range(search.n_iterations_))
    first = [t for t in trials if t.user_attrs["iteration"] == 0]
    assert len(first) == 3 and {t.user_attrs["n_resources"] for t in first} == {1}
    assert all("epochs" not in t.params for t in trials)  # the resource is not a param
    last = [t for t in trials if t.user_attrs["iteration"] == rounds[-1]]
    assert all(t.user_attrs["n_resources"] > 1 for t in last)


def test_interrupted_grid_resumes_without_repeating_candidates(
    write_study, storage_url, monkeypatch
):
    path = sklearn_study(write_study, refit=False)
    fits = []
    original = StudyClassifier.fit

    def interrupting_fit(self, X, y, **kw):
        fits.append(1)
        if len(fits) == 7:  # inside the third candidate (3 folds each)
            raise KeyboardInterrupt
        return original(self, X, y, **kw)

    monkeypatch.setattr(StudyClassifier, "fit", interrupting_fit)
    with pytest.raises(StudyInterrupted):
        hpsearch.run(hpsearch.load_study_file(path), quiet=True)
    first = optuna.load_study(study_name="study", storage=storage_url).get_trials()
    assert len(first) == 2

    fits.clear()
    monkeypatch.setattr(
        StudyClassifier,
        "fit",
        lambda self, X, y, **kw: (fits.append(1), original(self, X, y, **kw))[1],
    )
    study = hpsearch.run(hpsearch.load_study_file(path), quiet=True)
    trials = study.get_trials()
    assert len(trials) == 4 and len(fits) == 2 * 3  # only the two missing candidates ran
    assert [t.params for t in trials[:2]] == [t.params for t in first]
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 4


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"space__dropout": {"low": 0.0, "high": 0.5}},
            r"space\.dropout: a grid search needs explicit values",
        ),
        ({"search__n_trials": 3}, r"search\.n_trials: got 3; the sklearn engine's budget"),
        ({"search__pruner": "median"}, r"search\.pruner: applies to the optuna engine only"),
        ({"search__scoring": "acuracy"}, r"search\.scoring: got 'acuracy'; not a scikit-learn"),
        ({"search__method": "bayes"}, r"search\.method: got 'bayes'; input should be 'grid'"),
    ],
)
def test_sklearn_settings_are_checked(write_study, tmp_path, changes, message):
    path = sklearn_study(write_study)
    import yaml

    data = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        section, name = key.split("__")
        data[section][name] = value
    path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert f"{path}: " in result.stderr
    import re

    assert re.search(message, result.stderr), result.stderr


def test_optuna_settings_refuse_sklearn_fields(write_study):
    path = write_study(search__cv=3)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "search.cv: applies to the sklearn engine only" in result.stderr
