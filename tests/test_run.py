"""End-to-end runs: real Keras training on digits, real SQLite storage."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from conftest import small_study
from optuna.trial import TrialState
from typer.testing import CliRunner

import hpsearch
from hpsearch.cli import app

METRIC_ATTRS = {
    "val_accuracy",
    "val_loss",
    "accuracy",
    "loss",
    "params",
    "epochs_run",
    "train_seconds",
    "seed",
    "history",
}


def _run(path: Path, *overrides: str) -> optuna.Study:
    return hpsearch.run(hpsearch.load_study_file(path, list(overrides)), quiet=True)


def test_run_stores_complete_trials_with_curves_and_metrics(write_study, storage_url):
    path = write_study()
    _run(path)

    study = optuna.load_study(study_name="study", storage=storage_url)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    for t in trials:
        depth = t.params["depth"]
        assert set(t.params) == {"depth", "width", "dropout", "optimizer", "learning_rate"}
        assert 1 <= depth <= 2 and 8 <= t.params["width"] <= 64
        assert sorted(t.intermediate_values) == [1, 2]  # one value per epoch, 1-based
        assert set(t.user_attrs) >= METRIC_ATTRS
        assert t.user_attrs["epochs_run"] == 2
        assert t.value == pytest.approx(t.user_attrs["val_accuracy"])
        assert t.intermediate_values[2] == pytest.approx(t.value)
        assert len(t.user_attrs["history"]["val_loss"]) == 2
        assert t.user_attrs["params"] > 64 * 10
    meta = study.user_attrs["hpsearch"]
    assert meta["engine"] == "optuna"
    assert meta["data"]["train"] == 450 and meta["data"]["validation"] == 150


@pytest.mark.parametrize("kind", ["sqlite", "journal", "memory"])
def test_final_attrs_are_written_together(kind, tmp_path):
    """set_user_attrs stores every attribute (RDB storages: in one commit), and the
    running trial sees them as set_user_attr would have left them."""
    from sqlalchemy import event

    from hpsearch.storage import open_storage, set_user_attrs

    url = {
        "sqlite": f"sqlite:///{tmp_path / 's.db'}",
        "journal": f"journal:///{tmp_path / 'j.log'}",
    }
    storage = open_storage(url[kind]) if kind in url else optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage)
    attrs = {"val_accuracy": 0.9, "params": 1234, "history": {"val_loss": [0.5, 0.25]}}
    commits: list[object] = []
    if kind == "sqlite":
        event.listen(storage.engine, "commit", commits.append)

    def batched(trial: optuna.Trial) -> float:
        set_user_attrs(trial, attrs)
        assert trial.user_attrs == attrs
        return 0.0

    def one_by_one(trial: optuna.Trial) -> float:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return 0.0

    counts = []
    nothing = lambda t: 0.0  # noqa: E731
    for objective in (nothing, nothing, batched, one_by_one):  # the first warms the caches
        commits.clear()
        study.optimize(objective, n_trials=1)
        counts.append(len(commits))
    assert [t.user_attrs for t in study.trials] == [{}, {}, attrs, attrs]
    if kind == "sqlite":
        assert counts[2] == counts[1] + 1  # the three attributes: one commit
        assert counts[3] == counts[1] + len(attrs)


def test_steps_per_execution_changes_speed_not_results(write_study, tmp_path, monkeypatch):
    """hpsearch runs 32 batches per compiled call on long epochs (Keras' default is 1);
    the same seeded study must store the same curves either way."""
    import keras

    import hpsearch.training

    compiled_with = []
    compile_ = keras.Model.compile

    def recording_compile(self, *args, **kwargs):
        compiled_with.append(kwargs.get("steps_per_execution", 1))
        return compile_(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "compile", recording_compile)
    assert hpsearch.training.steps_per_execution(450, 64) == 1  # 8 batches: not worth it
    assert hpsearch.training.steps_per_execution(54_000, 128) == 32  # MNIST: 422 batches
    histories = {}
    for steps in (1, 32):
        # 29 batches per epoch: below the threshold unless it is lowered
        monkeypatch.setattr(hpsearch.training, "MULTI_STEP_MIN", 1 if steps > 1 else 10**9)
        url = f"sqlite:///{tmp_path / f'spe{steps}.db'}"
        # batch 16 over 450 images: 29 steps per epoch, fewer than 32 in one call
        path = write_study(f"spe{steps}", storage=url, space__batch_size=16)
        study = _run(path, "search.n_trials=2")
        histories[steps] = [t.user_attrs["history"] for t in study.trials]
        assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    assert compiled_with == [1, 1, 32, 32]
    one, many = histories.values()
    for a, b in zip(one, many, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6)


def test_cosine_schedule_decays_to_zero_and_a_shorter_rerun_follows_the_same_curve():
    """lr_schedule: cosine decays the rate to 0 by the last of ``epochs``; training only
    the first epoch (a refit of a trial that kept epoch 1) follows the trial's schedule."""
    import math

    from hpsearch.data import load_dataset
    from hpsearch.study import study_from_dict
    from hpsearch.training import train

    study = study_from_dict({"name": "s", **small_study()})
    dataset = load_dataset(study.config.data)
    params = {**study.space.fixed, "depth": 1, "width": 16, "dropout": 0.0}
    params.update(optimizer="adam", learning_rate=0.01, batch_size=64, epochs=3)
    rates = {}
    for schedule, epochs in [("constant", None), ("cosine", None), ("cosine", 1)]:
        run = train(
            {**params, "lr_schedule": schedule}, dataset, family="mlp", seed=0, epochs=epochs
        )
        assert run.epochs_run == (epochs or 3)
        rates[schedule, epochs] = float(run.model.optimizer.learning_rate)
    assert rates["constant", None] == pytest.approx(0.01)
    assert rates["cosine", None] == pytest.approx(0.0, abs=1e-9)
    assert rates["cosine", 1] == pytest.approx(0.01 * 0.5 * (1 + math.cos(math.pi / 3)))


def test_cosine_schedule_survives_a_checkpoint(tmp_path):
    """A checkpointed trial (``workers.checkpoints``) reloads its optimizer with the
    schedule and its step count, and finishes the same curve down to 0."""
    import keras

    from hpsearch.data import load_dataset
    from hpsearch.study import study_from_dict
    from hpsearch.training import train

    study = study_from_dict({"name": "s", **small_study()})
    dataset = load_dataset(study.config.data)
    params = {**study.space.fixed, "depth": 1, "width": 16, "dropout": 0.0}
    params.update(optimizer="adam", learning_rate=0.01, batch_size=64, epochs=3)
    params["lr_schedule"] = "cosine"
    first = train(params, dataset, family="mlp", seed=0, epochs=1)
    first.model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert float(loaded.optimizer.learning_rate) == pytest.approx(0.0075)
    rest = train(params, dataset, family="mlp", seed=0, initial_model=loaded, initial_epoch=1)
    assert rest.epochs_run == 3 and len(rest.history["loss"]) == 2
    assert float(rest.model.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-9)


def test_a_trial_collapsed_to_one_class_stops_at_chance_and_completes(write_study, storage_url):
    """Adam at a learning rate of 5 collapses the network to one class: chance_patience 2
    stops it after 2 epochs instead of 8, and the trial completes with its chance-level
    value; with chance_patience 0 (the default) the same network trains all 8 epochs."""
    import numpy as np

    from hpsearch.data import load_dataset
    from hpsearch.training import train

    path = write_study(
        "collapse",
        space__optimizer="adam",
        space__learning_rate=5.0,
        space__epochs=8,
        space__chance_patience=2,
        search__n_trials=1,
    )
    study = _run(path)
    (trial,) = study.trials
    assert trial.state == TrialState.COMPLETE
    assert trial.user_attrs["stopped_at_chance"] == trial.user_attrs["epochs_run"]
    assert trial.user_attrs["epochs_run"] < 8
    dataset = load_dataset(hpsearch.load_study_file(path).config.data)
    majority = np.bincount(dataset.y_val).max() / len(dataset.y_val)
    assert trial.value <= majority + 1e-3

    params = {**hpsearch.load_study_file(path).space.fixed, "depth": 1, "width": 16}
    params.update(dropout=0.0)
    del params["chance_patience"]  # the default: off
    full = train(params, dataset, family="mlp", seed=0)
    assert full.epochs_run == 8 and full.stopped_at_chance is None
    assert max(full.history["val_accuracy"]) <= majority + 1e-3  # it did collapse


def test_a_slow_learner_above_chance_is_not_stopped():
    """SGD at 1e-4 barely moves in 4 epochs (no better than its first epoch) but is above
    chance: it trains on (Keras' EarlyStopping with a baseline would stop it)."""
    from hpsearch.data import load_dataset
    from hpsearch.study import study_from_dict
    from hpsearch.training import train

    study = study_from_dict({"name": "s", **small_study()})
    dataset = load_dataset(study.config.data)
    params = {**study.space.fixed, "depth": 1, "width": 16, "dropout": 0.0}
    params.update(optimizer="sgd", learning_rate=1e-4, batch_size=64, epochs=4)
    run = train({**params, "chance_patience": 2}, dataset, family="mlp", seed=0)
    assert run.epochs_run == 4 and run.stopped_at_chance is None
    assert max(run.history["val_accuracy"][1:]) <= run.history["val_accuracy"][0]


def test_cosine_schedule_runs_in_both_engines_and_is_searched(write_study):
    space = {"lr_schedule": {"choices": ["constant", "cosine"]}}
    optuna_run = _run(write_study("sched", space__lr_schedule=space["lr_schedule"]))
    assert {t.params["lr_schedule"] for t in optuna_run.trials} <= {"constant", "cosine"}
    assert all(t.state == TrialState.COMPLETE for t in optuna_run.trials)
    sklearn_run = _run(
        write_study(
            "sched_sk",
            space__lr_schedule="cosine",
            search={"engine": "sklearn", "method": "random", "n_iter": 2, "cv": 2, "refit": False},
        )
    )
    assert sum(t.state == TrialState.COMPLETE for t in sklearn_run.trials) == 2


def test_optuna_cli_reads_the_same_storage(write_study, storage_url):
    _run(write_study(search__n_trials=2))
    optuna_cli = Path(sys.executable).with_name("optuna")
    out = subprocess.run(
        [
            str(optuna_cli),
            "trials",
            "--storage",
            storage_url,
            "--study-name",
            "study",
            "-f",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = json.loads(out.stdout)
    assert len(rows) == 2
    assert {r["state"] for r in rows} == {"COMPLETE"}
    assert "params_depth" in rows[0] or "params" in rows[0]


def test_pruned_trials_are_stored_as_pruned(write_study, storage_url):
    path = write_study(
        search__pruner="threshold", search__pruner_options={"lower": 0.999}, space__epochs=3
    )
    with pytest.raises(
        hpsearch.NoTrialCompleted, match=r"no trial completed \(0 failed, 3 pruned\)"
    ):
        _run(path)  # every trial pruned: the run says that nothing completed
    trials = optuna.load_study(study_name="study", storage=storage_url).get_trials()
    assert [t.state for t in trials] == [TrialState.PRUNED] * 3
    for t in trials:
        assert list(t.intermediate_values) == [1]  # pruned after the first epoch
        assert t.user_attrs["epochs_run"] == 1


def test_nan_trial_fails_with_reason_and_study_goes_on(write_study, storage_url):
    path = write_study(
        model={"family": "builders:poisonable"},
        space={"poison": {"choices": [0, 1]}, "units": 8, "epochs": 2, "batch_size": 64},
        search={
            "sampler": "random",
            "n_trials": 3,
            "seed": 0,
            "enqueue": [{"poison": 1}, {"poison": 0}, {"poison": 0}],
        },
    )
    _run(path)
    trials = optuna.load_study(study_name="study", storage=storage_url).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert "nan" in trials[0].user_attrs["fail_reason"].lower()
    assert trials[0].params == {"poison": 1}


def test_user_builder_that_compiles_itself(write_study, storage_url):
    path = write_study(
        model={"family": "builders:compiled"},
        space={"units": {"choices": [4, 8]}, "epochs": 1},
        search={"sampler": "grid"},
    )
    _run(path)
    trials = optuna.load_study(study_name="study", storage=storage_url).get_trials()
    assert sorted(t.params["units"] for t in trials) == [4, 8]  # grid size is the budget
    assert all(t.state == TrialState.COMPLETE for t in trials)


def test_cnn_family_trains(write_study, storage_url):
    path = write_study(
        model={"family": "cnn"},
        space={
            "blocks": {"low": 1, "high": 2},
            "filters": {"choices": [4, 8], "per_layer": True},
            "kernel_size": 3,
            "dense_width": 16,
            "batch_norm": {"choices": [False, True]},
            "augment_translate": {"low": 0.0, "high": 0.2},
            "epochs": 1,
        },
        search={"sampler": "tpe", "n_trials": 2, "seed": 1},
    )
    _run(path)
    for t in optuna.load_study(study_name="study", storage=storage_url).get_trials():
        assert t.state == TrialState.COMPLETE
        assert t.params["batch_norm"] in (False, True)
        assert 0.0 <= t.params["augment_translate"] <= 0.2
        blocks = t.params["blocks"]
        # per-layer filters are sampled only for the blocks the trial has
        assert {k for k in t.params if k.startswith("filters_")} == {
            f"filters_{i}" for i in range(1, blocks + 1)
        }


def test_cnn_augmentation_acts_in_training_only():
    """Shifts and rotations change the images the network trains on, and leave a
    built (or exported) model's predictions deterministic."""
    import numpy as np

    from hpsearch.models import build_model, get_family

    params = {name: p.default for name, p in get_family("cnn").all_params().items()}
    params.update(augment_translate=0.25, augment_rotate=0.1, dense_width=8, filters=4)
    model = build_model("cnn", params, (8, 8, 1), 10)
    images = np.zeros((16, 8, 8, 1), "float32")
    images[:, 2:6, 3:5] = 1.0
    for name in ("augment_rotate", "augment_translate"):
        layer = model.get_layer(name)
        np.testing.assert_array_equal(np.asarray(layer(images, training=False)), images)
        assert not np.allclose(np.asarray(layer(images, training=True)), images)
    np.testing.assert_array_equal(
        model.predict(images, verbose=0), model.predict(images, verbose=0)
    )
    plain = build_model(
        "cnn", {**params, "augment_translate": 0.0, "augment_rotate": 0.0}, (8, 8, 1), 10
    )
    assert not any(layer.name.startswith("augment") for layer in plain.layers)


def test_multi_objective_with_builtin_params_and_latency(write_study, storage_url):
    path = write_study(
        objective=["val_accuracy", "params", "latency"], search={"n_trials": 2, "seed": 3}
    )
    study = _run(path)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE", "MINIMIZE"]
    for t in study.trials:
        assert t.state == TrialState.COMPLETE
        assert t.values[1] == t.user_attrs["params"]
        assert t.values[2] > 0
        assert t.intermediate_values == {}  # Optuna cannot report steps with several objectives
    result = CliRunner().invoke(app, ["best", str(path)])
    assert result.exit_code == 0, result.output
    assert "Pareto" in result.output


def test_same_seed_gives_same_trials(write_study, storage_url):
    a = _run(
        write_study(
            "first",
            search__sampler="tpe",
            search__n_trials=4,
            search__sampler_options={"n_startup_trials": 2},
        )
    )
    b = _run(
        write_study(
            "second",
            search__sampler="tpe",
            search__n_trials=4,
            search__sampler_options={"n_startup_trials": 2},
        )
    )
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    assert [t.value for t in a.trials] == pytest.approx([t.value for t in b.trials], abs=1e-6)
    assert a.best_trial.params == b.best_trial.params


def test_enqueued_first_trials_run_first(write_study, storage_url):
    first = {"depth": 2, "width": 32, "dropout": 0.1, "optimizer": "adam", "learning_rate": 0.005}
    study = _run(write_study(search__enqueue=[first], search__n_trials=2))
    assert study.trials[0].params == first


def test_resume_runs_only_the_remaining_budget(write_study, storage_url):
    path = write_study(search__n_trials=2)
    _run(path)
    _run(path, "search.n_trials=4")
    _run(path, "search.n_trials=4")  # nothing left: no new trial
    trials = optuna.load_study(study_name="study", storage=storage_url).get_trials()
    assert len(trials) == 4
    assert all(t.state == TrialState.COMPLETE for t in trials)


def test_timeout_only_budget(write_study, storage_url):
    path = write_study(search={"sampler": "random", "timeout": 0.5, "seed": 1})
    study = _run(path)
    assert 1 <= len(study.trials) <= 2


def _states(db: Path) -> list[tuple[int, str, int]]:
    """(number, state, epochs reported) of every trial."""
    con = sqlite3.connect(db, timeout=30)
    try:
        return con.execute(
            "SELECT number, state, (SELECT COUNT(*) FROM trial_intermediate_values v"
            " WHERE v.trial_id = t.trial_id) FROM trials t ORDER BY number"
        ).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


def _terminal_ctrl_c() -> None:
    """Give the run the Ctrl-C a terminal would. A shell without job control starts
    background commands with SIGINT ignored, and CI's runner starts this suite with SIGINT
    blocked (both inherited through exec): either way the run would never see the signal
    and finish its budget with exit 0, as it did in CI on 2026-12-02."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def test_ctrl_c_marks_the_trial_and_a_rerun_finishes_exactly_the_budget(
    write_study, tmp_path, storage_url
):
    path = write_study(search__n_trials=4, space__epochs=40, data__subset=800)
    cmd = [str(Path(sys.executable).with_name("hpsearch")), "run", str(path)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_terminal_ctrl_c,
    )
    db = tmp_path / "hpsearch.db"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            states = _states(db)
            done = [n for n, s, _ in states if s == "COMPLETE"]
            # inside the running trial's epochs, far from its end: a Ctrl-C that came
            # between two trials would leave no trial to mark
            training = [n for n, s, epochs in states if s == "RUNNING" and 1 <= epochs <= 20]
            if done and training:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err and "resume" in err

    study = optuna.load_study(study_name="study", storage=storage_url)
    interrupted = [t for t in study.trials if t.user_attrs.get("interrupted")]
    assert len(interrupted) == 1 and interrupted[0].state == TrialState.FAIL
    complete_before = [t.number for t in study.trials if t.state == TrialState.COMPLETE]

    resumed = subprocess.run(
        cmd + ["--set", "space.epochs=2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    study = optuna.load_study(study_name="study", storage=storage_url)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 4
    assert set(complete_before) <= {t.number for t in complete}  # nothing lost
    retry = [t for t in complete if t.user_attrs.get("retry_of") == interrupted[0].number]
    assert len(retry) == 1 and retry[0].params == interrupted[0].params
    assert len(study.trials) == 5  # 4 finished + the interrupted one, nothing repeated


def test_interrupt_before_training_starts_loses_no_budget(write_study, storage_url, monkeypatch):
    """Ctrl-C right after a worker popped its slot, before the training loop (between
    trials): the popped trial is marked interrupted, so a rerun runs its copy and the
    budget is still exact."""
    from hpsearch.engines import _optuna

    path = write_study(search__n_trials=3)
    real = _optuna.Heartbeat.around
    started = []

    def interrupt_second_trial(study, trial_id, interval):
        started.append(trial_id)
        if len(started) == 2:
            raise KeyboardInterrupt
        return real(study, trial_id, interval)

    monkeypatch.setattr(_optuna.Heartbeat, "around", interrupt_second_trial)
    with pytest.raises(_optuna.StudyInterrupted):
        _run(path)
    study = optuna.load_study(study_name="study", storage=storage_url)
    assert [t.state for t in study.trials[:2]] == [TrialState.COMPLETE, TrialState.FAIL]
    lost = study.trials[1]
    assert lost.user_attrs["interrupted"] is True and "fail_reason" in lost.user_attrs

    monkeypatch.setattr(_optuna.Heartbeat, "around", real)
    _run(path)
    study = optuna.load_study(study_name="study", storage=storage_url)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 3  # the budget, exactly
    assert [t.user_attrs.get("retry_of") for t in complete].count(lost.number) == 1


def test_status_and_best_commands(write_study, storage_url):
    path = write_study(search__n_trials=2)
    study = _run(path)
    runner = CliRunner()
    result = runner.invoke(app, ["status", "--storage", storage_url])
    assert result.exit_code == 0, result.output
    assert "study" in result.output and "optuna" in result.output
    result = runner.invoke(app, ["best", "study", "--storage", storage_url, "--json"])
    assert result.exit_code == 0, result.output
    best = json.loads(result.output)
    assert best[0]["number"] == study.best_trial.number
    assert best[0]["params"] == study.best_trial.params
    assert best[0]["metrics"]["val_accuracy"] == pytest.approx(study.best_value)
    result = runner.invoke(app, ["best", "nosuchstudy", "--storage", storage_url])
    assert result.exit_code == 2
    assert "no study 'nosuchstudy'" in result.output


def test_val_loss_and_custom_keras_metric_objectives(write_study, storage_url):
    study = _run(write_study("loss", objective={"metric": "val_loss"}, search__n_trials=2))
    assert study.direction.name == "MINIMIZE"
    assert all(t.value == pytest.approx(t.user_attrs["val_loss"]) for t in study.trials)
    metric = "val_sparse_top_k_categorical_accuracy"
    study = _run(write_study("topk", objective=metric, search__n_trials=2))
    assert study.direction.name == "MAXIMIZE"
    for t in study.trials:
        assert t.value == pytest.approx(t.user_attrs[metric])
        assert t.value >= t.user_attrs["val_accuracy"]  # top-5 is at least top-1
        assert sorted(t.intermediate_values) == [1, 2]


def test_unknown_keras_metric_is_refused_before_anything_is_written(write_study, tmp_path):
    path = write_study(objective="val_no_such_metric")
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2
    assert (
        f"error: {path}: objective.metric: got 'val_no_such_metric'; not a Keras metric"
        in result.output
    )
    assert not (tmp_path / "hpsearch.db").exists()


POSTGRES = "postgresql://127.0.0.1:5432/test"


def _postgres_up() -> bool:
    import sqlalchemy

    try:
        with sqlalchemy.create_engine(POSTGRES).connect():
            return True
    except Exception:
        return False


@pytest.mark.skipif(not _postgres_up(), reason="PostgreSQL not reachable on 127.0.0.1:5432")
def test_same_study_file_runs_against_postgresql(write_study):
    name = f"pg_{os.getpid()}_{int(time.time())}"
    path = write_study(name, search__n_trials=2, export={"keep": "none"})
    try:
        result = CliRunner().invoke(app, ["run", str(path), "--storage", POSTGRES, "-q"])
        assert result.exit_code == 0, result.output
        study = optuna.load_study(study_name=name, storage=POSTGRES)
        assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
        assert all(sorted(t.intermediate_values) == [1, 2] for t in study.trials)
        listed = CliRunner().invoke(app, ["status", "--storage", POSTGRES])
        assert name in listed.output
    finally:
        optuna.delete_study(study_name=name, storage=POSTGRES)


def test_impossible_layer_combination_fails_the_trial_only(write_study, storage_url):
    # 8x8 digits: two 5x5 'valid' convolutions shrink the image below zero -> trial fails
    path = write_study(
        model={"family": "cnn"},
        space={
            "blocks": {"choices": [1, 2]},
            "kernel_size": 5,
            "padding": "valid",
            "filters": 4,
            "dense_width": 8,
            "epochs": 1,
        },
        search={"sampler": "grid"},
    )
    study = _run(path)
    by_blocks = {t.params["blocks"]: t for t in study.trials}
    assert by_blocks[1].state == TrialState.COMPLETE
    assert by_blocks[2].state == TrialState.FAIL
    assert by_blocks[2].user_attrs["fail_reason"].startswith("model could not be built")


def test_too_many_failures_in_a_row_stop_the_run(write_study, tmp_path):
    path = write_study(
        model={"family": "builders:poisonable"},
        space={"poison": 1, "units": 4, "epochs": 1},
        search={"sampler": "random", "n_trials": 10, "max_consecutive_failures": 2},
    )
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2
    assert "2 trials failed in a row" in result.output and "loss became nan" in result.output
    study = optuna.load_study(study_name="study", storage=f"sqlite:///{tmp_path / 'hpsearch.db'}")
    states = [t.state for t in study.trials]
    # the rest of the budget stays queued (WAITING) for a later run
    assert states == [TrialState.FAIL] * 2 + [TrialState.WAITING] * 8


def test_resuming_with_a_changed_space_warns(write_study, storage_url, capsys):
    path = write_study(search__n_trials=1)
    _run(path)
    study_file = hpsearch.load_study_file(path, ["space.epochs=1", "search.n_trials=2"])
    hpsearch.run(study_file)
    assert "created with a different space" in capsys.readouterr().out


def test_study_file_of_rebuilds_params_from_storage(write_study, storage_url):
    from hpsearch.results import study_file_of

    path = write_study(search__n_trials=1)
    _run(path)
    study = hpsearch.open_study("study", storage=storage_url)
    rebuilt = study_file_of(study)
    trial = study.trials[0]
    params = rebuilt.space.params_from_optuna(trial.params)
    assert params["depth"] == trial.params["depth"] and params["epochs"] == 2
    assert params["width"] == trial.params["width"] and params["batch_size"] == 64
