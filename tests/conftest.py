"""Shared fixtures: small, fast, offline studies on scikit-learn's digits."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TESTS_DIR = Path(__file__).parent
REPO = TESTS_DIR.parent


def hpsearch_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m hpsearch ARGS`` in a fresh process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "hpsearch", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


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


# ------------------------------------------------------------------ every storage backend
POSTGRES_URL = "postgresql://127.0.0.1:5432/test"
STORAGE_KINDS = ("sqlite", "journal", "postgresql")


class StorageSupplier:
    """One storage backend for a test, as hpsearch opens it (modeled on Optuna's
    ``optuna.testing.storages.StorageSupplier``): an SQLite file, an Optuna journal file
    or the project's PostgreSQL database (``POSTGRES_URL``, trust auth).

    Files live in the test's ``tmp_path``. On PostgreSQL, which other runs share, every
    study made through :meth:`study_name` gets a unique name and is deleted at the end.
    """

    def __init__(self, kind: str, folder: Path) -> None:
        self.kind = kind
        self.url = {
            "sqlite": f"sqlite:///{folder / 'storage.db'}",
            "journal": f"journal:///{folder / 'storage.log'}",
            "postgresql": POSTGRES_URL,
        }[kind]
        self._names: list[str] = []

    @property
    def is_rdb(self) -> bool:
        """SQLite and PostgreSQL: Optuna's RDB storage (its own heartbeats)."""
        return self.kind != "journal"

    def study_name(self, base: str = "study") -> str:
        """A study name no other test (or run sharing the database) uses."""
        import uuid

        name = f"{base}_{uuid.uuid4().hex[:12]}"
        self._names.append(name)
        return name

    def open(self, **kwargs: Any) -> Any:
        """``hpsearch.storage.open_storage(self.url, **kwargs)``."""
        from hpsearch.storage import open_storage

        return open_storage(self.url, **kwargs)

    def __enter__(self) -> StorageSupplier:
        if self.kind == "postgresql":
            import sqlalchemy

            engine = sqlalchemy.create_engine(self.url)
            try:
                with engine.connect():
                    pass
            finally:
                engine.dispose()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.kind != "postgresql" or not self._names:
            return
        import contextlib

        import optuna

        storage = optuna.storages.RDBStorage(self.url)
        try:
            for name in self._names:
                with contextlib.suppress(KeyError):
                    optuna.delete_study(study_name=name, storage=storage)
        finally:
            storage.engine.dispose()


@pytest.fixture(params=STORAGE_KINDS)
def any_storage(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Run the test once per storage backend (see :class:`StorageSupplier`)."""
    with StorageSupplier(request.param, tmp_path) as supplier:
        yield supplier
