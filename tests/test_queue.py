"""The trial queue (``hpsearch.engines._queue``) on every storage backend, without Keras.

Each test makes a real study in SQLite, an Optuna journal file and PostgreSQL
(the ``any_storage`` fixture) and drives the queue directly or through the real
trial loop (``hpsearch.engines.work``) with a trivial ``evaluate`` instead of training.
"""

from __future__ import annotations

import datetime
import threading
import time
from typing import Any

import optuna
import pytest
from conftest import StorageSupplier, small_study
from optuna.trial import TrialState

import hpsearch.engines._queue as _queue
from hpsearch.engines import Progress, StudyInterrupted, create_or_join, top_up, work
from hpsearch.engines._queue import (
    HEARTBEAT_ATTR,
    SLOT_ATTR,
    BudgetExhausted,
    Heartbeat,
    budget_spent,
    counts_toward_budget,
    fail_and_requeue,
    fail_stale_trials,
    only_queued_trials,
    refill,
    slots_in_use,
    stored_budget,
    worker_id,
)
from hpsearch.search import make_pruner, make_sampler
from hpsearch.study import study_from_dict

SEED = 7  # small_study's search.seed

# study.ask() on an RDB storage with heartbeats (as hpsearch opens it) warns that
# heartbeats are meant for Study.optimize; these tests pop trials by hand on purpose
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed:UserWarning")


def queue_study(storage: StorageSupplier, n_trials: int, **open_kwargs: Any) -> tuple[Any, Any]:
    """A new digits study (random sampler) in ``storage``; nothing queued yet."""
    raw = small_study(search__n_trials=n_trials, search__sampler="random")
    raw |= {"name": storage.study_name("queue"), "storage": storage.url}
    sf = study_from_dict(raw)
    study, created = create_or_join(
        sf,
        storage.open(**open_kwargs),
        make_sampler(sf.config.search, sf.space, 1),
        make_pruner(sf.config.search, 2, 1),
        {},
    )
    assert created
    return sf, study


def run_work(sf: Any, study: Any, evaluate: Any = None, **kwargs: Any) -> str:
    """``work`` with a trial that samples the space and returns its dropout."""

    def instant(trial: optuna.Trial) -> float:
        return float(sf.space.suggest(trial)["dropout"])

    progress = Progress("val_accuracy", sf.n_trials, quiet=True)
    return work(study, sf, None, progress, evaluate=evaluate or instant, **kwargs)


def states(study: Any) -> list[str]:
    return [t.state.name for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)]


def pop(study: Any) -> optuna.trial.FrozenTrial:
    """Pop a queued trial as a worker does (WAITING -> RUNNING); return it as stored."""
    trial = study.ask()
    return study._storage.get_trial(trial._trial_id)


# ------------------------------------------------------------------ the loop
def test_work_runs_exactly_the_budget(any_storage):
    sf, study = queue_study(any_storage, 5)
    assert top_up(study, 5) == 5
    assert run_work(sf, study) == "done"
    trials = study.get_trials(deepcopy=False)
    assert states(study) == ["COMPLETE"] * 5
    assert sorted(t.system_attrs[SLOT_ATTR] for t in trials) == [0, 1, 2, 3, 4]
    assert {t.user_attrs["worker"] for t in trials} == {worker_id()}
    assert sorted(t.user_attrs["seed"] for t in trials) == [SEED + n for n in range(5)]
    assert budget_spent(study) == 5

    assert run_work(sf, study) == "done"  # a second worker finds nothing to do
    assert len(study.get_trials(deepcopy=False)) == 5
    with pytest.raises(BudgetExhausted):  # work() made ask() pop slots only
        study.ask()


def test_work_stops_at_max_trials_and_limit(any_storage):
    sf, study = queue_study(any_storage, 4)
    top_up(study, 4)
    assert run_work(sf, study, max_trials=1) == "recycle"
    assert states(study).count("COMPLETE") == 1
    assert run_work(sf, study, limit=3) == "done"
    assert states(study).count("COMPLETE") == 3
    assert run_work(sf, study) == "done"
    assert states(study) == ["COMPLETE"] * 4


def test_an_interrupted_trial_is_queued_again_and_the_budget_stays_exact(any_storage):
    sf, study = queue_study(any_storage, 3)
    top_up(study, 3)
    calls = []

    def interrupt_the_second(trial: optuna.Trial) -> float:
        value = float(sf.space.suggest(trial)["dropout"])
        calls.append(trial.number)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return value

    with pytest.raises(StudyInterrupted):
        run_work(sf, study, interrupt_the_second)
    lost = study.get_trials(deepcopy=False)[calls[1]]
    assert lost.state == TrialState.FAIL and lost.user_attrs["interrupted"] is True
    assert budget_spent(study) == 1  # the interrupted trial does not count
    copies = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("retry_of")]
    assert [(c.state, c.params) for c in copies] == [(TrialState.WAITING, lost.params)]

    assert run_work(sf, study) == "done"
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    assert len(complete) == 3
    retried = [t for t in complete if t.user_attrs.get("retry_of") == lost.number]
    assert len(retried) == 1
    assert retried[0].params == lost.params
    assert retried[0].user_attrs["seed"] == lost.user_attrs["seed"]  # the same seed again


# ------------------------------------------------------------------ top_up and refill
def test_top_up_is_idempotent_and_the_budget_only_grows(any_storage):
    _, study = queue_study(any_storage, 3)
    assert top_up(study, 3) == 3
    assert top_up(study, 3) == 0  # the slots are queued already
    assert top_up(study, 2) == 0  # a smaller budget removes nothing
    assert stored_budget(study) == 3
    assert states(study) == ["WAITING"] * 3
    assert top_up(study, 5) == 2
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    assert sorted(t.system_attrs[SLOT_ATTR] for t in waiting) == [0, 1, 2, 3, 4]
    assert stored_budget(study) == 5


def test_a_new_study_counts_what_is_already_queued_or_done(any_storage):
    sf, study = queue_study(any_storage, 4)
    study.enqueue_trial({"depth": 1, "width": 16, "dropout": 0.1})
    study.add_trial(optuna.trial.create_trial(value=0.5))
    assert top_up(study, 4) == 2  # 4 minus the queued and the finished trial
    assert run_work(sf, study) == "done"
    assert budget_spent(study) == 4
    assert states(study) == ["COMPLETE"] * 4


def test_refill_queues_the_next_slot_of_its_chain_within_the_budget(any_storage, monkeypatch):
    monkeypatch.setattr(_queue, "WINDOW", 2)
    _, study = queue_study(any_storage, 3)
    assert top_up(study, 3) == 2  # slots 0 and 1 wait; each chain queues its next

    def waiting_slots() -> list[int]:
        trials = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        return sorted(t.system_attrs[SLOT_ATTR] for t in trials if SLOT_ATTR in t.system_attrs)

    first = pop(study)
    refill(study, first)
    assert waiting_slots() == [1, first.system_attrs[SLOT_ATTR] + 2]
    second = pop(study)
    refill(study, second)  # its next slot would be 3: beyond the budget
    assert waiting_slots() == [2]

    fail_and_requeue(study, second, "test")  # a copy is not a slot: it continues no chain
    copy = next(t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("retry_of"))
    refill(study, copy)
    assert waiting_slots() == [2]


def test_only_queued_trials_makes_ask_pop_a_slot_or_stop(any_storage):
    _, study = queue_study(any_storage, 1)
    top_up(study, 1)
    only_queued_trials(study)
    trial = study.ask()
    assert SLOT_ATTR in study._storage.get_trial(trial._trial_id).system_attrs
    study.tell(trial, 1.0)
    with pytest.raises(BudgetExhausted):
        study.ask()
    study.enqueue_trial({"x": 1.0})  # trials made from a template are still allowed
    assert study.ask().suggest_float("x", 0.0, 2.0) == 1.0


# ------------------------------------------------------------------ failing and re-queueing
def test_fail_and_requeue_queues_a_copy_with_the_same_params_and_seed(any_storage):
    sf, study = queue_study(any_storage, 1)
    top_up(study, 1)
    trial = study.ask()
    sf.space.suggest(trial)
    trial.set_user_attr("seed", 99)
    running = study._storage.get_trial(trial._trial_id)
    assert fail_and_requeue(study, running, "worker died") is True
    lost = study._storage.get_trial(trial._trial_id)
    assert lost.state == TrialState.FAIL and lost.user_attrs["lost"] == "worker died"
    copy = next(t for t in study.get_trials(deepcopy=False) if t.state == TrialState.WAITING)
    assert copy.params == running.params
    assert copy.user_attrs == {"retry_of": lost.number, "seed": 99}
    assert copy.system_attrs["failed_trial"] == lost.number
    assert copy.system_attrs["retry_history"] == [lost.number]
    assert SLOT_ATTR not in copy.system_attrs and HEARTBEAT_ATTR not in copy.system_attrs
    assert budget_spent(study) == 0

    assert fail_and_requeue(study, running, "again") is False  # finished: nothing more
    assert len(study.get_trials(deepcopy=False)) == 2

    assert run_work(sf, study) == "done"  # the copy runs with the lost trial's params and seed
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    assert [(t.user_attrs["seed"], t.params) for t in done] == [(99, running.params)]


def test_fail_stale_trials_on_a_journal_uses_hpsearchs_heartbeats(tmp_path):
    with StorageSupplier("journal", tmp_path) as storage:
        _, study = queue_study(storage, 3)
        top_up(study, 3)
        stale, fresh, silent = pop(study), pop(study), pop(study)
        study._storage.set_trial_system_attr(stale._trial_id, HEARTBEAT_ATTR, time.time() - 100)
        study._storage.set_trial_system_attr(fresh._trial_id, HEARTBEAT_ATTR, time.time())
        # silent: no beat yet; its start time stands in
        assert fail_stale_trials(study, grace_period=10) == [stale.number]
        trials = study.get_trials(deepcopy=False)
        assert trials[stale.number].state == TrialState.FAIL
        assert trials[stale.number].user_attrs["lost"].startswith("no heartbeat for 10")
        assert trials[fresh.number].state == trials[silent.number].state == TrialState.RUNNING
        copies = [t for t in trials if t.user_attrs.get("retry_of") == stale.number]
        assert [c.state for c in copies] == [TrialState.WAITING]
        assert fail_stale_trials(study, grace_period=10) == []  # done once


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_fail_stale_trials_on_a_database_uses_optunas_heartbeats(tmp_path, kind):
    import sqlalchemy

    with StorageSupplier(kind, tmp_path) as storage:
        _, study = queue_study(storage, 2, heartbeat_interval=60, grace_period=10)
        top_up(study, 2)
        stale, fresh = pop(study), pop(study)
        backend = study._storage
        for t in (stale, fresh):
            backend.record_heartbeat(t._trial_id)
        rdb = getattr(backend, "_backend", backend)  # Optuna wraps it in a cache
        with rdb.engine.begin() as connection:  # as if it last beat long ago
            connection.execute(
                sqlalchemy.text(
                    "UPDATE trial_heartbeats SET heartbeat = :old WHERE trial_id = :id"
                ),
                {"old": datetime.datetime(2000, 1, 1), "id": stale._trial_id},
            )
        assert fail_stale_trials(study, grace_period=10) == [stale.number]
        trials = study.get_trials(deepcopy=False)
        assert trials[stale.number].state == TrialState.FAIL
        assert trials[fresh.number].state == TrialState.RUNNING
        # Optuna's retry callback (set by open_storage) queued a copy
        copies = [t for t in trials if t.system_attrs.get("failed_trial") == stale.number]
        assert [(c.state, c.params) for c in copies] == [(TrialState.WAITING, stale.params)]


# ------------------------------------------------------------------ heartbeats
def test_heartbeat_beats_while_the_block_runs_on_a_journal_only(any_storage):
    _, study = queue_study(any_storage, 1)
    top_up(study, 1)
    trial = pop(study)

    def last_beat() -> float | None:
        return study._storage.get_trial(trial._trial_id).system_attrs.get(HEARTBEAT_ATTR)

    with Heartbeat.around(study, trial._trial_id, 0.05):
        first = last_beat()
        time.sleep(0.3)
        later = last_beat()
        beating = any(t.name == "hpsearch-heartbeat" for t in threading.enumerate())
    if any_storage.is_rdb:  # RDB storages beat by themselves (Optuna's heartbeat)
        assert first is None and later is None and not beating
        return
    assert first is not None and later is not None and later > first and beating
    after = last_beat()
    time.sleep(0.15)
    assert last_beat() == after  # stopped with the block
    assert not any(t.name == "hpsearch-heartbeat" for t in threading.enumerate())


# ------------------------------------------------------------------ what counts
def _trial(state: TrialState, number: int, **user_attrs: Any) -> optuna.trial.FrozenTrial:
    value = 0.5 if state == TrialState.COMPLETE else None
    trial = optuna.trial.create_trial(state=state, value=value, user_attrs=user_attrs)
    trial.number = number
    return trial


def test_what_counts_toward_the_budget():
    trials = [
        _trial(TrialState.COMPLETE, 0),
        _trial(TrialState.PRUNED, 1),
        _trial(TrialState.FAIL, 2, fail_reason="loss became nan"),  # a failure of its own
        _trial(TrialState.FAIL, 3, fail_reason="interrupted", interrupted=True),
        _trial(TrialState.FAIL, 4, fail_reason="set-up error: x", setup_error=True),
        _trial(TrialState.FAIL, 5, lost="worker died"),  # no fail_reason: a lost trial
        _trial(TrialState.FAIL, 6, fail_reason="out of memory"),  # but retried by 9
        _trial(TrialState.RUNNING, 7),
        _trial(TrialState.WAITING, 8),
        _trial(TrialState.WAITING, 9, retry_of=6),
    ]
    retried = _queue.retried(trials)
    assert retried == {6}
    counted = [t.number for t in trials if counts_toward_budget(t, retried)]
    assert counted == [0, 1, 2]
    assert counts_toward_budget(trials[6])  # without knowing of the retry, it counts

    study = optuna.create_study()
    assert budget_spent(study, trials) == 3
    assert slots_in_use(trials) == 3 + 3  # plus the running and the waiting ones
