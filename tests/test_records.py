"""The typed records of what hpsearch stores on a trial and a study: the stored form
round-trips, a trial written by an older version (or the other engine) reads with
None for what it lacks, and the attributes worth showing are one list."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import hpsearch
from hpsearch.study import RefitRecord, SklearnSummary, TrialRecord
from hpsearch.study._record import PROGRESS_ATTRS, SHOWN_ATTRS

# what the Optuna engine writes on a COMPLETE trial, in the order it writes it
COMPLETE = {
    "worker": "host:1",
    "seed": 7,
    "accuracy": 0.8,
    "loss": 0.5,
    "val_accuracy": 0.75,
    "val_loss": 0.6,
    "params": 1234,
    "epochs_run": 3,
    "train_seconds": 1.234,
    "history": {"val_accuracy": [0.5, 0.7, 0.75]},
    "latency": 0.2,
    "artifact": "/tmp/artifacts/s/trial_0",
}
# what the scikit-learn engine writes on a candidate
SKLEARN = {
    "fold_scores": [0.7, 0.8],
    "std_test_score": 0.05,
    "mean_fit_time": 1.5,
    "std_fit_time": 0.1,
    "mean_score_time": 0.01,
    "std_score_time": 0.001,
    "seed": 0,
    "engine": "sklearn",
    "n_resources": 4,
    "iteration": 1,
}


def _stored(attrs: dict, state=TrialState.COMPLETE) -> optuna.trial.FrozenTrial:
    """``attrs`` written into a real (in-memory) study and read back."""
    study = optuna.create_study()
    study.add_trial(
        optuna.trial.create_trial(
            state=state, value=1.0 if state == TrialState.COMPLETE else None, user_attrs=attrs
        )
    )
    return study.trials[-1]


@pytest.mark.parametrize("attrs", [COMPLETE, SKLEARN, {}], ids=["optuna", "sklearn", "empty"])
def test_the_stored_form_round_trips_key_for_key_and_in_order(attrs):
    trial = _stored(attrs)
    record = TrialRecord.from_trial(trial)
    assert record.to_attrs() == trial.user_attrs
    assert list(record.to_attrs()) == list(trial.user_attrs)  # the order as stored
    assert TrialRecord.from_attrs(record.to_attrs()) == record


def test_the_fields_read_as_typed_attributes():
    record = TrialRecord.from_trial(_stored(COMPLETE))
    assert record.worker == "host:1" and record.seed == 7
    assert record.param_count == 1234  # stored as "params"
    assert record.epochs_run == 3 and record.train_seconds == 1.234
    assert record.history == {"val_accuracy": [0.5, 0.7, 0.75]}
    assert record.metrics == {"accuracy": 0.8, "loss": 0.5, "val_accuracy": 0.75, "val_loss": 0.6}
    assert record.artifact == "/tmp/artifacts/s/trial_0" and record.latency == 0.2
    assert record.fail_reason is None and not record.stopped
    assert record.get("val_accuracy") == 0.75 and record.get("params") == 1234
    assert record.get("nothing") is None


def test_a_record_built_in_code_writes_what_the_engines_write():
    record = TrialRecord(seed=3, retry_of=1)
    assert record.to_attrs() == {"retry_of": 1, "seed": 3}
    failed = TrialRecord(fail_reason="NaN loss", history={}, epochs_run=2, traceback="tb")
    assert failed.to_attrs() == {
        "epochs_run": 2,
        "history": {},
        "fail_reason": "NaN loss",
        "traceback": "tb",
    }


def test_an_old_trial_with_missing_keys_reads_as_none():
    # a trial of an early version: no worker, no seed, no train_seconds, no history
    old = TrialRecord.from_trial(
        _stored({"val_accuracy": 0.5, "fail_reason": "x"}, TrialState.FAIL)
    )
    assert old.seed is None and old.worker is None and old.train_seconds is None
    assert old.history is None and old.epochs_run is None and old.param_count is None
    assert old.interrupted is None and old.setup_error is None and not old.stopped
    assert old.fail_reason == "x" and old.metrics == {"val_accuracy": 0.5}
    assert old.shown() == {"val_accuracy": 0.5}
    assert TrialRecord.from_attrs(None) == TrialRecord()
    # a dead worker's trial, failed by the queue
    lost = TrialRecord.from_attrs({"worker": "h:1", "seed": 2, "lost": "worker h:1 died"})
    assert lost.lost == "worker h:1 died" and lost.fail_reason is None and lost.metrics == {}


def test_interrupted_and_set_up_errors_are_stopped():
    assert TrialRecord.from_attrs({"fail_reason": "interrupted", "interrupted": True}).stopped
    assert TrialRecord.from_attrs({"fail_reason": "set-up error: x", "setup_error": True}).stopped
    assert not TrialRecord.from_attrs({"fail_reason": "NaN loss"}).stopped


def test_the_shown_attributes_are_one_list_in_its_order():
    assert SHOWN_ATTRS == (
        "val_accuracy",
        "val_rmse",  # a regression's
        "val_mae",
        "val_loss",
        "accuracy",
        "rmse",
        "mae",
        "loss",
        "params",
        "epochs_run",
        "train_seconds",
        "latency",
        "fold_scores",
        "std_test_score",
        "mean_fit_time",
        "n_resources",
    )
    assert PROGRESS_ATTRS == ("epochs_run", "fail_reason", "train_seconds")
    record = TrialRecord.from_trial(_stored(COMPLETE))
    assert list(record.shown()) == [
        "val_accuracy",
        "val_loss",
        "accuracy",
        "loss",
        "params",
        "epochs_run",
        "train_seconds",
        "latency",
    ]
    sk = TrialRecord.from_trial(_stored(SKLEARN))
    assert list(sk.shown()) == ["fold_scores", "std_test_score", "mean_fit_time", "n_resources"]
    assert record.progress() == {"epochs_run": 3, "train_seconds": 1.234}


def test_summary_and_numbers_leave_out_what_they_should():
    record = TrialRecord.from_trial(_stored(COMPLETE))
    assert "history" not in record.summary() and "worker" in record.summary()
    assert record.numbers() == {
        "accuracy": 0.8,
        "loss": 0.5,
        "val_accuracy": 0.75,
        "val_loss": 0.6,
        "latency": 0.2,
    }


def test_the_study_records_round_trip_and_tolerate_absence():
    study = optuna.create_study()
    assert RefitRecord.of(study) is None and SklearnSummary.of(study) is None
    refit = RefitRecord(3, {"width": 8}, 0.9, 0.3, 1.5)
    refit.write(study)
    assert study.user_attrs["refit"] == {
        "trial": 3,
        "params": {"width": 8},
        "val_accuracy": 0.9,
        "val_loss": 0.3,
        "train_seconds": 1.5,
    }
    assert RefitRecord.of(study) == refit
    summary = SklearnSummary("GridSearchCV", 3, "accuracy", 2.5, {"0": 1})
    summary.write(study)
    assert study.user_attrs["sklearn"] == {
        "search": "GridSearchCV",
        "cv": 3,
        "scoring": "accuracy",
        "seconds": 2.5,
        "ranking": {"0": 1},
    }
    assert SklearnSummary.of(study) == summary


def test_a_record_built_in_code_keeps_the_order_the_engines_wrote():
    # the scikit-learn engine builds its candidates' records in code: same keys, same order
    record = TrialRecord(
        fold_scores=[0.7, 0.8],
        std_test_score=0.05,
        mean_fit_time=1.5,
        std_fit_time=0.1,
        mean_score_time=0.01,
        std_score_time=0.001,
        seed=0,
        engine="sklearn",
        n_resources=4,
        iteration=1,
    )
    assert list(record.to_attrs().items()) == list(SKLEARN.items())
    assert list(TrialRecord(retry_of=3, seed=5).to_attrs()) == ["retry_of", "seed"]


def test_no_module_reads_a_stored_trial_attribute_by_its_key():
    """Only the modules that define the names read ``user_attrs``; the queue reads its
    own study attributes (``*_ATTR``) and storage.py is the writer."""
    import re

    root = Path(hpsearch.__file__).parent
    allowed = {"study/_record.py", "study/_meta.py"}
    found = []
    for path in sorted(root.rglob("*.py")):
        name = path.relative_to(root).as_posix()
        if name in allowed:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not re.search(r"\.user_attrs\b", line):
                continue
            if name == "engines/_queue.py" and "_ATTR)" in line:
                continue  # SLOTS_ATTR, BUDGET_ATTR: the queue's own, read only there
            if name == "storage.py" and ".user_attrs.update(attrs)" in line:
                continue  # the writer keeps Optuna's cached trial in step
            found.append(f"{name}:{number}: {line.strip()}")
    assert found == []
