"""Regression studies (``task: regression``) and the embedded data sets diabetes, wine and
california_housing: task resolution, training with mse/mae/huber, val_rmse/val_mae
objectives, a standardized target undone by the exported model, best/export/predict in a
fresh process, and bad input refused in one line with nothing written.

Real Keras on small data: diabetes (442 samples), wine (178), files the tests write.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from conftest import hpsearch_cli as _cli
from typer.testing import CliRunner

import hpsearch
from hpsearch.config import DataConfig
from hpsearch.data import load_dataset
from hpsearch.exceptions import ConfigError
from hpsearch.study import StudyMeta, TrialRecord, load_study_file, study_from_dict

REPO = Path(__file__).resolve().parent.parent


def _app() -> Any:
    from hpsearch.cli import app

    return app


def _regression_study(tmp_path: Path, **changes: Any) -> Path:
    study: dict[str, Any] = {
        "name": "dia",
        "task": "regression",
        "data": {"name": "diabetes", "standardize_target": True, "validation": 0.2},
        "model": {"family": "mlp"},
        "space": {
            "depth": 1,
            "width": {"low": 8, "high": 32, "log": True},
            "loss": {"choices": ["mse", "huber"]},
            "optimizer": "adam",
            "learning_rate": 0.01,
            "batch_size": 32,
            "epochs": 3,
        },
        "search": {"sampler": "random", "n_trials": 2, "seed": 3},
        "storage": f"sqlite:///{tmp_path / 'reg.db'}",
    }
    study.update(changes)
    path = tmp_path / "dia.yaml"
    path.write_text(yaml.safe_dump(study), encoding="utf-8")
    return path


def _write_csv(path: Path, target: list[Any], *, rows: int = 120, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    lines = ["a,b,c,target"]
    for i in range(rows):
        lines.append(",".join(f"{v:.5f}" for v in x[i]) + f",{target[i % len(target)]}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------- task resolution (no Keras)
@pytest.mark.parametrize(
    ("data", "task", "objective"),
    [
        ({"name": "diabetes"}, "regression", ("val_rmse", "minimize")),
        ({"name": "wine"}, "classification", ("val_accuracy", "maximize")),
        ({"name": "digits"}, "classification", ("val_accuracy", "maximize")),
        ({"name": "california_housing"}, "regression", ("val_rmse", "minimize")),
    ],
)
def test_task_comes_from_the_data_set(data, task, objective):
    study = study_from_dict({"name": "t", "data": data, "search": {"n_trials": 1}})
    assert study.task == task
    assert (study.objectives[0].metric, study.objectives[0].direction) == objective


def test_task_auto_reads_a_csv_target(tmp_path):
    floats = _write_csv(tmp_path / "f.csv", [1.5, 2.25, 3.0])
    ints = _write_csv(tmp_path / "i.csv", [0, 1, 2])
    whole = _write_csv(tmp_path / "w.csv", [10.0, 20.0])

    def task_of(path: Path, **extra: Any) -> str:
        data = {"name": "csv", "path": str(path), "label_column": "target"}
        return study_from_dict({"name": "t", "data": data, "search": {"n_trials": 1}, **extra}).task

    assert task_of(floats) == "regression"
    assert task_of(ints) == "classification"
    assert task_of(whole) == "classification"  # few whole numbers: class labels
    assert task_of(whole, task="regression") == "regression"
    assert task_of(floats, task="classification") == "classification"
    # whole-number prices: too many distinct values to be classes
    prices = _write_csv(tmp_path / "p.csv", [100_000 + 500 * i for i in range(200)], rows=200)
    assert task_of(prices) == "regression"
    assert task_of(prices, task="classification") == "classification"
    # 30 labels over 1,000 rows (3 %) are classes; 30 over 200 rows (15 %) are numbers
    labels = _write_csv(tmp_path / "l.csv", list(range(30)), rows=1000)
    counts = _write_csv(tmp_path / "c.csv", list(range(30)), rows=200)
    assert (task_of(labels), task_of(counts)) == ("classification", "regression")
    faces = _write_csv(tmp_path / "o.csv", list(range(40)), rows=400)  # 40 people, 10 photos
    assert task_of(faces) == "classification"  # 10 % of 400 samples


def test_validate_says_which_task_auto_chose(tmp_path):
    from hpsearch.cli import app

    prices = _write_csv(tmp_path / "p.csv", [100_000 + 500 * i for i in range(200)], rows=200)
    labels = _write_csv(tmp_path / "l.csv", [0, 1, 2])
    for csv_path, shown in ((prices, "task regression, target standardized"),
                            (labels, "task classification")):  # fmt: skip
        study = tmp_path / f"{csv_path.stem}.yaml"
        data = {"name": "csv", "path": csv_path.name, "label_column": "target"}
        study.write_text(yaml.safe_dump({"data": data, "search": {"n_trials": 1}}), "utf-8")
        result = CliRunner().invoke(app, ["validate", str(study)])
        assert result.exit_code == 0, result.output
        assert shown in result.stdout and "standardized" not in result.stdout.replace(shown, "")


def test_a_regression_standardizes_its_target_unless_told_not_to(tmp_path):
    prices = _write_csv(tmp_path / "p.csv", [100_000 + 500 * i for i in range(200)], rows=200)

    def data_of(**extra: Any) -> Any:
        data = {"name": "csv", "path": str(prices), "label_column": "target", **extra}
        return study_from_dict({"name": "t", "data": data, "search": {"n_trials": 1}}).config.data

    assert data_of().standardize_target is True  # a price need not fit the weights' init
    assert data_of(standardize_target=False).standardize_target is False
    wine = study_from_dict({"name": "t", "data": {"name": "wine"}, "search": {"n_trials": 1}})
    assert wine.config.data.standardize_target is False


def test_regression_objectives_and_loss_param():
    study = study_from_dict(
        {
            "name": "t",
            "data": {"name": "diabetes"},
            "space": {"loss": {"choices": ["mse", "mae", "huber"]}},
            "objective": ["val_mae", "params"],
            "search": {"n_trials": 1},
        }
    )
    assert study.directions == ["minimize", "minimize"]
    assert "loss" in study.space.dims and study.space.dims["loss"].searched


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"objective": "val_accuracy"}, "objective.metric: got 'val_accuracy'; a regression"),
        ({"data": {"name": "wine"}, "space": {"loss": "mae"}}, "space.loss: applies to regr"),
        (
            {"data": {"name": "wine", "standardize_target": True}},
            "data.standardize_target: got True; applies to regression only",
        ),
        ({"space": {"chance_patience": 2}}, "space.chance_patience: applies to classification"),
        ({"data": {"name": "wine"}, "objective": "val_rmse"}, "a regression metric"),
        ({"space": {"loss": "hinge"}}, "space.loss"),
    ],
)
def test_bad_regression_settings_are_one_line(changes, message):
    study = {"name": "t", "data": {"name": "diabetes"}, "search": {"n_trials": 1}, **changes}
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        study_from_dict(study)


@pytest.mark.parametrize(
    "setup",
    ["text_target", "accuracy_objective", "loss_on_classification"],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, monkeypatch, setup):
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "bad.db"
    study: dict[str, Any] = {
        "name": "bad",
        "task": "regression",
        "data": {"name": "csv", "path": "data.csv", "label_column": "target"},
        "space": {"epochs": 1},
        "search": {"n_trials": 1},
        "storage": f"sqlite:///{db}",
    }
    if setup == "text_target":
        _write_csv(tmp_path / "data.csv", [1.5, "high", 2.0])
    elif setup == "accuracy_objective":
        _write_csv(tmp_path / "data.csv", [1.5, 2.5])
        study["objective"] = "val_accuracy"
    else:
        _write_csv(tmp_path / "data.csv", [0, 1])
        study["task"] = "classification"
        study["space"]["loss"] = {"choices": ["mse", "mae"]}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(study), encoding="utf-8")
    result = CliRunner().invoke(_app(), ["run", str(path)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}"), result.output
    assert "Traceback" not in result.output
    assert not db.exists() and not (tmp_path / "bad_artifacts").exists()
    if setup == "text_target":
        assert "data.label_column" in lines[0] and "numeric" in lines[0]


# --------------------------------------------------------------- data
def test_diabetes_and_wine_load_offline():
    dia = load_dataset(DataConfig(name="diabetes", standardize_target=True), task="regression")
    assert dia.regression and dia.num_classes == 1 and dia.input_shape == (10,)
    assert dia.y_train.dtype == np.float32 and abs(float(dia.y_train.mean())) < 1e-5
    assert dia.target is not None and 140 < dia.target["mean"] < 160
    assert len(dia.x_train) + len(dia.x_val) + len(dia.x_test) == 442
    assert dia.summary()["task"] == "regression" and "target" in dia.summary()
    wine = load_dataset(DataConfig(name="wine", scale="standard"))
    assert wine.num_classes == 3 and wine.input_shape == (13,) and not wine.regression
    assert wine.class_names == ["class_0", "class_1", "class_2"]


def test_california_housing_reads_a_local_copy_in_keras_layout(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8)).astype("float32")
    y = (rng.uniform(50_000, 500_000, size=200)).astype("float32")
    np.savez(tmp_path / "california_housing.npz", x=x, y=y)  # what Keras downloads
    cfg = DataConfig(name="california_housing", path=str(tmp_path / "california_housing.npz"))
    ds = load_dataset(cfg, tmp_path, task="regression")
    assert ds.regression and ds.input_shape == (8,)
    assert len(ds.x_train) + len(ds.x_val) + len(ds.x_test) == 200
    assert sorted(np.concatenate([ds.y_train, ds.y_val, ds.y_test]).tolist()) == sorted(y.tolist())
    study = study_from_dict(
        {"name": "ch", "data": cfg.model_dump(), "search": {"n_trials": 1}}, source=None
    )
    assert study.task == "regression"


def test_california_housing_offline_without_a_copy_is_one_line(monkeypatch):
    import keras

    def offline(**kwargs: Any) -> Any:
        raise OSError("no network")

    monkeypatch.setattr(keras.datasets.california_housing, "load_data", offline)
    with pytest.raises(ConfigError, match="set data.path to a local copy"):
        load_dataset(DataConfig(name="california_housing", seed=99), task="regression")


# --------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def regression_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("regression")
    path = _regression_study(tmp)
    study = hpsearch.run(str(path), quiet=True)
    return tmp, path, study


def test_regression_trials_store_rmse_mae_and_loss(regression_run):
    _, _, study = regression_run
    meta = StudyMeta.of(study)
    assert meta.regression and meta.target_scaling is not None
    assert meta.objectives == ["val_rmse"] and study.directions[0].name == "MINIMIZE"
    trials = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(trials) == 2
    for trial in trials:
        record = TrialRecord.from_trial(trial)
        assert trial.params["loss"] in ("mse", "huber")
        assert {"val_rmse", "val_mae", "rmse", "mae", "val_loss"} <= set(record.metrics)
        assert "val_accuracy" not in record.metrics
        # in the target's units (diabetes: 25..346, std about 77), not standardized ones
        assert 20 < record.metrics["val_rmse"] < 300 and record.metrics["val_loss"] < 5
        assert trial.values[0] == pytest.approx(record.metrics["val_rmse"])
        assert len(trial.intermediate_values) == 3
        assert record.metrics["val_mae"] <= record.metrics["val_rmse"] + 1e-6


def test_best_export_predict_in_a_fresh_process(regression_run, tmp_path):
    tmp, path, study = regression_run
    best = _cli("best", str(path), "--json", cwd=tmp)
    assert best.returncode == 0, best.stderr
    [row] = json.loads(best.stdout)
    assert row["values"][0] == pytest.approx(study.best_value)
    assert "val_rmse" in row["metrics"] and "loss" in row["params"]

    out = tmp_path / "export"
    exported = _cli("export", str(path), "--out", str(out), "--format", "keras,savedmodel", cwd=tmp)
    assert exported.returncode == 0, exported.stderr
    assert "test MAE=" in exported.stdout and "RMSE=" in exported.stdout
    card = json.loads((out / "model_card.json").read_text())
    assert card["data"]["task"] == "regression" and card["test"]["accuracy"] is None
    assert card["test"]["rmse"] > 20 and card["test"]["mae"] <= card["test"]["rmse"]
    assert card["test"]["r2"] is not None and card["checks"]["savedmodel_max_abs_diff"] < 1e-3
    markdown = (out / "model_card.md").read_text()
    assert "| MAE | RMSE | R² |" in markdown and "regressor" in markdown

    # the exported model answers in the target's units: it matches the trained network's
    # standardized output, scaled back by hand
    import keras

    meta = StudyMeta.of(study)
    target = meta.target_scaling
    assert target is not None
    trial = study.best_trial
    inner = keras.models.load_model(
        Path(TrialRecord.from_trial(trial).artifact or "") / "model.keras", compile=False
    )
    ds = load_dataset(load_study_file(path).config.data, path.parent, task="regression")
    expected = inner.predict(ds.x_test, verbose=0)[:, 0] * target["std"] + target["mean"]
    model = keras.models.load_model(out / "model.keras")
    got = model.predict(ds.x_test, verbose=0)[:, 0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)

    y_true = ds.y_test * target["std"] + target["mean"]
    np.savez(tmp_path / "new.npz", x=ds.x_test, y=y_true)
    predicted = _cli("predict", str(out), str(tmp_path / "new.npz"), cwd=tmp)
    assert predicted.returncode == 0, predicted.stderr
    lines = predicted.stdout.splitlines()
    assert lines[0] == "input,value" and len(lines) == len(ds.x_test) + 1
    values = np.array([float(line.split(",")[1]) for line in lines[1:]])
    np.testing.assert_allclose(values, got, rtol=1e-4, atol=1e-2)
    assert "MAE=" in predicted.stderr and "RMSE=" in predicted.stderr


def test_multi_objective_regression_with_params(tmp_path):
    path = _regression_study(
        tmp_path,
        objective=["val_rmse", "params"],
        data={"name": "diabetes"},
        search={"sampler": "nsga2", "n_trials": 2, "seed": 1},
    )
    study = hpsearch.run(str(path), quiet=True)
    assert [d.name for d in study.directions] == ["MINIMIZE", "MINIMIZE"]
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) == 2 and all(t.values[0] > 20 and t.values[1] > 10 for t in done)


def test_pruning_a_regression(tmp_path):
    # a trial that learns, then one whose rate is far too small: the median pruner,
    # reading val_rmse (minimized), stops the second at its first epoch
    path = _regression_study(
        tmp_path,
        space={
            "depth": 1,
            "width": 16,
            "learning_rate": {"low": 1e-6, "high": 3e-2, "log": True},
            "batch_size": 16,
            "epochs": 3,
        },
        search={
            "sampler": "random",
            "pruner": "median",
            "pruner_options": {"n_startup_trials": 1, "n_warmup_steps": 0},
            "n_trials": 2,
            "enqueue": [{"learning_rate": 0.03}, {"learning_rate": 1e-6}],
        },
    )
    study = hpsearch.run(str(path), quiet=True)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "PRUNED"]
    pruned = study.trials[1]
    assert pruned.intermediate_values[1] > study.trials[0].intermediate_values[1] > 20


def test_wine_multiclass_and_binary_classification_still_work(tmp_path):
    wine = {
        "name": "wine",
        "data": {"name": "wine", "scale": "standard"},
        "space": {"depth": 1, "width": 16, "learning_rate": 0.01, "batch_size": 16, "epochs": 2},
        "search": {"sampler": "random", "n_trials": 1},
        "storage": f"sqlite:///{tmp_path / 'w.db'}",
    }
    (tmp_path / "wine.yaml").write_text(yaml.safe_dump(wine), encoding="utf-8")
    from hpsearch.cli import app

    result = CliRunner().invoke(app, ["run", str(tmp_path / "wine.yaml")])
    assert result.exit_code == 0, result.output
    assert "validation, 3 classes), storage" in result.output.splitlines()[0]
    study = hpsearch.open_study(str(tmp_path / "wine.yaml"))
    trial = study.trials[0]
    assert StudyMeta.of(study).task == "classification"
    assert 0 <= trial.values[0] <= 1 and "val_accuracy" in TrialRecord.from_trial(trial).metrics

    _write_csv(tmp_path / "binary.csv", ["yes", "no", "no"], rows=150)
    binary = dict(
        wine, name="binary", data={"name": "csv", "path": "binary.csv", "label_column": "target"}
    )
    (tmp_path / "binary.yaml").write_text(yaml.safe_dump(binary), encoding="utf-8")
    study = hpsearch.run(str(tmp_path / "binary.yaml"), quiet=True)
    assert StudyMeta.of(study).data["num_classes"] == 2
    assert StudyMeta.of(study).data["class_names"] == ["no", "yes"]
    assert study.trials[0].state.name == "COMPLETE"


def test_shipped_regression_and_wine_study_files_validate():
    dia = load_study_file(REPO / "studies" / "diabetes.yaml")
    wine = load_study_file(REPO / "studies" / "wine.yaml")
    assert dia.task == "regression" and dia.objectives[0].metric == "val_rmse"
    assert wine.task == "classification" and wine.config.data.name == "wine"


def test_sklearn_engine_searches_a_regression(tmp_path):
    from sklearn.base import is_regressor

    from hpsearch.engines import build_estimator
    from hpsearch.study import RefitRecord, SklearnSummary

    path = _regression_study(
        tmp_path,
        space={
            "depth": 1,
            "width": {"choices": [8, 16]},
            "loss": {"choices": ["mse", "mae"]},
            "learning_rate": 0.01,
            "batch_size": 32,
            "epochs": 2,
        },
        search={"engine": "sklearn", "method": "grid", "cv": 2},
    )
    study_file = load_study_file(path)
    assert study_file.objectives[0].metric == "cv_neg_root_mean_squared_error"
    assert is_regressor(build_estimator(study_file, 0))
    study = hpsearch.run(str(path), quiet=True)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) == 4 and {t.params["loss"] for t in done} == {"mse", "mae"}
    # negated RMSE in the target's units (the estimator un-standardizes its answers)
    assert all(-400 < t.value < -20 for t in done)
    assert study.best_trial.value == max(t.value for t in done)
    summary = SklearnSummary.of(study)
    assert summary is not None and summary.scoring == "neg_root_mean_squared_error"
    refit = RefitRecord.of(study)
    assert refit is not None and refit.val_rmse is not None and refit.val_rmse > 20


@pytest.mark.parametrize(
    ("search", "message"),
    [
        ({"scoring": "accuracy"}, "search.scoring: got 'accuracy'; not a regression scorer"),
        ({"scoring": "r2"}, None),
    ],
)
def test_sklearn_regression_scoring(search, message):
    study = {
        "name": "t",
        "data": {"name": "diabetes"},
        "space": {"width": {"choices": [8, 16]}},
        "search": {"engine": "sklearn", **search},
    }
    if message is None:
        assert study_from_dict(study).objectives[0].metric == "cv_r2"
        return
    with pytest.raises(ConfigError, match=message):
        study_from_dict(study)
    with pytest.raises(ConfigError, match="the sklearn engine maximizes its score"):
        study_from_dict({**study, "search": {"engine": "sklearn"}, "objective": "val_rmse"})


def test_dashboards_of_a_regression_have_no_accuracy_axes(regression_run, tmp_path):
    from hpsearch.dashboards import render_comparison, render_study

    _, path, _ = regression_run
    page = render_study(str(path), out_dir=tmp_path)
    titles = []
    for section in page.sections:
        if section.figure is not None:
            layout = section.figure.layout
            titles += [layout.xaxis.title.text or "", layout.yaxis.title.text or ""]
    assert page.section("history").figure.layout.yaxis.title.text == "val_rmse"
    assert page.section("curves").figure.layout.yaxis.title.text == "val_rmse"
    assert not [t for t in titles if "accuracy" in t], titles
    board = tmp_path / "board.yaml"
    board.write_text(
        yaml.safe_dump({"studies": [str(path)], "metric": "val_accuracy"}), encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="metric: got 'val_accuracy'; study 'dia' is a regr"):
        render_comparison(board, out_dir=tmp_path)
    board.write_text(yaml.safe_dump({"studies": [str(path)], "metric": "val_mae"}))
    compared = render_comparison(board, out_dir=tmp_path)
    assert compared.views[0].task == "regression"


def test_a_user_builder_learns_the_task(tmp_path):
    (tmp_path / "reg_builders.py").write_text(
        "import keras\n\n"
        "def build(params, input_shape, num_classes, task):\n"
        "    assert (num_classes, task) == (1, 'regression'), (num_classes, task)\n"
        "    inputs = keras.Input(shape=input_shape)\n"
        "    x = keras.layers.Dense(int(params['units']), activation='relu')(inputs)\n"
        "    return keras.Model(inputs, keras.layers.Dense(1)(x))  # uncompiled\n\n"
        "def build_hp(hp, num_classes):\n"
        "    model = keras.Sequential([keras.Input(shape=(10,)),\n"
        "                              keras.layers.Dense(hp.Int('units', 4, 16))])\n"
        "    model.add(keras.layers.Dense(num_classes))\n"
        "    return model\n",
        encoding="utf-8",
    )
    for family, space in (
        ("reg_builders:build", {"units": {"choices": [4, 8]}}),
        ("reg_builders:build_hp", {}),
    ):
        path = _regression_study(
            tmp_path,
            name=family.split(":")[1],
            model={"family": family},
            space={**space, "loss": "mae", "epochs": 1, "batch_size": 64},
            search={"sampler": "random", "n_trials": 1},
        )
        study = hpsearch.run(str(path), quiet=True)
        record = TrialRecord.from_trial(study.trials[0])
        assert study.trials[0].state.name == "COMPLETE", record.fail_reason
        assert "val_rmse" in record.metrics and record.metrics["val_mae"] > 20
