"""open_storage: URLs to Optuna storages and their errors (no Keras)."""

from __future__ import annotations

import sqlite3

import optuna
import pytest

from hpsearch.exceptions import ConfigError
from hpsearch.storage import open_storage


def test_sqlite_is_created_in_wal_mode(tmp_path):
    db = tmp_path / "runs.db"
    storage = open_storage(f"sqlite:///{db}")
    assert isinstance(storage, optuna.storages.RDBStorage)
    optuna.create_study(storage=storage, study_name="s")
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        con.close()


def test_missing_files_and_folders(tmp_path):
    with pytest.raises(ConfigError, match=r"no database at .*runs\.db"):
        open_storage(f"sqlite:///{tmp_path / 'runs.db'}", create=False)
    with pytest.raises(ConfigError, match=r"folder .*nowhere does not exist"):
        open_storage(f"sqlite:///{tmp_path / 'nowhere' / 'runs.db'}")
    with pytest.raises(ConfigError, match=r"no journal file at .*runs\.log"):
        open_storage(f"journal:///{tmp_path / 'runs.log'}", create=False)
    assert not list(tmp_path.iterdir())


def test_journal_files(tmp_path):
    storage = open_storage(str(tmp_path / "runs.log"))
    assert isinstance(storage, optuna.storages.JournalStorage)


def test_a_lost_schema_race_is_opened_again(tmp_path, monkeypatch):
    real = optuna.storages.RDBStorage
    calls = []

    def racing(url: str, **kwargs: object) -> optuna.storages.RDBStorage:
        calls.append(url)
        if len(calls) < 3:
            raise RuntimeError('table "studies" already exists')
        return real(url, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(optuna.storages, "RDBStorage", racing)
    monkeypatch.setattr("hpsearch.storage.time.sleep", lambda _s: None)
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    assert isinstance(open_storage(url), real) and len(calls) == 3


def test_three_lost_races_or_another_error_is_one_line(tmp_path, monkeypatch):
    calls = []

    def failing(url: str, **kwargs: object) -> None:
        calls.append(url)
        raise RuntimeError('table "studies" already exists\nmore')

    monkeypatch.setattr(optuna.storages, "RDBStorage", failing)
    monkeypatch.setattr("hpsearch.storage.time.sleep", lambda _s: None)
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    with pytest.raises(
        ConfigError, match=r'cannot open the storage: table "studies" already exists$'
    ):
        open_storage(url)
    assert len(calls) == 3

    def broken(url: str, **kwargs: object) -> None:
        calls.append(url)
        raise RuntimeError("disk I/O error")

    monkeypatch.setattr(optuna.storages, "RDBStorage", broken)
    calls.clear()
    with pytest.raises(ConfigError, match=r"cannot open the storage: disk I/O error"):
        open_storage(url, heartbeat=False)
    assert len(calls) == 1


def test_heartbeats_are_set_on_database_storages(tmp_path):
    storage = open_storage(
        f"sqlite:///{tmp_path / 'runs.db'}", heartbeat_interval=5, grace_period=20
    )
    assert storage.heartbeat_interval == 5 and storage.grace_period == 20
    plain = open_storage(f"sqlite:///{tmp_path / 'plain.db'}", heartbeat=False)
    assert plain.heartbeat_interval is None
