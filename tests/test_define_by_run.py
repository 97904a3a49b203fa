"""Builders that declare their own search space while they build (``model.api``):
KerasTuner's ``build_model(hp)`` and HyperModels, run without keras_tuner, and
Optuna-style ``build(trial)``; sampled on the live trial, replayed for training, export
and retry. Real Keras on digits and real SQLite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState
from typer.testing import CliRunner

import hpsearch
from hpsearch.cli import app
from hpsearch.exceptions import SetupError
from hpsearch.models import HyperParameters, TrialProxy, detect_api

TESTS_DIR = Path(__file__).parent
REPO = TESTS_DIR.parent


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def _study(tmp_path: Path, family: str, **changes: Any) -> Path:
    study: dict[str, Any] = {
        "name": "dbr",
        "storage": f"sqlite:///{tmp_path / 'hpsearch.db'}",
        "data": {"name": "digits", "subset": 600, "validation": 0.25, "seed": 0},
        "model": {"family": family},
        "space": {"batch_size": 64, "epochs": 2},
        "search": {"sampler": "tpe", "n_trials": 4, "seed": 3},
    }
    for key, value in changes.items():
        study[key] = {**study.get(key, {}), **value} if isinstance(value, dict) else value
    path = tmp_path / "dbr.yaml"
    path.write_text(yaml.safe_dump(study), encoding="utf-8")
    return path


def _load(tmp_path: Path) -> optuna.Study:
    return optuna.load_study(study_name="dbr", storage=f"sqlite:///{tmp_path / 'hpsearch.db'}")


def _check_kt_arch_trials(study: optuna.Study) -> None:
    """Only the active parameters are stored, each with its KerasTuner distribution."""
    done = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert done
    for t in done:
        arch = t.params["arch"]
        assert t.distributions["arch"] == CategoricalDistribution(["shallow", "deep"])
        assert t.distributions["learning_rate"] == FloatDistribution(1e-3, 3e-2, log=True)
        if arch == "shallow":
            assert set(t.params) == {"arch", "width", "learning_rate"}
            assert t.distributions["width"] == IntDistribution(16, 64, step=16)
        else:
            layers = t.params["layers"]
            units = {f"units_{i}" for i in range(layers)}
            assert set(t.params) == {"arch", "layers", "learning_rate", *units}
            assert t.distributions["layers"] == IntDistribution(1, 3)
            for name in units:
                assert t.distributions[name] == IntDistribution(8, 32, step=8)


def _predicts(out: Path) -> None:
    import keras
    from sklearn.datasets import load_digits

    model = keras.models.load_model(out / "model.keras")
    x = load_digits().images[:5].reshape(5, 8, 8, 1).astype("float32")
    probs = model.predict(x, verbose=0)
    assert probs.shape == (5, 10) and np.allclose(probs.sum(axis=1), 1, atol=1e-4)


# ------------------------------------------------------------------ KerasTuner's hp, no keras_tuner
NO_KERAS_TUNER = """
import sys
sys.modules["keras_tuner"] = None  # `import keras_tuner` raises ImportError
try:
    import keras_tuner
except ImportError:
    pass
else:
    sys.exit("keras_tuner imported")
from hpsearch.cli import app
for args in ({commands}):
    code = app(args, standalone_mode=False)
    if code:
        sys.exit(code)
assert sys.modules["keras_tuner"] is None
"""


@pytest.mark.parametrize("pruner", ["none", "hyperband"])
def test_a_keras_tuner_builder_runs_unchanged_without_keras_tuner_and_exports(tmp_path, pruner):
    path = _study(
        tmp_path,
        "hp_builders:kt_arch",
        search={"pruner": pruner, "n_trials": 5},
        space={"epochs": 3},
    )
    out = tmp_path / "export"
    commands = [["run", str(path), "-q"], ["export", str(path), "--out", str(out)]]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS_DIR)])}
    script = NO_KERAS_TUNER.format(commands=json.dumps(commands))
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    study = _load(tmp_path)
    assert len([t for t in study.trials if t.state.is_finished()]) == 5
    _check_kt_arch_trials(study)
    card = json.loads((out / "model_card.json").read_text(encoding="utf-8"))
    best = study.best_trial
    assert card["trial"]["number"] == best.number
    # the builder's values are the trial's params, beside the study file's
    assert card["trial"]["params"]["epochs"] == 3
    assert {k: card["trial"]["params"][k] for k in best.params} == best.params
    _predicts(out)


def test_a_keras_tuner_hypermodel_subclass_runs_and_a_retraining_gives_the_same_network(tmp_path):
    path = _study(tmp_path, "kt_hypermodels:ArchHyperModel")
    code, output = _cli("run", str(path), "-q")
    assert code == 0, output
    study = _load(tmp_path)
    _check_kt_arch_trials(study)
    # export re-trains from the stored values and seed: the search's network again
    out = tmp_path / "export"
    code, output = _cli("export", str(path), "--out", str(out), "--retrain")
    assert code == 0, output
    card = json.loads((out / "model_card.json").read_text(encoding="utf-8"))
    search_loss = study.best_trial.user_attrs["val_loss"]
    assert card["validation"]["export"]["loss"] == pytest.approx(search_loss, rel=1e-5)
    _predicts(out)


@pytest.mark.parametrize(
    "family", ["kt_hypermodels:build_model", "kt_hypermodels:my_hypermodel"], ids=["fn", "instance"]
)
def test_keras_tuners_getting_started_models_run_unchanged(tmp_path, family):
    # they compile themselves with categorical cross-entropy (for one-hot labels):
    # trained on one-hot digits, kept as compiled, val_accuracy for the objective
    path = _study(tmp_path, family, search={"sampler": "random", "n_trials": 2})
    code, output = _cli("run", str(path), "-q")
    assert code == 0, output
    trials = _load(tmp_path).trials
    assert all(t.state == TrialState.COMPLETE for t in trials), output
    assert all(t.values[0] > 0.3 for t in trials)  # learned something in 2 epochs
    first = trials[0]
    assert first.distributions["units"] == IntDistribution(32, 512, step=32)
    if family.endswith("build_model"):
        assert first.distributions["lr"] == FloatDistribution(1e-4, 1e-2, log=True)
        assert first.distributions["dropout"] == CategoricalDistribution([True, False])
        assert set(first.params) == {"units", "activation", "dropout", "lr"}
    else:
        assert set(first.params) == {"units"}  # HyperModel.fit is not called: hpsearch trains


# ------------------------------------------------------------------ Optuna-style builders
def test_an_optuna_builder_samples_on_the_trial_and_enqueue_names_its_parameters(tmp_path):
    path = _study(
        tmp_path,
        "hp_builders:optuna_mlp",
        search={"enqueue": [{"units": 20, "activation": "tanh", "epochs": 2}]},
    )
    assert hpsearch.load_study_file(path).builder_api == "optuna"
    code, output = _cli("run", str(path), "-q")
    assert code == 0, output
    trials = _load(tmp_path).trials
    assert trials[0].params["units"] == 20 and trials[0].params["activation"] == "tanh"
    for t in trials:
        assert t.state == TrialState.COMPLETE
        assert set(t.params) == {"units", "activation", "dropout"}
        assert t.distributions["units"] == IntDistribution(4, 32, log=True)


def test_retry_replays_a_failed_trials_builder_values(tmp_path, monkeypatch):
    path = _study(
        tmp_path,
        "hp_builders:optuna_mlp",
        search={"sampler": "random", "n_trials": 3, "enqueue": [{"units": 5}]},
    )
    monkeypatch.setenv("DBR_FAIL", "1")
    code, output = _cli("run", str(path), "-q")
    failed = [t for t in _load(tmp_path).trials if t.state == TrialState.FAIL]
    assert failed and failed[0].params["units"] == 5, output
    monkeypatch.delenv("DBR_FAIL")
    code, output = _cli("retry", str(path))
    assert code == 0, output
    by_number = {t.number: t for t in _load(tmp_path).trials}
    copies = [t for t in by_number.values() if t.user_attrs.get("retry_of") is not None]
    assert copies and all(t.state == TrialState.COMPLETE for t in copies)
    for t in copies:  # the failed trial's values (and what it had not reached yet)
        original = by_number[t.user_attrs["retry_of"]].params
        assert {k: t.params[k] for k in original} == original


# ------------------------------------------------------------------ refusals and errors
def test_the_sklearn_engine_refuses_a_define_by_run_builder_in_one_line(tmp_path):
    path = _study(
        tmp_path,
        "hp_builders:kt_arch",
        search={"engine": "sklearn", "method": "random", "n_iter": 2},
    )
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    del data["search"]["sampler"], data["search"]["n_trials"]
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    code, output = _cli("validate", str(path))
    assert code == 2, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: model.family: "), output
    assert "the sklearn engine needs its whole space" in lines[0]


def test_a_grid_sampler_is_refused_for_a_define_by_run_builder(tmp_path):
    path = _study(tmp_path, "hp_builders:kt_arch", search={"sampler": "grid"})
    with pytest.raises(hpsearch.ConfigError, match=r"search\.sampler: .*grid sampler needs"):
        hpsearch.load_study_file(path)


@pytest.mark.parametrize(
    ("family", "message"),
    [
        ("hp_builders:int_min_above_max", "hp.Int('units'): min_value 32 is greater than"),
        ("hp_builders:unknown_sampling", "hp.Float('lr'): sampling must be one of linear"),
        ("hp_builders:empty_choice", "hp.Choice('activation'): values must not be empty"),
        ("hp_builders:kt_wrong_signature", "the builder cannot be called as fn(hp)"),
    ],
)
def test_bad_hp_arguments_stop_the_run_in_one_line_before_anything_is_written(
    tmp_path, family, message
):
    path = _study(tmp_path, family)
    code, output = _cli("run", str(path))
    assert code == 2, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: model.family: "), output
    assert message in lines[0]
    assert not (tmp_path / "hpsearch.db").exists()


# ------------------------------------------------------------------ hp on an Optuna trial
def _trial() -> optuna.Trial:
    sampler = optuna.samplers.RandomSampler(seed=0)
    return optuna.create_study(sampler=sampler).ask()


def test_keras_tuners_parameters_become_optuna_distributions():
    trial = _trial()
    hp = HyperParameters(trial, given={"epochs": 3, "optimizer": "adam"}, owned=["optimizer"])
    assert hp.Int("batch", 2, 32, step=2, sampling="log") in (2, 4, 8, 16, 32)
    assert hp.Int("n", 6, 13, step=3) in (6, 9, 12)
    hp.Int("wide", 1, 1000, sampling="log")
    hp.Int("rev", 1, 100, sampling="reverse_log")  # honest: uniform on the same range
    hp.Float("lr", 1e-3, 10, step=10, sampling="log")
    hp.Float("rot", 0, 1, step=0.2)
    hp.Boolean("flip")
    assert hp.Fixed("seed", 7) == 7
    # the study file's values win; nothing is suggested for them
    assert hp.Choice("optimizer", ["sgd", "rmsprop"]) == "adam" and hp.get("epochs") == 3
    assert trial.distributions == {
        "batch": CategoricalDistribution([2, 4, 8, 16, 32]),
        "n": IntDistribution(6, 12, step=3),
        "wide": IntDistribution(1, 1000, log=True),
        "rev": IntDistribution(1, 100),
        "lr": CategoricalDistribution([0.001, 0.01, 0.1, 1.0, 10.0]),
        "rot": FloatDistribution(0.0, 1.0, step=0.2),
        "flip": CategoricalDistribution([True, False]),
    }
    assert hp.declared["seed"] == 7 and "seed" not in trial.params
    assert hp.values == {"epochs": 3, "optimizer": "adam", **hp.declared}


def test_conditional_scopes_follow_keras_tuner():
    trial = _trial()
    hp = HyperParameters(trial)
    arch = hp.Choice("arch", ["a", "b"], default="b")
    other = "b" if arch == "a" else "a"
    with hp.conditional_scope("arch", [arch]):
        units = hp.Int("units", 1, 9)
        with hp.conditional_scope("units", [units]):  # nested: active too
            assert hp.Boolean("inner") in (True, False)
    with hp.conditional_scope("arch", [other]):
        assert hp.Int("never", 1, 9) is None  # inactive: not sampled
        assert hp.Int("units", 1, 9) is None  # an active name in an inactive scope
    assert hp.Float("x", 0, 1, parent_name="arch", parent_values=[other]) is None
    assert hp.Int("units", 1, 9) == units  # the same name again: the same value
    assert set(trial.params) == {"arch", "units", "inner"}
    assert "never" not in hp and "units" in hp
    with pytest.raises(ValueError, match="never is currently inactive"):
        hp.get("never")
    with pytest.raises(KeyError):
        hp.get("nothing")
    with (
        pytest.raises(SetupError, match="no parameter of that name"),
        hp.conditional_scope("nothing", ["x"]),
    ):
        pass
    with pytest.raises(SetupError, match="all be of one type"):
        hp.Choice("mixed", [1, "a"])


def test_an_optuna_builders_trial_answers_the_study_files_names():
    trial = _trial()
    proxy = TrialProxy(trial, given={"learning_rate": 0.01}, owned=["learning_rate"])
    assert proxy.suggest_float("learning_rate", 1e-4, 1e-1, log=True) == 0.01
    units = proxy.suggest_int("units", 4, 8)
    assert trial.params == {"units": units} and proxy.number == trial.number
    with pytest.raises(SetupError, match="low 9 is greater than high 1"):
        proxy.suggest_int("bad", 9, 1)


def test_the_style_is_read_from_the_builder():
    import keras
    import keras_tuner
    from kt_hypermodels import ArchHyperModel, build_model, my_hypermodel

    class Net(keras.Model):  # a Keras model's build is not a HyperModel's
        pass

    assert [detect_api(o) for o in (ArchHyperModel, my_hypermodel, build_model, Net)] == [
        "keras_tuner",
        "keras_tuner",
        "keras_tuner",
        "params",
    ]
    assert detect_api(keras_tuner.HyperModel()) == "keras_tuner"


def test_export_params_pass_a_builders_values_through():
    from hpsearch.study import study_from_dict

    study = study_from_dict(
        {"name": "x", "data": {"name": "digits"}, "space": {"epochs": 2}, "search": {"n_trials": 1}}
    )
    params = study.space.params_from_optuna({"learning_rate": 0.02, "units_0": 8})
    assert params["learning_rate"] == 0.02 and params["units_0"] == 8 and params["epochs"] == 2


def test_a_builder_module_is_validated_without_importing_it(tmp_path):
    (tmp_path / "never_imported.py").write_text(
        textwrap.dedent(
            """
            raise RuntimeError("imported")
            class Model:
                def build(self, trial): ...
            instance = Model()
            """
        ),
        encoding="utf-8",
    )
    path = _study(tmp_path, "never_imported:instance")
    assert hpsearch.load_study_file(path).builder_api == "optuna"


def test_a_study_stored_before_model_api_existed_has_not_drifted(tmp_path):
    from hpsearch.engines._core import config_drift
    from hpsearch.study import StudyMeta

    path = _study(tmp_path, "hp_builders:kt_arch")
    study_file = hpsearch.load_study_file(path)
    stored = study_file.config.model_dump(mode="json")
    del stored["model"]["api"]  # what an older hpsearch stored
    study = optuna.create_study()
    StudyMeta(config=stored).write(study)
    assert config_drift(study, study_file) == []
    changed = hpsearch.load_study_file(path, ["model.api=keras_tuner"])
    assert config_drift(study, changed) == ["model"]
