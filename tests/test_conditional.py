"""Conditional spaces: the model family as a hyperparameter, ``active_if`` conditions in
study files, conditional grids (real Keras on digits, Optuna engine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import optuna
import pytest
import yaml
from optuna.trial import TrialState
from typer.testing import CliRunner

import hpsearch
from hpsearch.cli import app
from hpsearch.config import validate_config
from hpsearch.exceptions import ConfigError
from hpsearch.space import SearchSpace

DIGITS = {"name": "digits", "subset": 400, "validation": 0.25, "seed": 0}


def family_study(**extra: Any) -> dict[str, Any]:
    """An MLP-or-CNN study on digits: shared optimizer (momentum with sgd only), each
    family's own section."""
    study: dict[str, Any] = {
        "data": DIGITS,
        "model": {"family": {"choices": ["mlp", "cnn"]}},
        "space": {
            "optimizer": {"choices": ["adam", "sgd"]},
            "momentum": {"low": 0.5, "high": 0.9},
            "epochs": 1,
            "batch_size": 64,
            "mlp": {
                "depth": {"low": 1, "high": 2},
                "width": {"low": 8, "high": 32, "per_layer": True},
                "dropout": {"low": 0.0, "high": 0.3, "active_if": {"depth": 2}},
            },
            "cnn": {
                "blocks": 2,
                "filters": {"value": [4, 8]},
                "kernel_size": {"choices": [3, 5]},
                "dense_width": {"choices": [0, 16]},
            },
        },
        "search": {"sampler": "tpe", "n_trials": 8, "seed": 3},
    }
    study.update(extra)
    return study


def _write(tmp_path: Path, data: dict[str, Any], name: str = "study") -> Path:
    data.setdefault("storage", f"sqlite:///{tmp_path / 'hpsearch.db'}")
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _space(data: dict[str, Any]) -> SearchSpace:
    return SearchSpace(validate_config(data))


MLP_KEYS = {"mlp.depth", "mlp.width_1", "mlp.width_2", "mlp.dropout"}
CNN_KEYS = {"cnn.kernel_size", "cnn.dense_width"}


def test_a_family_choice_study_stores_only_each_trials_own_family(tmp_path):
    path = _write(tmp_path, family_study())
    study = hpsearch.run(str(path), quiet=True)
    trials = study.get_trials(states=[TrialState.COMPLETE])
    assert len(trials) == 8
    families = {t.params["family"] for t in trials}
    assert families == {"mlp", "cnn"}  # TPE's start-up trials try both
    for t in trials:
        keys = set(t.params)
        own, other = (MLP_KEYS, CNN_KEYS) if t.params["family"] == "mlp" else (CNN_KEYS, MLP_KEYS)
        assert not keys & other, t.params
        if t.params["family"] == "cnn":
            assert own <= keys
        else:
            depth = t.params["mlp.depth"]
            assert {f"mlp.width_{i}" for i in range(1, depth + 1)} <= keys
            assert ("mlp.dropout" in keys) == (depth == 2)  # active only with 2 layers
        assert ("momentum" in keys) == (t.params["optimizer"] == "sgd")
        assert set(t.distributions) == keys
        assert t.distributions["family"] == optuna.distributions.CategoricalDistribution(
            ["mlp", "cnn"]
        )


def test_the_best_trial_of_a_family_choice_exports_its_own_family(tmp_path):
    data = family_study()
    data["search"] = {
        "sampler": "random",
        "n_trials": 2,
        "seed": 0,
        "enqueue": [
            {"family": "cnn", "optimizer": "adam", "kernel_size": 3, "dense_width": 16},
            {"family": "mlp", "optimizer": "adam", "depth": 1, "width": [16]},
        ],
    }
    data["space"]["epochs"] = 3
    path = _write(tmp_path, data)
    study = hpsearch.run(str(path), quiet=True)
    assert [t.params["family"] for t in study.trials] == ["cnn", "mlp"]
    assert study.trials[0].params == {
        "family": "cnn",
        "optimizer": "adam",
        "cnn.kernel_size": 3,
        "cnn.dense_width": 16,
    }
    for number, layer in ((0, keras.layers.Conv2D), (1, keras.layers.Dense)):
        out = tmp_path / f"out{number}"
        result = hpsearch.export_trial(str(path), trial=number, out=out, formats="keras")
        model = keras.models.load_model(out / "model.keras")
        kinds = {type(x) for x in _layers(model)}
        assert layer in kinds
        if number == 1:
            assert keras.layers.Conv2D not in kinds
        assert result.card.trial.params["family"] == ("cnn", "mlp")[number]
        assert result.card.study.family == ("cnn", "mlp")[number]


def _layers(model: keras.Model) -> list[keras.layers.Layer]:
    out = []
    for layer in model.layers:
        out.append(layer)
        if isinstance(layer, keras.Model):
            out += _layers(layer)
    return out


def test_validate_prints_the_tree_and_the_sum_of_a_conditional_grid(tmp_path):
    data = family_study()
    data["space"]["momentum"] = {"choices": [0.5, 0.9]}
    data["space"]["mlp"] = {"depth": {"choices": [1, 2]}, "width": {"choices": [8, 16]}}
    data["search"] = {"sampler": "grid"}
    path = _write(tmp_path, data)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "family" in out and "choice of mlp, cnn" in out
    assert "\n    mlp:" in out or "  mlp:" in out
    assert "    depth" in out and "    kernel_size" in out  # indented under its family
    # optimizer: adam (1) + sgd with 2 momenta (2) = 3; mlp 2 depths x 2 widths = 4,
    # cnn 2 kernels x 2 dense = 4: 3 x (4 + 4) = 24, not the product 2 x 2 x 2 x 2 x 2 x 2 x 2
    assert "grid size     24" in out
    assert SearchSpace(validate_config(data)).grid_size() == 24


def test_a_conditional_grid_runs_exactly_its_branches_combinations(tmp_path):
    data = family_study()
    data["space"]["momentum"] = {"choices": [0.5, 0.9]}
    data["space"]["mlp"] = {"depth": 1, "width": {"choices": [8, 16]}}
    data["space"]["cnn"] = {"blocks": 1, "filters": 4, "kernel_size": {"choices": [3, 5]}}
    data["search"] = {"sampler": "grid", "seed": 0}
    path = _write(tmp_path, data)
    study = hpsearch.run(str(path), quiet=True)
    seen = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(study.trials) == 3 * (2 + 2) == len(set(seen))
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    expected = set()
    for family, key in (("mlp", "mlp.width"), ("cnn", "cnn.kernel_size")):
        values = [8, 16] if family == "mlp" else [3, 5]
        for value in values:
            expected.add((("family", family), (key, value), ("optimizer", "adam")))
            for m in (0.5, 0.9):
                expected.add(
                    (("family", family), (key, value), ("momentum", m), ("optimizer", "sgd"))
                )
    assert {tuple(sorted(p)) for p in seen} == {tuple(sorted(p)) for p in expected}
    # a rerun finds the grid done: nothing more runs
    again = hpsearch.run(str(path), quiet=True)
    assert len(again.trials) == 12


def test_an_active_if_condition_keeps_its_parameter_out_when_inactive(tmp_path):
    data = {
        "data": DIGITS,
        "model": {"family": "mlp"},
        "space": {
            "depth": 1,
            "width": 16,
            "batch_norm": {"choices": [False, True]},
            "l2": {"low": 1e-5, "high": 1e-2, "log": True, "active_if": {"batch_norm": False}},
            "epochs": 1,
        },
        "search": {"sampler": "random", "n_trials": 6, "seed": 1},
    }
    path = _write(tmp_path, data)
    study = hpsearch.run(str(path), quiet=True)
    assert {t.params["batch_norm"] for t in study.trials} == {False, True}
    for t in study.trials:
        assert t.state == TrialState.COMPLETE
        assert ("l2" in t.params) == (t.params["batch_norm"] is False)


@pytest.mark.parametrize(
    ("space", "path", "message"),
    [
        (
            {"l2": {"low": 0.0, "high": 0.1, "active_if": {"regularise": True}}},
            "space.l2.active_if.regularise",
            "not a parameter of the space; allowed:",
        ),
        (
            {
                "optimizer": {"choices": ["adam", "sgd"]},
                "momentum": {"value": 0.9, "active_if": {"optimizer": "sdg"}},
            },
            "space.momentum.active_if.optimizer",
            "optimizer never takes this value; it takes one of adam, sgd",
        ),
        (
            {
                "batch_norm": {"choices": [False, True], "active_if": {"activation": "relu"}},
                "activation": {"choices": ["relu", "elu"], "active_if": {"batch_norm": True}},
            },
            "space.",
            "conditions depend on each other",
        ),
        (
            {"depth": {"low": 1, "high": 2}, "blocks": 2},
            "space.blocks",
            "unknown parameter for model family 'mlp'",
        ),
    ],
    ids=["unknown-parent", "value-outside-choices", "cycle", "other-familys-param"],
)
def test_bad_conditions_are_one_line_errors(tmp_path, space, path, message):
    data = {"data": DIGITS, "model": {"family": "mlp"}, "space": space}
    file = _write(tmp_path, data)
    result = CliRunner().invoke(app, ["validate", str(file)])
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in result.output
    assert path in line and message in line, line
    assert not (tmp_path / "hpsearch.db").exists()


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        ({"space": {"blocks": 2}}, "space.blocks", "put it in a family's section"),
        ({"space": {"dropout": 0.1}}, "space.dropout", "means different things in mlp and cnn"),
        (
            {"space": {"cnn": {"depth": 2}}},
            "space.cnn.depth",
            "unknown parameter for model family 'cnn'",
        ),
        ({"space": {"family": "cnn"}}, "space.family", "set by model.family"),
        (
            {"space": {"mlpp": {"depth": 2}}},
            "space.mlpp",
            "a parameter is a value",
        ),
        (
            {"model": {"family": {"choices": ["mlp", "rnn"]}}},
            "model.family.choices[1]",
            "allowed: mlp, cnn",
        ),
        ({"model": {"family": {"choices": ["mlp", "mlp"]}}}, "model.family.choices[1]", "distinct"),
        (
            {"search": {"n_trials": 1, "enqueue": [{"depth": 1}]}},
            "search.enqueue[0].family",
            "the trial's model family is required",
        ),
        (
            {"search": {"n_trials": 1, "enqueue": [{"family": "mlp", "blocks": 2}]}},
            "search.enqueue[0].blocks",
            "not a parameter of the space of family mlp",
        ),
    ],
    ids=[
        "shared-cnn-param",
        "ambiguous-shared",
        "wrong-section",
        "family-param",
        "unknown-section",
        "unknown-family",
        "duplicate-family",
        "enqueue-without-family",
        "enqueue-other-family",
    ],
)
def test_bad_family_choices_are_one_line_errors(tmp_path, change, path, message):
    data = {
        "data": DIGITS,
        "model": {"family": {"choices": ["mlp", "cnn"]}},
        "space": {"epochs": 1},
    }
    for key, value in change.items():
        data[key] = {**data.get(key, {}), **value}
    file = _write(tmp_path, data)
    result = CliRunner().invoke(app, ["validate", str(file)])
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in result.output
    assert path in line and message in line, line


def test_set_narrows_a_family_choice_and_enqueue_works(tmp_path):
    path = _write(tmp_path, family_study())
    sf = hpsearch.load_study_file(path, overrides=["model.family=cnn", "search.n_trials=2"])
    assert not sf.space.multi and sf.space.unused_sections == ["mlp"]
    assert "cnn.blocks" not in sf.space.dims and "blocks" in sf.space.dims
    study = hpsearch.run(sf, quiet=True)
    assert all("family" not in t.params and "kernel_size" in t.params for t in study.trials)
    # an override of a section's parameter
    sf = hpsearch.load_study_file(path, overrides=["space.cnn.kernel_size=5"])
    assert sf.space.fixed["cnn.kernel_size"] == 5


def test_builders_get_their_own_names():
    space = _space(family_study())
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask(
        fixed_distributions=None
    )
    params = space.suggest(trial)
    family = params["family"]
    assert all("." not in k for k in params)
    assert space.params_from_optuna(trial.params) == params
    if family == "cnn":
        assert params["blocks"] == 2 and params["filters"] == [4, 8]
    else:
        assert len(params["width"]) == params["depth"]
    assert (
        space.to_optuna_params(
            {k: v for k, v in params.items() if space.key_of(k, family) in space.searched}
            | {"family": family},
            path="e",
        )
        == trial.params
    )


def test_a_stored_family_choice_config_round_trips():
    config = validate_config(family_study())
    again = validate_config(config.model_dump(mode="json"))
    assert again == config
    with pytest.raises(ConfigError):
        validate_config({"space": {"x": {"lo": 1}}})


def test_narrowing_a_shipped_family_choice_keeps_that_familys_enqueued_trials():
    repo = Path(__file__).parent.parent
    for family, count in (("cnn", 1), ("mlp", 6)):
        sf = hpsearch.load_study_file(
            repo / "studies" / "tutorial_c.yaml", overrides=[f"model.family={family}"]
        )
        assert not sf.space.multi
        kept = sf.enqueued()
        assert len(kept) == count and all(v["family"] == family for _, v in kept)
        for i, values in kept:
            assert "family" not in sf.enqueue_params(values, path=f"search.enqueue[{i}]")
