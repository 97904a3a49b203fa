"""Workers as Ray actors: ``hpsearch run STUDY --workers N --ray ADDRESS``.

The driver (this process) connects to a Ray cluster, creates or joins the study and
queues its budget exactly as :func:`hpsearch.engines._workers.run_parallel` does, then
starts N actors, each reserving ``workers.ray``'s CPUs, GPUs and memory. Every actor
runs the loop a local worker process runs (:func:`hpsearch.engines._workers.run_worker`):
it takes queued trials until the budget is spent, beats its heartbeat, and is replaced
after ``recycle_after`` trials. Its progress lines wait in the actor until the driver
collects them, and are shown with the same ``[w1]`` tags as local workers'.

An actor that dies (``ray.kill``, a lost node) has its running trial failed and
queued again with the same params at once (by its ``host:pid``, which may be on
another node), and is replaced. Ctrl-C or SIGTERM on the driver interrupts every
actor's trial the way a signal interrupts a local worker: failed as interrupted,
queued again, actor stopped.

Ray is imported only here, and only when a study asks for it.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import math
import os
import queue
import signal
import threading
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpsearch._logs import quiet_optuna
from hpsearch._progress import Progress
from hpsearch.engines._core import count_stored, handle_sigterm, interrupted
from hpsearch.engines._queue import fail_and_requeue, worker_id
from hpsearch.engines._workers import (
    ERROR_EXIT,
    _finished,
    _Supervisor,
    _worker_spec,
    run_worker,
)
from hpsearch.exceptions import ConfigError, HpsearchError, Terminated
from hpsearch.study._record import TrialRecord

if TYPE_CHECKING:
    import optuna

    from hpsearch.config._schema import RayConfig
    from hpsearch.study import StudyFile

__all__ = ["NAMESPACE", "run_on_ray"]

NAMESPACE = "hpsearch"  # the Ray namespace of the actors (`ray.util.list_named_actors`)
KILLED = -signal.SIGKILL  # what a dead actor's exit code reads as (like a killed process)
POLL_SECONDS = 0.5
PLACEMENT_NOTICE_SECONDS = 15.0


# ----------------------------------------------------------------- actor side
class _Lines:
    """A stream the worker loop writes JSON lines to; they wait until drained."""

    def __init__(self, owner: _RayWorker, errors: bool = False) -> None:
        self.owner = owner
        self.errors = errors

    def write(self, text: str) -> int:
        if self.errors:  # an error message: sent as a progress message
            if text.strip():
                self.owner.keep(json.dumps({"ev": "msg", "text": text.strip()}) + "\n")
        else:
            self.owner.keep(text)
        return len(text)

    def flush(self) -> None:
        pass


class _RayWorker:
    """One worker as a Ray actor (threaded, so ``drain`` and ``stop`` run beside ``run``)."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._running: int | None = None  # the thread that runs the worker loop

    def whoami(self) -> str:
        """``host:pid`` of this actor, as stored on the trials it runs."""
        return worker_id()

    def keep(self, line: str) -> None:
        with self._lock:
            self._lines.append(line)

    def drain(self) -> list[str]:
        """The progress lines written since the last call."""
        with self._lock:
            lines, self._lines = self._lines, []
        return lines

    def run(self, spec: dict[str, Any]) -> int:
        """The worker loop of a local worker process; its exit code."""
        from hpsearch.engines._core import exit_code

        with self._lock:
            self._running = threading.get_ident()
        try:
            return run_worker(spec, _Lines(self), _Lines(self, errors=True))  # type: ignore[arg-type]
        except KeyboardInterrupt as exc:  # stopped between the loop's own handlers
            return exit_code(exc)
        finally:
            with self._lock:
                self._running = None

    def stop(self, sigterm: bool) -> bool:
        """Interrupt ``run`` as a signal interrupts a worker process.

        Ray does not interrupt a running task of a threaded actor (``ray.cancel`` does
        not reach it), so the exception is raised in ``run``'s thread directly; the
        worker loop turns it into "trial failed as interrupted and queued again", as it
        does for Ctrl-C in a local worker process.
        """
        exc = Terminated if sigterm else KeyboardInterrupt
        with self._lock:
            if self._running is None:
                return False
            done = ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(self._running), ctypes.py_object(exc)
            )
        return bool(done)


# ----------------------------------------------------------------- driver side
class _RayChild:
    """A worker actor as the supervisor sees a worker process (``proc.wait()``, ``pid``)."""

    def __init__(
        self,
        label: str,
        spec: dict[str, Any],
        events: queue.Queue[tuple[str, str | None]],
        actor: Any,
    ) -> None:
        self.label = label
        self.actor = actor
        self.proc = self
        self.pid = 0
        self.worker: str | None = None  # host:pid, once the actor is placed
        self.rc: int | None = None
        self.thread = threading.Thread(target=self._follow, args=(spec, events), daemon=True)
        self.thread.start()

    def wait(self) -> int:
        self.thread.join()
        return KILLED if self.rc is None else self.rc

    def _follow(self, spec: dict[str, Any], events: queue.Queue[tuple[str, str | None]]) -> None:
        import ray

        try:
            self._placed(events)
            done = self.actor.run.remote(spec)
            while True:
                ready, _ = ray.wait([done], timeout=POLL_SECONDS)
                for line in ray.get(self.actor.drain.remote()):
                    events.put((self.label, line))
                if ready:
                    break
            self.rc = ray.get(done)
        except ray.exceptions.RayActorError:  # killed, or its node was lost
            self.rc = KILLED
        except ray.exceptions.RayError as exc:  # a bug inside the actor: its one-line cause
            text = str(exc).strip().splitlines()[-1][:300]
            events.put((self.label, json.dumps({"ev": "msg", "text": f"error: {text}"})))
            self.rc = ERROR_EXIT
        finally:
            with contextlib.suppress(Exception):  # its process (and memory) goes
                ray.kill(self.actor, no_restart=True)
            events.put((self.label, None))

    def _placed(self, events: queue.Queue[tuple[str, str | None]]) -> None:
        """Wait for Ray to start the actor (a busy cluster may take a while)."""
        import ray

        who = self.actor.whoami.remote()
        ready, _ = ray.wait([who], timeout=PLACEMENT_NOTICE_SECONDS)
        if not ready:
            text = "waiting for Ray to place this worker (resources of workers.ray)"
            events.put((self.label, json.dumps({"ev": "status", "text": text})))
        self.worker = str(ray.get(who))
        self.pid = int(self.worker.rsplit(":", 1)[1])

    def signal(self, signum: int) -> None:
        import ray

        with contextlib.suppress(Exception):  # already gone
            if signum == signal.SIGKILL or self.worker is None:  # (not placed: ran nothing)
                ray.kill(self.actor, no_restart=True)
            else:
                self.actor.stop.remote(signum == signal.SIGTERM)


class _RaySupervisor(_Supervisor):
    """The local supervisor's loop, with Ray actors for worker processes."""

    def __init__(self, *args: Any, ray_config: RayConfig, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        import ray

        self.remote = ray.remote(_RayWorker)
        self.ray_config = ray_config
        self.driver = worker_id()

    def spawn(self, label: str) -> None:
        self.spawned += 1
        unique = zlib.crc32(f"{self.driver}:{self.spawned}:{time.time_ns()}".encode())
        spec = {**self.spec, "worker": unique}
        cfg = self.ray_config
        options: dict[str, Any] = {
            "num_cpus": cfg.num_cpus,
            "num_gpus": cfg.num_gpus or 0,
            # unique on the cluster, and findable: `ray list actors`, ray.get_actor
            "name": f"{self.study.study_name}:{label}:{self.spawned}@{self.driver}",
            "namespace": NAMESPACE,
            "max_restarts": 0,  # the supervisor replaces a lost actor itself
            "max_concurrency": 4,  # drain, stop and whoami run beside run
        }
        if cfg.memory_mb is not None:
            options["memory"] = cfg.memory_mb * 1024 * 1024
        actor = self.remote.options(**options).remote()
        self.children[label] = _RayChild(label, spec, self.events, actor)  # type: ignore[assignment]

    def reap(self, child: Any) -> list[int]:
        """Fail and re-queue the running trial of a dead actor, found by its ``host:pid``
        (the actor may have run on another node: no local pid check would see it)."""
        from optuna.trial import TrialState

        if child.worker is None:  # never placed: it ran nothing
            return []
        out = []
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if TrialRecord.from_trial(t).worker == child.worker and fail_and_requeue(
                self.study, t, f"Ray actor {child.label} ({child.worker}) died"
            ):
                out.append(t.number)
        return out

    def close(self) -> None:
        """Kill every actor still alive (after an error in the driver itself)."""
        for child in list(self.children.values()):
            child.signal(signal.SIGKILL)


def connect(cfg: RayConfig, n_workers: int) -> bool:
    """Connect this process to the Ray cluster at ``cfg.address`` (``local``: start one
    on 127.0.0.1); False if it already was connected (then it stays connected)."""
    # hpsearch never reports usage to Ray's servers on a user's behalf
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    one_machine = _on_this_machine(cfg.address)
    if one_machine:
        # Ray advertises and binds the machine's network address (even when told
        # 127.0.0.1) unless told it runs as a one-machine cluster: then all stays on 127.0.0.1
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "Ray is not installed; pip install 'hpsearch[ray]'",
            path="workers.ray",
        ) from None
    if ray.is_initialized():
        return False
    if one_machine:  # Ray may have been imported before the variable above was set
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False  # read when Ray picks its address
    kwargs: dict[str, Any] = {"namespace": NAMESPACE, "log_to_driver": False}
    if cfg.address == "local":
        cpus = max(os.cpu_count() or 1, math.ceil(n_workers * cfg.num_cpus))
        kwargs |= {
            "include_dashboard": False,
            "_node_ip_address": "127.0.0.1",
            "num_cpus": cpus,
            "logging_level": logging.ERROR,  # its start-up notes are not this run's lines
        }
    try:
        ray.init(address=cfg.address, **kwargs)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"cannot connect to a Ray cluster there ({first})",
            path="workers.ray.address",
            value=cfg.address,
            has_value=True,
        ) from None
    handle_sigterm()  # ray.init replaces SIGTERM's handler with one that exits at once
    return True


def _on_this_machine(address: str) -> bool:
    """``local``, or a cluster on a loopback address.

    >>> [_on_this_machine(a) for a in ("local", "127.0.0.1:6379", "auto", "ray://head:10001")]
    [True, True, False, False]
    """
    if address == "local":
        return True
    host = address.removeprefix("ray://").rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1")


@quiet_optuna()
def run_on_ray(
    study_file: StudyFile,
    n_workers: int,
    *,
    role: str = "run",
    quiet: bool = False,
) -> optuna.Study:
    """Run a study with ``n_workers`` Ray actors on the cluster of ``workers.ray``.

    Raises:
        StudyInterrupted: Ctrl-C or SIGTERM; the actors' trials were re-queued.
        ConfigError: no Ray, or no cluster at the address; nothing was written.
        HpsearchError: bad input, or workers kept failing.
    """
    from hpsearch.engines._optuna import announce_run, open_run

    cfg = study_file.config
    ray_cfg = cfg.workers.ray
    assert ray_cfg is not None
    try:
        owned = connect(ray_cfg, n_workers)
    except ConfigError as exc:
        raise study_file.attribute(exc) from None
    try:
        ray_cfg = ray_cfg.model_copy(update={"num_gpus": _gpus_per_worker(study_file, n_workers)})
        progress = Progress(study_file.objectives[0].metric, study_file.n_trials, quiet=quiet)
        study, dataset = open_run(study_file, role=role, progress=progress)
        count_stored(progress, study)
        announce_run(study, study_file, dataset, progress)
        spec = _absolute_paths(_worker_spec(study_file, n_workers, role))
        spec["threads"] = cfg.workers.threads or max(1, math.ceil(ray_cfg.num_cpus))
        _announce(progress, ray_cfg, n_workers, spec["threads"], cfg.workers.recycle_after)
        _supervise(study, study_file, progress, n_workers, spec, ray_cfg)
    finally:
        if owned:
            import ray

            ray.shutdown()  # a local cluster stops; a remote one loses this driver's actors
    return study


def _gpus_per_worker(study_file: StudyFile, n_workers: int) -> float:
    """``workers.ray.num_gpus`` when given, else from ``workers.gpus`` and the cluster's
    GPUs (``auto``: one each when there are enough; none on a cluster without GPUs)."""
    import ray

    from hpsearch.engines._gpus import ray_num_gpus

    workers = study_file.config.workers
    assert workers.ray is not None
    if workers.ray.num_gpus is not None:
        return workers.ray.num_gpus
    try:
        cluster = float(ray.cluster_resources().get("GPU", 0))
        return ray_num_gpus(workers.gpus, n_workers, cluster)
    except ConfigError as exc:
        raise study_file.attribute(exc) from None


def _absolute_paths(spec: dict[str, Any]) -> dict[str, Any]:
    """Relative paths of the study taken from the driver's working directory, as a
    local worker takes them (an actor's working directory is Ray's)."""
    if spec.get("source"):
        spec["source"] = str(Path(spec["source"]).resolve())
    config = spec["config"]
    for section, key in (("export", "dir"), ("workers", "checkpoint_dir")):
        value = config.get(section, {}).get(key)
        if value:
            config[section][key] = str(Path(value).expanduser().resolve())
    return spec


def _announce(progress: Progress, cfg: RayConfig, n: int, threads: int, recycle: int) -> None:
    memory = f", {cfg.memory_mb} MB" if cfg.memory_mb else ""
    progress.message(
        f"{n} Ray worker actor(s) on {cfg.address}, {cfg.num_cpus:g} CPU, "
        f"{cfg.num_gpus or 0:g} GPU{memory} and {threads} TensorFlow thread(s) each, "
        f"recycled every {recycle} trials"
    )


def _supervise(
    study: optuna.Study,
    study_file: StudyFile,
    progress: Progress,
    n_workers: int,
    spec: dict[str, Any],
    ray_config: RayConfig,
) -> None:
    supervisor = _RaySupervisor(study, study_file, progress, n_workers, spec, ray_config=ray_config)
    with progress:
        try:
            supervisor.run()
        except KeyboardInterrupt as exc:
            raise interrupted(
                exc,
                "running trials are marked FAIL (interrupted) and queued again; "
                "run the same command again to resume",
            ) from None
        finally:
            supervisor.close()
    if supervisor.errors and not _finished(study, study_file):
        raise HpsearchError(supervisor.errors[-1])
