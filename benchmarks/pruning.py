"""Pruning: epochs and wall time the same sampler spends with and without a pruner to reach
the same best validation accuracy (within 0.1 percentage points).

    python benchmarks/pruning.py [--n-trials 40] [--pruners none,hyperband,median]
        [--storage URL] [--mnist PATH] [--quick]

Each pruner runs one study of ``--n-trials`` trials with TPE (seed 0) over the MLP space of
the time-to-accuracy benchmark (``MLP_SPACE`` in ``_common.py``: up to 20 epochs, early
stopping with patience 3), one after the other. The target is the unpruned run's best
validation accuracy minus 0.1 pp; for every run the table gives the epochs (the sum of the
trials' ``epochs_run``, pruned trials included) and the wall time spent until its best
first reached the target, and in total. ``--quick`` runs it on digits in seconds to keep
the script working and never writes BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    MLP_SPACE,
    SHARED_MNIST,
    data_section,
    pct,
    run_stamp,
    secs,
    sqlite_in,
    study_file,
    table,
    warm_up,
    write_section,
)

import hpsearch  # noqa: E402
from hpsearch.study import TrialRecord  # noqa: E402

TOLERANCE = 0.001  # 0.1 percentage points


def run(raw: dict[str, Any], folder: Path, storage: str) -> dict[str, Any]:
    """Run one study; per finished trial: elapsed seconds, epochs so far, best so far."""
    sf = study_file(raw, folder, storage)
    t0 = dt.datetime.now()  # Optuna stores naive local times
    start = time.perf_counter()
    study = hpsearch.run(sf)
    wall = time.perf_counter() - start
    states = {"COMPLETE": 0, "PRUNED": 0, "FAIL": 0}
    steps = []  # (elapsed, cumulative epochs, best so far)
    epochs, best = 0, None
    for trial in sorted(study.trials, key=lambda t: t.number):
        if trial.datetime_complete is None:
            continue
        states[trial.state.name] = states.get(trial.state.name, 0) + 1
        epochs += int(TrialRecord.from_trial(trial).epochs_run or 0)
        if trial.state.name == "COMPLETE" and trial.value is not None:
            best = trial.value if best is None else max(best, trial.value)
        steps.append(((trial.datetime_complete - t0).total_seconds(), epochs, best))
    return {"wall": wall, "epochs": epochs, "best": best, "states": states, "steps": steps}


def reached(result: dict[str, Any], target: float) -> tuple[float, int] | None:
    """(seconds, epochs) when the run's best first reached ``target``."""
    for seconds, epochs, best in result["steps"]:
        if best is not None and best >= target:
            return seconds, epochs
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-trials", type=int, default=40)
    parser.add_argument("--pruners", default="none,hyperband,median")
    parser.add_argument("--storage", default="sqlite:///benchmarks/results.db")
    parser.add_argument("--mnist", default=str(SHARED_MNIST))
    parser.add_argument("--quick", action="store_true", help="digits, 5 trials: a smoke run")
    args = parser.parse_args()
    pruners = [p.strip() for p in args.pruners.split(",") if p.strip()]
    if "none" not in pruners:
        parser.error("--pruners: include none (the reference run)")
    pruners = ["none", *[p for p in pruners if p != "none"]]
    n_trials = min(args.n_trials, 5) if args.quick else args.n_trials
    space = dict(MLP_SPACE)
    if args.quick:
        space["epochs"] = 8

    stamp = run_stamp() + ("_quick" if args.quick else "")
    results = {}
    with tempfile.TemporaryDirectory(prefix="hpsearch-pruning-") as tmp:
        folder = Path(tmp)
        for i, pruner in enumerate(pruners):
            raw = {
                "name": f"pruning_{stamp}_{pruner}",
                "data": data_section(args.quick, args.mnist),
                "model": {"family": "mlp"},
                "space": space,
                "search": {"sampler": "tpe", "pruner": pruner, "n_trials": n_trials, "seed": 0},
            }
            if i == 0:
                warm_up(raw, folder, sqlite_in(folder, "warmup.db"))
            results[pruner] = run(raw, folder, args.storage)

    reference = results["none"]
    if reference["best"] is None:
        raise SystemExit("the unpruned run has no COMPLETE trial")
    target = reference["best"] - TOLERANCE
    ref_hit = reached(reference, target)
    rows = []
    for pruner, result in results.items():
        hit = reached(result, target)
        states = result["states"]
        rows.append(
            [
                pruner,
                f"{states['COMPLETE']}/{states['PRUNED']}/{states['FAIL']}",
                str(result["epochs"]),
                f"{result['wall']:.0f}",
                pct(result["best"]),
                "yes" if hit else "no",
                str(hit[1]) if hit else "—",
                secs(hit[0]) if hit else "—",
                f"{hit[1] / ref_hit[1]:.2f}" if hit and ref_hit else "—",
                f"{hit[0] / ref_hit[0]:.2f}" if hit and ref_hit else "—",
            ]
        )
    body = table(
        [
            "pruner",
            "complete/pruned/failed",
            "epochs",
            "wall s",
            "best val acc",
            "reached target",
            "epochs to target",
            "time to target",
            "epochs vs none",
            "time vs none",
        ],
        rows,
    )
    body += (
        f"\n\n{n_trials} trials per run, TPE seed 0, MLP space with up to {space['epochs']} "
        f"epochs and early stopping (patience {space['patience']}). Target: the unpruned "
        f"run's best validation accuracy minus 0.1 pp = **{pct(target)}**. Epochs and times "
        "to target count every trial up to the one whose result first reached it; "
        "`epochs` and `wall s` are the whole run's."
    )
    print(body)
    if not args.quick:
        write_section("pruning", "Pruning: epochs and time to the same best accuracy", body)


if __name__ == "__main__":
    main()
