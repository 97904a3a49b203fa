"""The scikit-learn engine on conditional spaces: a list of grids (the sum of the
branches), random search drawing a branch then its values, a model family chosen per
candidate (real Keras on digits, 1 epoch, cv 2)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import keras
import pytest
import yaml
from optuna.trial import TrialState
from sklearn.base import clone
from sklearn.model_selection import ParameterSampler
from typer.testing import CliRunner

import hpsearch
import hpsearch.models
from hpsearch.cli import app
from hpsearch.engines._sklearn import EstimatorNames, StudyClassifier, build_estimator, run_search
from hpsearch.exceptions import ConfigError

DIGITS = {"name": "digits", "subset": 300, "validation": 0.2, "seed": 0}
SHARED = {"epochs": 1, "batch_size": 64}
SKLEARN = {"engine": "sklearn", "cv": 2, "seed": 0, "refit": False}


def _write(tmp_path: Path, data: dict[str, Any], name: str = "study") -> Path:
    data.setdefault("storage", f"sqlite:///{tmp_path / 'hpsearch.db'}")
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _family_study(space: dict[str, Any], **search: Any) -> dict[str, Any]:
    return {
        "data": DIGITS,
        "model": {"family": {"choices": ["mlp", "cnn"]}},
        "space": {**SHARED, **space},
        "search": {**SKLEARN, **search},
    }


@pytest.fixture
def built(monkeypatch):
    """Every (family, builder params) the engine's model function builds."""
    calls: list[tuple[str, dict[str, Any]]] = []
    original = hpsearch.models.build_model

    def spy(family, params, input_shape, num_classes, **kwargs):  # kwargs: api=
        calls.append((family, dict(params)))
        return original(family, params, input_shape, num_classes, **kwargs)

    monkeypatch.setattr(hpsearch.models, "build_model", spy)
    return calls


def _points(study_file: Any) -> list[dict[str, Any]]:
    return study_file.space.grid_points()[1]


def _as_set(dicts: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {tuple(sorted(d.items())) for d in dicts}


# ------------------------------------------------------------------ one family
def test_a_conditional_grid_runs_the_sum_of_its_branches(tmp_path, built):
    # momentum only with sgd (the catalog's condition), l2 only without batch norm (the
    # file's): (1 + 2) x (1 + 2) = 9 candidates, not the product 2 x 2 x 2 x 2 = 16
    data = {
        "data": DIGITS,
        "model": {"family": "mlp"},
        "space": {
            **SHARED,
            "depth": 1,
            "width": 8,
            "optimizer": {"choices": ["adam", "sgd"]},
            "momentum": {"choices": [0.0, 0.9]},
            "batch_norm": {"choices": [False, True]},
            "l2": {"choices": [0.0, 0.001], "active_if": {"batch_norm": False}},
        },
        "search": {**SKLEARN, "method": "grid"},
    }
    study_file = hpsearch.load_study_file(_write(tmp_path, data))
    assert study_file.space.grid_size() == 9
    study, search = run_search(study_file, quiet=True)
    assert len(search.cv_results_["params"]) == 9
    trials = study.get_trials()
    assert len(trials) == 9 and all(t.state == TrialState.COMPLETE for t in trials)
    # exactly the branches' points, each trial with only its branch's params
    assert _as_set([t.params for t in trials]) == _as_set(_points(study_file))
    for t in trials:
        assert ("momentum" in t.params) == (t.params["optimizer"] == "sgd"), t.params
        assert ("l2" in t.params) == (t.params["batch_norm"] is False), t.params
        assert set(t.distributions) == set(t.params)
    # the builder and the optimizer got what the trial stores: momentum only with sgd
    assert len(built) == 9 * 2
    for _, hp in built:
        assert ("momentum" in hp) == (hp["optimizer"] == "sgd"), hp
        assert ("l2" in hp) == (hp["batch_norm"] is False), hp


def test_random_search_gives_momentum_only_to_sgd_candidates(tmp_path):
    data = {
        "data": DIGITS,
        "model": {"family": "mlp"},
        "space": {
            **SHARED,
            "depth": 1,
            "width": 8,
            "optimizer": {"choices": ["adam", "sgd"]},
            "momentum": {"low": 0.5, "high": 0.9},
        },
        "search": {**SKLEARN, "method": "random", "n_iter": 4, "seed": 1},
    }
    study = hpsearch.run(hpsearch.load_study_file(_write(tmp_path, data)), quiet=True)
    trials = study.get_trials()
    assert len(trials) == 4
    assert {t.params["optimizer"] for t in trials} == {"adam", "sgd"}
    for t in trials:
        assert ("momentum" in t.params) == (t.params["optimizer"] == "sgd"), t.params
        if "momentum" in t.params:
            assert 0.5 <= t.params["momentum"] <= 0.9


# ------------------------------------------------------------------ a family choice
FAMILY_SPACE = {
    "optimizer": {"choices": ["adam", "sgd"]},
    "momentum": {"low": 0.5, "high": 0.9},
    "mlp": {"depth": {"choices": [1, 2]}, "width": {"choices": [8, 16], "per_layer": True}},
    "cnn": {"blocks": 1, "filters": {"choices": [4, 8]}, "dense_width": 0},
}


def test_random_search_with_a_family_choice_stores_each_candidates_own_family(tmp_path, built):
    path = _write(tmp_path, _family_study(FAMILY_SPACE, method="random", n_iter=6, seed=2))
    study_file = hpsearch.load_study_file(path)
    study, search = run_search(study_file, quiet=True)
    trials = study.get_trials()
    # a candidate drawn twice (the same active values: a cnn's depth and widths are not
    # its) is evaluated and stored once
    drawn = ParameterSampler(search.param_distributions, 6, random_state=search.random_state)
    distinct = _as_set([study_file.space.active(p) for p in drawn])
    assert len(trials) == len(distinct) == len(search.cv_results_["params"]) >= 4
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert {t.params["family"] for t in trials} == {"mlp", "cnn"}  # seeded
    for t in trials:
        keys = set(t.params) - {"family", "optimizer", "momentum"}
        if t.params["family"] == "mlp":
            depth = t.params["mlp.depth"]
            assert keys == {"mlp.depth", *(f"mlp.width_{i}" for i in range(1, depth + 1))}
        else:
            assert keys == {"cnn.filters"}
        assert ("momentum" in t.params) == (t.params["optimizer"] == "sgd"), t.params
        # stored as the Optuna engine stores them
        assert t.distributions == study_file.space.optuna_distributions(t.params)
    # each candidate was built as its family, with its own names
    for (family, hp), params in zip(built[::2], search.cv_results_["params"], strict=True):
        assert family == params["family"] == hp["family"]
        if family == "cnn":
            assert hp["filters"] == params["cnn.filters"] and "depth" not in hp
        else:
            assert hp["width"] == [params[f"mlp.width_{i}"] for i in range(1, hp["depth"] + 1)]
            assert "filters" not in hp and "blocks" not in hp


def test_a_family_choice_grid_refits_best_and_exports_each_family(tmp_path, built):
    space = {
        "optimizer": "adam",
        "mlp": {"depth": 1, "width": {"choices": [8, 16]}},
        "cnn": {"blocks": 1, "filters": 4, "dense_width": 0},
    }
    path = _write(tmp_path, _family_study(space, method="grid", refit=True))
    study_file = hpsearch.load_study_file(path)
    assert study_file.space.grid_size() == 3
    study = hpsearch.run(study_file, quiet=True)
    trials = study.get_trials()
    assert sorted(tuple(sorted(t.params.items())) for t in trials) == [
        (("family", "cnn"),),
        (("family", "mlp"), ("mlp.width", 8)),
        (("family", "mlp"), ("mlp.width", 16)),
    ]
    # the refit built the best trial's family
    refit = study.user_attrs["refit"]
    best = study.best_trial
    assert refit["trial"] == best.number and refit["params"] == best.params
    assert built[-1][0] == best.params["family"]

    storage = study_file.storage
    shown = CliRunner().invoke(app, ["best", "study", "--storage", storage])
    assert shown.exit_code == 0, shown.output
    assert best.params["family"] in shown.output
    for t in trials:
        out = tmp_path / f"export{t.number}"
        result = CliRunner().invoke(
            app,
            ["export", str(path), "--trial", str(t.number), "--out", str(out), "-f", "keras"],
        )
        assert result.exit_code == 0, result.output
        model = keras.models.load_model(out / "model.keras")
        kinds = {type(layer).__name__ for layer in _layers(model)}
        assert ("Conv2D" in kinds) == (t.params["family"] == "cnn"), kinds
        if t.params["family"] == "mlp":
            dense = [layer for layer in _layers(model) if type(layer).__name__ == "Dense"]
            assert dense[0].units == t.params["mlp.width"]


def _layers(model: keras.Model) -> list[keras.layers.Layer]:
    out = []
    for layer in model.layers:
        out.append(layer)
        if isinstance(layer, keras.Model):
            out += _layers(layer)
    return out


def test_halving_on_epochs_trains_each_family_for_the_rounds_epochs(tmp_path, monkeypatch):
    # each section sets its own epochs (cnn.epochs, mlp.epochs): the resource wins
    space = {
        "batch_size": 64,
        "optimizer": {"choices": ["adam", "rmsprop"]},
        "mlp": {"depth": 1, "width": 8, "epochs": 2},
        "cnn": {"blocks": 1, "filters": 4, "dense_width": 0, "epochs": 2},
    }
    data = _family_study({}, method="halving_grid", resource="epochs", factor=2)
    data["space"] = space
    trained: list[int] = []
    original = StudyClassifier.fit

    def spy(self, X, y, **kw):
        result = original(self, X, y, **kw)
        trained.append(len(self.history_["loss"]))
        return result

    monkeypatch.setattr(StudyClassifier, "fit", spy)
    study, search = run_search(hpsearch.load_study_file(_write(tmp_path, data)), quiet=True)
    trials = study.get_trials()
    assert len(trials) == len(search.cv_results_["params"]) == 4 + 2
    assert {t.params["family"] for t in trials if t.user_attrs["iteration"] == 0} == {"mlp", "cnn"}
    assert all("epochs" not in t.params and "cnn.epochs" not in t.params for t in trials)
    assert trained == [1] * 4 * 2 + [2] * 2 * 2


# ------------------------------------------------------------------ the names
def _space_file(tmp_path: Path, data: dict[str, Any]) -> Any:
    return hpsearch.load_study_file(_write(tmp_path, data))


def test_the_estimator_builds_each_grid_point_as_the_optuna_engine_does(tmp_path):
    space = {**FAMILY_SPACE, "momentum": {"choices": [0.5, 0.9]}}
    study_file = _space_file(tmp_path, _family_study(space, method="grid"))
    estimator = build_estimator(study_file, seed=0)
    names = estimator.get_params()["space"]
    assert isinstance(names, EstimatorNames)
    # the stored names are the estimator's: scikit-learn and scikeras take dots
    assert names.encode({"cnn.filters": 4, "mlp.width_2": 8}) == {
        "cnn.filters": 4,
        "mlp.width_2": 8,
    }
    points = _points(study_file)
    assert len(points) == study_file.space.grid_size() == 2 * 3 * 3 + 2 * 3
    for point in points:
        candidate = clone(estimator).set_params(**names.encode(point))
        assert candidate.get_params()["space"] is names  # clones share it
        hp = names.hyperparameters(candidate.get_params())
        assert hp == study_file.space.params_from_optuna(point), point


def test_names_scikit_learn_would_misread_are_encoded_and_decoded(tmp_path):
    data = {
        "data": DIGITS,
        "model": {"family": "builders:poisonable"},
        "space": {
            **SHARED,
            "poison": 0,
            "units": 8,
            "verbose": {"choices": [1, 2]},  # scikeras' own parameter
            "n__extra": {"choices": [1, 2]},  # `__` is a nested parameter to scikit-learn
            "extra_": 3,  # scikeras drops names ending with _
        },
        "search": {**SKLEARN, "method": "grid"},
    }
    study_file = _space_file(tmp_path, data)
    estimator = build_estimator(study_file, seed=0)
    params = estimator.get_params()
    names = params["space"]
    assert params["verbose"] == 0  # still scikeras' own
    assert params["hp[verbose]"] == 1 and params["hp[n--extra]"] == 1 and params["hp[extra-]"] == 3
    assert names.decode({"hp[n--extra]": 2, "hp[verbose]": 2}) == {"n__extra": 2, "verbose": 2}
    study, search = run_search(study_file, quiet=True)
    assert {tuple(sorted(p)) for p in search.cv_results_["params"]} == {
        ("hp[n--extra]", "hp[verbose]")
    }
    trials = study.get_trials()
    assert len(trials) == 4 and all(t.state == TrialState.COMPLETE for t in trials)
    assert _as_set([t.params for t in trials]) == _as_set(_points(study_file))
    assert all(set(t.params) == {"verbose", "n__extra"} for t in trials)


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        (
            {"mlp": {"epochs": {"choices": [1, 2]}}},
            r"space\.mlp\.epochs: with resource: epochs the halving search sets the epochs",
        ),
        (
            {"mlp": {"epochs": 2}, "cnn": {"epochs": 3}},
            r"space\.mlp\.epochs: with resource: epochs the halving search trains every "
            r"family's candidates for the same epochs",
        ),
        (
            {"cnn": {"epochs": 3}},
            r"space\.cnn\.epochs: .* give epochs once, outside the sections",
        ),
    ],
)
def test_halving_on_epochs_refuses_epochs_that_differ_between_families(tmp_path, sections, message):
    data = _family_study({}, method="halving_grid", resource="epochs")
    data["space"] = {"optimizer": {"choices": ["adam", "sgd"]}, **sections}
    result = CliRunner().invoke(app, ["validate", str(_write(tmp_path, data))])
    assert result.exit_code == 2
    assert re.search(message, result.stderr), result.stderr


def test_two_names_that_would_be_one_estimator_parameter_are_refused(tmp_path):
    data = {
        "data": DIGITS,
        "model": {"family": "builders:poisonable"},
        "space": {"poison": 0, "n__x": 1, "hp[n--x]": 2},
        "search": {**SKLEARN, "method": "grid"},
    }
    with pytest.raises(ConfigError, match=r"n__x and hp\[n--x\] are one parameter"):
        build_estimator(_space_file(tmp_path, data), seed=0)
