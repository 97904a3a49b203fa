"""Parallel workers: ``hpsearch run --workers N`` and ``hpsearch worker``.

The supervisor (this process) creates or joins the study and queues its budget,
then starts N worker processes. Each worker imports TensorFlow and loads the
data once, uses ``cores // N`` TensorFlow threads, runs trials until the study's
queue is empty, and is replaced after ``workers.recycle_after`` trials (Keras
leaks a few MB per model). Workers report to the supervisor as JSON lines on
their stdout; the supervisor shows every worker's progress together.

A worker that dies (SIGKILL, out of memory) has its trial failed and re-queued
at once, and is replaced. Ctrl-C and SIGTERM are forwarded to the workers, which
fail their trials as interrupted, re-queue them and exit.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import IO, TYPE_CHECKING, Any

from hpsearch._logs import quiet_optuna
from hpsearch._progress import Progress
from hpsearch.engines._core import (
    StudyInterrupted,
    count_stored,
    exit_code,
    handle_sigterm,
    interrupted,
    prepare_process,
)
from hpsearch.engines._gpus import GpuPlan, plan_for
from hpsearch.engines._queue import worker_id
from hpsearch.exceptions import ConfigError, HpsearchError, Terminated
from hpsearch.study._record import TrialRecord

if TYPE_CHECKING:
    import optuna

    from hpsearch._progress import Outcome
    from hpsearch.study import StudyFile

__all__ = ["Terminated", "exit_code", "handle_sigterm", "run_parallel"]

RECYCLE_EXIT = 3
ERROR_EXIT = 2
STOP_WAIT_SECONDS = 60.0


# ----------------------------------------------------------------- worker side
class _EventProgress(Progress):
    """A worker's progress, sent to the supervisor as JSON lines."""

    def __init__(self, metric: str, stream: IO[str]) -> None:
        super().__init__(metric, None, quiet=True)
        self.stream = stream

    def _send(self, **event: Any) -> None:
        self.stream.write(json.dumps(event, default=str) + "\n")
        self.stream.flush()

    def __enter__(self) -> _EventProgress:
        return self

    def set_counts(self, study: optuna.Study, best: float | None) -> None:
        pass

    def trial_started(self, number: int, params: Mapping[str, Any], worker: str = "") -> None:
        self._send(ev="start", n=number)

    def epoch(
        self, number: int, epoch: int, epochs: int, logs: Mapping[str, float], worker: str = ""
    ) -> None:
        self._send(ev="epoch", n=number, e=epoch, of=epochs, v=logs.get(self.metric))

    def trial_finished(
        self,
        trial: optuna.trial.FrozenTrial,
        record: Outcome,
        best: float | None,
        worker: str = "",
    ) -> None:
        stored = record if isinstance(record, TrialRecord) else TrialRecord.from_trial(trial)
        attrs = stored.progress()
        self._send(
            ev="done",
            n=trial.number,
            state=trial.state.name,
            values=trial.values,
            params=trial.params,
            attrs=attrs,
            best=best,
        )

    def status(self, text: str, worker: str = "") -> None:
        self._send(ev="status", text=text)

    def message(self, text: str, worker: str = "") -> None:
        self._send(ev="msg", text=text)


def _worker_main(spec_text: str) -> int:
    """One worker process (``python -m hpsearch.engines._workers SPEC``)."""
    handle_sigterm()
    events = sys.stdout
    sys.stdout = sys.stderr  # anything else a library prints stays out of the event stream
    return run_worker(json.loads(spec_text), events, sys.stderr)


@quiet_optuna()
def run_worker(spec: dict[str, Any], events: IO[str], errors: IO[str]) -> int:
    """A worker's life: open the study, run queued trials until the budget is spent
    (or ``recycle_after`` trials ran), report progress as JSON lines on ``events``.

    Shared by worker processes and Ray actors (:mod:`hpsearch.engines._ray`).

    Returns:
        The worker's exit code: 0, :data:`RECYCLE_EXIT`, :data:`ERROR_EXIT` (the
        message went to ``errors``), or 130/143 when interrupted.
    """
    from hpsearch.engines._optuna import open_run, work
    from hpsearch.study import study_from_dict

    try:
        source = Path(spec["source"]) if spec.get("source") else None
        study_file = study_from_dict(spec["config"], source=source)
        prepare_process(study_file, spec["threads"])
        progress = _EventProgress(study_file.objectives[0].metric, events)
        study, dataset = open_run(study_file, role="worker", worker=spec["worker"])
        why = work(
            study,
            study_file,
            dataset,
            progress,
            deadline=spec.get("deadline"),
            max_trials=spec["recycle_after"],
            limit=spec.get("limit"),
        )
    except StudyInterrupted as exc:
        return exit_code(exc)
    except KeyboardInterrupt as exc:  # outside a trial: nothing to re-queue
        return exit_code(exc)
    except HpsearchError as exc:
        print(f"error: {exc}", file=errors)
        return ERROR_EXIT
    return RECYCLE_EXIT if why == "recycle" else 0


# ----------------------------------------------------------------- supervisor side
class _Child:
    def __init__(
        self,
        label: str,
        spec: str,
        events: queue.Queue[tuple[str, str | None]],
        env: dict[str, str] | None = None,
    ) -> None:
        self.label = label
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hpsearch.engines._workers", spec],
            env=env,  # None: this process's; with workers.gpus, its own CUDA_VISIBLE_DEVICES
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
            start_new_session=True,  # signals come from the supervisor, once
        )
        self.thread = threading.Thread(target=self._read, args=(events,), daemon=True)
        self.thread.start()

    def _read(self, events: queue.Queue[tuple[str, str | None]]) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            events.put((self.label, line))
        events.put((self.label, None))

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signum)


class _Supervisor:
    def __init__(
        self,
        study: optuna.Study,
        study_file: StudyFile,
        progress: Progress,
        n_workers: int,
        spec: dict[str, Any],
    ) -> None:
        self.study = study
        self.study_file = study_file
        self.progress = progress
        self.n_workers = n_workers
        self.spec = spec
        self.deadline: float | None = spec.get("deadline")
        self.events: queue.Queue[tuple[str, str | None]] = queue.Queue()
        self.children: dict[str, _Child] = {}
        self.crashes = 0
        self.errors: list[str] = []
        self.stopping = False
        self.spawned = 0
        self.gpus = GpuPlan()  # run_parallel sets the plan; none: workers inherit the env

    def spawn(self, label: str) -> None:
        self.spawned += 1
        # every process samples with its own seed, unique across machines too (workers
        # on other hosts start their own supervisors): parallel runs are not repeatable
        unique = zlib.crc32(f"{worker_id()}:{self.spawned}:{time.time_ns()}".encode())
        spec = {**self.spec, "worker": unique}
        env = self.gpus.env(int(label[1:]) - 1)  # w3 is worker 2: a replacement keeps its GPU
        self.children[label] = _Child(label, json.dumps(spec), self.events, env)

    def run(self) -> None:
        for i in range(self.n_workers):
            self.spawn(f"w{i + 1}")
        try:
            self._loop()
        except KeyboardInterrupt as exc:
            self.stop(signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)
            raise

    def _loop(self) -> None:
        while self.children:
            try:
                label, line = self.events.get(timeout=1.0)
            except queue.Empty:
                continue
            if line is None:
                self._exited(label)
            else:
                self._event(label, line)

    def _event(self, label: str, line: str) -> None:
        try:
            ev = json.loads(line)
        except ValueError:
            ev = None
        if not isinstance(ev, dict) or "ev" not in ev:
            sys.stdout.write(line)
            return
        kind = ev["ev"]
        p = self.progress
        if kind == "start":
            p.trial_started(ev["n"], {}, worker=label)
        elif kind == "epoch":
            logs = {} if ev.get("v") is None else {p.metric: ev["v"]}
            p.epoch(ev["n"], ev["e"], ev["of"], logs, worker=label)
        elif kind == "done":
            from optuna.trial import TrialState

            trial = SimpleNamespace(
                number=ev["n"],
                state=TrialState[ev["state"]],
                values=ev.get("values"),
                params=ev.get("params") or {},
            )
            record = TrialRecord.from_attrs(ev.get("attrs"))
            p.trial_finished(trial, record, ev.get("best"), worker=label)  # type: ignore[arg-type]
        elif kind == "status":
            p.status(ev["text"], worker=label)
        elif kind == "msg":
            p.message(ev["text"], worker=label)

    def _exited(self, label: str) -> None:
        child = self.children.pop(label)
        rc = child.proc.wait()
        self.progress.status("", worker=label)
        late = self.deadline is not None and time.time() >= self.deadline
        if rc == RECYCLE_EXIT:
            if not self.stopping and not late:
                self.spawn(label)
        elif rc in (0, 130, 143, -signal.SIGINT, -signal.SIGTERM):
            return
        elif rc == ERROR_EXIT:
            self.errors.append(f"worker {label} stopped with an error (see above)")
        else:  # killed or crashed mid-trial: fail and re-queue its trial, replace it
            lost = self.reap(child)
            self.crashes += 1
            what = f"; trial {', '.join(map(str, lost))} queued again" if lost else ""
            self.progress.message(
                f"worker {label} (pid {child.proc.pid}) died with exit code {rc}{what}"
            )
            if self.crashes > 2 * self.n_workers:
                self.errors.append(f"{self.crashes} worker processes died; stopping")
            elif not self.stopping and not late:
                self.spawn(label)

    def stop(self, signum: int) -> None:
        """Forward ``signum`` to the workers and wait for them to re-queue their trials."""
        self.stopping = True
        self.progress.message(
            f"stopping: {len(self.children)} worker(s) fail their running trials cleanly"
        )
        for child in self.children.values():
            child.signal(signum)
        end = time.monotonic() + STOP_WAIT_SECONDS
        while self.children and time.monotonic() < end:
            try:
                label, line = self.events.get(timeout=1.0)
            except queue.Empty:
                continue
            except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
                break
            if line is None:
                self._exited(label)
            else:
                self._event(label, line)
        for child in self.children.values():  # still running: kill, then re-queue for them
            child.signal(signal.SIGKILL)
            child.proc.wait()
            self.reap(child)
        self.children.clear()

    def reap(self, child: Any) -> list[int]:
        """Fail and re-queue the running trial of a worker that died; its numbers."""
        from hpsearch.engines._queue import reap_dead_workers

        return reap_dead_workers(self.study, [child.proc.pid])


@quiet_optuna()
def run_parallel(
    study_file: StudyFile,
    n_workers: int,
    *,
    role: str = "run",
    quiet: bool = False,
) -> optuna.Study:
    """Run a study with ``n_workers`` worker processes on this machine.

    Args:
        role: ``run`` sets the study's budget to the file's ``n_trials``; ``worker``
            joins a study and works on its stored budget.

    Raises:
        StudyInterrupted: Ctrl-C or SIGTERM; the workers' trials were re-queued.
        HpsearchError: bad input, or workers kept failing.
    """
    from hpsearch.engines._optuna import announce_run, open_run

    if study_file.config.search.engine == "sklearn":
        raise ConfigError(
            "the sklearn engine runs in one process; parallel workers need the optuna engine",
            path="workers.count",
            value=n_workers,
            has_value=True,
        )
    cfg = study_file.config
    plan = plan_for(study_file)  # a bad workers.gpus stops the run before anything is written
    progress = Progress(study_file.objectives[0].metric, study_file.n_trials, quiet=quiet)
    study, dataset = open_run(study_file, role=role, progress=progress)
    count_stored(progress, study)
    announce_run(study, study_file, dataset, progress)
    spec = _worker_spec(study_file, n_workers, role)
    progress.message(
        f"{n_workers} worker process(es), {spec['threads']} TensorFlow thread(s) each, "
        f"recycled every {cfg.workers.recycle_after} trials"
    )
    gpus = plan.describe(n_workers)
    if gpus:
        progress.message(f"GPUs: {gpus}")
    supervisor = _Supervisor(study, study_file, progress, n_workers, spec)
    supervisor.gpus = plan
    with progress:
        try:
            supervisor.run()
        except KeyboardInterrupt as exc:
            raise interrupted(
                exc,
                "running trials are marked FAIL (interrupted) and queued again; "
                "run the same command again to resume",
            ) from None
    if supervisor.errors and not _finished(study, study_file):
        raise HpsearchError(supervisor.errors[-1])
    return study


def _worker_spec(study_file: StudyFile, n_workers: int, role: str) -> dict[str, Any]:
    """What every worker process of a parallel run is started with (as JSON)."""
    cfg = study_file.config
    config = cfg.model_dump(mode="json")
    config["name"] = study_file.name
    config["storage"] = study_file.storage
    timeout = cfg.search.timeout
    return {
        "config": config,
        "source": str(study_file.source) if study_file.source else None,
        "threads": cfg.workers.threads or max(1, (os.cpu_count() or 1) // n_workers),
        "deadline": None if timeout is None else time.time() + timeout,
        "recycle_after": cfg.workers.recycle_after,
        "limit": study_file.n_trials if role == "run" else None,
    }


def _finished(study: optuna.Study, study_file: StudyFile) -> bool:
    from hpsearch.engines._queue import budget_spent

    n = study_file.n_trials
    return n is not None and budget_spent(study) >= n


if __name__ == "__main__":
    from hpsearch.engines._workers import _worker_main as main  # the module, not __main__

    sys.exit(main(sys.argv[1]))
