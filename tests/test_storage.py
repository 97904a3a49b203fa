"""open_storage: URLs to Optuna storages and their errors (no Keras)."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import time

import optuna
import pytest

from hpsearch.exceptions import ConfigError
from hpsearch.storage import check_storage_url, open_storage

POSTGRES = "postgresql://127.0.0.1:5432/test"


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


def _open_at_once(path, barrier, results):
    from hpsearch.storage import _enable_wal

    barrier.wait()
    try:
        _enable_wal(path)
        results.put("ok")
    except Exception as exc:  # what the test reports
        results.put(f"{type(exc).__name__}: {exc}")


def test_processes_switching_one_new_file_to_wal_at_once_all_succeed(tmp_path):
    # two `hpsearch run` started side by side on one new SQLite file: without the retry,
    # about one pair in twenty got "database is locked" at once (SQLite skips its busy
    # handler there), so 40 rounds of 3 processes fail it with near certainty
    ctx = multiprocessing.get_context("fork")
    for i in range(40):
        barrier, results = ctx.Barrier(3), ctx.Queue()
        procs = [
            ctx.Process(target=_open_at_once, args=(tmp_path / f"{i}.db", barrier, results))
            for _ in range(3)
        ]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join()
        assert [results.get() for _ in procs] == ["ok"] * 3, f"round {i}"
        con = sqlite3.connect(tmp_path / f"{i}.db")
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


# ------------------------------------------------------------------ check_storage_url
@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///runs.db",
        "sqlite:////abs/path/runs.db",
        "journal:///runs.log",
        "runs.log",
        "runs.jsonl",
        "postgresql://127.0.0.1:5432/test",
        "postgresql+psycopg://user@db.example/runs",
    ],
)
def test_check_storage_url_accepts(url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    check_storage_url(url)
    assert not list(tmp_path.iterdir())  # nothing is opened or created


@pytest.mark.parametrize(
    "url", ["hpsearch.db", "", "/data/runs", "postgresql://db:port/runs", "sqlite:/runs.db"]
)
def test_check_storage_url_refuses_what_is_not_a_url(url):
    with pytest.raises(ConfigError, match="not a storage URL; use sqlite:///file.db") as info:
        check_storage_url(url)
    assert info.value.path == "storage" and info.value.value == url


def test_check_storage_url_names_an_unknown_database_kind():
    with pytest.raises(ConfigError, match="unknown database kind 'nosuch'"):
        check_storage_url("nosuch://db.example/runs")


def _without_driver(monkeypatch, url: str, module: str) -> None:
    """Make the DB-API module of ``url``'s dialect fail to import, as if not installed."""
    from sqlalchemy.engine import make_url

    def missing(cls):
        raise ModuleNotFoundError(f"No module named '{module}'")

    monkeypatch.setattr(make_url(url).get_dialect(), "import_dbapi", classmethod(missing))


@pytest.mark.parametrize(
    ("url", "module", "how"),
    [
        ("postgresql://db.example/runs", "psycopg", "pip install 'hpsearch[postgres]'"),
        ("postgresql+psycopg2://db.example/runs", "psycopg2", "pip install 'hpsearch[postgres]'"),
        ("mysql+pymysql://db.example/runs", "pymysql", "install the database's Python driver"),
    ],
)
def test_check_storage_url_names_a_missing_driver_and_how_to_install_it(
    monkeypatch, url, module, how
):
    _without_driver(monkeypatch, url, module)
    with pytest.raises(ConfigError) as info:
        check_storage_url(url)
    message = str(info.value)
    assert message.startswith(f"storage: got {url!r}; the database driver is missing")
    assert f"No module named '{module}'" in message and how in message
    with pytest.raises(ConfigError, match="the database driver is missing"):
        open_storage(url)  # refused before anything is opened


def test_check_storage_url_of_redis_needs_the_redis_package(monkeypatch):
    import importlib.util

    check_storage_url("redis://127.0.0.1:6379/0")  # installed here (the test extra)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "redis" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=r"No module named 'redis'.*hpsearch\[redis\]"):
        check_storage_url("redis://127.0.0.1:6379/0")


# ------------------------------------------------------------------ open_storage
def test_sqlite_commits_skip_the_fsync_and_an_existing_file_opens_without_create(tmp_path):
    import sqlalchemy

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    storage = open_storage(url)
    optuna.create_study(storage=storage, study_name="s")
    with storage.engine.connect() as connection:  # every new connection: synchronous=NORMAL
        assert connection.execute(sqlalchemy.text("PRAGMA synchronous")).scalar() == 1
    again = open_storage(url, create=False, heartbeat=False)
    assert optuna.get_all_study_names(storage=again) == ["s"]
    assert again.heartbeat_interval is None


def test_journal_file_urls_open_the_same_log(tmp_path):
    log = tmp_path / "runs.jsonl"
    first = open_storage(str(log))
    assert isinstance(first, optuna.storages.JournalStorage)
    optuna.create_study(storage=first, study_name="s")
    for url in (f"journal:///{log}", str(log)):
        second = open_storage(url, create=False)
        assert optuna.get_all_study_names(storage=second) == ["s"]


def test_postgresql_opens_with_heartbeats_and_pre_ping():
    storage = open_storage(POSTGRES, heartbeat_interval=7, grace_period=21)
    try:
        assert isinstance(storage, optuna.storages.RDBStorage)
        assert storage.heartbeat_interval == 7 and storage.grace_period == 21
        assert storage.get_heartbeat_stale_trial_callback() is not None  # re-queues
        assert storage.engine.pool._pre_ping  # a connection the server dropped is renewed
        assert open_storage(POSTGRES, create=False, heartbeat=False).heartbeat_interval is None
    finally:
        storage.engine.dispose()


def test_reading_a_server_study_in_a_loop_holds_one_pool_not_one_per_call():
    import gc

    import sqlalchemy

    from hpsearch import open_study

    tag = f"reader_{os.getpid()}_{time.time_ns()}"
    url = f"{POSTGRES}?application_name={tag}"
    writer = open_storage(POSTGRES, heartbeat=False)
    optuna.create_study(study_name=tag, storage=writer)
    count = sqlalchemy.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :a")
    gc.disable()  # a dropped pool would stay open until the cycle collector ran
    try:
        for _ in range(150):  # a notebook polling a running study
            assert open_study(tag, url).study_name == tag
        assert open_storage(url, create=False, heartbeat=False) is open_storage(
            url, create=False, heartbeat=False
        )
        with writer.engine.connect() as connection:
            assert connection.execute(count, {"a": tag}).scalar() <= 5  # one pool's size
    finally:
        gc.enable()
        optuna.delete_study(study_name=tag, storage=writer)
        writer.engine.dispose()
    # a writer (create or heartbeats) still gets its own storage
    first, second = open_storage(url, heartbeat=False), open_storage(url, heartbeat=False)
    assert first is not second
    first.engine.dispose(), second.engine.dispose()


def test_the_reader_cache_keeps_the_last_few_urls_and_closes_the_pool_it_drops():
    from hpsearch.storage import _ReaderCache

    urls = [f"{POSTGRES}?application_name=evict_{i}" for i in range(_ReaderCache.SIZE + 1)]
    first = open_storage(urls[0], create=False, heartbeat=False)
    with first.engine.connect():
        pass
    assert first.engine.pool.checkedin() >= 1  # an open connection, idle in the pool
    for url in urls[1:]:  # one more URL than the cache keeps: the oldest is dropped
        assert open_storage(url, create=False, heartbeat=False) is not first
    assert first.engine.pool.checkedin() == 0  # its pool was closed
    assert optuna.get_all_study_names(storage=first) is not None  # and still usable
    assert open_storage(urls[-1], create=False, heartbeat=False) is open_storage(
        urls[-1], create=False, heartbeat=False
    )
    assert open_storage(urls[0], create=False, heartbeat=False) is not first
    first.engine.dispose()


def test_a_redis_prefix_keeps_one_journal_apart_from_another_in_the_same_database():
    import redis

    tag = f"hpsearch-test-{os.getpid()}-{time.time_ns()}"
    url_a, url_b = (f"redis://127.0.0.1:6379/0?prefix={tag}-{x}:" for x in "ab")
    optuna.create_study(study_name="only_in_a", storage=open_storage(url_a))
    assert optuna.get_all_study_names(storage=open_storage(url_a)) == ["only_in_a"]
    assert optuna.get_all_study_names(storage=open_storage(url_b)) == []
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    keys = list(client.scan_iter(match=f"{tag}-*"))
    assert keys and all(k.startswith(f"{tag}-a:".encode()) for k in keys)
    client.delete(*keys)


def test_an_unreachable_database_server_is_one_line():
    url = "postgresql://127.0.0.1:1/test"  # nothing listens on port 1
    with pytest.raises(ConfigError) as info:
        open_storage(url, heartbeat=False)
    message = str(info.value)
    assert message.startswith(f"storage: got {url!r}; cannot open the storage: ")
    assert "\n" not in message
