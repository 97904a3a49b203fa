"""One worker per GPU (``workers.gpus``), tested without GPUs: detection, which worker sees
which ids, the environment each worker process is started with, TensorFlow's memory
growth, ``validate``'s lines and a real two-worker run under faked GPU ids."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import small_study
from typer.testing import CliRunner

from hpsearch.cli import app
from hpsearch.engines import _gpus, _workers
from hpsearch.engines._gpus import Detected, GpuPlan, plan_gpus, ray_num_gpus, worker_count
from hpsearch.exceptions import ConfigError
from hpsearch.study import study_from_dict
from hpsearch.training import enable_memory_growth

SMI = (
    "GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-1b2c)\nGPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-3d4e)\n"
)
TWO = Detected(("0", "1"), "nvidia-smi")
NONE = Detected()


def _fake(monkeypatch: pytest.MonkeyPatch, detected: Detected) -> None:
    monkeypatch.setattr(_gpus, "detect_gpus", lambda: detected)


def _study(**workers: Any) -> Any:
    raw = small_study(name="gpus")
    if workers:
        raw["workers"] = workers
    return study_from_dict(raw)


# ----------------------------------------------------------------- detection
@pytest.mark.parametrize(
    ("env", "smi", "proc", "ids", "source"),
    [
        ({"CUDA_VISIBLE_DEVICES": "2,3"}, SMI, ["a"], ("2", "3"), "CUDA_VISIBLE_DEVICES"),
        ({"CUDA_VISIBLE_DEVICES": ""}, SMI, None, (), "CUDA_VISIBLE_DEVICES"),
        ({"CUDA_VISIBLE_DEVICES": "-1"}, SMI, None, (), "CUDA_VISIBLE_DEVICES"),
        ({"CUDA_VISIBLE_DEVICES": "1,-1,2"}, None, None, ("1",), "CUDA_VISIBLE_DEVICES"),
        ({}, SMI, None, ("0", "1"), "nvidia-smi"),
        ({}, "No devices were found\n", ["0000:3b:00.0"], ("0",), "/proc/driver/nvidia"),
        ({}, None, ["0000:3b:00.0", "0000:af:00.0"], ("0", "1"), "/proc/driver/nvidia"),
        ({}, None, None, (), "none"),
        ({}, None, [], (), "none"),
    ],
)
def test_detect_from(env, smi, proc, ids, source):
    assert _gpus.detect_from(env, smi, proc) == Detected(ids, source)


def test_detect_gpus_runs_nvidia_smi_from_the_path(tmp_path, monkeypatch):
    smi = tmp_path / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\n[ \"$1\" = -L ] && printf '{SMI}'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    _gpus.detect_gpus.cache_clear()
    try:
        assert _gpus.detect_gpus() == TWO
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")  # a scheduler's choice wins
        _gpus.detect_gpus.cache_clear()
        assert _gpus.detect_gpus() == Detected(("1",), "CUDA_VISIBLE_DEVICES")
    finally:
        _gpus.detect_gpus.cache_clear()


# ----------------------------------------------------------------- assignment
@pytest.mark.parametrize(
    ("setting", "n_workers", "expected"),
    [
        ("auto", 2, ["0", "1"]),
        ("auto", 3, ["0", "1", "0"]),  # more workers than GPUs: round robin
        ("auto", 1, ["0"]),
        (1, 2, ["0", "0"]),
        (2, 4, ["0", "1", "0", "1"]),
        ([1], 2, ["1", "1"]),
        ([1, 0], 2, ["1", "0"]),
        (0, 2, ["", ""]),  # hidden: CPU only
    ],
)
def test_which_worker_sees_which_gpu(setting, n_workers, expected):
    plan = plan_gpus(setting, TWO)
    assert [plan.visible(i) for i in range(n_workers)] == expected


def test_without_gpus_nothing_changes():
    plan = plan_gpus("auto", NONE)
    assert not plan.active
    assert plan.visible(0) is None and plan.env(0) is None
    assert plan.describe(2) is None


@pytest.mark.parametrize(
    ("setting", "detected", "match"),
    [
        (1, NONE, r"workers.gpus: got 1; this machine shows no GPU .* allowed: auto or 0"),
        ([0], NONE, r"workers.gpus: got \[0\]; GPU 0 not visible; this machine shows no GPU"),
        (3, TWO, r"workers.gpus: got 3; allowed: auto, 0 to 2, or ids among 0, 1"),
        ([1, 2, 5], TWO, r"got \[1, 2, 5\]; GPU 2, 5 not visible; allowed: .* \(from nvidia-smi\)"),
    ],
)
def test_gpus_this_machine_does_not_show_are_refused(setting, detected, match):
    with pytest.raises(ConfigError, match=match) as info:
        plan_gpus(setting, detected)
    assert "\n" not in str(info.value)


def test_each_worker_env_has_only_its_gpu():
    plan = plan_gpus("auto", TWO)
    base = {"PATH": "/bin", "CUDA_VISIBLE_DEVICES": "0,1"}
    assert plan.env(0, base) == {"PATH": "/bin", "CUDA_VISIBLE_DEVICES": "0"}
    assert plan.env(1, base) == {"PATH": "/bin", "CUDA_VISIBLE_DEVICES": "1"}
    assert base["CUDA_VISIBLE_DEVICES"] == "0,1"  # the parent's environment is not changed


def test_describe_names_every_worker_gpu():
    assert plan_gpus("auto", TWO).describe(2) == "w1 GPU 0, w2 GPU 1"
    assert plan_gpus("auto", TWO).describe(3) == "w1 GPU 0, w2 GPU 1, w3 GPU 0 (shared round robin)"
    assert plan_gpus("auto", TWO).describe(1) == "w1 GPU 0 (GPU 1 unused)"
    assert plan_gpus(0, TWO).describe(2) == "none (workers.gpus: 0 hides them; CPU only)"


@pytest.mark.parametrize(
    ("workers", "requested", "detected", "expected"),
    [
        ({}, None, TWO, 2),  # one worker per GPU by default
        ({}, None, NONE, 1),  # no GPU: as before
        ({"count": 3}, None, TWO, 3),  # count in the file wins
        ({"count": 1}, None, TWO, 1),
        ({}, 4, TWO, 4),  # --workers wins
        ({"gpus": [1]}, None, TWO, 1),
        ({"gpus": 0}, None, TWO, 1),
        ({"gpus": 2, "count": 4}, None, TWO, 4),
    ],
)
def test_worker_count(monkeypatch, workers, requested, detected, expected):
    _fake(monkeypatch, detected)
    assert worker_count(_study(**workers), requested) == expected


def test_the_sklearn_engine_stays_one_process_on_a_gpu_machine(monkeypatch):
    _fake(monkeypatch, TWO)
    raw = small_study(name="gpus")
    raw["search"] = {"engine": "sklearn", "method": "random", "n_iter": 2, "cv": 2}
    assert worker_count(study_from_dict(raw)) == 1


def test_supervisor_starts_each_worker_with_its_gpu(monkeypatch):
    started: dict[str, dict[str, str] | None] = {}

    class Child:
        def __init__(self, label: str, spec: str, events: Any, env: Any = None) -> None:
            started[label] = env

    monkeypatch.setattr(_workers, "_Child", Child)
    supervisor = _workers._Supervisor(None, None, None, 3, {})  # type: ignore[arg-type]
    supervisor.gpus = plan_gpus([1, 0], TWO)
    for label in ("w1", "w2", "w3"):
        supervisor.spawn(label)
    supervisor.spawn("w2")  # a recycled worker keeps its GPU
    assert {k: v["CUDA_VISIBLE_DEVICES"] for k, v in started.items() if v} == {
        "w1": "1",
        "w2": "0",
        "w3": "1",
    }
    supervisor.gpus = GpuPlan()
    supervisor.spawn("w1")
    assert started["w1"] is None  # no GPUs: the parent's environment, untouched


def test_apply_in_process_only_before_tensorflow(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    _gpus.apply_in_process(GpuPlan())
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
    _gpus.apply_in_process(plan_gpus([1], TWO))
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "1"
    monkeypatch.setitem(sys.modules, "tensorflow", object())
    _gpus.apply_in_process(plan_gpus([0], TWO))
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "1"  # too late to change: left alone


@pytest.mark.parametrize(
    ("setting", "n_workers", "cluster", "expected"),
    [
        ("auto", 4, 4.0, 1.0),
        ("auto", 2, 8.0, 1.0),
        ("auto", 4, 2.0, 0.5),
        ("auto", 3, 2.0, 0.5),
        ("auto", 4, 0.0, 0.0),
        (0, 4, 8.0, 0.0),
        (2, 4, 8.0, 0.5),
        (1, 3, 0.0, 1 / 3),
    ],
)
def test_ray_num_gpus(setting, n_workers, cluster, expected):
    assert ray_num_gpus(setting, n_workers, cluster) == pytest.approx(expected)


def test_ray_refuses_device_ids():
    with pytest.raises(ConfigError, match=r"workers.gpus: got \[0, 1\]; device ids name one"):
        ray_num_gpus([0, 1], 2, 2.0)


# ----------------------------------------------------------------- TensorFlow
class _FakeConfig:
    """Stands for ``tf.config``: two GPUs, the second already initialised."""

    def __init__(self, gpus: list[str]) -> None:
        self.gpus = gpus
        self.calls: list[tuple[str, bool]] = []
        self.experimental = self

    def list_physical_devices(self, kind: str) -> list[str]:
        return list(self.gpus) if kind == "GPU" else []

    def set_memory_growth(self, device: str, enable: bool) -> None:
        if device == "busy":
            raise RuntimeError("Physical devices cannot be modified after being initialized")
        self.calls.append((device, enable))


def test_memory_growth_is_turned_on_for_every_visible_gpu():
    config = _FakeConfig(["/physical_device:GPU:0", "busy", "/physical_device:GPU:1"])
    assert enable_memory_growth(config) == ["/physical_device:GPU:0", "/physical_device:GPU:1"]
    assert config.calls == [("/physical_device:GPU:0", True), ("/physical_device:GPU:1", True)]
    assert enable_memory_growth(_FakeConfig([])) == []


def test_memory_growth_on_the_real_tensorflow_without_gpus():
    import tensorflow as tf

    assert enable_memory_growth(tf.config) == []  # no GPU here: nothing to do, no error


# ----------------------------------------------------------------- validate and run
def _write(tmp_path: Path, **workers: Any) -> Path:
    raw = small_study()
    if workers:
        raw["workers"] = workers
    path = tmp_path / "gpus.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_validate_says_which_worker_has_which_gpu(tmp_path, monkeypatch):
    _fake(monkeypatch, TWO)
    result = CliRunner().invoke(app, ["validate", str(_write(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "  workers       2, recycled every 20 trials" in result.output
    assert "  GPUs          w1 GPU 0, w2 GPU 1  (found by nvidia-smi)" in result.output


def test_validate_without_gpus_prints_what_it_printed_before(tmp_path, monkeypatch):
    _fake(monkeypatch, NONE)
    result = CliRunner().invoke(app, ["validate", str(_write(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "  workers       1, recycled every 20 trials" in result.output
    assert "GPU" not in result.output


def test_validate_refuses_gpus_the_machine_lacks_in_one_line(tmp_path, monkeypatch):
    _fake(monkeypatch, NONE)
    path = _write(tmp_path, gpus=[0, 1])
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert ": valid" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and f"{path}: workers.gpus: got [0, 1]; GPU 0, 1 not visible" in lines[0]


@pytest.mark.parametrize("value", ["all", "-1", "[]", "true", "1.5"])
def test_bad_gpus_values_are_one_line(tmp_path, value):
    result = CliRunner().invoke(
        app, ["validate", str(_write(tmp_path)), "--set", f"workers.gpus={value}"]
    )
    assert result.exit_code == 2
    assert "workers.gpus: got" in result.output
    assert "allowed: auto, a count of GPUs (0: none), or device ids like [0, 1]" in result.output


BUILDER = '''
import os
from pathlib import Path

import keras


def build(params, input_shape, num_classes):
    """Records which GPUs this process was given, then builds a tiny MLP."""
    log = Path(__file__).parent / "seen" / str(os.getpid())
    log.parent.mkdir(exist_ok=True)
    log.write_text(os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"))
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Dense(int(params["units"]), activation="relu")(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))
'''


@pytest.mark.slow
def test_two_workers_each_see_their_own_gpu_id(tmp_path):
    """A real run under faked GPU ids (CUDA_VISIBLE_DEVICES=0,1 in the environment; this
    machine has no GPU, so TensorFlow runs on the CPU): one worker per id by default, each
    process's environment holding its own id, and the start-up line naming them."""
    (tmp_path / "gpu_builder.py").write_text(BUILDER, encoding="utf-8")
    raw = small_study(search__n_trials=4)
    raw["model"] = {"family": "gpu_builder:build"}
    raw["space"] = {"units": {"low": 4, "high": 32}, "epochs": 1, "batch_size": 64}
    raw["export"] = {"keep": "none"}
    path = tmp_path / "gpus.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "0,1"}
    run = subprocess.run(
        [sys.executable, "-m", "hpsearch", "run", str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "2 worker process(es)" in run.stdout
    assert "GPUs: w1 GPU 0, w2 GPU 1" in run.stdout
    seen = {p.name: p.read_text() for p in (tmp_path / "seen").iterdir()}
    workers = {pid: v for pid, v in seen.items() if v != "0,1"}  # the supervisor checks the builder
    assert sorted(set(workers.values())) == ["0", "1"]


def test_gpu_benchmark_refuses_cleanly_without_gpus():
    root = Path(__file__).resolve().parent.parent
    before = (root / "BENCHMARKS.md").read_text(encoding="utf-8")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # whatever the machine has: none
    out = subprocess.run(
        [sys.executable, "benchmarks/gpu_workers.py", "--trials", "2"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr.strip().splitlines() == [
        "gpu_workers.py: no GPU visible (CUDA_VISIBLE_DEVICES, nvidia-smi -L and "
        "/proc/driver/nvidia/gpus show none); nothing run, BENCHMARKS.md unchanged"
    ]
    assert (root / "BENCHMARKS.md").read_text(encoding="utf-8") == before
