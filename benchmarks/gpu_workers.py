"""One worker per GPU against one worker: trials per hour of the MNIST CNN study.

    python benchmarks/gpu_workers.py [--trials 24] [--epochs 5] [--mnist PATH]

Needs a machine with NVIDIA GPUs (found as hpsearch finds them: CUDA_VISIBLE_DEVICES,
``nvidia-smi -L`` or /proc/driver/nvidia/gpus) and TensorFlow built with CUDA
(``pip install 'tensorflow[and-cuda]'`` in place of tensorflow-cpu). Without a GPU it
prints one line and exits with code 1, running and writing nothing.

It runs ``studies/mnist_cnn.yaml`` twice on fresh SQLite files with the same budget:
with one worker on the first GPU (``--workers 1 --set workers.gpus=[ID]``), then with
one worker per GPU (``workers.gpus: auto``, the default), and records both trials per
hour in the "GPU workers" section of BENCHMARKS.md. Epochs are capped (``--epochs``) so
that a run takes minutes; the study's sampler, pruner and space are kept, so the two
runs train different networks and one run's figure is not a repeatable measurement of
a fixed workload: use a few dozen trials. ``--mnist`` is a local copy of MNIST in Keras'
layout (default ../shared/data/mnist.npz when it exists, else Keras downloads it).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, SHARED_MNIST, run_stamp, table, write_section  # noqa: E402

STUDY = ROOT / "studies" / "mnist_cnn.yaml"
NO_GPU = (
    "gpu_workers.py: no GPU visible (CUDA_VISIBLE_DEVICES, nvidia-smi -L and "
    "/proc/driver/nvidia/gpus show none); nothing run, BENCHMARKS.md unchanged"
)


def one_run(gpus: str, workers: int, args: argparse.Namespace) -> dict[str, Any]:
    """Run the study once; return its counts and timings."""
    import optuna
    from optuna.trial import TrialState

    with tempfile.TemporaryDirectory(prefix="hpsearch-gpu-") as tmp:
        name = f"gpu_workers_{workers}_{run_stamp()}"
        url = f"sqlite:///{tmp}/runs.db"
        sets = [
            f"name={name}",
            f"search.n_trials={args.trials}",
            f"space.epochs={args.epochs}",
            f"workers.gpus={gpus}",
            "export.keep=none",
        ]
        if args.mnist:
            sets.append(f"data.path={Path(args.mnist).resolve()}")
        command = [sys.executable, "-m", "hpsearch", "run", str(STUDY), "--storage", url]
        command += ["--workers", str(workers), "-q"]
        for item in sets:
            command += ["--set", item]
        start = time.perf_counter()
        out = subprocess.run(command, capture_output=True, text=True, cwd=tmp, timeout=24 * 3600)
        wall = time.perf_counter() - start
        if out.returncode != 0:
            raise SystemExit(f"run failed ({out.returncode}): {out.stderr[-2000:]}")
        trials = optuna.load_study(study_name=name, storage=url).get_trials()
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    best = max((t.values[0] for t in trials if t.state == TrialState.COMPLETE), default=None)
    first = min(t.datetime_start for t in finished if t.datetime_start)
    last = max(t.datetime_complete for t in finished if t.datetime_complete)
    return {
        "finished": len(finished),
        "pruned": sum(t.state == TrialState.PRUNED for t in trials),
        "wall": wall,
        "span": (last - first).total_seconds(),
        "best": best,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=24, help="budget of each run")
    parser.add_argument("--epochs", type=int, default=5, help="most epochs per trial")
    parser.add_argument("--mnist", default=str(SHARED_MNIST) if SHARED_MNIST.exists() else None)
    args = parser.parse_args()
    from hpsearch.engines import detect_gpus

    found = detect_gpus()
    if not found.ids:
        print(NO_GPU, file=sys.stderr)
        return 1
    print(f"GPUs {', '.join(found.ids)} (from {found.source})", flush=True)
    runs = [("one worker", f"[{found.ids[0]}]", 1), ("one per GPU", "auto", len(found.ids))]
    rows, base = [], None
    for label, gpus, workers in runs:
        r = one_run(gpus, workers, args)
        per_hour = 3600 * r["finished"] / r["wall"]
        base = base or per_hour
        best = "-" if r["best"] is None else f"{r['best']:.4f}"
        rows.append(
            [
                label,
                str(workers),
                str(r["finished"]),
                str(r["pruned"]),
                f"{r['wall']:.0f}",
                f"{per_hour:.0f}",
                f"{per_hour / base:.2f}x",
                f"{3600 * r['finished'] / r['span']:.0f}",
                best,
            ]
        )
        print(" | ".join(rows[-1]), flush=True)
    header = ["run", "workers", "trials", "pruned", "wall s", "trials/hour", "vs one"]
    header += ["trials/hour (trials only)", "best val_accuracy"]
    text = table(header, rows)
    print(text)
    gpus_text = f"{len(found.ids)} GPU(s): {', '.join(found.ids)} (from {found.source})"
    write_section(
        "gpu_workers",
        "GPU workers: one worker per GPU against one worker (MNIST CNN)",
        f"{gpus_text}; {args.trials} trials of up to {args.epochs} epochs per run.\n\n"
        + text
        + "\n\n"
        + EXPLANATION,
    )
    return 0


EXPLANATION = """\
`trials` counts finished trials (complete and pruned): the study's Hyperband pruner
stops poor ones early, and both runs share one budget size. `trials/hour` counts the
whole command (each worker's TensorFlow import and data loading included); the
"trials only" column the span from the first trial's start to the last one's end.
Each worker sees only its own GPU (CUDA_VISIBLE_DEVICES) with memory growth on.
"""


if __name__ == "__main__":
    sys.exit(main())
