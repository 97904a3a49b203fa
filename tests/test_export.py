"""Export and predict: kept weights, model card, formats, re-training (digits, offline)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import yaml
from conftest import small_study
from optuna.trial import TrialState
from typer.testing import CliRunner

import hpsearch
from hpsearch.artifacts import best_set
from hpsearch.card import ModelCard
from hpsearch.cli import app
from hpsearch.exceptions import ConfigError, HpsearchError
from hpsearch.export import _pick_trial, export_trial, parse_formats
from hpsearch.predict import predict
from hpsearch.results import study_file_of

HAS_ONNX = all(importlib.util.find_spec(m) for m in ("tf2onnx", "onnx", "onnxruntime"))


@dataclass
class Exported:
    root: Path
    study_path: Path
    storage: str
    study: optuna.Study
    out: Path
    card: dict[str, Any]
    test_npz: Path
    x_test: np.ndarray
    y_test: np.ndarray


def _write(root: Path, name: str, **changes: Any) -> tuple[Path, str]:
    storage = f"sqlite:///{root / 'hpsearch.db'}"
    data = small_study(**changes)
    data["data"]["subset"] = 500
    data["search"]["n_trials"] = 2
    data["storage"] = storage
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path, storage


def _run(path: Path) -> optuna.Study:
    return hpsearch.run(hpsearch.load_study_file(path), quiet=True)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """A 2-trial digits study (keep: best), its best trial exported as keras + SavedModel."""
    root = tmp_path_factory.mktemp("export")
    path, storage = _write(root, "study")
    study = _run(path)
    out = root / "out"
    result = CliRunner().invoke(app, ["export", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "test accuracy=" in result.output and "(search)" in result.output
    card = json.loads((out / "model_card.json").read_text(encoding="utf-8"))
    # the raw test split: digits pixels are 0..16, scaled by 1/16 (exact in float32)
    from hpsearch.data import load_dataset

    sf = study_file_of(study)
    ds = load_dataset(sf.config.data, sf.base_dir)
    x_test, y_test = ds.x_test * 16.0, ds.y_test
    npz = root / "test.npz"
    np.savez(npz, x_test=x_test, y_test=y_test)
    return Exported(root, path, storage, study, out, card, npz, x_test, y_test)


def _snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(folder)): (
            hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir",
            p.stat().st_mtime_ns,
        )
        for p in sorted(folder.rglob("*"))
    }


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


# ------------------------------------------------------------------ kept weights
def test_keep_best_keeps_only_the_best_trials_model(exported):
    best = exported.study.best_trial
    artifacts = exported.root / "hpsearch_artifacts" / "study"
    assert sorted(p.name for p in artifacts.iterdir()) == [f"trial_{best.number}"]
    assert best.user_attrs["artifact"] == str(artifacts / f"trial_{best.number}")
    assert (artifacts / f"trial_{best.number}" / "model.keras").is_file()
    meta = json.loads((artifacts / f"trial_{best.number}" / "artifact.json").read_text())
    assert meta["trial"] == best.number and meta["params"] == best.params


@pytest.mark.parametrize("keep", ["all", "none"])
def test_keep_all_and_none(tmp_path, keep):
    path, _ = _write(tmp_path, f"keep_{keep}", export={"keep": keep})
    study = _run(path)
    folder = tmp_path / "hpsearch_artifacts" / f"keep_{keep}"
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if keep == "all":
        assert sorted(p.name for p in folder.iterdir()) == [f"trial_{t.number}" for t in complete]
        assert all(Path(t.user_attrs["artifact"]).is_dir() for t in complete)
    else:
        assert not folder.exists()
        assert not any("artifact" in t.user_attrs for t in study.trials)


def test_best_set_is_the_best_value_or_the_pareto_front():
    assert best_set({0: [0.9], 1: [0.95], 2: [0.95]}, ["maximize"]) == {1, 2}
    assert best_set({0: [0.3], 1: [0.2]}, ["minimize"]) == {1}
    front = best_set(
        {0: [0.9, 100.0], 1: [0.95, 500.0], 2: [0.85, 200.0], 3: [0.95, 500.0]},
        ["maximize", "minimize"],
    )
    assert front == {0, 1, 3}


def test_export_keep_is_validated(write_study):
    with pytest.raises(ConfigError, match=r"export\.keep: got 'sometimes'"):
        hpsearch.load_study_file(write_study(export={"keep": "sometimes"}))
    with pytest.raises(ConfigError, match=r"export\.kept: unknown key; allowed: keep, dir"):
        hpsearch.load_study_file(write_study(export={"kept": "best"}))


# ------------------------------------------------------------------ the export
def test_model_card_records_where_the_model_came_from(exported):
    card, study = exported.card, exported.study
    best = study.best_trial
    assert card["study"]["name"] == "study"
    assert card["trial"]["number"] == best.number
    assert card["trial"]["params"] == study_file_of(study).space.params_from_optuna(best.params)
    assert card["trial"]["seed"] == best.user_attrs["seed"]
    assert card["weights"]["source"] == "kept"
    assert card["validation"]["search"]["val_accuracy"] == best.user_attrs["val_accuracy"]
    # the kept weights are the ones the search measured
    assert card["validation"]["export"]["accuracy"] == pytest.approx(
        best.user_attrs["val_accuracy"], abs=1e-6
    )
    assert card["test"]["samples"] == len(exported.y_test) == 359
    assert 0.0 < card["test"]["accuracy"] <= 1.0 and card["test"]["loss"] > 0
    assert card["data"]["class_names"] == [str(i) for i in range(10)]
    assert card["data"]["scaling"] == {"kind": "divide", "value": 16.0}
    assert card["data"]["fingerprint"] == study.user_attrs["hpsearch"]["data"]["fingerprint"]
    assert card["model"]["parameters"] == best.user_attrs["params"]
    assert "Rescaling" in card["model"]["summary"]
    assert {"keras", "tensorflow", "optuna", "numpy"} <= set(card["versions"])
    assert f"--trial {best.number} --retrain" in card["reproduce"]["export"]
    assert card["checks"]["savedmodel_max_abs_diff"] < 1e-6
    text = (exported.out / "model_card.md").read_text(encoding="utf-8")
    assert f"**{card['test']['accuracy']:.6g}**" in text and "model.keras" in text
    assert sorted(p.name for p in exported.out.iterdir()) == [
        "model.keras",
        "model_card.json",
        "model_card.md",
        "saved_model",
        "study.yaml",
    ]
    # the configuration searched, runnable again
    config = yaml.safe_load((exported.out / "study.yaml").read_text(encoding="utf-8"))
    assert config["name"] == "study" and config["data"]["subset"] == 500
    assert "storage" not in config


def test_the_card_files_are_one_typed_card(exported):
    text = (exported.out / "model_card.json").read_text(encoding="utf-8")
    card = ModelCard.from_json(text)
    assert card.to_json() == text
    assert card.to_dict() == exported.card
    assert card.to_markdown() == (exported.out / "model_card.md").read_text(encoding="utf-8")
    assert card.model.input.shape == [8, 8, 1] and card.weights.source == "kept"


def test_model_keras_loads_in_a_fresh_process_with_the_cards_test_accuracy(exported):
    probs_file = exported.root / "probs.npy"
    code = (
        "import json, sys, numpy as np, keras\n"
        "m = keras.models.load_model(sys.argv[1])\n"
        "d = np.load(sys.argv[2])\n"
        "r = m.evaluate(d['x_test'], d['y_test'], verbose=0, return_dict=True)\n"
        "p = m.predict(d['x_test'], verbose=0)\n"
        "np.save(sys.argv[3], p)\n"
        "r['share_correct'] = float(np.mean(p.argmax(1) == d['y_test']))\n"
        "print(json.dumps(r))\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(exported.out / "model.keras"),
            str(exported.test_npz),
            str(probs_file),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    assert measured["share_correct"] == exported.card["test"]["accuracy"]  # exactly
    # evaluate() reports accuracy in float32
    assert measured["accuracy"] == pytest.approx(exported.card["test"]["accuracy"], abs=1e-7)
    assert measured["loss"] == pytest.approx(exported.card["test"]["loss"], rel=1e-6)

    import tensorflow as tf

    probs = np.load(probs_file)
    loaded = tf.saved_model.load(str(exported.out / "saved_model"))
    served = loaded.serve(exported.x_test.astype("float32"))
    np.testing.assert_allclose(served.numpy(), probs, atol=1e-6)
    assert (served.numpy().argmax(1) == probs.argmax(1)).all()


def test_predict_reproduces_the_test_accuracy(exported):
    result = predict(exported.out, [exported.test_npz])
    assert result.accuracy == exported.card["test"]["accuracy"]
    assert len(result.labels) == 359 and result.probabilities.shape == (359, 10)

    cli = CliRunner().invoke(app, ["predict", str(exported.out), str(exported.test_npz)])
    assert cli.exit_code == 0, cli.output
    assert "input,label,probability" in cli.output
    assert f"accuracy={exported.card['test']['accuracy']:.4f}" in cli.output


def test_predict_loads_a_folder_with_a_card_in_todays_format(exported, tmp_path):
    """A card captured from export before the card was typed (tests/fixtures) still loads."""
    import shutil

    folder = tmp_path / "v1"
    shutil.copytree(exported.out, folder)
    shutil.copy(
        Path(__file__).parent / "fixtures" / "model_card_v1.json", folder / "model_card.json"
    )
    result = predict(folder, [exported.test_npz])
    assert result.accuracy == exported.card["test"]["accuracy"]
    assert result.class_names == [str(i) for i in range(10)]


def test_predict_without_a_card_and_with_a_broken_one(exported, tmp_path):
    import shutil

    folder = tmp_path / "nocard"
    shutil.copytree(exported.out, folder, ignore=shutil.ignore_patterns("model_card.*"))
    result = predict(folder, [exported.test_npz])
    assert result.accuracy == exported.card["test"]["accuracy"]  # labels 0..9 by index
    shutil.rmtree(folder / "saved_model")
    (folder / "model_card.json").write_text("{", encoding="utf-8")
    with pytest.raises(HpsearchError, match=r"model_card\.json: not valid JSON"):
        predict(folder, [exported.test_npz])
    (folder / "model_card.json").write_text('{"format_version": 1}', encoding="utf-8")
    with pytest.raises(HpsearchError, match=r"model_card\.json: not a model card: created"):
        predict(folder, [exported.test_npz])


def test_predict_reads_csv_and_png_images(exported, tmp_path):
    import tensorflow as tf

    x, y = exported.x_test[:5], exported.y_test[:5]
    expected = predict(exported.out, [exported.test_npz]).labels[:5]

    csv_file = tmp_path / "rows.csv"
    header = ",".join([*(f"p{i}" for i in range(64)), "label"])
    rows = [
        ",".join([*(f"{v:g}" for v in xi.reshape(-1)), str(yi)])
        for xi, yi in zip(x, y, strict=True)
    ]
    csv_file.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    from_csv = predict(exported.out, [csv_file])
    assert from_csv.labels == expected and from_csv.true_labels == [str(v) for v in y]

    for i, xi in enumerate(x):
        png = tf.io.encode_png(xi.astype("uint8")).numpy()
        (tmp_path / f"img{i}.png").write_bytes(png)
    from_png = predict(exported.out, [tmp_path])  # a folder of PNGs
    assert from_png.labels == expected and from_png.names[0] == "img0.png"

    out_csv = tmp_path / "pred.csv"
    cli = CliRunner().invoke(
        app, ["predict", str(exported.out), str(tmp_path / "img0.png"), "--out", str(out_csv)]
    )
    assert cli.exit_code == 0, cli.output
    lines = out_csv.read_text().splitlines()
    assert lines[0].startswith("input,label,probability,0,1,2") and len(lines) == 2


def test_predict_refuses_inputs_of_the_wrong_shape(exported, tmp_path):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((3, 10)))
    result = CliRunner().invoke(app, ["predict", str(exported.out), str(bad)])
    assert result.exit_code == 2
    assert "do not fit the model's input (8, 8, 1)" in result.output


def test_export_a_named_trial_without_kept_weights_retrains_it(exported, tmp_path):
    best = exported.study.best_trial
    other = next(t for t in exported.study.trials if t.number != best.number)
    # its weights were kept while it was the best, and dropped when trial 1 beat it
    assert not Path(other.user_attrs.get("artifact", "/nonexistent")).exists()
    out = tmp_path / "other"
    result = CliRunner().invoke(
        app,
        ["export", str(exported.study_path), "--trial", str(other.number), "--out", str(out)]
        + ["--format", "keras"],
    )
    assert result.exit_code == 0, result.output
    assert "re-training trial" in result.output
    card = json.loads((out / "model_card.json").read_text())
    assert card["trial"]["number"] == other.number
    assert card["trial"]["optuna_params"] == other.params
    assert card["weights"]["source"] == "retrained"
    # same params, same seed: the search's validation metrics again (identical here;
    # a little slack for other CPUs and thread counts)
    assert card["validation"]["export"]["accuracy"] == pytest.approx(
        other.user_attrs["val_accuracy"], abs=0.01
    )
    assert card["validation"]["export"]["loss"] == pytest.approx(
        other.user_attrs["val_loss"], rel=1e-3
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "model.keras",
        "model_card.json",
        "model_card.md",
        "study.yaml",
    ]


def test_export_full_trains_on_train_and_validation(exported, tmp_path):
    result = export_trial(exported.study_path, out=tmp_path / "full", formats="keras", full=True)
    card = result.card
    assert card["weights"]["source"] == "retrained_full"
    assert card["weights"]["trained_on"] == "train+validation"
    assert card["data"]["train"] == 500 and card["weights"]["epochs"] == 2
    assert "--full" in card["reproduce"]["export"]


def test_refused_overwrite_changes_nothing(exported):
    before = _snapshot(exported.out)
    result = CliRunner().invoke(
        app, ["export", str(exported.study_path), "--out", str(exported.out)]
    )
    assert result.exit_code == 2
    assert "already exists; use --force to replace it" in result.output
    assert _snapshot(exported.out) == before
    assert _leftovers(exported.out.parent) == []


def test_force_replaces_and_a_failed_export_leaves_nothing(exported, tmp_path, monkeypatch):
    out = tmp_path / "again"
    export_trial(exported.study_path, out=out, formats="keras")
    (out / "stale.txt").write_text("old")
    export_trial(exported.study_path, out=out, formats="keras", force=True)
    assert not (out / "stale.txt").exists() and (out / "model.keras").is_file()

    def boom(card: ModelCard) -> str:
        raise RuntimeError("disk full")

    monkeypatch.setattr(ModelCard, "to_markdown", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        export_trial(exported.study_path, out=tmp_path / "new", formats="keras")
    with pytest.raises(RuntimeError, match="disk full"):
        export_trial(exported.study_path, out=out, formats="keras", force=True)
    assert not (tmp_path / "new").exists()
    assert (out / "model.keras").is_file()  # the old export is still there
    assert _leftovers(tmp_path) == []


# ------------------------------------------------------------------ formats and errors
def test_onnx_without_the_extra_says_which_extra(exported, tmp_path, monkeypatch):
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name in ("tf2onnx", "onnx", "onnxruntime") else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    out = tmp_path / "onnx"
    result = CliRunner().invoke(
        app, ["export", str(exported.study_path), "--format", "onnx", "--out", str(out)]
    )
    assert result.exit_code == 2
    assert "pip install 'hpsearch[onnx]'" in result.output and "tf2onnx" in result.output
    assert not out.exists()


@pytest.mark.skipif(not HAS_ONNX, reason="the onnx extra (tf2onnx, onnx, onnxruntime)")
def test_onnx_export_matches_keras(exported, tmp_path):
    import onnxruntime

    result = export_trial(exported.study_path, out=tmp_path / "onnx", formats="keras,onnx")
    assert result.card["checks"]["onnx_max_abs_diff"] < 1e-5
    session = onnxruntime.InferenceSession(str(tmp_path / "onnx" / "model.onnx"))
    x = exported.x_test.astype("float32")
    probs = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert float(np.mean(probs.argmax(1) == exported.y_test)) == pytest.approx(
        result.card["test"]["accuracy"], abs=1 / len(x)
    )


def test_cnn_with_augmentation_and_batch_norm_exports_for_inference(tmp_path):
    """The exported network runs in inference mode, without its training-only augmentation,
    so the SavedModel (and ONNX, with the extra) computes Keras' own predictions."""
    import keras

    path, _ = _write(
        tmp_path,
        "cnn",
        model={"family": "cnn"},
        space={
            "blocks": 1,
            "filters": 4,
            "dense_width": 8,
            "batch_norm": True,
            "augment_translate": 0.2,
            "augment_rotate": 0.1,
            "epochs": 2,
        },
        search__n_trials=1,
    )
    hpsearch.run(hpsearch.load_study_file(path), quiet=True)
    formats = "keras,savedmodel,onnx" if HAS_ONNX else "keras,savedmodel"
    result = export_trial(path, out=tmp_path / "out", formats=formats)
    card = result.card
    assert card["model"]["training_only_layers"] == ["augment_rotate", "augment_translate"]
    assert card["checks"]["savedmodel_max_abs_diff"] < 1e-6
    if HAS_ONNX:
        assert card["checks"]["onnx_max_abs_diff"] < 1e-5
    assert "data augmentation in training" in (tmp_path / "out" / "model_card.md").read_text()
    model = keras.models.load_model(tmp_path / "out" / "model.keras")
    # the augmentation is in the model but does not touch its predictions
    assert model.get_layer("cnn").get_layer("augment_translate") is not None
    x = np.random.default_rng(0).random((8, 8, 8, 1)).astype("float32") * 16
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize(
    ("formats", "match"),
    [
        ("keras,pickle", r"--format: got 'pickle'; allowed: keras, savedmodel, onnx"),
        (",", r"--format: give at least one"),
    ],
)
def test_bad_formats(formats, match):
    with pytest.raises(HpsearchError, match=match):
        parse_formats(formats)


def test_format_names_are_normalised():
    assert parse_formats("Keras, saved_model,keras") == ["keras", "savedmodel"]


def test_export_errors_are_one_line(exported):
    runner = CliRunner()
    result = runner.invoke(app, ["export", "nosuch", "--storage", exported.storage, "--out", "x"])
    assert result.exit_code == 2 and "no study 'nosuch'" in result.output
    result = runner.invoke(app, ["export", str(exported.study_path), "--trial", "99"])
    assert result.exit_code == 2
    assert "--trial: study 'study' has no trial 99 (COMPLETE trials: 0, 1)" in result.output


def test_multi_objective_export_needs_a_trial_number():
    study = optuna.create_study(directions=["maximize", "minimize"], study_name="multi")
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    for values in ([0.9, 100.0], [0.95, 500.0], [0.8, 600.0]):
        study.add_trial(
            optuna.trial.create_trial(params={"x": 0.5}, distributions=dist, values=values)
        )
    study.add_trial(
        optuna.trial.create_trial(params={"x": 0.5}, distributions=dist, state=TrialState.FAIL)
    )
    with pytest.raises(HpsearchError, match=r"2 Pareto-optimal trials \(0, 1\); choose one"):
        _pick_trial(study, None)
    assert _pick_trial(study, 2).number == 2
    with pytest.raises(HpsearchError, match=r"trial 3 is FAIL; only COMPLETE"):
        _pick_trial(study, 3)
