"""Unit tests of hpsearch.space: conditions as catalog data, the per-layer name codec,
and the Optuna and scikit-learn adapters of one space."""

from __future__ import annotations

import dataclasses
import doctest
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

import hpsearch.models._catalog as catalog
import hpsearch.space._layers as layers
from hpsearch.config._schema import StudyConfig
from hpsearch.exceptions import ConfigError
from hpsearch.search import conditional_grid_sampler
from hpsearch.space import (
    Condition,
    SearchSpace,
    fit_to_depth,
    join_layers,
    layer_name,
    layer_names,
    parse_layer_name,
    trim_layers,
)


def _space(space: dict[str, Any], family: str = "mlp") -> SearchSpace:
    return SearchSpace(StudyConfig.model_validate({"space": space, "model": {"family": family}}))


class _Recorder:
    """A trial that answers every suggestion with a given value (or the range's low end
    and the first choice) and records the names in the order they were asked."""

    def __init__(self, **answers: Any) -> None:
        self.answers, self.asked = answers, []

    def _answer(self, name: str, default: Any) -> Any:
        self.asked.append(name)
        return self.answers.get(name, default)

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self._answer(name, list(choices)[0])

    def suggest_int(self, name: str, low: int, high: int, **_: Any) -> int:
        return self._answer(name, low)

    def suggest_float(self, name: str, low: float, high: float, **_: Any) -> float:
        return self._answer(name, low)


# momentum declared first: the space still suggests it after the optimizer it reads
SGD_SPACE = {
    "momentum": {"low": 0.0, "high": 0.9},
    "depth": {"low": 1, "high": 3},
    "width": {"low": 16, "high": 64, "step": 16, "per_layer": True},
    "optimizer": {"choices": ["adam", "sgd"]},
    "dropout": {"low": 0.0, "high": 0.2, "step": 0.1},
}


# ---------------------------------------------------------------- conditions
def test_momentum_is_active_only_with_sgd_as_catalog_data():
    assert catalog.TRAINING["momentum"].active_if == (Condition("optimizer", ("sgd",)),)
    space = _space(SGD_SPACE)
    assert space.dims["momentum"].active_if == (Condition("optimizer", ("sgd",)),)
    assert not space.uses("momentum", {"optimizer": "adam"})
    assert space.uses("momentum", {"optimizer": "sgd"})
    assert not space.uses("momentum", {})  # the optimizer not chosen (or inactive)
    assert space.uses("width", {})  # no conditions


def test_suggestion_order_and_skipping_momentum():
    space = _space(SGD_SPACE)
    assert [d.name for d in space.ordered()][:5] == [
        "depth",
        "width",
        "optimizer",
        "dropout",
        "learning_rate",
    ]
    # the conditional ones last: momentum, then the catalog's (fixed) beta_1
    assert [d.name for d in space.ordered()][-2:] == ["momentum", "beta_1"]

    adam = _Recorder(depth=2)
    params = space.suggest(adam)
    assert adam.asked == ["depth", "width_1", "width_2", "optimizer", "dropout"]
    assert "momentum" not in params and params["width"] == [16, 16]

    sgd = _Recorder(depth=1, optimizer="sgd", momentum=0.5)
    params = space.suggest(sgd)
    assert sgd.asked == ["depth", "width_1", "optimizer", "dropout", "momentum"]
    assert params["momentum"] == 0.5


def test_a_fixed_momentum_is_left_out_without_sgd():
    assert "momentum" not in _space({"momentum": 0.5}).example_params()
    assert _space({"momentum": 0.5, "optimizer": "sgd"}).example_params()["momentum"] == 0.5


def test_active_drops_missing_layers_and_inactive_parameters():
    space = _space(SGD_SPACE)
    flat = {"depth": 2, "width_1": 16, "width_2": 32, "width_3": 48, "optimizer": "adam"}
    flat |= {"dropout": 0.1, "momentum": 0.3}
    assert space.active(flat) == {
        "depth": 2,
        "width_1": 16,
        "width_2": 32,
        "optimizer": "adam",
        "dropout": 0.1,
    }
    assert space.active({**flat, "optimizer": "sgd"})["momentum"] == 0.3
    # a fixed optimizer decides too
    fixed_sgd = _space({"optimizer": "sgd", "momentum": {"low": 0.0, "high": 0.9}})
    assert fixed_sgd.active({"momentum": 0.3}) == {"momentum": 0.3}


def test_describe_names_the_condition():
    rows = dict(_space(SGD_SPACE).describe())
    assert rows["momentum"] == "float in [0, 0.9] (only with optimizer sgd)"
    assert "only" not in rows["optimizer"]


def test_a_searched_parameter_no_trial_uses_is_refused():
    with pytest.raises(ConfigError, match="momentum is used only with optimizer sgd") as info:
        _space({"momentum": {"low": 0.1, "high": 0.9}, "optimizer": "adam"})
    assert info.value.path == "space.momentum"


ADAM_FAMILY = ("adam", "adamax", "nadam")
BETA_SPACE = {
    "optimizer": {"choices": ["adam", "sgd"]},
    "beta_1": {"low": 0.8, "high": 0.99},
    "momentum": {"low": 0.0, "high": 0.9},
}


def test_beta_1_is_active_only_with_the_adam_family_as_catalog_data():
    pdef = catalog.TRAINING["beta_1"]
    assert pdef.active_if == (Condition("optimizer", ADAM_FAMILY),)
    assert (pdef.kind, pdef.default, pdef.allowed()) == ("float", 0.9, "a number in [0, 1)")
    assert not pdef.check(1.0) and pdef.check(0.0)
    space = _space(BETA_SPACE)
    assert all(space.uses("beta_1", {"optimizer": name}) for name in ADAM_FAMILY)
    assert not space.uses("beta_1", {"optimizer": "sgd"})
    assert not space.uses("beta_1", {"optimizer": "rmsprop"})
    assert (
        dict(space.describe())["beta_1"]
        == "float in [0.8, 0.99] (only with optimizer adam or adamax or nadam)"
    )


def test_beta_1_is_suggested_only_for_adam_trials():
    space = _space(BETA_SPACE)
    adam = _Recorder(optimizer="adam", beta_1=0.95)
    params = space.suggest(adam)
    assert adam.asked[-1] == "beta_1" and "momentum" not in adam.asked
    assert params["beta_1"] == 0.95 and "momentum" not in params
    sgd = _Recorder(optimizer="sgd")
    params = space.suggest(sgd)
    assert "beta_1" not in sgd.asked and "beta_1" not in params
    assert sgd.asked[-1] == "momentum"

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    optimizers = set()
    for _ in range(12):
        trial = study.ask()
        params = space.suggest(trial)
        optimizers.add(params["optimizer"])
        assert ("beta_1" in trial.params) == (params["optimizer"] == "adam")
        assert ("momentum" in trial.params) == (params["optimizer"] == "sgd")
        assert set(space.active(trial.params)) == set(trial.params)
        study.tell(trial, 0.0)
    assert optimizers == {"adam", "sgd"}


def test_a_study_that_does_not_search_beta_1_stores_no_beta_1_param():
    space = _space({"optimizer": {"choices": ["adam", "nadam", "sgd"]}})
    assert "beta_1" not in space.searched and space.fixed["beta_1"] == 0.9
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(6):
        trial = study.ask()
        params = space.suggest(trial)
        assert set(trial.params) == {"optimizer"}
        # the fixed default reaches the adam family's optimizers only
        assert params.get("beta_1") == (0.9 if params["optimizer"] != "sgd" else None)
        study.tell(trial, 0.0)


def test_a_searched_beta_1_with_a_fixed_sgd_is_refused():
    with pytest.raises(
        ConfigError,
        match=r"^space\.beta_1: beta_1 is used only with optimizer adam or adamax or nadam; "
        r"fix it or search adam or adamax or nadam$",
    ) as info:
        _space({"optimizer": "sgd", "beta_1": {"low": 0.8, "high": 0.99}})
    assert info.value.path == "space.beta_1"
    _space({"optimizer": "sgd", "beta_1": 0.95})  # a fixed value is left out, not refused
    with pytest.raises(ConfigError, match=r"space\.beta_1\.high: got 1\.0"):
        _space({"beta_1": {"low": 0.8, "high": 1.0}})


@pytest.fixture
def l2_with_relu_or_elu(monkeypatch):
    """Any parameter may have conditions, on any parameter, with several values."""
    cond = Condition("activation", ("relu", "elu"))
    with_cond = dataclasses.replace(catalog.MLP["l2"], active_if=(cond,))
    monkeypatch.setitem(catalog.MLP, "l2", with_cond)
    return cond


def test_conditions_are_evaluated_generically(l2_with_relu_or_elu):
    space = _space(
        {
            "l2": {"low": 0.0, "high": 0.1},
            "activation": {"choices": ["tanh", "elu"]},
            "optimizer": {"choices": ["sgd", "adam"]},
            "momentum": {"low": 0.0, "high": 0.9},
        }
    )
    names = [d.name for d in space.ordered()]
    assert names.index("l2") > names.index("activation")
    assert names.index("momentum") > names.index("optimizer")
    # the conditional ones in declaration order (beta_1: the catalog's, fixed)
    assert names[-3:] == ["l2", "momentum", "beta_1"]

    tanh = _Recorder(activation="tanh", optimizer="sgd")
    assert "l2" not in space.suggest(tanh) and "l2" not in tanh.asked
    elu = _Recorder(activation="elu")
    assert space.suggest(elu)["l2"] == 0.0 and elu.asked[-2:] == ["l2", "momentum"]
    assert "l2" not in space.active({"activation": "tanh", "l2": 0.01})
    assert dict(space.describe())["l2"].endswith("(only with activation relu or elu)")

    with pytest.raises(ConfigError, match=r"l2 is used only with activation relu or elu; fix "):
        _space({"l2": {"low": 0.0, "high": 0.1}, "activation": {"choices": ["tanh"]}})


def test_chained_and_cyclic_conditions(monkeypatch, l2_with_relu_or_elu):
    # activation only with sgd, l2 only with relu or elu: l2 needs both
    on_sgd = dataclasses.replace(
        catalog.MLP["activation"], active_if=(Condition("optimizer", ("sgd",)),)
    )
    monkeypatch.setitem(catalog.MLP, "activation", on_sgd)
    space = _space(
        {
            "l2": {"low": 0.0, "high": 0.1},
            "activation": {"choices": ["relu", "tanh"]},
            "optimizer": {"choices": ["adam", "sgd"]},
        }
    )
    names = [d.name for d in space.ordered()]
    assert names.index("optimizer") < names.index("activation") < names.index("l2")
    assert space.suggest(_Recorder(optimizer="sgd"))["l2"] == 0.0
    adam = space.suggest(_Recorder(optimizer="adam"))
    assert "activation" not in adam and "l2" not in adam
    assert space.active({"optimizer": "adam", "activation": "relu", "l2": 0.1}) == {
        "optimizer": "adam"
    }

    loop = dataclasses.replace(catalog.MLP["activation"], active_if=(Condition("l2", (0.0,)),))
    monkeypatch.setitem(catalog.MLP, "activation", loop)
    with pytest.raises(ConfigError, match="conditions depend on each other"):
        _space({})


# --------------------------------------------------------------------- codec
@pytest.mark.parametrize("name", ["width", "kernel_size", "conv_dropout", "x_1"])
def test_layer_name_round_trip(name):
    for i in (1, 2, 9, 10, 64):
        assert parse_layer_name(layer_name(name, i)) == (name, i)
    assert [parse_layer_name(k) for k in layer_names(name, 3)] == [(name, i) for i in (1, 2, 3)]


@pytest.mark.parametrize("key", ["width", "width_", "_1", "width_0", "width_01", "width_x"])
def test_parse_layer_name_refuses_other_keys(key):
    assert parse_layer_name(key) is None


def test_expanding_and_trimming_to_depth():
    assert layer_names("width", 0) == []
    assert fit_to_depth([1, 2, 3], 2) == [1, 2] and fit_to_depth((1, 2), 2) == [1, 2]
    assert fit_to_depth(7, 3) == [7, 7, 7]
    flat = {layer_name("width", i): 10 * i for i in (1, 2, 3)}
    assert join_layers("width", flat, 2) == [10, 20]
    assert trim_layers({"depth": 1, "width": [4, 5]}, "depth") == {"depth": 1, "width": [4]}
    assert trim_layers({"width": [4, 5]}, None) == {"width": [4, 5]}


def test_the_docstring_examples_run():
    for module in (layers, catalog):
        assert doctest.testmod(module).failed == 0


# ------------------------------------------------------------------ adapters
GRID_SPACE = {
    "depth": 2,
    "width": {"low": 16, "high": 64, "step": 16, "per_layer": True},
    "optimizer": {"choices": ["adam", "sgd"]},
    "dropout": {"low": 0.0, "high": 0.2, "step": 0.1},
    "momentum": {"low": 0.0, "high": 0.5, "step": 0.25},
}


def test_optuna_distributions_and_sklearn_grid_of_one_space():
    space = _space(GRID_SPACE)
    adam, grid = space.grid(steps_required=True)  # momentum only in the sgd branch
    assert list(adam) == ["width_1", "width_2", "optimizer", "dropout"]
    assert list(grid) == ["width_1", "width_2", "optimizer", "dropout", "momentum"]
    assert adam["optimizer"] == ["adam"] and grid["optimizer"] == ["sgd"]
    assert grid["width_1"] == grid["width_2"] == [16, 32, 48, 64]
    assert grid["dropout"] == [0.0, 0.1, 0.2] and grid["momentum"] == [0.0, 0.25, 0.5]
    assert space.grid_size() == 4 * 4 * 3 + 4 * 4 * 3 * 3  # a sum over the branches
    # stepped ranges and choices are lists for both
    assert space.distributions() == [adam, grid]

    dists = space.optuna_distributions(grid)
    assert list(dists) == list(grid)
    for name, values in grid.items():
        dist = dists[name]
        if isinstance(dist, CategoricalDistribution):
            assert set(values) <= set(dist.choices)  # a branch takes some of the choices
        elif isinstance(dist, IntDistribution):
            assert list(range(dist.low, dist.high + 1, dist.step)) == values
        else:
            assert isinstance(dist, FloatDistribution) and dist.step is not None
            n = round((dist.high - dist.low) / dist.step) + 1
            assert [round(dist.low + i * dist.step, 12) for i in range(n)] == values


def test_every_grid_point_is_a_trial_optuna_can_take():
    space = _space(GRID_SPACE)
    union, points = space.grid_points()
    study = optuna.create_study(sampler=conditional_grid_sampler()(union, points, seed=0))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seen = []

    def objective(trial: optuna.Trial) -> float:
        params = space.suggest(trial)
        asked = set(trial.params)
        assert asked == set(space.active(trial.params))
        assert space.params_from_optuna(trial.params) == params
        searched = {k: v for k, v in params.items() if k in space.searched}
        assert space.to_optuna_params(searched, path="e") == trial.params
        seen.append(tuple(sorted(trial.params.items())))
        return 0.0

    study.optimize(objective, n_trials=1000)  # the sampler stops the study at the end
    # every point of the conditional grid once: momentum only with sgd, nothing repeated
    assert len(seen) == len(set(seen)) == space.grid_size() == len(points) == 192
    assert sorted(seen) == sorted(tuple(sorted(p.items())) for p in points)


def test_seeded_suggestions_are_reproducible():
    space = _space(SGD_SPACE)

    def run() -> list[dict[str, Any]]:
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=5, n_startup_trials=4))
        out = []
        for _ in range(8):
            trial = study.ask()
            out.append(space.suggest(trial))
            study.tell(trial, len(out) % 3)
        return out

    first = run()
    assert first == run()
    for params in first:
        assert ("momentum" in params) == (params["optimizer"] == "sgd")
        assert len(params["width"]) == params["depth"]
