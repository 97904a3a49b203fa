"""Bookkeeping cost per trial: hpsearch's trial loop with a trivial objective (no Keras),
on in-memory, SQLite, journal-file and PostgreSQL storage, at 100 and 1,000 trials.

    python benchmarks/bookkeeping.py [--trials 1000] [--storages memory,sqlite,journal,postgresql]
        [--sampler tpe|random]
    python benchmarks/bookkeeping.py --quick      # 30 trials, memory and sqlite; no BENCHMARKS.md

The loop is the real one (``hpsearch.engines.work``: queued budget slots,
heartbeats, budget checks, progress, the best value after each trial) and the
trivial objective writes what a real trial writes: the MNIST MLP space's params
sampled by TPE, one intermediate value per epoch (3 epochs), the final metrics,
``history``, ``seed``, ``worker``, ``train_seconds``. Only the training is gone.
Per-trial cost is the median over a window of 20 trials ending at trial 100 and at
trial 1,000 (from the trials' start and end times in the storage).

``--sampler random`` leaves TPE's own work out (it fits its densities on every finished
trial), so what remains is hpsearch's loop and the storage; it writes its own section.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import MLP_SPACE, table, write_section  # noqa: E402

POSTGRES = "postgresql://127.0.0.1:5432/test"
EPOCHS = 3


def make_trivial(study_file: Any, progress: Any) -> Any:
    """A trial that samples and stores like a real one and trains nothing (``work``'s
    ``evaluate``: the queue, seed and heartbeat around it are the real ones)."""
    import random

    from hpsearch.storage import set_user_attrs
    from hpsearch.study import TrialRecord

    def trivial(trial: Any) -> float:
        params = study_file.space.suggest(trial)
        progress.trial_started(trial.number, params)
        history: dict[str, list[float]] = {"val_accuracy": [], "val_loss": []}
        for epoch in range(1, EPOCHS + 1):
            acc = random.random()
            history["val_accuracy"].append(acc)
            history["val_loss"].append(1 - acc)
            trial.report(acc, epoch)
            progress.epoch(trial.number, epoch, EPOCHS, {"val_accuracy": acc})
        final = TrialRecord(
            metrics={key: values[-1] for key, values in history.items()},
            param_count=1000,
            epochs_run=EPOCHS,
            train_seconds=0.0,
            history=history,
        )
        set_user_attrs(trial, final.to_attrs())  # as the real trial writes them
        return history["val_accuracy"][-1]

    return trivial


def one_run(storage: str, n_trials: int, folder: Path, sampler: str = "tpe") -> dict[str, float]:
    import optuna

    from hpsearch.engines import Progress, create_or_join, top_up, work
    from hpsearch.search import make_pruner, make_sampler
    from hpsearch.storage import open_storage
    from hpsearch.study import study_from_dict

    name = f"bookkeeping_{storage}_{time.time_ns()}"
    url = {
        "memory": None,
        "sqlite": f"sqlite:///{folder / 'bk.db'}",
        "journal": f"journal:///{folder / 'bk.log'}",
        "postgresql": POSTGRES,
    }[storage]
    raw = {
        "name": name,
        "data": {"name": "digits"},
        "space": {**MLP_SPACE, "epochs": EPOCHS},
        "search": {"sampler": sampler, "pruner": "none", "n_trials": n_trials, "seed": 0},
        "export": {"keep": "none"},
    }
    if url:
        raw["storage"] = url

    sf = study_from_dict(raw)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    backend = optuna.storages.InMemoryStorage() if url is None else open_storage(url)
    sampler = make_sampler(sf.config.search, sf.space, 1)
    pruner = make_pruner(sf.config.search, EPOCHS, 1)
    study, _ = create_or_join(sf, backend, sampler, pruner, {})
    top_up(study, n_trials)
    progress = Progress("val_accuracy", n_trials, quiet=True)
    start = time.perf_counter()
    work(
        study,
        sf,
        None,  # type: ignore[arg-type]  # the trivial objective needs no data
        progress,
        limit=n_trials,
        evaluate=make_trivial(sf, progress),
    )
    total = time.perf_counter() - start
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    ends = [t.datetime_complete for t in trials]
    gaps = [(b - a).total_seconds() * 1000 for a, b in zip(ends, ends[1:], strict=False)]

    def window(at: int) -> float:
        part = gaps[max(0, at - 21) : at - 1]
        return statistics.median(part) if part else float("nan")

    if storage == "postgresql":
        optuna.delete_study(study_name=name, storage=backend)
    return {
        "total": total,
        "at_100": window(min(100, n_trials)),
        "at_end": window(n_trials),
        "mean": 1000 * total / n_trials,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--storages", default="memory,sqlite,journal,postgresql")
    parser.add_argument("--sampler", choices=("tpe", "random"), default="tpe")
    parser.add_argument("--quick", action="store_true", help="30 trials, memory and sqlite")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.storages = 30, "memory,sqlite"

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for storage in args.storages.split(","):
            r = one_run(storage, args.trials, Path(tmp), args.sampler)
            rows.append(
                [
                    storage,
                    str(args.trials),
                    f"{r['at_100']:.1f}",
                    f"{r['at_end']:.1f}",
                    f"{r['at_end'] / r['at_100']:.1f}x",
                    f"{r['mean']:.1f}",
                    f"{r['total']:.1f}",
                ]
            )
            print(" | ".join(rows[-1]), flush=True)
    header = [
        "storage",
        "trials",
        "ms/trial at 100",
        f"ms/trial at {args.trials}",
        "growth",
        "mean ms/trial",
        "total s",
    ]
    text = table(header, rows)
    print(text)
    if not args.quick:
        if args.sampler == "tpe":
            write_section("bookkeeping", "Bookkeeping cost per trial (no Keras)", text + NOTE)
        else:
            write_section(
                f"bookkeeping_{args.sampler}",
                f"Bookkeeping cost per trial without TPE ({args.sampler} sampler, no Keras)",
                text + NOTE,
            )


NOTE = """

ms/trial: the median gap between consecutive trials' end times over the 20 trials
before trial 100 and before the last trial. TPE's own cost grows with the number of
finished trials (it fits its densities on all of them; its log of the normal CDF is
`scipy.special.log_ndtr`, see `hpsearch.search.use_fast_tpe_math`); the storages add
their write latency: SQLite in WAL mode with `synchronous=NORMAL` (no fsync per commit,
but a transaction and an SQLAlchemy session per write), PostgreSQL through a socket. On
SQLite and PostgreSQL, each read of the study re-reads its unfinished trials (the running one
and the queued budget slots): three reads per trial, since TPE samples from the trial's cached
read when no other trial is running (`hpsearch.search.tpe_sampler_class`).
"""


if __name__ == "__main__":
    main()
