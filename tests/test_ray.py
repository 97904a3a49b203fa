"""Workers as Ray actors (``hpsearch run --ray ADDRESS``) on a real local Ray cluster.

The module starts one Ray cluster on 127.0.0.1 (never another address) and shares it
between its tests; each test runs ``hpsearch run --ray`` as its own process (the Ray
driver, as a user runs it) against the project's PostgreSQL, and checks what ends up
in the storage and on the cluster.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from conftest import small_study
from optuna.trial import TrialState
from test_workers import (
    HPSEARCH,
    POSTGRES,
    _assert_exact_budget,
    _finish,
    _retries_of,
    _running,
    _trials,
    _wait_for,
)

if importlib.util.find_spec("ray") is None:  # found, not imported: see ray_address
    pytest.skip("Ray is not installed (pip install 'hpsearch[ray]')", allow_module_level=True)


@pytest.fixture(scope="module")
def ray_address() -> Any:
    """A local Ray cluster on 127.0.0.1 with 2 CPUs, for the whole module."""
    # one-machine mode: Ray binds and advertises 127.0.0.1 only (the drivers the tests
    # start inherit it); no usage report leaves the machine
    saved = {
        k: os.environ.get(k)
        for k in ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_USAGE_STATS_ENABLED")
    }
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray

    ray.init(
        address="local",
        include_dashboard=False,
        num_cpus=2,
        _node_ip_address="127.0.0.1",
        namespace="hpsearch",
        log_to_driver=False,
        logging_level=logging.ERROR,
    )
    address = ray.get_runtime_context().gcs_address
    assert address.startswith("127.0.0.1:"), address
    yield address
    ray.shutdown()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def study_name() -> Any:
    """A unique study name in the project's PostgreSQL; the study is deleted afterwards."""
    name = f"ray_{os.getpid()}_{time.time_ns()}"
    yield name
    with contextlib.suppress(KeyError):
        optuna.delete_study(study_name=name, storage=POSTGRES)


def _study(tmp_path: Path, name: str, **changes: Any) -> Path:
    data = small_study(**changes)
    data |= {"name": name, "storage": POSTGRES, "export": {"keep": "none"}}
    data["space"]["dropout"] = {"low": 0.0, "high": 0.3}  # a repeated trial would show
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _run_on_ray(path: Path, address: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*HPSEARCH, "run", str(path), "--workers", "2", "--ray", address, *args],
        cwd=path.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _actors(name: str) -> list[str]:
    """The live Ray actors of study ``name`` (named ``study:w1:1@host:pid``)."""
    import ray

    return [
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["name"].startswith(f"{name}:")
    ]


def _actor_running(name: str, worker: str) -> Any:
    """The actor whose process (``host:pid``) runs a trial."""
    import ray

    for actor_name in _actors(name):
        actor = ray.get_actor(actor_name, namespace="hpsearch")
        if ray.get(actor.whoami.remote(), timeout=30) == worker:
            return actor
    raise AssertionError(f"no actor of {name} is {worker}")


def test_two_ray_workers_stop_at_exactly_n_trials(tmp_path, ray_address, study_name):
    path = _study(
        tmp_path, study_name, search__n_trials=6, space__epochs=1, workers={"recycle_after": 2}
    )
    run = _run_on_ray(path, ray_address)
    out, err = _finish(run)
    assert run.returncode == 0, err[-2000:]
    assert "2 Ray worker actor(s)" in out
    trials = _trials(study_name, POSTGRES)
    _assert_exact_budget(trials, 6)
    assert len(trials) == 6  # no surplus trial was ever created
    workers = {t.user_attrs["worker"] for t in trials}
    assert f":{run.pid}" not in str(workers)  # the actors ran them
    assert len(workers) >= 3  # each actor was replaced after recycle_after trials
    assert all(sum(t.user_attrs["worker"] == w for t in trials) <= 2 for w in workers)
    tagged = {line.split()[0] for line in out.splitlines() if " COMPLETE " in line}
    assert tagged == {"[w1]", "[w2]"}  # per-worker progress on the driver
    assert _wait_for(lambda: not _actors(study_name), timeout=30)


def test_a_killed_actor_has_its_trial_failed_and_run_again(tmp_path, ray_address, study_name):
    import ray

    path = _study(
        tmp_path,
        study_name,
        search__n_trials=3,
        space__epochs=20,
        # relative: taken from the driver's working directory, as local workers take it
        workers={"checkpoints": True, "checkpoint_dir": "ckpt"},
    )
    run = _run_on_ray(path, ray_address)
    victim = _wait_for(lambda: _running(study_name, POSTGRES, min_epoch=3))[0]
    ray.kill(_actor_running(study_name, victim.user_attrs["worker"]))
    out, err = _finish(run)
    assert run.returncode == 0, err[-2000:]
    assert "died" in out and "resuming at epoch" in out
    trials = _trials(study_name, POSTGRES)
    lost = next(t for t in trials if t.number == victim.number)
    assert lost.state == TrialState.FAIL and "died" in lost.user_attrs["lost"]
    (copy,) = _retries_of(trials, lost)
    assert copy.params == lost.params and copy.state == TrialState.COMPLETE
    # resumed from the checkpoint of an epoch the lost trial finished
    assert 2 <= copy.user_attrs["resumed_from_epoch"] <= len(lost.intermediate_values)
    assert sorted(copy.intermediate_values) == list(range(1, 21))
    assert (tmp_path / "ckpt" / "checkpoints").is_dir()
    _assert_exact_budget(trials, 3)


def test_ctrl_c_on_the_driver_stops_every_actor_cleanly(tmp_path, ray_address, study_name):
    path = _study(tmp_path, study_name, search__n_trials=6, space__epochs=60)
    run = _run_on_ray(path, ray_address)
    _wait_for(lambda: len(_running(study_name, POSTGRES, min_epoch=1)) == 2)
    run.send_signal(signal.SIGINT)
    out, err = _finish(run, timeout=120)
    assert run.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    trials = _trials(study_name, POSTGRES)
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    interrupted = [t for t in trials if t.user_attrs.get("interrupted")]
    assert len(interrupted) == 2 and all(t.state == TrialState.FAIL for t in interrupted)
    for t in interrupted:  # queued again with its params, for the next run
        (copy,) = _retries_of(trials, t)
        assert copy.params == t.params and copy.state == TrialState.WAITING
    assert _wait_for(lambda: not _actors(study_name), timeout=30)


def test_sqlite_with_ray_is_refused_in_one_line_without_importing_ray(tmp_path):
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump({**small_study(), "name": "local"}), encoding="utf-8")
    run = subprocess.run(
        [*HPSEARCH, "run", str(path), "--ray", "local"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1
    assert "storage" in run.stderr and "SQLite file cannot be shared by Ray workers" in run.stderr
    assert "postgresql://" in run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["local.yaml"]  # nothing written
    # validate says the same; neither it nor `import hpsearch` imports Ray
    check = (
        "import sys\nfrom hpsearch.cli import main\n"
        f"sys.argv = ['hpsearch', 'validate', {str(path)!r}, '--set', 'workers.ray.address=auto']\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    print('exit', exc.code)\n"
        "print('ray imported:', 'ray' in sys.modules)\n"
    )
    validate = subprocess.run(
        [sys.executable, "-c", check], cwd=tmp_path, capture_output=True, text=True
    )
    assert "exit 2" in validate.stdout and "ray imported: False" in validate.stdout
    assert "SQLite file cannot be shared by Ray workers" in validate.stderr
    shown = subprocess.run(
        [sys.executable, "-c", check.replace("'--set'", f"'--storage', {POSTGRES!r}, '--set'")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert "exit 0" in shown.stdout and "ray imported: False" in shown.stdout
    assert (
        "ray           workers as actors on auto, each 1 CPU, GPUs from workers.gpus (auto)"
        in shown.stdout
    )


def test_gpus_per_worker_come_from_workers_gpus_and_the_cluster(ray_address):
    from hpsearch.engines._ray import _gpus_per_worker
    from hpsearch.exceptions import ConfigError
    from hpsearch.study import study_from_dict

    def study(**workers: Any) -> Any:
        raw = {**small_study(), "name": "gpus", "storage": POSTGRES}
        return study_from_dict(raw | {"workers": {"ray": {}, **workers}})

    assert _gpus_per_worker(study(), 2) == 0  # auto, and this cluster has no GPU
    assert _gpus_per_worker(study(gpus=2), 4) == 0.5  # 2 GPUs for 4 workers: a half each
    assert _gpus_per_worker(study(ray={"num_gpus": 1}), 2) == 1  # given: as given
    with pytest.raises(ConfigError, match="workers.gpus.*on Ray give auto or a count"):
        _gpus_per_worker(study(gpus=[0, 1]), 2)  # one machine's device ids
