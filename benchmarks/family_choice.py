"""MLP or CNN as a hyperparameter: a joint MLP-or-CNN search (studies/mnist_joint.yaml)
against the CNN-only search (studies/mnist_cnn.yaml) on MNIST, side by side.

    python benchmarks/family_choice.py [--budget SECONDS] [--target 0.992] [--storage URL]
        [--mnist PATH] [--log-dir DIR] [--quick]

The two study files run as they are shipped (their spaces, their TPE sampler with 5
start-up trials, their Hyperband pruner, their enqueued first trials: tutorial B's CNN in
both, and tutorial A's MLP in the joint study), each in its own process started at the same
time, each with ``workers.threads: 1`` (one TensorFlow thread: one of the machine's 2
cores each), ``search.timeout`` = the budget and ``search.n_trials`` too large to matter.
hpsearch starts no trial after the timeout but finishes a running one: a result counts only
if its trial finished within the budget (from the moment both processes were started, so
TensorFlow's import and the data loading count).

From the storage it reports, per study: the best validation accuracy of the COMPLETE
trials finished by 5, 10, 20, 30, 45 and 60 minutes (the same fractions of another
budget), when it first reached ``--target`` and its trials (complete/pruned/failed); per
family of the joint study: its trials, the wall time they took and its best; and whether
TPE learns to prefer the CNN: the share of CNN trials among the joint study's trials started in each
quarter of the budget, the 5 start-up trials (2 enqueued, 3 random) left out.

``--quick`` runs both for 25 s on digits (2 epochs a trial) to keep the script working
and never writes BENCHMARKS.md; without it the section "MLP or CNN as a hyperparameter"
of BENCHMARKS.md is replaced. ``--log-dir`` keeps each study's progress lines
(``joint.log``, ``cnn.log``; default: a temporary folder, removed at the end).
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, SHARED_MNIST, pct, run_stamp, secs, table, write_section  # noqa: E402

STUDIES = {"joint": ROOT / "studies/mnist_joint.yaml", "cnn": ROOT / "studies/mnist_cnn.yaml"}
LABELS = {"joint": "MLP or CNN (mnist_joint)", "cnn": "CNN only (mnist_cnn)"}
MILESTONES = (5, 10, 20, 30, 45, 60)  # minutes of a one-hour budget
N_STARTUP = 5  # both files' TPE n_startup_trials (the enqueued trials among them)
QUICK_BUDGET = 25.0
QUICK_EPOCHS = 2


def overrides(key: str, args: argparse.Namespace, name: str) -> list[str]:
    """The ``--set`` overrides of one study: name, budget, one thread, the data."""
    out = [
        f"name={name}",
        f"search.timeout={args.budget}",
        "search.n_trials=100000",
        "workers.threads=1",
        "export.keep=none",  # no model files: the benchmark reads only the storage
    ]
    if args.quick:
        out += ["data.name=digits", "data.validation=0.2"]
        epochs = ["space.epochs"] if key == "cnn" else ["space.mlp.epochs", "space.cnn.epochs"]
        out += [f"{e}={QUICK_EPOCHS}" for e in epochs]
    else:
        out.append(f"data.path={Path(args.mnist).resolve()}")
    return out


def child(args: argparse.Namespace) -> None:
    """One study, in this process (started by :func:`main`)."""
    import hpsearch

    key = args.child
    sf = hpsearch.load_study_file(
        STUDIES[key], overrides(key, args, args.name), storage=args.storage
    )
    hpsearch.run(sf)


def launch(args: argparse.Namespace, names: dict[str, str], logs: Path) -> dt.datetime:
    """Start both studies at once, each in its own process; wait for both."""
    from hpsearch.storage import open_storage

    open_storage(args.storage)  # create the database once, before two processes race
    t0 = dt.datetime.now()  # Optuna stores naive local times
    print(f"started at {t0.isoformat()} (local time; --report-only needs it)", flush=True)
    procs = {}
    for key, name in names.items():
        cmd = [sys.executable, __file__, "--child", key, "--name", name]
        cmd += ["--storage", args.storage, "--budget", str(args.budget), "--mnist", args.mnist]
        cmd += ["--quick"] if args.quick else []
        log = (logs / f"{key}.log").open("w")
        procs[key] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log)
        print(f"{LABELS[key]}: study {name}, log {logs / f'{key}.log'}", flush=True)
    failed = []
    for key, (proc, log) in procs.items():
        if proc.wait() != 0:
            failed.append(key)
        log.close()
    if failed:
        tails = {k: (logs / f"{k}.log").read_text()[-2000:] for k in failed}
        raise SystemExit(f"study process(es) failed: {failed}\n{tails}")
    return t0


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def analyse(study: Any, t0: dt.datetime, budget: float, target: float) -> dict[str, Any]:
    """What the tables need from one stored study."""
    trials = sorted(study.trials, key=lambda t: t.number)
    rows = []
    for t in trials:
        start = (t.datetime_start - t0).total_seconds() if t.datetime_start else None
        end = (t.datetime_complete - t0).total_seconds() if t.datetime_complete else None
        value = t.value if t.state.name == "COMPLETE" else None
        rows.append(
            {
                "number": t.number,
                "family": str(t.params.get("family", "cnn")),
                "state": t.state.name,
                "start": start,
                "end": end,
                "value": value,
                # wall time from start to end: a pruned trial records no train_seconds
                "seconds": (end - start) if start is not None and end is not None else 0.0,
            }
        )
    done = [r for r in rows if r["end"] is not None and r["end"] <= budget]
    scored = sorted((r for r in done if r["value"] is not None), key=lambda r: r["end"])

    def best_by(seconds: float, family: str | None = None) -> float | None:
        values = [
            r["value"]
            for r in scored
            if r["end"] <= seconds and (family is None or r["family"] == family)
        ]
        return max(values) if values else None

    hit = next((r for r in _running_best(scored) if r[1] >= target), None)
    return {"rows": rows, "done": done, "best_by": best_by, "hit": hit}


def _running_best(scored: list[dict[str, Any]]) -> list[tuple[float, float]]:
    best, out = None, []
    for r in scored:
        best = r["value"] if best is None else max(best, r["value"])
        out.append((r["end"], best))
    return out


def counts(rows: list[dict[str, Any]]) -> str:
    n = {s: sum(r["state"] == s for r in rows) for s in ("COMPLETE", "PRUNED", "FAIL")}
    return f"{n['COMPLETE']}/{n['PRUNED']}/{n['FAIL']}"


def report(results: dict[str, dict[str, Any]], budget: float, target: float) -> str:
    marks = [budget * m / 60 for m in MILESTONES]
    mark_names = [_minutes(s) if budget >= 600 else secs(s) for s in marks]
    header = ["study", "trials", "complete/pruned/failed"]
    header += [f"best at {m}" for m in mark_names] + [f"time to {pct(target, 1)}"]
    rows = []
    for key, res in results.items():
        hit = res["hit"]
        rows.append(
            [
                LABELS[key],
                str(len(res["done"])),
                counts(res["done"]),
                *[pct(res["best_by"](s)) for s in marks],
                (_minutes(hit[0]) if budget >= 600 else secs(hit[0])) if hit else "not reached",
            ]
        )
    body = table(header, rows)

    joint = results["joint"]
    fam_rows = []
    for family in ("mlp", "cnn"):
        mine = [r for r in joint["done"] if r["family"] == family]
        seconds = sum(r["seconds"] for r in mine)
        fam_rows.append(
            [
                family,
                str(len(mine)),
                counts(mine),
                f"{seconds / 60:.1f} min",
                pct(joint["best_by"](budget, family)),
            ]
        )
    body += "\n\nThe joint study's trials by family (finished within the budget):\n\n"
    body += table(
        ["family", "trials", "complete/pruned/failed", "time in its trials", "best val acc"],
        fam_rows,
    )

    # whether TPE learns to prefer the CNN: the trials it chose, per quarter of the budget
    chosen = [r for r in joint["rows"] if r["number"] >= N_STARTUP and r["start"] is not None]
    quarter_rows = []
    for q in range(4):
        lo, hi = budget * q / 4, budget * (q + 1) / 4
        mine = [r for r in chosen if lo <= r["start"] < hi]
        cnn = sum(r["family"] == "cnn" for r in mine)
        span = f"{lo / 60:.0f}-{hi / 60:.0f} min" if budget >= 600 else f"{lo:.0f}-{hi:.0f} s"
        quarter_rows.append(
            [
                span,
                str(len(mine)),
                str(cnn),
                str(len(mine) - cnn),
                pct(cnn / len(mine), 0) if mine else "—",
            ]
        )
    late = [r for r in chosen if r["start"] < budget]
    cnn = sum(r["family"] == "cnn" for r in late)
    quarter_rows.append(
        [
            "**all**",
            str(len(late)),
            str(cnn),
            str(len(late) - cnn),
            pct(cnn / len(late), 0) if late else "—",
        ]
    )
    body += (
        f"\n\nThe family TPE chose in the joint study: trials started in each quarter of the "
        f"budget, the {N_STARTUP} start-up trials (2 enqueued, 3 random) left out:\n\n"
    )
    body += table(["started", "trials", "cnn", "mlp", "cnn share"], quarter_rows)
    return body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=float, default=3600.0, help="seconds per study")
    parser.add_argument("--target", type=float, default=None, help="default 0.992 (quick 0.9)")
    parser.add_argument("--storage", default="sqlite:///benchmarks/results.db")
    parser.add_argument("--mnist", default=str(SHARED_MNIST))
    parser.add_argument("--log-dir", default=None)
    parser.add_argument("--quick", action="store_true", help="digits, 25 s each: a smoke run")
    parser.add_argument(
        "--report-only",
        metavar="STAMP",
        help="run nothing: report the studies family_choice_STAMP_{joint,cnn} (with --t0)",
    )
    parser.add_argument("--t0", help="with --report-only: the start, as printed by the run")
    parser.add_argument("--child", choices=sorted(STUDIES), help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.quick:
        args.budget = min(args.budget, QUICK_BUDGET)
    target = args.target if args.target is not None else (0.9 if args.quick else 0.992)

    import optuna

    stamp = args.report_only or run_stamp() + ("_quick" if args.quick else "")
    names = {key: f"family_choice_{stamp}_{key}" for key in STUDIES}
    if args.report_only:
        if not args.t0:
            parser.error("--report-only needs --t0 (printed by the run: 'started at ...')")
        t0 = dt.datetime.fromisoformat(args.t0)
    else:
        with tempfile.TemporaryDirectory(prefix="hpsearch-family-") as tmp:
            logs = Path(args.log_dir or tmp)
            logs.mkdir(parents=True, exist_ok=True)
            t0 = launch(args, names, logs)
    results = {
        key: analyse(
            optuna.load_study(study_name=name, storage=args.storage), t0, args.budget, target
        )
        for key, name in names.items()
    }
    body = report(results, args.budget, target)
    body += (
        f"\n\nBoth studies ran at the same time for {args.budget:.0f} s each, one process and "
        "one TensorFlow thread each, as shipped but for the budget (`search.timeout`; "
        f"studies {names['joint']} and {names['cnn']} in the storage). A trial counts if it "
        "finished within the budget, timed from the start of both processes; best = the "
        "best validation accuracy of the COMPLETE trials by then."
    )
    if args.report_only:
        body += (
            f"\n\nRe-reported from the storage (the command above) of the run started at "
            f"{t0:%Y-%m-%d %H:%M} by `python benchmarks/family_choice.py --budget "
            f"{args.budget:.0f} --mnist {args.mnist}`."
        )
    print(body)
    if not args.quick:
        write_section("family_choice", "MLP or CNN as a hyperparameter", body)


if __name__ == "__main__":
    main()
