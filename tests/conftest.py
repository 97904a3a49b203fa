"""Shared fixtures: small, fast, offline studies on scikit-learn's digits."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TESTS_DIR = Path(__file__).parent
REPO = TESTS_DIR.parent


def small_study(**changes: Any) -> dict[str, Any]:
    """A digits MLP study that trains in about a second per trial."""
    study: dict[str, Any] = {
        "data": {"name": "digits", "subset": 600, "validation": 0.25, "seed": 0},
        "model": {"family": "mlp"},
        "space": {
            "depth": {"low": 1, "high": 2},
            "width": {"low": 8, "high": 64, "log": True},
            "dropout": {"low": 0.0, "high": 0.3},
            "optimizer": {"choices": ["adam", "rmsprop"]},
            "learning_rate": {"low": 1e-3, "high": 1e-2, "log": True},
            "batch_size": 64,
            "epochs": 2,
        },
        "search": {"sampler": "random", "n_trials": 3, "seed": 7},
    }
    for key, value in changes.items():
        node = study
        parts = key.split("__")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return study


@pytest.fixture
def storage_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hpsearch.db'}"


@pytest.fixture
def write_study(tmp_path: Path, storage_url: str) -> Callable[..., Path]:
    """Write a study file into tmp_path; keyword changes use ``a__b=value`` for a.b."""

    def write(name: str = "study", **changes: Any) -> Path:
        data = small_study(**changes)
        data.setdefault("storage", storage_url)
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return path

    return write
