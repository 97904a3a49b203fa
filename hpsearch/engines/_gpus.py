"""GPUs on one machine: which worker process sees which GPU (``workers.gpus``).

Each local worker process gets ``CUDA_VISIBLE_DEVICES`` in the environment it is started
with, so TensorFlow, imported later in that process, sees only its own GPU; TensorFlow's
memory growth is turned on for every GPU a process sees
(:func:`hpsearch.training.enable_memory_growth`), so workers sharing a GPU do not each
reserve all of its memory.

GPUs are found without importing TensorFlow (``hpsearch validate`` must stay light), in
this order:

1. ``CUDA_VISIBLE_DEVICES`` when it is set (a scheduler such as SLURM set it, or the user
   did): its ids are the GPUs this process may use; empty or ``-1`` means none;
2. ``nvidia-smi -L`` when ``nvidia-smi`` is on the PATH: one ``GPU <index>: ...`` line
   per GPU;
3. ``/proc/driver/nvidia/gpus/``: one folder per GPU (the driver is loaded but
   ``nvidia-smi`` is missing), numbered 0, 1, ... in that order;
4. none of these: no GPU, and nothing changes (no environment is set for the workers).

The rules (``workers.gpus``: ``auto``, a count, or a list of device ids):

* ``auto`` (the default) uses every detected GPU; ``N`` the first N detected; a list
  exactly those ids (each must be detected); ``0`` hides the GPUs from the workers
  (``CUDA_VISIBLE_DEVICES=""``: CPU only).
* The number of workers, when neither ``--workers`` nor ``workers.count`` says it, is one
  per GPU used (:func:`worker_count`); without GPUs it stays 1.
* Worker ``i`` (0-based; ``w1`` is 0) gets GPU ``i mod len(gpus)``: more workers than
  GPUs share them round robin (with memory growth on, small models fit several to a
  GPU); fewer workers than GPUs leave the last GPUs unused (TensorFlow trains on one GPU
  per process unless the model asks for a distribution strategy).
* A recycled or replaced worker keeps its label and so its GPU.

On Ray, Ray places actors and sets ``CUDA_VISIBLE_DEVICES`` inside each one itself: the
launcher asks for :func:`ray_num_gpus` GPUs per worker instead.
"""

from __future__ import annotations

import functools
import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hpsearch.exceptions import ConfigError

if TYPE_CHECKING:
    from hpsearch.study import StudyFile

__all__ = [
    "Detected",
    "GpuPlan",
    "apply_in_process",
    "detect_gpus",
    "plan_for",
    "plan_gpus",
    "ray_num_gpus",
    "worker_count",
]

ENV = "CUDA_VISIBLE_DEVICES"
PROC_GPUS = Path("/proc/driver/nvidia/gpus")
_SMI_LINE = re.compile(r"^GPU (\d+):", re.MULTILINE)


@dataclass(frozen=True)
class Detected:
    """The GPUs this machine shows to this process, and how they were found."""

    ids: tuple[str, ...] = ()
    source: str = "none"  # CUDA_VISIBLE_DEVICES, nvidia-smi, /proc/driver/nvidia or none


def detect_from(
    env: Mapping[str, str],
    smi_output: str | None,
    proc_entries: Sequence[str] | None,
) -> Detected:
    """The GPUs given what the environment, ``nvidia-smi -L`` and the driver's folder show.

    Args:
        env: the environment (``CUDA_VISIBLE_DEVICES`` wins when set).
        smi_output: what ``nvidia-smi -L`` printed, or None when it is missing or failed.
        proc_entries: the names in ``/proc/driver/nvidia/gpus/``, or None without it.
    """
    if ENV in env:
        value = env[ENV].strip()
        ids = () if value in ("", "-1") else tuple(p.strip() for p in value.split(",") if p.strip())
        # CUDA stops at the first invalid id ("-1" hides every GPU after it)
        if "-1" in ids:
            ids = ids[: ids.index("-1")]
        return Detected(ids, ENV)
    if smi_output is not None:
        found = tuple(_SMI_LINE.findall(smi_output))
        if found:
            return Detected(found, "nvidia-smi")
    if proc_entries:
        return Detected(tuple(str(i) for i in range(len(proc_entries))), "/proc/driver/nvidia")
    return Detected()


@functools.lru_cache(maxsize=1)
def detect_gpus() -> Detected:
    """The GPUs of this machine (see the module's docstring), looked up once per process.

    Tests replace this function (``monkeypatch.setattr(_gpus, "detect_gpus", ...)``).
    """
    smi: str | None = None
    if ENV not in os.environ and shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(
                ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=False
            )
            smi = out.stdout if out.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            smi = None
    try:
        entries: list[str] | None = sorted(p.name for p in PROC_GPUS.iterdir())
    except OSError:
        entries = None
    return detect_from(os.environ, smi, entries)


@dataclass(frozen=True)
class GpuPlan:
    """Which GPU each worker process sees.

    ``devices`` empty and ``hide`` false: no GPUs, nothing changes (the default on a
    machine without GPUs). ``hide``: every worker gets ``CUDA_VISIBLE_DEVICES=""``.
    """

    devices: tuple[str, ...] = ()
    hide: bool = False
    source: str = "none"

    @property
    def active(self) -> bool:
        """Whether workers are started with a changed environment."""
        return bool(self.devices) or self.hide

    def visible(self, index: int) -> str | None:
        """``CUDA_VISIBLE_DEVICES`` for worker ``index`` (0-based); None: leave it alone."""
        if self.hide:
            return ""
        if not self.devices:
            return None
        return self.devices[index % len(self.devices)]

    def env(self, index: int, base: Mapping[str, str] | None = None) -> dict[str, str] | None:
        """The environment worker ``index`` is started with; None: the parent's, unchanged."""
        value = self.visible(index)
        if value is None:
            return None
        return {**(os.environ if base is None else base), ENV: value}

    def describe(self, n_workers: int) -> str | None:
        """``w1 GPU 0, w2 GPU 1``, or None when no GPU is involved."""
        if self.hide:
            return "none (workers.gpus: 0 hides them; CPU only)"
        if not self.devices:
            return None
        text = ", ".join(f"w{i + 1} GPU {self.visible(i)}" for i in range(n_workers))
        unused = self.devices[n_workers:]
        if unused:
            text += f" (GPU {', '.join(unused)} unused)"
        if n_workers > len(self.devices):
            text += " (shared round robin)"
        return text


def plan_gpus(setting: str | int | Sequence[int], detected: Detected) -> GpuPlan:
    """The GPU plan for ``workers.gpus`` on a machine showing ``detected``.

    Raises:
        ConfigError: a count or ids this machine does not show (path ``workers.gpus``).
    """
    seen = detected.ids
    if setting == "auto":
        return GpuPlan(seen, source=detected.source)
    if isinstance(setting, int):
        if setting == 0:
            return GpuPlan(hide=True, source=detected.source)
        if setting > len(seen):
            raise ConfigError(
                f"{_allowed(detected)}",
                path="workers.gpus",
                value=setting,
                has_value=True,
            )
        return GpuPlan(seen[:setting], source=detected.source)
    wanted = tuple(str(i) for i in setting)
    missing = [i for i in wanted if i not in seen]
    if missing:
        raise ConfigError(
            f"GPU {', '.join(missing)} not visible; {_allowed(detected)}",
            path="workers.gpus",
            value=list(setting),
            has_value=True,
        )
    return GpuPlan(tuple(dict.fromkeys(wanted)), source=detected.source)


def _allowed(detected: Detected) -> str:
    if not detected.ids:
        return (
            "this machine shows no GPU (CUDA_VISIBLE_DEVICES, nvidia-smi -L and "
            "/proc/driver/nvidia/gpus list none); allowed: auto or 0"
        )
    ids = ", ".join(detected.ids)
    return f"allowed: auto, 0 to {len(detected.ids)}, or ids among {ids} (from {detected.source})"


def plan_for(study_file: StudyFile) -> GpuPlan:
    """The GPU plan of a study file on this machine (raises like :func:`plan_gpus`,
    naming the file)."""
    try:
        return plan_gpus(study_file.config.workers.gpus, detect_gpus())
    except ConfigError as exc:
        raise study_file.attribute(exc) from None


def worker_count(study_file: StudyFile, requested: int | None = None) -> int:
    """How many local workers a run starts.

    ``--workers N`` (``requested``) wins, then ``workers.count`` when the study file (or a
    ``--set``) gives it; otherwise one per GPU the plan uses, and 1 without GPUs (and for
    the sklearn engine, which runs in one process).
    """
    if requested:
        return requested
    workers = study_file.config.workers
    one_process = study_file.config.search.engine == "sklearn"  # it cannot run in workers
    if "count" in workers.model_fields_set or workers.gpus == 0 or one_process:
        return workers.count
    return max(workers.count, len(plan_for(study_file).devices))


def apply_in_process(plan: GpuPlan) -> None:
    """A one-worker run in this process sees worker 1's GPU, when TensorFlow is not
    imported yet (afterwards its devices are fixed; set ``CUDA_VISIBLE_DEVICES`` before
    importing TensorFlow yourself)."""
    value = plan.visible(0)
    if value is not None and "tensorflow" not in sys.modules:
        os.environ[ENV] = value


def ray_num_gpus(setting: str | int | Sequence[int], n_workers: int, cluster_gpus: float) -> float:
    """GPUs to ask Ray for per worker (``num_gpus`` of each actor).

    ``auto`` uses the cluster's GPUs (``ray.cluster_resources().get("GPU", 0)``), a count
    that many; one GPU per worker when there are enough, else an equal fraction so that
    ``ceil(n_workers / gpus)`` workers share each GPU; ``0`` (or a cluster without GPUs
    under ``auto``) none. Ray sets ``CUDA_VISIBLE_DEVICES`` in each actor itself.

    Raises:
        ConfigError: a list of device ids (they name one machine's GPUs; Ray chooses).
    """
    if not isinstance(setting, (str, int)):
        raise ConfigError(
            "device ids name one machine's GPUs; on Ray give auto or a count of GPUs",
            path="workers.gpus",
            value=list(setting),
            has_value=True,
        )
    gpus = math.floor(cluster_gpus) if setting == "auto" else int(setting)
    if gpus <= 0 or n_workers <= 0:
        return 0.0
    return 1.0 / math.ceil(n_workers / gpus)
