"""What ``hpsearch export`` prints, from the card it gets (no Keras: export is stubbed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import hpsearch.export as export_module
from hpsearch.card import ModelCard
from hpsearch.cli import app
from hpsearch.export import ExportResult

V1_JSON = Path(__file__).parent / "fixtures" / "model_card_v1.json"
SCORES = "  validation {val} (search)   test accuracy=0.5348 loss=1.8532 (359 samples)\n"
FILES = "  files: model.keras, model_card.md\n"


def _invoke(monkeypatch: pytest.MonkeyPatch, card: ModelCard) -> str:
    result = ExportResult(Path("/data/out"), 1, card, ["model.keras", "model_card.md"])
    monkeypatch.setattr(export_module, "export_trial", lambda *args, **kwargs: result)
    done = CliRunner().invoke(app, ["export", "study"])
    assert done.exit_code == 0, done.output
    return done.output


def test_export_prints_where_the_weights_came_from_and_the_scores(monkeypatch):
    card = ModelCard.from_json(V1_JSON.read_text(encoding="utf-8"))
    assert _invoke(monkeypatch, card) == (
        "exported trial 1 of 'study' (kept weights) to /data/out\n"
        + SCORES.format(val="val_accuracy=0.5120")
        + FILES
    )


def test_export_prints_a_full_retraining_and_a_missing_value(monkeypatch):
    card = ModelCard.from_json(V1_JSON.read_text(encoding="utf-8"))
    card.weights.source = "retrained_full"
    assert _invoke(monkeypatch, card).startswith(
        "exported trial 1 of 'study' (re-trained, train+validation) to /data/out\n"
    )
    card.weights.source = "retrained"
    card.trial.values = {}
    assert _invoke(monkeypatch, card) == (
        "exported trial 1 of 'study' (re-trained) to /data/out\n"
        + SCORES.format(val="val_accuracy=?")
        + FILES
    )
