"""Defects a new user hit (issue 21): failure messages, resumed studies, runs in which
nothing completed, broken builders, Keras noise, ``validate --storage``.

Real Keras on digits and real SQLite, as the rest of the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

import hpsearch
from hpsearch.cli import app
from hpsearch.engines import budget_spent

TESTS_DIR = Path(__file__).parent


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def _error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error: ")]


# ------------------------------------------------------------------ failure messages
def test_failures_in_a_row_quote_the_last_failed_trial(write_study):
    path = write_study(
        model={"family": "builders:poisonable"},
        space={"poison": 1, "units": 4, "epochs": 1},
        search={"sampler": "random", "n_trials": 6, "max_consecutive_failures": 2},
    )
    code, output = _cli("run", str(path))
    assert code == 2
    # the last failed trial, by number and reason (the study's last trial is a queued slot)
    assert "2 trials failed in a row (last: trial 1: loss became nan at epoch 1)" in output
    assert "last: ?" not in output


def test_a_run_in_which_nothing_completed_exits_3_with_the_last_reason(write_study, storage_url):
    path = write_study(
        model={"family": "builders:always_raises"},
        space={"units": 4, "epochs": 1},
        search={"sampler": "random", "n_trials": 2},
    )
    code, output = _cli("run", str(path))
    assert code == 3, output
    assert _error_lines(output) == [
        "error: study 'study': no trial completed (2 failed, 0 pruned); last failure: "
        "trial 1: model could not be built: no model for you"
    ]
    study = optuna.load_study(study_name="study", storage=storage_url)
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 2
    # the Python API says the same with an exception that carries the study
    with pytest.raises(hpsearch.NoTrialCompleted, match="no trial completed") as info:
        hpsearch.run(hpsearch.load_study_file(path), quiet=True)
    assert info.value.study.study_name == "study"


def test_a_resumed_run_with_a_complete_trial_exits_0(write_study):
    path = write_study(search__n_trials=1)
    assert _cli("run", str(path), "-q")[0] == 0
    assert _cli("run", str(path), "-q")[0] == 0  # nothing left to run: still fine


# ------------------------------------------------------------------ broken builders
@pytest.mark.parametrize(
    ("family", "message"),
    [
        ("builders:returns_none", "the builder returned NoneType, not a keras.Model"),
        (
            "builders:wrong_signature",
            "the builder cannot be called as fn(params, input_shape=..., num_classes=...)",
        ),
        ("builders:not_callable", "module 'builders' has no function 'not_callable'"),
        ("broken_on_import:build", "importing 'broken_on_import' raised RuntimeError: this"),
        ("builders:gives_up", "the GPU this builder wants is not there"),
    ],
)
def test_a_broken_builder_stops_the_run_before_anything_is_written(
    write_study, tmp_path, family, message
):
    path = write_study(
        model={"family": family}, space={"units": 4, "epochs": 1}, search__n_trials=5
    )
    code, output = _cli("run", str(path))
    assert code == 2, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: model.family: "), output
    assert message in lines[0]
    assert not (tmp_path / "hpsearch.db").exists()


def test_a_builder_broken_for_some_values_stops_at_the_first_and_loses_no_budget(
    write_study, storage_url
):
    # units 4 (the space's first value, which the check before the run builds) gives a
    # model; units 8 gives a string: found at the first trial that draws it
    path = write_study(
        model={"family": "builders:no_model_for_wide"},
        space={"units": {"choices": [4, 8]}, "epochs": 1},
        search={"sampler": "random", "n_trials": 4},
        search__enqueue=[{"units": 8}],
    )
    code, output = _cli("run", str(path))
    assert code == 2, output
    assert "the builder returned str, not a keras.Model" in _error_lines(output)[0]
    study = optuna.load_study(study_name="study", storage=storage_url)
    stopped = study.trials[0]
    assert stopped.state == TrialState.FAIL and stopped.user_attrs["setup_error"] is True
    assert stopped.user_attrs["fail_reason"].startswith("set-up error: ")
    assert [t.state for t in study.trials].count(TrialState.FAIL) == 1  # stopped at the first
    assert budget_spent(study) == 0  # it does not count: a copy with its params is queued
    copies = [t for t in study.trials if t.user_attrs.get("retry_of") == stopped.number]
    assert len(copies) == 1 and copies[0].state == TrialState.WAITING
    assert copies[0].params == {"units": 8}


def test_a_builder_failing_for_every_value_is_a_failed_trial_not_a_setup_error(write_study):
    path = write_study(
        model={"family": "builders:always_raises"},
        space={"units": 4, "epochs": 1},
        search={"sampler": "random", "n_trials": 8, "max_consecutive_failures": 3},
    )
    code, output = _cli("run", str(path))
    assert code == 2 and "3 trials failed in a row" in output  # three trials, not one


# ------------------------------------------------------------------ Keras noise
def test_a_nan_trial_prints_only_hpsearch_lines(write_study, tmp_path):
    path = write_study(
        model={"family": "builders:poisonable"},
        space={"poison": {"choices": [0, 1]}, "units": 4, "epochs": 1},
        search={"sampler": "grid", "n_trials": 2},
    )
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "hpsearch"), "run", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), *sys.path])},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "loss became nan" in proc.stdout
    text = proc.stdout + proc.stderr
    assert "Invalid loss" not in text and "Batch " not in text
    for line in proc.stdout.splitlines():
        if line.strip():
            assert line.startswith(("study ", "trial ", "best trial", "  ", "storage:", "next:")), (
                line
            )


# ------------------------------------------------------------------ validate --storage
def test_validate_takes_and_checks_storage_without_connecting(write_study, tmp_path):
    path = write_study()
    url = f"sqlite:///{tmp_path / 'other.db'}"
    code, output = _cli("validate", str(path), "--storage", url)
    assert code == 0, output
    assert f"(storage {url})" in output
    assert not (tmp_path / "other.db").exists()
    # a server nobody listens on: valid, since validate connects to nothing
    code, output = _cli("validate", str(path), "--storage", "postgresql://127.0.0.1:9/nodb")
    assert code == 0, output
    assert "(storage postgresql://127.0.0.1:9/nodb)" in output
    for bad, why in [
        ("nonsense", "not a storage URL"),
        ("nosuchdb://host/x", "unknown database kind 'nosuchdb'"),
        ("mysql://host/db", "the database driver is missing"),
    ]:
        code, output = _cli("validate", str(path), "--storage", bad)
        assert code == 2, output
        assert (
            _error_lines(output) == [line for line in output.splitlines() if line.strip()]
            and f"storage: got {bad!r}; {why}" in output
        )


# ------------------------------------------------------------------ resumed studies
def _resume_study(tmp_path: Path, sampler: str, name: str) -> list[tuple]:
    """``run -n 3`` then ``run`` (6 trials) from scratch; the COMPLETE trials' params."""
    import yaml
    from conftest import small_study

    # seed 1: the first trial has one layer and adam, so QMC draws width_2 and momentum
    # at random (its independent sampler) whenever a later trial has them
    data = small_study(
        search={"sampler": sampler, "n_trials": 6, "seed": 1},
        storage=f"sqlite:///{tmp_path / (name + '.db')}",
    )
    data["space"].update(
        width={"low": 8, "high": 64, "log": True, "per_layer": True},
        optimizer={"choices": ["adam", "sgd"]},
        momentum={"low": 0.0, "high": 0.9},
        epochs=1,
    )
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert _cli("run", str(path), "-n", "3", "-q")[0] == 0
    assert _cli("run", str(path), "-q")[0] == 0
    study = optuna.load_study(study_name=name, storage=data["storage"])
    trials = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(trials) == 6
    return [tuple(sorted(t.params.items())) for t in trials]


@pytest.mark.parametrize("sampler", ["tpe", "random", "qmc"])
def test_a_resumed_study_proposes_new_params_and_stays_repeatable(tmp_path, sampler):
    first = _resume_study(tmp_path, sampler, "a")
    assert len(set(first)) == 6, first  # no parameter set drawn twice
    floats: dict[str, list[float]] = {}
    for params in first:
        for key, value in params:
            if isinstance(value, float):
                floats.setdefault(key, []).append(value)
    for key, values in floats.items():  # nor any continuous value
        assert len(set(values)) == len(values), (key, first)
    # every from-scratch "run -n 3; run" gives the same trials
    assert _resume_study(tmp_path, sampler, "b") == first


def test_a_resumed_grid_continues_where_it_stopped(write_study, storage_url):
    path = write_study(
        space={
            "depth": {"choices": [1, 2]},
            "width": {"choices": [8, 16]},
            "dropout": 0.0,
            "optimizer": "adam",
            "learning_rate": 0.01,
            "epochs": 1,
        },
        search={"sampler": "grid", "n_trials": None},
    )
    assert _cli("run", str(path), "-n", "2", "-q")[0] == 0
    assert _cli("run", str(path), "-q")[0] == 0
    study = optuna.load_study(study_name="study", storage=storage_url)
    done = [(t.params["depth"], t.params["width"]) for t in study.trials]
    assert sorted(done) == [(1, 8), (1, 16), (2, 8), (2, 16)]
