"""Parallel workers with real processes and real databases (issue: workers, crashes).

Each test starts ``hpsearch`` as separate processes, as a user would, and checks
what ends up in the storage: exactly ``n_trials`` COMPLETE trials, no trial run
twice, and every lost trial re-run with its params.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy
import yaml
from conftest import small_study
from optuna.trial import TrialState

POSTGRES = "postgresql://127.0.0.1:5432/test"
# a journal of this test run's own (its keys are deleted afterwards, see test_three_workers...)
REDIS = f"redis://127.0.0.1:6379/0?prefix=hpsearch-test-{os.getpid()}-{time.time_ns()}:"
HPSEARCH = [sys.executable, "-m", "hpsearch"]


@pytest.fixture
def postgres() -> Any:
    """The project's PostgreSQL (it runs on every machine of this project, CI included)."""
    engine = sqlalchemy.create_engine(POSTGRES)
    with engine.connect():
        pass
    names: list[str] = []
    yield names
    for name in names:
        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name=name, storage=POSTGRES)


def _study(tmp_path: Path, name: str, **changes: Any) -> Path:
    data = small_study(**changes)
    data["name"] = name
    data.setdefault("export", {"keep": "none"})
    # continuous params: two identical param sets mean a trial was run twice
    data["space"]["dropout"] = {"low": 0.0, "high": 0.3}
    data["search"]["sampler"] = "tpe"
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _start(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*HPSEARCH, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str], timeout: float = 300) -> tuple[str, str]:
    out, err = proc.communicate(timeout=timeout)
    return out, err


def _wait_for(what: Callable[[], Any], timeout: float = 120, every: float = 0.2) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = what()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what.__doc__ or what}")


def _open(storage: str) -> Any:
    """A reader's storage: for a database server, one shared pool per URL (polling in a
    loop would otherwise open a pool per call, see ``storage._ReaderCache``)."""
    from hpsearch.storage import open_storage

    server = storage.startswith(("postgresql://", "mysql://"))
    return open_storage(storage, create=not server, heartbeat=False)


def _trials(name: str, storage: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=_open(storage)).get_trials(deepcopy=False)


def _running(name: str, storage: str, min_epoch: int = 1) -> list[optuna.trial.FrozenTrial]:
    """RUNNING trials that finished at least ``min_epoch`` epochs."""
    try:
        trials = _trials(name, storage)
    except KeyError:  # not created yet
        return []
    return [
        t
        for t in trials
        if t.state == TrialState.RUNNING and len(t.intermediate_values) >= min_epoch
    ]


def _assert_exact_budget(trials: list[optuna.trial.FrozenTrial], n: int) -> None:
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == n, [(t.number, t.state.name) for t in trials]
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))
    params = [tuple(sorted(t.params.items())) for t in complete]
    assert len(params) == len(set(params)), "two COMPLETE trials ran the same params"


def _pid_of(trial: optuna.trial.FrozenTrial) -> int:
    return int(str(trial.user_attrs["worker"]).rsplit(":", 1)[1])


def _retries_of(trials: list[optuna.trial.FrozenTrial], lost: optuna.trial.FrozenTrial) -> list:
    return [t for t in trials if t.system_attrs.get("retry_history", [None])[-1] == lost.number]


@pytest.mark.parametrize("storage", [POSTGRES, REDIS])
def test_three_workers_on_a_server_stop_at_exactly_n_trials(tmp_path, postgres, storage):
    name = f"three_{os.getpid()}_{time.time_ns()}"
    if storage == POSTGRES:
        postgres.append(name)
    path = _study(tmp_path, name, search__n_trials=9)
    # three machines' worth of workers, started at once: one creates the study
    procs = [_start("worker", str(path), "--storage", storage, cwd=tmp_path) for _ in range(3)]
    try:
        for proc in procs:
            out, err = _finish(proc)
            assert proc.returncode == 0, err[-2000:]
        trials = _trials(name, storage)
        _assert_exact_budget(trials, 9)
        assert len(trials) == 9  # no surplus trial was ever created
        assert len({t.user_attrs["worker"] for t in trials}) >= 2  # the work was shared
        study = optuna.load_study(study_name=name, storage=_open(storage))
        assert study.user_attrs["hpsearch_budget"] == 9
    finally:
        if storage == REDIS:  # the journal is append-only: delete its keys
            import redis

            from hpsearch.storage import redis_prefix

            server, prefix = redis_prefix(REDIS)
            client = redis.Redis.from_url(server)
            keys = list(client.scan_iter(match=f"{prefix}*"))
            assert keys  # the workers wrote under the prefix
            client.delete(*keys)


def test_two_local_workers_on_sqlite_while_a_reader_polls(tmp_path):
    path = _study(tmp_path, "local2", search__n_trials=8)
    db = f"sqlite:///{tmp_path / 'hpsearch.db'}"
    run = _start("run", str(path), "--workers", "2", cwd=tmp_path)
    reads = 0
    # a third process (this one) reads the study the whole time, as a dashboard does
    while run.poll() is None:
        if (tmp_path / "hpsearch.db").exists():
            try:
                _trials("local2", db)
                reads += 1
            except KeyError:  # the study is not created yet
                pass
        time.sleep(0.05)
    out, err = _finish(run)
    assert run.returncode == 0, err[-2000:]
    assert "locked" not in err + out
    assert reads > 10
    trials = _trials("local2", db)
    _assert_exact_budget(trials, 8)
    assert {line.split()[0] for line in out.splitlines() if " COMPLETE " in line} == {
        "[w1]",
        "[w2]",
    }  # per-worker progress, shown together


def test_sigkill_of_a_local_worker_requeues_its_trial(tmp_path):
    path = _study(tmp_path, "kill", search__n_trials=4, space__epochs=40)
    db = f"sqlite:///{tmp_path / 'hpsearch.db'}"
    run = _start("run", str(path), "--workers", "2", cwd=tmp_path)
    victim = _wait_for(lambda: _running("kill", db, min_epoch=2))[0]
    os.kill(_pid_of(victim), signal.SIGKILL)
    out, err = _finish(run)
    assert run.returncode == 0, err[-2000:]
    assert "died" in out
    trials = _trials("kill", db)
    lost = next(t for t in trials if t.number == victim.number)
    assert lost.state == TrialState.FAIL and "died" in lost.user_attrs["lost"]
    (copy,) = _retries_of(trials, lost)
    assert copy.params == lost.params and copy.state == TrialState.COMPLETE
    _assert_exact_budget(trials, 4)


@pytest.mark.parametrize("kind", ["postgresql", "journal"])
def test_dead_machine_is_detected_by_heartbeat_and_its_trial_retried(tmp_path, postgres, kind):
    name = f"hb_{kind}_{os.getpid()}_{int(time.time())}"
    if kind == "postgresql":
        storage = POSTGRES
        postgres.append(name)
    else:
        storage = f"journal:///{tmp_path / 'runs.log'}"
    path = _study(
        tmp_path,
        name,
        search__n_trials=4,
        space__epochs=40,
        workers={"heartbeat_interval": 1, "grace_period": 4},
    )
    # "another machine": its own host name (a UTS namespace), so only the heartbeat can
    # tell that it died, not the dead-pid check for processes of this host
    doomed = subprocess.Popen(
        ["unshare", "--uts", "sh", "-c", 'hostname other-machine && exec "$@"', "sh"]
        + [*HPSEARCH, "worker", str(path), "--storage", storage],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    victim = _wait_for(lambda: _running(name, storage, min_epoch=2))[0]
    assert str(victim.user_attrs["worker"]).startswith("other-machine:")
    survivor = _start("worker", str(path), "--storage", storage, cwd=tmp_path)
    # the whole machine goes: its supervisor and its worker die without a word
    doomed.send_signal(signal.SIGKILL)
    os.kill(_pid_of(victim), signal.SIGKILL)
    doomed.communicate()
    out, err = _finish(survivor)
    assert survivor.returncode == 0, err[-2000:]
    trials = _trials(name, storage)
    lost = next(t for t in trials if t.number == victim.number)
    assert lost.state == TrialState.FAIL
    if kind == "journal":  # hpsearch's heartbeat (Optuna has none for journals)
        assert "no heartbeat" in lost.user_attrs["lost"]
    else:  # Optuna's heartbeat and RetryHeartbeatStaleTrialCallback
        assert "lost" not in lost.user_attrs
    (copy,) = _retries_of(trials, lost)
    assert copy.params == lost.params and copy.state == TrialState.COMPLETE
    _assert_exact_budget(trials, 4)


def test_sigterm_then_restart_loses_and_repeats_nothing(tmp_path):
    path = _study(tmp_path, "term", search__n_trials=6, space__epochs=20)
    db = f"sqlite:///{tmp_path / 'hpsearch.db'}"
    run = _start("run", str(path), "--workers", "2", cwd=tmp_path)
    _wait_for(lambda: len(_running("term", db, min_epoch=1)) == 2)
    run.send_signal(signal.SIGTERM)
    out, err = _finish(run, timeout=120)
    assert run.returncode == 143, err[-2000:]
    assert "Traceback" not in err
    trials = _trials("term", db)
    interrupted = [t for t in trials if t.user_attrs.get("interrupted")]
    assert len(interrupted) == 2 and all(t.state == TrialState.FAIL for t in interrupted)
    assert not [t for t in trials if t.state == TrialState.RUNNING]

    again = _start("run", str(path), "--workers", "2", cwd=tmp_path)
    out, err = _finish(again)
    assert again.returncode == 0, err[-2000:]
    trials = _trials("term", db)
    _assert_exact_budget(trials, 6)
    for t in interrupted:  # each interrupted trial ran again, once, with its params
        (copy,) = _retries_of(trials, t)
        assert copy.params == t.params and copy.state == TrialState.COMPLETE


def test_retry_reruns_failed_trials_with_their_params(tmp_path):
    path = tmp_path / "flaky.yaml"
    data = small_study(
        model={"family": "builders:flaky"},
        space={"units": {"low": 4, "high": 32}, "epochs": 1, "batch_size": 64},
        search={
            "sampler": "random",
            "n_trials": 4,
            "enqueue": [{"units": u} for u in (5, 6, 7, 8)],  # 5 and 7 fail the first time
        },
        export={"keep": "none"},
    )
    data["name"] = "flaky"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent), "FLAKY_FAIL": "1"}
    first = subprocess.run(
        [*HPSEARCH, "run", str(path)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert first.returncode == 0, first.stderr[-2000:]
    db = f"sqlite:///{tmp_path / 'hpsearch.db'}"
    failed = [t for t in _trials("flaky", db) if t.state == TrialState.FAIL]
    assert sorted(t.params["units"] for t in failed) == [5, 7]
    assert all("flaky" in t.user_attrs["fail_reason"] for t in failed)

    env["FLAKY_FAIL"] = "0"
    again = subprocess.run(
        [*HPSEARCH, "retry", str(path)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"queued {len(failed)} failed trial(s) again" in again.stdout
    trials = _trials("flaky", db)
    for t in failed:
        (copy,) = _retries_of(trials, t)
        assert copy.params == t.params and copy.state == TrialState.COMPLETE
        assert copy.user_attrs["retry_of"] == t.number
    # a second retry finds nothing left to do
    third = subprocess.run(
        [*HPSEARCH, "retry", str(path)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert third.returncode == 0 and "no failed trials to retry" in third.stdout


def test_checkpointed_trial_resumes_from_its_last_epoch(tmp_path):
    path = _study(
        tmp_path,
        "ckpt",
        search__n_trials=1,
        space__epochs=30,
        workers={"checkpoints": True},
    )
    db = f"sqlite:///{tmp_path / 'hpsearch.db'}"
    run = _start("run", str(path), cwd=tmp_path)
    _wait_for(lambda: _running("ckpt", db, min_epoch=5))
    run.send_signal(signal.SIGKILL)  # no chance to clean up
    run.communicate()
    lost = _trials("ckpt", db)[0]
    assert lost.state == TrialState.RUNNING
    done_epochs = len(lost.intermediate_values)

    again = _start("run", str(path), cwd=tmp_path)
    out, err = _finish(again)
    assert again.returncode == 0, err[-2000:]
    trials = _trials("ckpt", db)
    lost = trials[0]
    assert lost.state == TrialState.FAIL and "died" in lost.user_attrs["lost"]
    (copy,) = _retries_of(trials, lost)
    assert copy.state == TrialState.COMPLETE and copy.params == lost.params
    resumed = copy.user_attrs["resumed_from_epoch"]
    assert done_epochs - 1 <= resumed <= done_epochs + 1  # the checkpoint of the last epoch
    assert "resuming at epoch" in out
    # the copy's curve is whole: the lost trial's epochs, then its own
    assert sorted(copy.intermediate_values) == list(range(1, 31))
    assert len(copy.user_attrs["history"]["val_accuracy"]) == 30
    assert not list((tmp_path / "hpsearch_artifacts").glob("checkpoints/*/trial_*"))


class _Instant:
    """A trivial trial for the queue tests: samples the space, trains nothing."""

    @staticmethod
    def make(study_file: Any) -> Any:
        def instant(trial: Any) -> float:
            params = study_file.space.suggest(trial)
            return float(params["dropout"])

        return instant


def _instant_study(tmp_path: Path, n_trials: int) -> tuple[Any, Any, Any]:
    from hpsearch._progress import Progress
    from hpsearch.engines import create_or_join
    from hpsearch.engines._queue import top_up
    from hpsearch.search import make_pruner, make_sampler
    from hpsearch.storage import open_storage
    from hpsearch.study import study_from_dict

    raw = small_study(search__n_trials=n_trials, search__sampler="random")
    raw |= {"name": "instant", "storage": f"sqlite:///{tmp_path / 'q.db'}"}
    sf = study_from_dict(raw)
    study, _ = create_or_join(
        sf,
        open_storage(sf.storage),
        make_sampler(sf.config.search, sf.space, 1),
        make_pruner(sf.config.search, 2, 1),
        {},
    )
    top_up(study, n_trials)
    return sf, study, Progress("val_accuracy", n_trials, quiet=True)


def _work(sf: Any, study: Any, progress: Any, **kwargs: Any) -> str:
    from hpsearch.engines._optuna import work

    return work(study, sf, None, progress, evaluate=_Instant.make(sf), **kwargs)


def test_a_large_budget_waits_in_a_window_of_slots(tmp_path):
    from hpsearch.engines._queue import SLOT_ATTR, WINDOW, top_up

    n = 2 * WINDOW + 11
    sf, study, progress = _instant_study(tmp_path, n)
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    assert len(waiting) == WINDOW  # not n: every storage read loads the waiting trials

    assert _work(sf, study, progress, max_trials=20) == "recycle"
    assert _work(sf, study, progress) == "done"
    trials = study.get_trials(deepcopy=False)
    _assert_exact_budget(trials, n)
    assert sorted(t.system_attrs[SLOT_ATTR] for t in trials) == list(range(n))

    top_up(study, n + 5)  # a bigger budget: five more slots, then done
    assert _work(sf, study, progress) == "done"
    _assert_exact_budget(study.get_trials(deepcopy=False), n + 5)


def test_a_chain_of_slots_broken_by_a_crash_is_restarted(tmp_path):
    from hpsearch.engines._queue import SLOT_ATTR, WINDOW, fail_and_requeue, top_up

    n = WINDOW + 8
    sf, study, progress = _instant_study(tmp_path, n)
    # a worker pops slot 3 and dies before queuing slot 3 + WINDOW
    slot = next(
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        if t.system_attrs[SLOT_ATTR] == 3
    )
    study._storage.set_trial_state_values(slot._trial_id, state=TrialState.RUNNING)
    fail_and_requeue(study, study._storage.get_trial(slot._trial_id), "test: died")
    top_up(study, n)  # the next run restarts the broken chain
    assert _work(sf, study, progress) == "done"
    trials = study.get_trials(deepcopy=False)
    _assert_exact_budget(trials, n)
    slots = sorted(t.system_attrs[SLOT_ATTR] for t in trials if SLOT_ATTR in t.system_attrs)
    assert slots == list(range(n))  # the copy of slot 3 is not a slot


@pytest.mark.parametrize(
    ("message", "retried"),
    [
        ("(sqlite3.OperationalError) table studies already exists", True),
        ("(sqlite3.IntegrityError) UNIQUE constraint failed: alembic_version.version_num", True),
        ('(psycopg2.errors.UniqueViolation) duplicate key value violates unique constraint '
         '"alembic_version_pkc"', True),
        ("(sqlite3.IntegrityError) UNIQUE constraint failed: studies.study_name", False),
    ],
)  # fmt: skip
def test_opening_a_new_database_retries_when_another_process_initialises_it(
    tmp_path, monkeypatch, message, retried
):
    """Two workers opening a new database at once both create its schema; the one that
    loses either race (tables, or the schema-version row) opens it again."""
    import optuna

    from hpsearch.exceptions import ConfigError
    from hpsearch.storage import open_storage

    real = optuna.storages.RDBStorage
    calls = []

    class Racing(real):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            calls.append(args)
            if len(calls) == 1:
                real(*args, **kwargs)  # the other process wins: the schema is there now
                raise RuntimeError(message)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", Racing)
    url = f"sqlite:///{tmp_path / 'new.db'}"
    if retried:
        storage = open_storage(url, heartbeat=False)
        assert len(calls) == 2
        assert optuna.create_study(storage=storage, study_name="s").study_name == "s"
    else:
        with pytest.raises(ConfigError, match="cannot open the storage: .*studies.study_name"):
            open_storage(url, heartbeat=False)
        assert len(calls) == 1
