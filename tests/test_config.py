"""Study files: the shipped ones validate, bad ones fail in one line, the API behaves.

Fast and offline: nothing here trains a model or downloads data.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

import hpsearch
from hpsearch.config import StudyConfig, apply_overrides
from hpsearch.exceptions import ConfigError
from hpsearch.space import SearchSpace
from hpsearch.study import load_study_file

REPO = Path(__file__).resolve().parent.parent
STUDIES = sorted((REPO / "studies").glob("*.yaml"))


def _app():
    from hpsearch.cli import app

    return app


# --------------------------------------------------------------- shipped study files
def test_there_are_study_files():
    names = {p.name for p in STUDIES}
    assert {
        "quickstart.yaml",
        "quickstart_multi.yaml",
        "mnist_mlp.yaml",
        "mnist_cnn.yaml",
        "tutorial_c.yaml",
    } <= names


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.name)
def test_study_file_validates(path, monkeypatch, tmp_path):
    monkeypatch.setenv("HPSEARCH_STORAGE", f"sqlite:///{tmp_path / 'hpsearch.db'}")
    monkeypatch.setattr(sys, "path", list(sys.path))
    result = CliRunner().invoke(_app(), ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "hpsearch.db").exists()


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.name)
def test_enqueued_trials_lie_in_the_space(path):
    study = load_study_file(path)
    for i, values in enumerate(study.config.search.enqueue):
        params = study.space.to_optuna_params(values, path=f"search.enqueue[{i}]")
        depth_param = study.space.depth_param
        if depth_param in params:  # a per-layer list has one value per layer of its trial
            for name, dim in study.space.searched.items():
                if dim.per_layer and name in values:
                    assert len(values[name]) == params[depth_param], (i, name)


def test_tutorial_c_runs_exactly_the_enqueued_networks():
    study = load_study_file(REPO / "studies" / "tutorial_c.yaml")
    space = study.space
    enqueue = study.config.search.enqueue
    assert study.n_trials == len(enqueue) == 7
    assert space.multi and set(space.families) == {"mlp", "cnn"}
    families = []
    configs = set()
    for i, values in enumerate(enqueue):
        params = space.to_optuna_params(values, path=f"e[{i}]")
        family = params["family"]
        families.append(family)
        # every parameter searched in the trial's family is given, so the sampler never
        # picks a value itself; and the trial has only its own family's params
        searched = {n for n, d in space.searched.items() if d.family in (None, family)}
        assert set(params) == searched, i
        other = "cnn" if family == "mlp" else "mlp"
        assert not any(name.startswith(f"{other}.") for name in params), (i, params)
        configs.add(tuple(sorted(params.items())))
    assert families == ["mlp"] * 6 + ["cnn"]
    assert len(configs) == 7  # seven different networks
    assert study.config.search.pruner == "none"
    assert space.fixed["optimizer"] == "adam"
    assert space.fixed["batch_size"] == 128
    # the CNN: three 25-filter convolutions of 5x5, 5x5 and 4x4 (valid), 2x2 max pooling,
    # a 50-unit dense layer
    cnn = space.params_from_optuna(space.to_optuna_params(enqueue[-1], path="e"))
    assert cnn["blocks"] == 3 and cnn["filters"] == [25, 25, 25]
    assert cnn["kernel_size"] == [5, 5, 4] and cnn["padding"] == "valid"
    assert (cnn["pooling"], cnn["pool_size"], cnn["dense_width"]) == ("max", 2, 50)
    assert cnn["epochs"] == 5


def test_mnist_joint_is_mnist_mlp_or_mnist_cnn():
    """Each family's parameters are searched as in its own study file, the search settings
    are mnist_cnn's, and the first trials are those files' first (tutorial B's CNN, then
    tutorial A's MLP)."""
    joint = load_study_file(REPO / "studies" / "mnist_joint.yaml")
    space = joint.space
    assert set(space.families) == {"mlp", "cnn"}
    for family in ("mlp", "cnn"):
        alone = load_study_file(REPO / "studies" / f"mnist_{family}.yaml")
        for name, dim in alone.space.dims.items():
            key = space.key_of(name, family)
            assert key is not None, (family, name)
            assert space.dims[key].spec == dim.spec, (family, name)
        if family == "cnn":
            search, mine = alone.config.search, joint.config.search
            assert (mine.sampler, mine.sampler_options) == (search.sampler, search.sampler_options)
            assert (mine.pruner, mine.pruner_options) == (search.pruner, search.pruner_options)
        first = alone.space.to_optuna_params(alone.config.search.enqueue[0], path="e")
        i = 0 if family == "cnn" else 1
        stored = space.to_optuna_params(joint.config.search.enqueue[i], path="e")
        assert stored.pop("family") == family
        unprefixed = {k.removeprefix(f"{family}."): v for k, v in stored.items()}
        assert unprefixed == first
    assert len(joint.config.search.enqueue) == 2


def test_a_family_choice_is_stored_without_serializer_warnings(recwarn):
    """The run stores the configuration as JSON: its sections serialize as sections
    (Pydantic warned "Expected RangeParam" for each) and read back the same."""
    study = load_study_file(REPO / "studies" / "mnist_joint.yaml")
    dumped = study.config.model_dump(mode="json")
    assert not [w for w in recwarn if "serialize" in str(w.message)]
    assert (dumped["space"]["cnn"]["blocks"]["low"], dumped["space"]["cnn"]["blocks"]["high"]) == (
        1,
        3,
    )
    assert StudyConfig.model_validate(dumped) == study.config


def test_mnist_mlp_first_trial_is_tutorial_a():
    study = load_study_file(REPO / "studies" / "mnist_mlp.yaml")
    first = study.config.search.enqueue[0]
    assert first["depth"] == 2 and first["width"] == [512, 512]
    assert first["optimizer"] == "rmsprop" and first["batch_size"] == 128
    params = study.space.to_optuna_params(first, path="search.enqueue[0]")
    assert params["width_1"] == params["width_2"] == 512
    assert params["lr_schedule"] == "constant"  # the tutorial's constant rate, not sampled
    assert study.config.data.name == "mnist" and study.config.data.validation == 0.1


def test_mnist_cnn_first_trial_is_tutorial_b():
    study = load_study_file(REPO / "studies" / "mnist_cnn.yaml")
    params = study.space.to_optuna_params(study.config.search.enqueue[0], path="search.enqueue[0]")
    assert params["blocks"] == 2
    assert (params["filters_1"], params["filters_2"]) == (10, 20)
    assert params["kernel_size"] == 5 and params["padding"] == "valid"
    # none of what B did not use: batch norm, shifts, a decaying rate
    assert params["batch_norm"] is False and params["augment_translate"] == 0.0
    assert params["lr_schedule"] == "constant"


def test_quickstart_multi_has_two_objectives_and_no_pruner():
    study = load_study_file(REPO / "studies" / "quickstart_multi.yaml")
    assert study.directions == ["maximize", "minimize"]
    assert [o.metric for o in study.objectives] == ["val_accuracy", "params"]
    assert study.config.search.pruner == "none"
    assert study.config.data.name == "digits"


# ------------------------------------------------------------------- bad input table
_BUDGET = "search: {n_trials: 3}\n"

# (id, study file text, --set overrides, regex the message must match, key path it must name)
BAD_INPUTS = [
    (
        "malformed-yaml",
        "data: {name: digits\nsearch: [\n",
        [],
        r"line \d+, column \d+: malformed YAML",
        "line 2",
    ),
    (
        "unknown-top-level-key",
        "serch: {n_trials: 3}\n",
        [],
        r"unknown key; allowed: name, description, task, data, model, space, objective, search",
        "serch",
    ),
    (
        "unknown-nested-key",
        "search: {samplr: tpe, n_trials: 3}\n",
        [],
        r"unknown key; allowed: sampler, sampler_options, pruner",
        "search.samplr",
    ),
    (
        "wrong-type",
        "search: {n_trials: many}\n",
        [],
        r"got 'many'; input should be a valid integer",
        "search.n_trials",
    ),
    (
        "empty-range",
        "space: {depth: {low: 4, high: 1}}\n" + _BUDGET,
        [],
        r"empty range: low must be <= high",
        "space.depth",
    ),
    (
        "log-range-from-zero",
        "space: {learning_rate: {low: 0, high: 0.1, log: true}}\n" + _BUDGET,
        [],
        r"got 0; a log range needs low > 0",
        "space.learning_rate.low",
    ),
    (
        "unknown-sampler",
        "search: {sampler: tpee, n_trials: 3}\n",
        [],
        r"got 'tpee'; allowed: auto, tpe, random, grid",
        "search.sampler",
    ),
    (
        "unknown-pruner",
        "search: {pruner: medain, n_trials: 3}\n",
        [],
        r"got 'medain'; allowed: none, median, .*hyperband",
        "search.pruner",
    ),
    (
        "unknown-data-set",
        "data: {name: mnits}\n" + _BUDGET,
        [],
        r"got 'mnits'; allowed: digits, mnist, .*npz, csv",
        "data.name",
    ),
    (
        "unknown-optimizer-in-choices",
        "space: {optimizer: {choices: [adam, adamw]}}\n" + _BUDGET,
        [],
        r"got 'adamw'; allowed: one of sgd, rmsprop, adam, adamax, nadam",
        "space.optimizer.choices[1]",
    ),
    (
        "unknown-lr-schedule",
        "space: {lr_schedule: linear}\n" + _BUDGET,
        [],
        r"got 'linear'; allowed: one of constant, cosine",
        "space.lr_schedule",
    ),
    (
        "missing-data-file",
        "data: {name: npz, path: nope.npz}\n" + _BUDGET,
        [],
        r"got 'nope.npz'; file not found",
        "data.path",
    ),
    (
        "builder-module-not-found",
        "model: {family: 'nomodule_xyz:build'}\n" + _BUDGET,
        [],
        r"got 'nomodule_xyz:build'; module 'nomodule_xyz' not found",
        "model.family",
    ),
    (
        "builder-function-missing",
        "model: {family: 'hpsearch_tmp_builders:build'}\n" + _BUDGET,
        [],
        r"module 'hpsearch_tmp_builders' has no function 'build'",
        "model.family",
    ),
    (
        "bare-list-parameter",
        "space: {optimizer: [adam, sgd]}\n" + _BUDGET,
        [],
        r"a bare list is ambiguous; write \{choices: \[\.\.\.\]\}",
        "space.optimizer",
    ),
    (
        "grid-with-continuous-range",
        "space: {depth: {choices: [1, 2]}, dropout: {low: 0.0, high: 0.5}}\n"
        "search: {sampler: grid}\n",
        [],
        r"a grid needs finite values; this is a continuous range",
        "space.dropout",
    ),
    (
        "unknown-parameter-for-mlp",
        "space: {filters: 32}\n" + _BUDGET,
        [],
        r"unknown parameter for model family 'mlp'; allowed: .*depth, width, dropout",
        "space.filters",
    ),
    (
        "pruning-with-two-objectives",
        "objective: [val_accuracy, params]\nsearch: {pruner: median, n_trials: 3}\n",
        [],
        r"got 'median'; pruning needs a single objective; use pruner: none",
        "search.pruner",
    ),
    (
        "invalid-override",
        _BUDGET,
        ["search.n_trials=0"],
        r"got 0; input should be greater than 0",
        "search.n_trials",
    ),
    (
        "malformed-override",
        _BUDGET,
        ["search"],
        r"got 'search'; an override must look like key\.path=value",
        "--set",
    ),
    (
        "no-budget",
        "space: {depth: 2}\n",
        [],
        r"give a budget: search\.n_trials and/or search\.timeout",
        "search.n_trials",
    ),
    (
        "enqueued-value-outside-space",
        "space: {depth: {low: 1, high: 2}}\nsearch: {n_trials: 3, enqueue: [{depth: 5}]}\n",
        [],
        r"got 5; allowed: a value in \[1, 2\]",
        "search.enqueue[0].depth",
    ),
    (
        "unknown-model-family",
        "model: {family: resnet}\n" + _BUDGET,
        [],
        r"got 'resnet'; allowed: mlp, cnn, or package\.module:function",
        "model.family",
    ),
    (
        "misspelt-range-key",
        "space: {depth: {lo: 1, high: 3}}\n" + _BUDGET,
        [],
        r"unknown key; allowed: low, high, log, step",
        "space.depth.lo",
    ),
    (
        "misspelt-choices-key",
        "space: {optimizer: {choice: [adam]}}\n" + _BUDGET,
        [],
        r"a parameter is a value, \{low, high",
        "space.optimizer",
    ),
    (
        "momentum-without-sgd",
        "space: {momentum: {low: 0.1, high: 0.9}, optimizer: {choices: [adam, nadam]}}\n" + _BUDGET,
        [],
        r"momentum is used only with optimizer sgd",
        "space.momentum",
    ),
    (
        "beta_1-with-sgd",
        "space: {beta_1: {low: 0.8, high: 0.99}, optimizer: sgd}\n" + _BUDGET,
        [],
        r"beta_1 is used only with optimizer adam or adamax or nadam; fix it or search adam or "
        r"adamax or nadam$",
        "space.beta_1",
    ),
    (
        "storage-not-a-url",
        _BUDGET,
        ["storage=nonsense"],
        r"got 'nonsense'; not a storage URL",
        "storage",
    ),
]

# the builder module of "builder-function-missing": it exists but defines something else
_BUILDER_MODULE = """\
def other(params):
    return None
"""


@pytest.fixture
def bad_study(tmp_path, monkeypatch):
    """Write a study file into an empty tmp_path, work there, store there."""

    def write(name: str, text: str) -> Path:
        (tmp_path / "hpsearch_tmp_builders.py").write_text(_BUILDER_MODULE, encoding="utf-8")
        path = tmp_path / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HPSEARCH_STORAGE", f"sqlite:///{tmp_path / 'hpsearch.db'}")
    # user-builder checks put the study's folder on sys.path; undo that after the test
    monkeypatch.setattr(sys, "path", list(sys.path))
    return write


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.name != "__pycache__"}


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize(
    ("text", "overrides", "pattern", "key"),
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_input_is_one_line_and_exit_code_2(
    bad_study, tmp_path, command, text, overrides, pattern, key
):
    path = bad_study("study", text)
    before = _files(tmp_path)
    args = [command, path.name]
    for item in overrides:
        args += ["--set", item]

    result = CliRunner().invoke(_app(), args)

    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    message = result.stderr.strip()
    assert result.stdout == ""  # the error goes to stderr, nothing else is printed
    assert "\n" not in message, message
    assert "Traceback" not in result.output
    assert message.startswith(f"error: {path.name}: "), message
    assert key in message, message
    assert re.search(pattern, message), message
    # nothing was written: no database, no journal
    assert _files(tmp_path) == before
    assert not list(tmp_path.glob("*.db*"))


@pytest.mark.parametrize(
    ("text", "overrides", "pattern", "key"),
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_input_raises_config_error_from_the_api(bad_study, text, overrides, pattern, key):
    path = bad_study("study", text)
    with pytest.raises(ConfigError, match=pattern) as info:
        load_study_file(path.name, overrides)
    assert info.value.source == path.name
    assert key in str(info.value)


def test_missing_study_file(bad_study, tmp_path):
    result = CliRunner().invoke(_app(), ["validate", "nothere.yaml"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: nothere.yaml: study file not found"


# ------------------------------------------------------------------------ Python API
def test_load_study_file_applies_overrides_and_names_the_study():
    study = hpsearch.load_study_file(REPO / "studies" / "quickstart.yaml", ["search.n_trials=3"])
    assert study.n_trials == 3
    assert study.name == "quickstart"
    assert study.source == (REPO / "studies" / "quickstart.yaml").resolve()
    assert study.raw["search"]["n_trials"] == 3


def test_load_study_file_keyword_shortcuts():
    study = hpsearch.load_study_file(
        REPO / "studies" / "quickstart.yaml",
        n_trials=4,
        timeout=60,
        storage="sqlite:////nonexistent/x.db",
    )
    assert study.n_trials == 4
    assert study.config.search.timeout == 60
    assert study.storage == "sqlite:////nonexistent/x.db"


def test_default_storage_comes_from_the_environment(monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    monkeypatch.setenv("HPSEARCH_STORAGE", url)
    assert load_study_file(REPO / "studies" / "quickstart.yaml").storage == url


def test_apply_overrides_creates_nested_keys_and_copies():
    raw = {"search": {"sampler": "tpe"}}
    out = apply_overrides(
        raw,
        [
            "search.n_trials=5",
            "data.name=mnist",
            "space.width.low=16",
            "space.optimizer={choices: [adam, sgd]}",
            "description=two words",
        ],
    )
    assert out == {
        "search": {"sampler": "tpe", "n_trials": 5},
        "data": {"name": "mnist"},
        "space": {"width": {"low": 16}, "optimizer": {"choices": ["adam", "sgd"]}},
        "description": "two words",
    }
    assert raw == {"search": {"sampler": "tpe"}}  # the input is left alone


def test_apply_overrides_indexes_lists():
    raw = {"search": {"enqueue": [{"depth": 1}, {"depth": 2}]}}
    out = apply_overrides(raw, ["search.enqueue.1.depth=3"])
    assert out["search"]["enqueue"] == [{"depth": 1}, {"depth": 3}]
    with pytest.raises(ConfigError, match=r"list index out of range \(size 2\)"):
        apply_overrides(raw, ["search.enqueue.5=1"])


def test_apply_overrides_refuses_a_key_inside_a_value():
    with pytest.raises(ConfigError, match="cannot set a key inside a plain value"):
        apply_overrides({"search": {"sampler": "tpe"}}, ["search.sampler.name=x"])


def _space(space: dict, **rest) -> SearchSpace:
    return SearchSpace(StudyConfig.model_validate({"space": space, **rest}))


def test_grid_size_of_a_small_grid():
    space = _space(
        {
            "depth": {"choices": [1, 2]},
            "width": {"low": 16, "high": 64, "step": 16},
            "dropout": {"low": 0.0, "high": 0.2, "step": 0.1},
            "optimizer": {"choices": ["adam", "sgd"]},
            "epochs": 3,
        }
    )
    grid = space.grid()[0]
    assert grid["width"] == [16, 32, 48, 64]
    assert grid["dropout"] == [0.0, 0.1, 0.2]
    assert space.grid_size() == 2 * 4 * 3 * 2


def test_grid_size_is_none_for_a_continuous_space():
    assert _space({"dropout": {"low": 0.0, "high": 0.5}}).grid_size() is None


def test_grid_budget_defaults_to_the_grid_size(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            space:
              depth: {choices: [1, 2, 3]}
              optimizer: {choices: [adam, sgd]}
            search: {sampler: grid}
            """
        ),
        encoding="utf-8",
    )
    study = load_study_file(path)
    assert study.name == "grid"
    assert study.n_trials == 6


def test_to_optuna_params_expands_per_layer_lists():
    space = _space(
        {
            "depth": {"low": 1, "high": 3},
            "width": {"low": 32, "high": 1024, "log": True, "per_layer": True},
            "optimizer": {"choices": ["adam", "rmsprop"]},
            "epochs": 2,
        }
    )
    params = space.to_optuna_params(
        {"depth": 2, "width": [512, 256], "optimizer": "adam", "epochs": 2}, path="enqueue[0]"
    )
    assert params == {"depth": 2, "width_1": 512, "width_2": 256, "optimizer": "adam"}


def test_to_optuna_params_checks_values():
    space = _space({"width": {"low": 32, "high": 64, "per_layer": True}, "epochs": 2})
    with pytest.raises(ConfigError, match=r"enqueue\[0\]\.width\[1\]: got 128; allowed"):
        space.to_optuna_params({"width": [32, 128]}, path="enqueue[0]")
    # depth is fixed at 2 (the mlp default): one value stands for every layer
    assert space.to_optuna_params({"width": 32}, path="enqueue[0]") == {
        "width_1": 32,
        "width_2": 32,
    }
    with pytest.raises(ConfigError, match=r"enqueue\[0\]\.width: got \[32\]; needs one value per"):
        space.to_optuna_params({"width": [32]}, path="enqueue[0]")
    varying = _space(
        {"depth": {"low": 1, "high": 3}, "width": {"low": 32, "high": 64, "per_layer": True}}
    )
    with pytest.raises(ConfigError, match=r"give depth too"):
        varying.to_optuna_params({"width": [32, 32]}, path="enqueue[0]")
    with pytest.raises(ConfigError, match=r"got \[32, 32, 32\]; needs one value per layer"):
        varying.to_optuna_params({"depth": 2, "width": [32, 32, 32]}, path="enqueue[0]")
    with pytest.raises(ConfigError, match=r"enqueue\[0\]\.epochs: got 3; this parameter is fixed"):
        space.to_optuna_params({"epochs": 3}, path="enqueue[0]")


# ------------------------------------------------------------- no TensorFlow import
_NO_TF = """\
import sys
from hpsearch.cli import app

for args in (["--help"], ["validate", "studies/quickstart.yaml"]):
    try:
        code = app(args, standalone_mode=False)
    except SystemExit as exc:
        code = exc.code
    assert code in (0, None), (args, code)
heavy = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
assert not heavy, heavy
print("no tensorflow")
"""


def test_help_and_validate_do_not_import_tensorflow(tmp_path):
    env = {**os.environ, "HPSEARCH_STORAGE": f"sqlite:///{tmp_path / 'hpsearch.db'}"}
    proc = subprocess.run(
        [sys.executable, "-c", _NO_TF],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "no tensorflow" in proc.stdout
    assert "quickstart.yaml: valid" in proc.stdout
    assert not (tmp_path / "hpsearch.db").exists()


# ------------------------------------------------------- samplers and pruners by name
@pytest.mark.parametrize("sampler", ["tpe", "random", "grid", "cmaes", "qmc", "nsga2", "nsga3"])
def test_every_sampler_name_builds(sampler):
    import optuna

    from hpsearch.search import make_sampler
    from hpsearch.study import study_from_dict

    space = {"depth": {"choices": [1, 2]}, "width": {"choices": [8, 16]}, "epochs": 1}
    if sampler != "grid":
        space["dropout"] = {"low": 0.0, "high": 0.5}
    study = study_from_dict(
        {"name": "s", "space": space, "search": {"sampler": sampler, "n_trials": 2}}
    )
    built = make_sampler(study.config.search, study.space, 1)
    assert isinstance(built, optuna.samplers.BaseSampler)


def _tpe_proposals(n_trials: int, sampler=None) -> list[dict]:
    import math

    import optuna

    def objective(trial):
        depth = trial.suggest_int("depth", 1, 3)
        widths = [trial.suggest_int(f"width_{i}", 32, 1024, log=True) for i in range(depth)]
        dropout = trial.suggest_float("dropout", 0.0, 0.5)
        opt = trial.suggest_categorical("optimizer", ["sgd", "adam", "nadam"])
        lr = trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True)
        return (
            -abs(math.log10(lr) + 2.5)
            - abs(dropout - 0.2)
            + sum(map(math.log, widths)) / 50
            + (opt == "adam")
        )

    sampler = sampler or optuna.samplers.TPESampler(seed=3)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=n_trials)
    return [t.params for t in study.trials]


def test_tpe_gets_scipys_log_ndtr_and_proposes_what_optunas_own_would(monkeypatch):
    import numpy as np
    from optuna.samplers._tpe import _truncnorm

    from hpsearch.search import make_sampler
    from hpsearch.study import study_from_dict

    study = study_from_dict(
        {"name": "s", "space": {"depth": {"choices": [1, 2]}}, "search": {"n_trials": 1}}
    )
    make_sampler(study.config.search, study.space, 1)
    fast = _truncnorm._log_ndtr
    assert fast._hpsearch
    optunas = fast._optuna
    a = np.concatenate([np.linspace(-40.0, 40.0, 20001), [-1e3, -25.0, 0.0, 7.0, 1e3]])
    np.testing.assert_allclose(fast(a), optunas(a), rtol=1e-7, atol=1e-12)

    with_fast = _tpe_proposals(40)
    monkeypatch.setattr(_truncnorm, "_log_ndtr", optunas)
    with_optunas = _tpe_proposals(40)
    assert len(with_fast) == len(with_optunas) == 40
    for mine, theirs in zip(with_fast, with_optunas, strict=True):
        assert mine.keys() == theirs.keys()
        for key, value in mine.items():
            if isinstance(value, float):
                assert value == pytest.approx(theirs[key], rel=1e-12, abs=1e-15)
            else:
                assert value == theirs[key]


def test_sequential_tpe_samples_from_the_cache_and_proposes_what_optunas_liar_would():
    import pickle

    import optuna

    from hpsearch.search import make_sampler
    from hpsearch.study import study_from_dict

    study = study_from_dict(
        {"name": "s", "space": {"depth": {"choices": [1, 2]}}, "search": {"seed": 3, "n_trials": 1}}
    )
    ours = make_sampler(study.config.search, study.space, 1)
    assert isinstance(ours, optuna.samplers.TPESampler)
    assert type(pickle.loads(pickle.dumps(ours))) is type(ours)  # as Optuna's samplers pickle
    assert optuna.samplers.TPESampler()._constant_liar  # Optuna's default lies
    # alone in the study, ours does not lie, and proposes exactly what the default does
    mine = _tpe_proposals(30, ours)
    assert not ours._constant_liar
    assert mine == _tpe_proposals(30, optuna.samplers.TPESampler(seed=3))

    # another trial running: ours lies like Optuna's default, for that trial only
    opt_study = optuna.create_study(
        direction="maximize",
        sampler=make_sampler(study.config.search, study.space, 1),
    )
    for i in range(12):
        opt_study.enqueue_trial({"x": i / 12})
        opt_study.optimize(lambda t: -((t.suggest_float("x", 0, 1) - 0.3) ** 2), n_trials=1)
    held = opt_study.ask()  # left running, as another process's trial would be
    held.suggest_float("x", 0, 1)
    liar = opt_study.ask()
    liar.suggest_float("x", 0, 1)
    assert opt_study.sampler._constant_liar
    opt_study.tell(held, 0.0)
    opt_study.tell(liar, 0.0)
    alone = opt_study.ask()
    alone.suggest_float("x", 0, 1)
    assert not opt_study.sampler._constant_liar


def test_parallel_workers_and_sampler_options_fix_tpes_lying():
    import optuna

    from hpsearch.search import make_sampler
    from hpsearch.study import study_from_dict

    plain = study_from_dict({"name": "s", "search": {"n_trials": 1}})
    worker = make_sampler(plain.config.search, plain.space, 1, worker=1)
    assert type(worker) is optuna.samplers.TPESampler and worker._constant_liar
    honest = study_from_dict(
        {"name": "s", "search": {"n_trials": 1, "sampler_options": {"constant_liar": False}}}
    )
    off = make_sampler(honest.config.search, honest.space, 1)
    assert type(off) is optuna.samplers.TPESampler and not off._constant_liar


def test_shipped_mlp_study_builds_multivariate_tpe_without_experimental_warnings():
    import warnings

    import optuna

    from hpsearch.search import make_pruner, make_sampler

    study = load_study_file(REPO / "studies" / "mnist_mlp.yaml")
    with warnings.catch_warnings():
        warnings.simplefilter("error", optuna.exceptions.ExperimentalWarning)
        sampler = make_sampler(study.config.search, study.space, 1)
        pruner = make_pruner(study.config.search, 20, 1)
    assert isinstance(sampler, optuna.samplers.TPESampler)
    assert sampler._multivariate and sampler._group
    assert sampler._n_startup_trials == 5
    assert isinstance(pruner, optuna.pruners.HyperbandPruner)
    assert pruner._min_resource == 2


def test_gp_sampler_without_torch_names_the_extra():
    import importlib.util

    if importlib.util.find_spec("torch") is not None:
        pytest.skip("torch is installed here")
    with pytest.raises(ConfigError, match=r"search\.sampler: got 'gp'; .*hpsearch\[gp\]"):
        from hpsearch.study import study_from_dict

        study_from_dict({"name": "s", "search": {"sampler": "gp", "n_trials": 2}})


@pytest.mark.parametrize(
    ("pruner", "options", "cls"),
    [
        ("none", {}, "NopPruner"),
        ("median", {}, "MedianPruner"),
        ("percentile", {"percentile": 10.0}, "PercentilePruner"),
        ("successive_halving", {}, "SuccessiveHalvingPruner"),
        ("hyperband", {"reduction_factor": 2}, "HyperbandPruner"),
        ("threshold", {"lower": 0.5}, "ThresholdPruner"),
    ],
)
def test_every_pruner_name_builds(pruner, options, cls):
    from hpsearch.search import make_pruner
    from hpsearch.study import study_from_dict

    study = study_from_dict(
        {"name": "s", "search": {"pruner": pruner, "pruner_options": options, "n_trials": 2}}
    )
    built = make_pruner(study.config.search, study.max_epochs, 1)
    assert type(built).__name__ == cls


def test_learning_rate_default_means_keras_default():
    from hpsearch.study import study_from_dict
    from hpsearch.training import make_optimizer

    study = study_from_dict(
        {
            "name": "s",
            "space": {"learning_rate": "default", "optimizer": "sgd"},
            "search": {"n_trials": 1},
        }
    )
    assert study.space.fixed["learning_rate"] == "default"
    assert float(make_optimizer(study.space.fixed).learning_rate) == pytest.approx(0.01)
    with pytest.raises(
        ConfigError, match=r"space\.learning_rate: got 'fast'; allowed: .*or default"
    ):
        study_from_dict(
            {"name": "s", "space": {"learning_rate": "fast"}, "search": {"n_trials": 1}}
        )


def test_beta_1_reaches_the_adam_family_optimizers_only():
    import keras

    from hpsearch.study import study_from_dict
    from hpsearch.training import make_optimizer

    classes = {"adam": keras.optimizers.Adam, "adamax": keras.optimizers.Adamax}
    classes["nadam"] = keras.optimizers.Nadam
    for name, cls in classes.items():
        base = {"optimizer": name, "learning_rate": 1e-3}
        asked = make_optimizer({**base, "beta_1": 0.8})
        assert type(asked) is cls and asked.beta_1 == pytest.approx(0.8)
        # absent (a study that does not mention it) or the default: Keras' own 0.9, as before
        plain, default = make_optimizer(base), make_optimizer({**base, "beta_1": 0.9})
        assert plain.beta_1 == default.beta_1 == 0.9
        config = {k: v for k, v in plain.get_config().items() if k != "name"}  # adam_1, adam_2
        assert config == {k: v for k, v in default.get_config().items() if k != "name"}
    sgd = make_optimizer({"optimizer": "sgd", "learning_rate": 0.01, "beta_1": 0.5})
    assert not hasattr(sgd, "beta_1") and float(sgd.momentum) == 0.0

    study = study_from_dict(
        {
            "name": "s",
            "space": {"optimizer": "adam", "beta_1": {"low": 0.8, "high": 0.99}},
            "search": {"n_trials": 1},
        }
    )
    params = study.space.example_params()  # the range's low end
    assert params["beta_1"] == 0.8
    assert make_optimizer(params).beta_1 == pytest.approx(0.8)


def test_workers_section_is_checked(write_study):
    from typer.testing import CliRunner

    from hpsearch.cli import app

    bad = write_study("hb", workers={"heartbeat_interval": 30, "grace_period": 20})
    result = CliRunner().invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2
    assert "workers.grace_period: got 20" in result.output
    assert "longer than workers.heartbeat_interval (30s)" in result.output
    typo = write_study("typo", workers={"count": 2, "recycle": 5})
    result = CliRunner().invoke(app, ["validate", str(typo)])
    assert result.exit_code == 2 and "workers.recycle" in result.output
    ok = write_study("ok", workers={"count": 2, "checkpoints": True})
    result = CliRunner().invoke(app, ["validate", str(ok)])
    assert result.exit_code == 0, result.output
    assert "workers       2, recycled every 20 trials" in result.output
    assert "per-epoch checkpoints" in result.output


def test_the_storage_flag_is_taken_as_written_not_parsed_as_yaml():
    quickstart = REPO / "studies" / "quickstart.yaml"
    # a trailing ':' or ' #' would make YAML read a mapping or a comment
    for url in ("redis://127.0.0.1:6379/0?prefix=team-a:", "sqlite:///runs #2.db"):
        assert load_study_file(quickstart, storage=url).storage == url
    both = load_study_file(quickstart, ["storage=sqlite:///set.db"], storage="sqlite:///flag.db")
    assert both.storage == "sqlite:///flag.db"  # the flag wins over --set
