"""Tutorial B's optimizer grid (GridSearchCV, cv=4, 1 epoch, batch 64) on full MNIST,
through hpsearch's scikit-learn engine, beside the tutorial's own table.

    python benchmarks/tutorial_b_grid.py [--storage URL] [--mnist PATH] [--quick]

``--quick`` runs it on digits (seconds) to keep the script working.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, SHARED_MNIST, table, write_section  # noqa: E402

import hpsearch  # noqa: E402
from hpsearch.study import RefitRecord, SklearnSummary, StudyMeta, TrialRecord  # noqa: E402

TUTORIAL = {  # optimizer: (mean, std) from ../shared/SEEDS.md
    "sgd": (0.8741, 0.0059),
    "rmsprop": (0.9539, 0.0039),
    "adam": (0.9550, 0.0029),
    "adamax": (0.9459, 0.0030),
    "nadam": (0.9570, 0.0019),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--storage", default="sqlite:///benchmarks/results.db")
    parser.add_argument("--mnist", default=str(SHARED_MNIST))
    parser.add_argument("--quick", action="store_true", help="digits, 2 folds: a smoke run")
    args = parser.parse_args()

    overrides = [f"data.path={Path(args.mnist).resolve()}"]
    name = "tutorial_b_optimizers"
    if args.quick:
        overrides = ["data.name=digits", "data.validation=0.2", "search.cv=2"]
        name += "_quick"
    overrides.append(f"name={name}")
    study_file = hpsearch.load_study_file(
        ROOT / "studies" / "tutorial_b_optimizers.yaml", overrides, storage=args.storage
    )
    start = time.perf_counter()
    study = hpsearch.run(study_file)
    wall = time.perf_counter() - start

    rows = []
    for trial in sorted(study.trials, key=lambda t: list(TUTORIAL).index(t.params["optimizer"])):
        opt = trial.params["optimizer"]
        ref_mean, ref_std = TUTORIAL[opt]
        rows.append(
            [
                opt,
                f"{trial.value:.4f}",
                f"{TrialRecord.from_trial(trial).std_test_score:.4f}",
                f"{ref_mean:.4f}",
                f"{ref_std:.4f}",
                f"{trial.value - ref_mean:+.4f}",
                f"{TrialRecord.from_trial(trial).mean_fit_time:.1f}",
            ]
        )
    refit = RefitRecord.of(study)
    meta = SklearnSummary.of(study) or SklearnSummary()
    data = StudyMeta.of(study).data
    body = table(
        [
            "optimizer",
            "mean CV acc",
            "std",
            "tutorial mean",
            "tutorial std",
            "difference",
            "fit s/fold",
        ],
        rows,
    )
    body += (
        f"\n\nBest: **{study.best_trial.params['optimizer']}** "
        f"({study.best_value:.4f}); refit on all {data['train']} training images: "
        f"validation accuracy {refit.val_accuracy if refit else float('nan'):.4f} on "
        f"{data['validation']} held-out images. Search time {meta.seconds:.0f} s "
        f"({len(study.trials)} candidates x {meta.cv} folds), this command's wall time "
        f"{wall:.0f} s (a resumed or finished study only reports)."
    )
    print(body)
    if not args.quick:
        write_section("tutorial_b", "Tutorial B optimizer grid (scikit-learn engine)", body)


if __name__ == "__main__":
    main()
