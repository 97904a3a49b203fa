"""The trial queue that makes a budget exact across workers, and crash recovery.

A study with ``n_trials`` hands out its budget as WAITING trials in the storage
(*slots*). A worker only ever pops a slot; it never creates a trial of its own
(:func:`only_queued_trials`), so any number of workers on any number of machines
stop at exactly ``n_trials`` finished trials. Popping is atomic in every Optuna
storage (``set_trial_state_values(RUNNING)`` succeeds for one caller only).

Slots are numbered 0..T-1 and at most :data:`WINDOW` wait at a time (every
storage read of a study loads its unfinished trials, so a thousand waiting
slots would slow every trial): whoever pops slot *k* queues slot *k + WINDOW*
(:func:`refill`). Each slot is popped once, so each number is queued once.

A trial that did not finish for a reason of its own goes back to the queue as
a copy with the same params (:func:`requeue`):

* Ctrl-C or SIGTERM: the worker re-queues it before it exits;
* a local worker process that died: its supervisor, or the next worker on the
  same host, sees the dead pid (:func:`reap_dead_workers`);
* a worker on another machine that died: RDB storages (SQLite, PostgreSQL,
  MySQL) use Optuna's heartbeats and ``RetryHeartbeatStaleTrialCallback``;
  journal storages (file, Redis) get the same from :class:`Heartbeat` and
  :func:`fail_stale_trials`.

Retries are linked like Optuna's callback links them: ``system_attrs`` hold
``failed_trial`` (the first trial of the chain) and ``retry_history``; the user
attribute ``retry_of`` names the trial a copy replaces.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpsearch.study._record import (
    FAIL_REASON,
    INTERRUPTED,
    LOST,
    RETRY_OF,
    SETUP_ERROR,
    TrialRecord,
)

if TYPE_CHECKING:
    import optuna

__all__ = [
    "BudgetExhausted",
    "Heartbeat",
    "budget_spent",
    "counts_toward_budget",
    "fail_and_requeue",
    "fail_stale_trials",
    "only_queued_trials",
    "reap_dead_workers",
    "refill",
    "requeue",
    "slots_in_use",
    "top_up",
    "worker_id",
]

BUDGET_ATTR = "hpsearch_budget"
SLOTS_ATTR = "hpsearch_slots"
SLOT_ATTR = "hpsearch:slot"
HEARTBEAT_ATTR = "hpsearch:heartbeat"
# the names Optuna's RetryFailedTrialCallback uses, so its tools read hpsearch's retries
FAILED_TRIAL_ATTR = "failed_trial"
RETRY_HISTORY_ATTR = "retry_history"
WINDOW = 32


class BudgetExhausted(Exception):
    """No queued trial is left to run: the budget is spent or taken by running trials."""


def worker_id(pid: int | None = None) -> str:
    """``host:pid`` of a worker process (stored on each trial it runs)."""
    return f"{socket.gethostname()}:{pid or os.getpid()}"


# ----------------------------------------------------------------- the budget
def retried(trials: Iterable[optuna.trial.FrozenTrial]) -> set[int]:
    """Numbers of the trials that have been re-queued."""
    out: set[int] = set()
    for t in trials:
        out.update(t.system_attrs.get(RETRY_HISTORY_ATTR, ()))
        retry_of = TrialRecord.value(t, RETRY_OF)
        if retry_of is not None:
            out.add(int(retry_of))
    return out


def counts_toward_budget(
    trial: optuna.trial.FrozenTrial, retried_numbers: set[int] | frozenset[int] = frozenset()
) -> bool:
    """Whether a finished trial used up one unit of ``n_trials``.

    COMPLETE and PRUNED trials do; a FAIL does when it failed for a reason of its
    own (``fail_reason``: NaN loss, out of memory...) and was not re-queued.
    Interrupted trials, trials stopped by a set-up error and trials of dead workers
    do not: their copy runs instead.
    """
    from optuna.trial import TrialState

    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    if trial.state == TrialState.FAIL:  # the fields of TrialRecord.stopped, read alone
        value = TrialRecord.value
        return (
            value(trial, FAIL_REASON) is not None
            and not (value(trial, INTERRUPTED) or value(trial, SETUP_ERROR))
            and trial.number not in retried_numbers
        )
    return False


def budget_spent(study: optuna.Study, trials: list[optuna.trial.FrozenTrial] | None = None) -> int:
    """How many trials of the budget a study has finished (``trials``: if just read)."""
    if trials is None:
        trials = study.get_trials(deepcopy=False)
    done = retried(trials)
    return sum(counts_toward_budget(t, done) for t in trials)


def slots_in_use(trials: list[optuna.trial.FrozenTrial]) -> int:
    """Finished trials that count, plus RUNNING and WAITING ones (each will count)."""
    from optuna.trial import TrialState

    done = retried(trials)
    return sum(
        counts_toward_budget(t, done) or t.state in (TrialState.RUNNING, TrialState.WAITING)
        for t in trials
    )


def _queue_slot(study: optuna.Study, number: int) -> None:
    """A WAITING trial without params or ``fixed_params``: every sampler (the grid
    sampler too) samples it as if it were a new trial."""
    import optuna
    from optuna.trial import TrialState

    study.add_trial(
        optuna.trial.create_trial(state=TrialState.WAITING, system_attrs={SLOT_ATTR: number})
    )


def _is_slot(trial: optuna.trial.FrozenTrial) -> bool:
    return SLOT_ATTR in trial.system_attrs and RETRY_HISTORY_ATTR not in trial.system_attrs


def top_up(study: optuna.Study, n_trials: int) -> int:
    """Set the study's budget to ``n_trials`` (it only grows) and queue the slots
    that no live chain of slots will queue; return how many were queued.

    Run it while no worker runs (when a run starts): a worker popping a slot at the
    same moment could make one slot be queued twice.
    """
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    stored, slots = stored_budget(study), study.user_attrs.get(SLOTS_ATTR)
    if stored is None or slots is None:  # a new study: what is queued or done already counts
        total = max(0, n_trials - slots_in_use(trials))
    else:
        total = int(slots) + max(0, n_trials - stored)
    study.set_user_attr(SLOTS_ATTR, total)  # before any slot can be popped
    highest: dict[int, optuna.trial.FrozenTrial] = {}
    for t in trials:
        if _is_slot(t):
            k = int(t.system_attrs[SLOT_ATTR])
            if k % WINDOW not in highest or k > highest[k % WINDOW].system_attrs[SLOT_ATTR]:
                highest[k % WINDOW] = t
    added = 0
    for chain in range(min(WINDOW, total)):
        last = highest.get(chain)
        if last is not None and last.state == TrialState.WAITING:
            continue  # whoever pops it continues the chain
        number = chain if last is None else int(last.system_attrs[SLOT_ATTR]) + WINDOW
        if number < total:
            _queue_slot(study, number)
            added += 1
    study.set_user_attr(BUDGET_ATTR, max(n_trials, stored or 0))  # workers start on this
    return added


def refill(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """A slot was popped: queue the next slot of its chain, if the budget has it."""
    if not _is_slot(trial):
        return
    following = int(trial.system_attrs[SLOT_ATTR]) + WINDOW
    total = study._storage.get_study_user_attrs(study._study_id).get(SLOTS_ATTR)
    if total is not None and following < int(total):
        _queue_slot(study, following)


def stored_budget(study: optuna.Study) -> int | None:
    value = study.user_attrs.get(BUDGET_ATTR)
    return int(value) if value is not None else None


def only_queued_trials(study: optuna.Study) -> None:
    """Make ``study.ask()`` pop a queued slot or raise :class:`BudgetExhausted`.

    Optuna's ``ask`` pops a WAITING trial if there is one and otherwise creates a
    new trial; the second path would overshoot the budget when two workers race
    for the last slot. New trials made from a template (``enqueue_trial``,
    ``add_trial``, the retry callback) are still allowed.
    """
    storage = study._storage  # the storage object the study itself calls
    create = storage.create_new_trial

    def create_new_trial(study_id: int, template_trial: Any = None) -> int:
        if template_trial is None:
            raise BudgetExhausted
        return create(study_id, template_trial)

    storage.create_new_trial = create_new_trial  # type: ignore[method-assign]


# ----------------------------------------------------------------- retries
def requeue(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Queue a copy of ``trial`` with the same params (and seed)."""
    import optuna
    from optuna.trial import TrialState

    system_attrs: dict[str, Any] = {FAILED_TRIAL_ATTR: trial.number, **trial.system_attrs}
    system_attrs.pop(HEARTBEAT_ATTR, None)
    system_attrs.pop(SLOT_ATTR, None)
    system_attrs[RETRY_HISTORY_ATTR] = [*system_attrs.get(RETRY_HISTORY_ATTR, []), trial.number]
    copy = TrialRecord(retry_of=trial.number, seed=TrialRecord.from_trial(trial).seed)
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs=copy.to_attrs(),
            system_attrs=system_attrs,
        )
    )


def first_of_chain(trial: optuna.trial.FrozenTrial) -> int:
    """The number of the first trial of a retry chain (the trial itself if not a retry)."""
    return int(trial.system_attrs.get(FAILED_TRIAL_ATTR, trial.number))


def fail_and_requeue(study: optuna.Study, trial: optuna.trial.FrozenTrial, reason: str) -> bool:
    """Fail a RUNNING trial that nobody runs any more and queue its copy.

    Returns False when another process got there first (the trial had finished).
    """
    import optuna
    from optuna.trial import TrialState

    storage = study._storage
    try:
        storage.set_trial_user_attr(trial._trial_id, LOST, reason)
        if not storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
            return False
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    requeue(study, trial)
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is dead too
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def reap_dead_workers(study: optuna.Study, pids: Iterable[int] | None = None) -> list[int]:
    """Fail and re-queue RUNNING trials of dead worker processes on this host.

    Args:
        pids: only these processes (a supervisor's dead children); default: every
            process of this host that no longer exists.

    Returns:
        The numbers of the trials re-queued.
    """
    from optuna.trial import TrialState

    host = socket.gethostname()
    wanted = set(pids) if pids is not None else None
    out = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        who = str(TrialRecord.from_trial(t).worker or "")
        whose_host, _, pid_text = who.rpartition(":")
        if whose_host != host or not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if (
            (wanted is None or pid in wanted)
            and not _pid_alive(pid)
            and fail_and_requeue(study, t, f"worker process {pid} on {host} died")
        ):
            out.append(t.number)
    return out


# ----------------------------------------------------------------- heartbeats (journal)
def uses_rdb_heartbeats(study: optuna.Study) -> bool:
    from optuna.storages._heartbeat import is_heartbeat_enabled

    return is_heartbeat_enabled(study._storage)


class Heartbeat:
    """Beat for a running trial of a journal storage (RDB storages beat by themselves)."""

    def __init__(self, study: optuna.Study, trial_id: int, interval: float) -> None:
        self.study = study
        self.trial_id = trial_id
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hpsearch-heartbeat", daemon=True)

    def _beat(self) -> None:
        self.study._storage.set_trial_system_attr(self.trial_id, HEARTBEAT_ATTR, time.time())

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(Exception):  # the trial finished meanwhile
                self._beat()

    @classmethod
    @contextlib.contextmanager
    def around(cls, study: optuna.Study, trial_id: int, interval: float) -> Iterator[None]:
        """Beat while the block runs (nothing to do on RDB storages)."""
        if uses_rdb_heartbeats(study):
            yield
            return
        beat = cls(study, trial_id, interval)
        beat._beat()
        beat._thread.start()
        try:
            yield
        finally:
            beat._stop.set()
            beat._thread.join()


def fail_stale_trials(study: optuna.Study, grace_period: float) -> list[int]:
    """Fail and re-queue RUNNING trials whose heartbeat is older than ``grace_period``.

    RDB storages: Optuna's own check (its retry callback re-queues). Journal
    storages: the :class:`Heartbeat` timestamps.
    """
    import warnings

    import optuna
    from optuna.trial import TrialState

    if uses_rdb_heartbeats(study):
        before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        after = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
        return sorted(before - after)
    out = []
    now = time.time()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        last = t.system_attrs.get(HEARTBEAT_ATTR)
        if last is None and t.datetime_start is not None:
            last = t.datetime_start.timestamp()
        if (
            last is not None
            and now - float(last) > grace_period
            and fail_and_requeue(study, t, f"no heartbeat for {now - float(last):.0f}s")
        ):
            out.append(t.number)
    return out
