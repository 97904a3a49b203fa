"""Storage URLs → Optuna storages, with SQLite set up for concurrent readers.

* ``sqlite:///path.db`` (default): WAL journal mode, a 60 s busy timeout, so a
  reading ``optuna-dashboard`` does not make a running study fail with
  "database is locked".
* ``postgresql://...``, ``mysql://...``: Optuna's RDB storage.
* ``journal:///path.log`` or a path ending in ``.log``: Optuna's journal file.
* RDB storages get heartbeats: a trial whose process died is marked FAIL after
  the grace period and its parameters are retried.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpsearch.exceptions import ConfigError

if TYPE_CHECKING:
    import optuna

__all__ = ["HEARTBEAT_INTERVAL", "open_storage", "set_user_attrs", "sqlite_path"]

HEARTBEAT_INTERVAL = 30
GRACE_PERIOD = 120
SQLITE_TIMEOUT = 60


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL, else None."""
    if not url.startswith("sqlite:///"):
        return None
    rest = url[len("sqlite:///") :]
    return None if rest in ("", ":memory:") else Path(rest.split("?", 1)[0])


def journal_path(url: str) -> Path | None:
    """The file of a journal storage URL (``journal:///x.log`` or ``x.log``), else None."""
    if url.startswith("journal:///"):
        return Path(url[len("journal:///") :])
    if "://" not in url and url.endswith((".log", ".jsonl")):
        return Path(url)
    return None


_URL_HELP = (
    "use sqlite:///file.db, postgresql://host/db, mysql://host/db, journal:///file.log "
    "or redis://host:6379"
)


def check_storage_url(url: str) -> None:
    """Reject what cannot be a storage URL (cheap: nothing is opened or connected).

    A database URL must parse, name a dialect SQLAlchemy knows, and have its driver
    installed (``pip install 'hpsearch[postgres]'`` for PostgreSQL).

    Raises:
        ConfigError: naming ``storage``, with the URL and what to use instead.

    Example:
        >>> check_storage_url("sqlite:///hpsearch.db")  # fine: nothing is opened
        >>> check_storage_url("runs.log")  # a path ending in .log is a journal file
        >>> check_storage_url("hpsearch.db")
        Traceback (most recent call last):
        hpsearch.exceptions.ConfigError: storage: got 'hpsearch.db'; not a storage URL; use ...
    """
    if journal_path(url) is not None:
        return
    if "://" not in url:
        raise ConfigError(
            f"not a storage URL; {_URL_HELP}", path="storage", value=url, has_value=True
        )
    if url.startswith("redis://"):
        import importlib.util

        if importlib.util.find_spec("redis") is None:
            raise _driver_missing(url, "No module named 'redis'")
        return
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        dialect = make_url(url).get_dialect()
    except NoSuchModuleError:  # an ArgumentError too: first
        scheme = url.split("://", 1)[0]
        raise ConfigError(
            f"unknown database kind {scheme!r}; {_URL_HELP}",
            path="storage",
            value=url,
            has_value=True,
        ) from None
    except (ArgumentError, ValueError):
        raise ConfigError(
            f"not a storage URL; {_URL_HELP}", path="storage", value=url, has_value=True
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        raise _driver_missing(url, exc) from None


def _driver_missing(url: str, exc: object) -> ConfigError:
    extra = {"postgresql": "postgres", "redis": "redis"}.get(url.split("://", 1)[0].split("+")[0])
    how = (
        f"pip install 'hpsearch[{extra}]'"
        if extra
        else "install the database's Python driver (e.g. mysql+pymysql:// with pip install pymysql)"
    )
    return ConfigError(
        f"the database driver is missing ({exc}); {how}", path="storage", value=url, has_value=True
    )


def _lost_schema_race(exc: Exception) -> bool:
    """True if ``exc`` is what another process initialising the same database causes."""
    text = str(exc)
    return "already exists" in text or (
        "alembic_version" in text and ("UNIQUE" in text or "duplicate key" in text)
    )


def open_storage(
    url: str,
    *,
    create: bool = True,
    heartbeat: bool = True,
    heartbeat_interval: int = HEARTBEAT_INTERVAL,
    grace_period: int = GRACE_PERIOD,
) -> optuna.storages.BaseStorage:
    """Open (and with ``create``, initialise) the storage at ``url``.

    With ``heartbeat``, an RDB storage beats every ``heartbeat_interval`` seconds
    for a running trial; a trial silent for ``grace_period`` seconds is failed
    and re-queued with the same params (journal storages get the same from
    ``hpsearch.engines._workers``).

    A read-only open of a database server (``create=False, heartbeat=False``, as
    ``open_study``, ``status`` and ``best`` do) returns the same storage for the same
    URL within a process, so reading in a loop holds one connection pool, not one per call.

    Raises:
        ConfigError: the URL is malformed, its driver is missing, or (with
            ``create=False``) the database does not exist.
    """
    journal = _journal_storage(url, create=create)
    if journal is not None:
        return journal
    check_storage_url(url)
    db = sqlite_path(url)
    reader = not create and not heartbeat and db is None and not url.startswith("sqlite:")
    if reader and (cached := _READERS.get(url)) is not None:
        return cached
    engine_kwargs = _engine_kwargs(url, db, create=create)
    hb = _heartbeat_kwargs(heartbeat_interval, grace_period) if heartbeat else {}
    try:
        storage = _open_rdb(url, engine_kwargs, hb)
        if db is not None:
            _fast_commits(storage)
        if reader:
            _READERS.put(url, storage)
        return storage
    except ImportError as exc:
        raise _driver_missing(url, exc) from None
    except Exception as exc:  # sqlalchemy.exc.ArgumentError / OperationalError
        first = str(exc).splitlines()[0][:200]
        raise ConfigError(
            f"cannot open the storage: {first}", path="storage", value=url, has_value=True
        ) from None


class _ReaderCache:
    """The last few read-only storages of a database server, one per URL, per process.

    Every ``RDBStorage`` has its own connection pool, and a dropped one keeps its
    connections open until Python's cycle collector gets to it. A notebook (or a test)
    that reads a PostgreSQL study in a loop (``hpsearch.open_study``, ``status``,
    ``best``) would open a new pool per call and could reach the server's
    ``max_connections`` ("too many clients already"); readers of one URL share a
    storage instead. The key includes the process id, so a forked child never uses its
    parent's connections. SQLite files are not cached: a file deleted and made again
    must be read afresh. An evicted storage's pool is closed (its engine stays usable).
    """

    SIZE = 8

    def __init__(self) -> None:
        self._storages: OrderedDict[tuple[int, str], optuna.storages.RDBStorage] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, url: str) -> optuna.storages.RDBStorage | None:
        with self._lock:
            storage = self._storages.get((os.getpid(), url))
            if storage is not None:
                self._storages.move_to_end((os.getpid(), url))
            return storage

    def put(self, url: str, storage: optuna.storages.RDBStorage) -> None:
        with self._lock:
            self._storages[(os.getpid(), url)] = storage
            while len(self._storages) > self.SIZE:
                (pid, _), evicted = self._storages.popitem(last=False)
                # a parent's pool, inherited by fork, is dropped without closing it
                evicted.engine.dispose(close=pid == os.getpid())


_READERS = _ReaderCache()


def _journal_storage(url: str, *, create: bool) -> optuna.storages.JournalStorage | None:
    """A journal file's or Redis' storage; None for a database URL."""
    import optuna

    journal = journal_path(url)
    if journal is not None:
        if not create and not journal.exists():
            raise ConfigError(
                f"no journal file at {journal}", path="storage", value=url, has_value=True
            )
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
    if url.startswith("redis://"):
        from optuna.storages.journal import JournalRedisBackend

        server, prefix = redis_prefix(url)
        return optuna.storages.JournalStorage(JournalRedisBackend(server, prefix=prefix))
    return None


def redis_prefix(url: str) -> tuple[str, str]:
    """A Redis journal's server URL and key prefix: ``?prefix=NAME`` keeps one project's
    journal apart from others in the same Redis database (default: no prefix).

    Example:
        >>> redis_prefix("redis://cache:6379/0?prefix=team-a")
        ('redis://cache:6379/0', 'team-a')
        >>> redis_prefix("redis://cache:6379/0?socket_timeout=5")
        ('redis://cache:6379/0?socket_timeout=5', '')
    """
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefixes = [value for key, value in query if key == "prefix"]
    rest = urlencode([(key, value) for key, value in query if key != "prefix"])
    return urlunsplit(parts._replace(query=rest)), (prefixes[-1] if prefixes else "")


def _engine_kwargs(url: str, db: Path | None, *, create: bool) -> dict[str, object]:
    """SQLAlchemy engine options: WAL and a busy timeout for SQLite (whose file must exist
    without ``create``, in a folder that exists with it), pre-ping for database servers."""
    if db is None:
        return {"pool_pre_ping": True}
    if not db.exists():
        if not create:
            raise ConfigError(f"no database at {db}", path="storage", value=url, has_value=True)
        if not db.parent.is_dir():
            raise ConfigError(
                f"folder {db.parent} does not exist", path="storage", value=url, has_value=True
            )
    _enable_wal(db)
    return {"connect_args": {"timeout": SQLITE_TIMEOUT}}


def _heartbeat_kwargs(interval: int, grace_period: int) -> dict[str, object]:
    """RDBStorage's heartbeat options: a stale trial is failed and retried (3 times)."""
    import optuna
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = RetryHeartbeatStaleTrialCallback(max_retry=3)
    return {
        "heartbeat_interval": interval,
        "grace_period": grace_period,
        "heartbeat_stale_trial_callback": retry,
    }


def _open_rdb(
    url: str, engine_kwargs: dict[str, object], hb: dict[str, object]
) -> optuna.storages.RDBStorage:
    """``RDBStorage(url)``, opened again if another process was creating the same schema."""
    import optuna

    tries = 0
    while True:
        tries += 1
        try:
            with warnings.catch_warnings():
                # heartbeats are marked experimental in Optuna 5.0; they are what we want
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **hb)  # type: ignore[arg-type]
        except Exception as exc:
            # two processes opening a new database at once both create the tables; the
            # slower one fails with "table ... already exists", or with a duplicate
            # alembic_version row when both got as far as recording the schema
            # version: open it again (3 tries in all)
            if not _lost_schema_race(exc) or tries == 3:
                raise
            time.sleep(0.2)


def _fast_commits(storage: optuna.storages.RDBStorage) -> None:
    """``synchronous=NORMAL`` on every connection: in WAL mode a commit then skips
    its fsync (the WAL is synced at checkpoints). A crashed process loses nothing; a
    power cut may lose the last commits but never corrupts the file (SQLite's
    documented guarantee for WAL). Measured with benchmarks/bookkeeping.py: 59 → 46 ms
    of storage work per trial.
    """
    from sqlalchemy import event

    def on_connect(dbapi_connection: sqlite3.Connection, record: object) -> None:
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    event.listen(storage.engine, "connect", on_connect)
    storage.engine.dispose()  # connections opened while creating the schema


def _enable_wal(db: Path) -> None:
    """WAL lets readers (a dashboard) and one writer work at the same time.

    The mode is stored in the database file, so setting it once is enough.
    Two processes switching a brand-new file to WAL at the same instant: one of them
    gets "database is locked" at once, without SQLite's busy handler (seen with two
    ``hpsearch run`` started side by side on one new database), so the switch is tried
    again until ``SQLITE_TIMEOUT``.
    """
    deadline = time.monotonic() + SQLITE_TIMEOUT
    while True:
        con = sqlite3.connect(db, timeout=SQLITE_TIMEOUT)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        finally:
            con.close()
        time.sleep(0.05)


def set_user_attrs(trial: optuna.Trial, attrs: Mapping[str, Any]) -> None:
    """``trial.set_user_attr`` for several keys, in one transaction on RDB storages.

    Optuna commits each user attribute on its own (a trial's final metrics, curves and
    counts are 8 of them); on SQLite that was about a fifth of the bookkeeping time per
    trial (``benchmarks/bookkeeping.py``). RDB storages get one session and one commit
    through the storage's own per-attribute write; other storages (journal, in-memory)
    take the attributes one by one as before.
    """
    import optuna
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    storage = trial.study._storage
    backend = getattr(storage, "_backend", storage)  # RDBStorage comes wrapped in a cache
    write = getattr(backend, "_set_trial_attr_without_commit", None)
    if len(attrs) < 2 or not isinstance(backend, optuna.storages.RDBStorage) or write is None:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return
    # no ignore_integrity_error: a rollback would lose all of them, not just one
    with _create_scoped_session(backend.scoped_session) as session:
        for key, value in attrs.items():
            write(session, models.TrialUserAttributeModel, trial._trial_id, key, value)
    trial._cached_frozen_trial.user_attrs.update(attrs)  # what set_user_attr does too
