"""Which task a study is (classification or regression), and a regression's target.

``task: auto`` (the default) is decided before anything runs, from what the data set
says (``diabetes`` and ``california_housing`` are regressions, ``digits`` and ``wine``
classifications) or, for a user's ``csv``/``npz``/arrays, from its target: text is a
classification; numbers that are not all whole are a regression; whole numbers are class
labels when there are few distinct ones (at most 20, or at most 1000 making up at most
5 % of the samples, 10 % up to 1000 samples: AutoGluon's rule), else a regression (prices,
counts, ages).
``task: regression`` or ``task: classification`` says it outright.

A regression's target may be standardized for training (``data.standardize_target``):
the network learns ``(y - mean) / std`` of the training targets; the metrics hpsearch
reports (``val_mae``, ``val_rmse``, the card's MAE, RMSE and R²) are in the target's own
units, and the exported model ends in a fixed layer that undoes the scaling.
No TensorFlow here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hpsearch.exceptions import ConfigError

__all__ = [
    "CLASSIFICATION",
    "REGRESSION",
    "infer_task",
    "regression_target",
    "target_scaling",
]

CLASSIFICATION = "classification"
REGRESSION = "regression"


# whole-number targets are class labels up to this many distinct values, whatever the
# number of samples; above it, up to CLASS_LIMIT values making up at most CLASS_RATIO of
# the samples (SMALL_CLASS_RATIO up to SMALL samples): AutoGluon's rule for integer targets
FEW_CLASSES = 20
CLASS_LIMIT = 1000
CLASS_RATIO = 0.05
SMALL = 1000
SMALL_CLASS_RATIO = 0.1


def infer_task(y: Any) -> str:
    """``regression`` for numbers that are not all whole, or whole numbers with too many
    distinct values to be class labels; else ``classification``.

    >>> infer_task(np.array([1.5, 2.0])), infer_task(np.array([1.0, 2.0])), infer_task([3, 1])
    ('regression', 'classification', 'classification')
    >>> infer_task(np.array(["2.5", "3.25"]))  # a CSV column read as text
    'regression'
    >>> infer_task(np.arange(1000) % 10), infer_task(np.arange(1000) * 1000)  # digits, prices
    ('classification', 'regression')
    >>> infer_task(np.array(["cat", "dog"]))
    'classification'
    """
    y = np.asarray(y).reshape(-1)
    if y.dtype.kind in "USO":
        try:
            y = y.astype("float64")
        except ValueError:
            return CLASSIFICATION
    if y.dtype.kind not in "fiu" or y.size == 0:
        return CLASSIFICATION
    finite = y[np.isfinite(y)] if y.dtype.kind == "f" else y
    if not finite.size:
        return CLASSIFICATION
    if y.dtype.kind == "f" and np.any(finite != np.round(finite)):
        return REGRESSION
    distinct = np.unique(finite).size
    ratio = SMALL_CLASS_RATIO if finite.size <= SMALL else CLASS_RATIO
    if distinct <= FEW_CLASSES or (distinct <= CLASS_LIMIT and distinct <= ratio * finite.size):
        return CLASSIFICATION
    return REGRESSION


def regression_target(y: Any, *, path: str, value: Any) -> np.ndarray:
    """``y`` as float32 numbers; a one-line error for text that is not a number, or
    for NaN or infinite targets (a regression needs a number for every sample)."""
    y = np.asarray(y).reshape(-1)
    try:
        out = y.astype("float64")
    except (ValueError, TypeError):
        bad = next((v for v in y.tolist() if not _is_number(v)), y[0] if y.size else None)
        raise ConfigError(
            f"a regression target must be numeric; found {str(bad)[:40]!r}",
            path=path,
            value=value,
            has_value=True,
        ) from None
    if not np.all(np.isfinite(out)):
        raise ConfigError(
            f"a regression target must be finite; {int(np.sum(~np.isfinite(out)))} values "
            "are NaN or infinite",
            path=path,
            value=value,
            has_value=True,
        )
    return out.astype("float32")


def _is_number(v: Any) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def target_scaling(y_train: np.ndarray) -> dict[str, float]:
    """The mean and standard deviation of the training targets (std 1 for a constant).

    >>> target_scaling(np.array([1.0, 3.0]))
    {'mean': 2.0, 'std': 1.0}
    """
    mean = float(np.mean(y_train, dtype="float64"))
    std = float(np.std(y_train, dtype="float64")) or 1.0
    return {"mean": mean, "std": std}


def peek_target(name: str, path: Path, label_column: str) -> np.ndarray | None:
    """The target of a user's ``csv`` (its label column, as text) or ``npz`` (``y_train``),
    read without the features, to decide ``task: auto``; None if it cannot be read (the
    loader's own error says why when the run loads it)."""
    try:
        if name == "npz":
            with np.load(path, allow_pickle=False) as f:
                return np.asarray(f["y_train"]) if "y_train" in f.files else None
        if name == "csv":
            from hpsearch.data._table import csv_rows

            reader = csv_rows(path)
            header = next(reader, None)
            if not header or label_column not in header:
                return None
            col = header.index(label_column)
            return np.asarray([row[col] for row in reader if len(row) > col])
    except Exception:  # whatever it is, the run's loading says it in one line
        return None
    return None
