"""The model card records: JSON round trip, today's format, Markdown (no Keras)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hpsearch.card import (
    CardError,
    DataInfo,
    InputSpec,
    Measurement,
    ModelCard,
    ModelInfo,
    Objective,
    Reproduce,
    StudyInfo,
    TrialInfo,
    Validation,
    WeightsInfo,
    jsonable,
)

FIXTURES = Path(__file__).parent / "fixtures"
# captured from `hpsearch export` before the card became typed records (format 1);
# the Markdown as .txt: ruff formats the Python blocks of .md files
V1_JSON = FIXTURES / "model_card_v1.json"
V1_MD = FIXTURES / "model_card_v1.md.txt"
# hand_made() rendered by the dict-based Markdown writer the records replaced
HAND_MADE_MD = FIXTURES / "model_card_hand_made.md.txt"


def hand_made() -> ModelCard:
    """A card that takes the Markdown branches today's export fixture does not:
    re-trained on train+validation, augmentation, a data file, a changed fingerprint."""
    return ModelCard(
        format_version=1,
        created="2025-01-02T03:04:05+00:00",
        study=StudyInfo(
            name="tabular",
            storage="sqlite:///runs.db",
            engine="optuna",
            source="studies/tabular.yaml",
            objectives=[Objective("val_accuracy", "maximize"), Objective("params", "minimize")],
            family="cnn",
        ),
        trial=TrialInfo(
            number=7,
            values={"val_accuracy": 0.875, "params": 1234.0},
            params={"width": 32, "learning_rate": 0.00123456789, "optimizer": "adam"},
            optuna_params={"width": 32, "learning_rate": 0.00123456789, "optimizer": "adam"},
            seed=49,
            metrics={"val_accuracy": 0.875, "accuracy": 0.9},
            epochs_run=5,
            train_seconds=12.5,
            started=None,
        ),
        weights=WeightsInfo(
            source="retrained_full",
            artifact=None,
            epochs=4,
            retrain_seconds=3.25,
            trained_on="train+validation",
        ),
        model=ModelInfo(
            name="cnn_export",
            parameters=1234567,
            trainable_parameters=1234000,
            input=InputSpec("inputs", [4], "float32"),
            output="softmax probabilities over the 3 classes",
            training_only_layers=["augment_rotate", "augment_translate"],
            summary='Model: "cnn_export"\n(layers)',
        ),
        data=DataInfo(
            name="csv",
            path="/data/iris.csv",
            subset=120,
            label_column="species",
            split_seed=3,
            train=100,
            validation=20,
            test=30,
            input_shape=[4],
            raw_dtype="float64",
            class_names=["setosa", "versicolor", "virginica"],
            scaling={"kind": "standard", "mean": [1.0, 2.0], "std": [0.5, 0.25]},
            preprocessing="inputs are standardised per feature",
            fingerprint="aaaa",
            fingerprint_of_search="bbbb",
        ),
        validation=Validation(
            search={"val_accuracy": 0.875},
            export=Measurement(accuracy=0.85, correct=17, samples=20, loss=0.4),
        ),
        test=Measurement(accuracy=0.9, correct=27, samples=30, loss=0.3333333333),
        files={"model.keras": "Keras 3 model", "model.onnx": "ONNX model"},
        checks={"onnx_max_abs_diff": 1.5e-7},
        versions={"python": "3.11.7", "hpsearch": "0.1.0"},
        reproduce=Reproduce(export="hpsearch export tabular --full", search="hpsearch run x"),
        config={"name": "tabular", "data": {"name": "csv", "path": "/data/iris.csv"}},
    )


# ------------------------------------------------------------------ JSON
def test_round_trip_through_json():
    card = hand_made()
    text = card.to_json()
    assert text.endswith("}\n")
    again = ModelCard.from_json(text)
    assert again == card
    assert again.to_json() == text


def test_to_dict_has_the_keys_of_model_card_json_in_order():
    data = hand_made().to_dict()
    assert list(data) == [
        "format_version",
        "created",
        "study",
        "trial",
        "weights",
        "model",
        "data",
        "validation",
        "test",
        "files",
        "checks",
        "versions",
        "reproduce",
        "config",
    ]
    assert data["study"]["objectives"][1] == {"metric": "params", "direction": "minimize"}
    assert data["model"]["input"] == {"name": "inputs", "shape": [4], "dtype": "float32"}
    assert data["validation"]["export"] == {
        "accuracy": 0.85,
        "correct": 17,
        "samples": 20,
        "loss": 0.4,
    }


def test_reads_todays_format_byte_for_byte():
    text = V1_JSON.read_text(encoding="utf-8")
    card = ModelCard.from_json(text)
    assert card.to_json() == text
    assert card.to_dict() == json.loads(text)
    # what predict and the CLI read
    assert card.model.input.shape == [8, 8, 1]
    assert card.data.class_names == [str(i) for i in range(10)]
    assert card.data.label_column is None
    assert card.primary_metric == "val_accuracy"
    assert card.trial.values == {"val_accuracy": 0.5120000243186951}
    assert card.weights.source == "kept" and not card.retrained_full
    assert card.test == Measurement(0.5348189415041783, 192, 359, 1.8531785011291504)
    assert card.checks == {"savedmodel_max_abs_diff": 0.0}


def test_dict_style_reading_still_works():
    card = ModelCard.from_json(V1_JSON.read_text(encoding="utf-8"))
    assert card["test"]["accuracy"] == card.test.accuracy
    assert card["weights"]["source"] == "kept"


def test_numpy_values_are_written_as_json():
    card = hand_made()
    card.data.scaling = {"kind": "standard", "mean": np.array([1.0, 2.0]), "std": np.float32(2)}
    card.model.input.shape = list(np.array([4]))
    data = json.loads(card.to_json())
    assert data["data"]["scaling"] == {"kind": "standard", "mean": [1.0, 2.0], "std": 2.0}
    assert data["model"]["input"]["shape"] == [4]
    assert jsonable({"a": (1, np.int64(2))}) == {"a": [1, 2]}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda d: d.pop("test"), r"not a model card: test is missing"),
        (lambda d: d["model"]["input"].pop("shape"), r"model\.input\.shape is missing"),
        (lambda d: d["study"]["objectives"][0].pop("metric"), r"objectives\[0\]\.metric"),
        (lambda d: d.__setitem__("trial", []), r"trial: expected an object, got list"),
    ],
)
def test_a_card_without_a_field_is_refused(change, match):
    data = json.loads(V1_JSON.read_text(encoding="utf-8"))
    change(data)
    with pytest.raises(CardError, match=match):
        ModelCard.from_dict(data)


def test_not_json_is_refused():
    with pytest.raises(CardError, match="not valid JSON"):
        ModelCard.from_json("{")
    with pytest.raises(CardError, match="expected an object, got list"):
        ModelCard.from_json("[]")


# ------------------------------------------------------------------ Markdown
def test_markdown_of_todays_card_reads_as_today():
    card = ModelCard.from_json(V1_JSON.read_text(encoding="utf-8"))
    assert card.to_markdown() == V1_MD.read_text(encoding="utf-8")


def test_markdown_of_a_hand_made_card():
    text = hand_made().to_markdown()
    assert text == HAND_MADE_MD.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == "# Model card: tabular, trial 7"
    assert "(maximize val_accuracy, minimize params)." in lines[2]
    assert "| validation (search) | 20 | 0.875 | — |" in lines
    assert "| **test** (measured at export) | 30 | **0.9** | 0.333333 |" in lines
    assert "Validation data were part of the training (`--full`)." in text
    assert "* weights: re-trained at export on train+validation for 4 epochs, seed 49" in lines
    assert "; re-training time: 3.25 s" in text
    assert "* parameters: 1,234,567 (1,234,000 trainable)" in lines
    assert "(`augment_rotate`, `augment_translate`): inactive" in text
    assert "| learning_rate | 0.00123457 |" in lines
    assert "* data set: csv from `/data/iris.csv`, subset 120; split seed 3" in lines
    assert "* scaling: standard" in lines
    assert "(**differs** from the search's `bbbb`)" in text
    assert "* `model.onnx`: ONNX model" in lines
    assert text.endswith("python 3.11.7, hpsearch 0.1.0\n")


def test_markdown_names_the_weights_source():
    card = hand_made()
    card.weights.source = "retrained"
    card.weights.retrain_seconds = None
    text = card.to_markdown()
    assert "* weights: re-trained at export from the stored params with seed 49" in text
    assert "re-training time" not in text and "(`--full`)" not in text
    card.weights.source = "kept"
    card.weights.artifact = "/runs_artifacts/tabular/trial_7"
    kept = card.to_markdown()
    assert "* weights: kept by the search (/runs_artifacts/tabular/trial_7)" in kept
