"""Data sets by name, loaded once per process, scaled and split.

``digits``, ``wine`` (classification) and ``diabetes`` (regression) ship with
scikit-learn (offline); ``california_housing`` (regression) comes through
``keras.datasets`` or a local copy of Keras' file as ``data.path``; ``mnist``,
``fashion_mnist`` and ``cifar10`` come through ``keras.datasets`` (downloaded
and cached when online) or from a local ``.npz`` given as ``data.path``; ``npz``
and ``csv`` read a user's file. The test split is kept apart and never used for
selection: only export looks at it.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hpsearch.config._schema import DataConfig
from hpsearch.data._task import CLASSIFICATION, REGRESSION, regression_target, target_scaling
from hpsearch.exceptions import ConfigError

__all__ = ["DATASETS", "Dataset", "check_data_config", "load_dataset"]


@dataclass
class RawData:
    """Arrays as a loader returns them, before scaling and splitting."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    class_names: list[str] | None = None
    max_value: float | None = None


@dataclass
class Dataset:
    """Scaled, split arrays ready for Keras, and what is needed to reproduce them."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    class_names: list[str]
    scaling: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    task: str = CLASSIFICATION
    # regression with data.standardize_target: {"mean": ..., "std": ...} of the training
    # targets; y_train, y_val and y_test are then standardized, and the metrics scaled back
    target: dict[str, float] | None = None

    @property
    def regression(self) -> bool:
        """Whether the targets are numbers to predict (one linear output)."""
        return self.task == REGRESSION

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly description (stored on the study)."""
        return {
            "name": self.name,
            "train": int(len(self.x_train)),
            "validation": int(len(self.x_val)),
            "test": int(len(self.x_test)),
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "class_names": self.class_names,
            "scaling": {k: v for k, v in self.scaling.items() if k in ("kind", "value")},
            "fingerprint": self.fingerprint,
            "task": self.task,
            **({"target": dict(self.target)} if self.target else {}),
        }


@dataclass(frozen=True)
class DataSource:
    """A registry entry: how to load one kind of data set."""

    load: Callable[[DataConfig, Path], RawData]
    needs_path: bool = False
    images: bool = True
    task: str | None = None  # the task it is (None: read from the target, task: auto)


def _digits(cfg: DataConfig, base: Path) -> RawData:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype("float32")[..., None]  # (1797, 8, 8, 1), 17 grey levels 0..16
    return RawData(
        x, bunch.target.astype("int64"), class_names=[str(c) for c in range(10)], max_value=16.0
    )


def _diabetes(cfg: DataConfig, base: Path) -> RawData:
    from sklearn.datasets import load_diabetes

    # 442 patients, 10 features (already centred and scaled by scikit-learn), target: a
    # measure of disease progression one year later (25 to 346)
    bunch = load_diabetes()
    return RawData(bunch.data.astype("float32"), bunch.target.astype("float32"), class_names=[])


def _wine(cfg: DataConfig, base: Path) -> RawData:
    from sklearn.datasets import load_wine

    # 178 wines, 13 chemical measurements on very different scales, 3 cultivars
    bunch = load_wine()
    names = [str(n) for n in bunch.target_names]
    return RawData(bunch.data.astype("float32"), bunch.target.astype("int64"), class_names=names)


def _california_housing(cfg: DataConfig, base: Path) -> RawData:
    """Keras' California housing (20,640 districts, 8 features, median house value in
    dollars). ``data.path``: a local copy of Keras' ``california_housing.npz`` (arrays
    ``x`` and ``y``, as Keras downloads it) or an ``.npz`` with ``x_train``/``y_train``."""
    if cfg.path:
        path = _resolve(cfg, base)
        try:
            with np.load(path, allow_pickle=False) as f:
                if "x" in f.files and "y" in f.files:  # Keras' own file
                    return RawData(f["x"].astype("float32"), f["y"].astype("float32"))
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot read as .npz: {exc}", path="data.path", value=cfg.path, has_value=True
            ) from None
        return _npz(cfg, base)
    import keras

    try:
        (xtr, ytr), (xte, yte) = keras.datasets.california_housing.load_data(version="large")
    except Exception as exc:  # network or cache problems: the user's to fix
        raise ConfigError(
            f"could not load california_housing through keras.datasets "
            f"({type(exc).__name__}: {exc}); when offline, set data.path to a local copy of "
            "Keras' california_housing.npz (arrays x and y)",
            path="data.name",
            value="california_housing",
            has_value=True,
        ) from None
    return RawData(xtr, ytr, xte, yte)


def _keras_dataset(module: str, max_value: float, classes: list[str]) -> Callable[..., RawData]:
    def load(cfg: DataConfig, base: Path) -> RawData:
        if cfg.path:
            raw = _npz(cfg, base)
            raw.class_names, raw.max_value = classes, max_value
            return raw
        import keras

        try:
            (xtr, ytr), (xte, yte) = getattr(keras.datasets, module).load_data()
        except Exception as exc:  # network or cache problems: the user's to fix
            raise ConfigError(
                f"could not load {module} through keras.datasets ({type(exc).__name__}: {exc}); "
                "when offline, set data.path to a local .npz with x_train, y_train, x_test, y_test",
                path="data.name",
                value=module,
                has_value=True,
            ) from None
        return RawData(xtr, ytr, xte, yte, classes, max_value)

    return load


def _resolve(cfg: DataConfig, base: Path) -> Path:
    """A relative path is looked up next to the study file, then in the working directory
    (where a path typed in ``--set data.path=...`` is usually meant)."""
    assert cfg.path is not None
    path = Path(cfg.path).expanduser()
    if path.is_absolute():
        return path
    beside = base / path
    if beside.exists() or not path.exists():
        return beside
    return path.resolve()


def _npz(cfg: DataConfig, base: Path) -> RawData:
    path = _resolve(cfg, base)
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot read as .npz: {exc}", path="data.path", value=cfg.path, has_value=True
        ) from None
    missing = [k for k in ("x_train", "y_train") if k not in arrays]
    if missing:
        raise ConfigError(
            f"the .npz lacks {', '.join(missing)}; it needs x_train, y_train and "
            f"optionally x_test, y_test (has: {', '.join(arrays)})",
            path="data.path",
            value=cfg.path,
            has_value=True,
        )
    return RawData(arrays["x_train"], arrays["y_train"], arrays.get("x_test"), arrays.get("y_test"))


def _csv(cfg: DataConfig, base: Path) -> RawData:
    path = _resolve(cfg, base)
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header or cfg.label_column not in header:
            raise ConfigError(
                f"label column not in the CSV header (columns: {', '.join((header or [])[:10])})",
                path="data.label_column",
                value=cfg.label_column,
                has_value=True,
            )
        col = header.index(cfg.label_column)
        labels, rows = [], []
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            labels.append(row[col])
            try:
                rows.append([float(v) for i, v in enumerate(row) if i != col])
            except ValueError:
                raise ConfigError(
                    f"non-numeric feature on line {line_no}",
                    path="data.path",
                    value=cfg.path,
                    has_value=True,
                ) from None
    x = np.asarray(rows, dtype="float32")
    return RawData(x, np.asarray(labels))


DATASETS: dict[str, DataSource] = {
    "digits": DataSource(_digits, task=CLASSIFICATION),
    "mnist": DataSource(_keras_dataset("mnist", 255.0, [str(i) for i in range(10)])),
    "fashion_mnist": DataSource(
        _keras_dataset(
            "fashion_mnist",
            255.0,
            [
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
        )
    ),
    "cifar10": DataSource(
        _keras_dataset(
            "cifar10",
            255.0,
            [
                "airplane",
                "automobile",
                "bird",
                "cat",
                "deer",
                "dog",
                "frog",
                "horse",
                "ship",
                "truck",
            ],
        )
    ),
    "wine": DataSource(_wine, images=False, task=CLASSIFICATION),
    "diabetes": DataSource(_diabetes, images=False, task=REGRESSION),
    "california_housing": DataSource(_california_housing, images=False, task=REGRESSION),
    "npz": DataSource(_npz, needs_path=True, images=False),
    "csv": DataSource(_csv, needs_path=True, images=False),
}


def check_data_config(cfg: DataConfig, base: Path, *, needs_images: bool) -> None:
    """Check the ``data`` section without loading anything."""
    source = DATASETS.get(cfg.name)
    if source is None:
        raise ConfigError(
            "allowed: " + ", ".join(DATASETS), path="data.name", value=cfg.name, has_value=True
        )
    if source.needs_path and not cfg.path:
        raise ConfigError(f"data set {cfg.name!r} needs data.path", path="data.path")
    if cfg.path:
        path = _resolve(cfg, base)
        if not path.is_file():
            raise ConfigError(
                f"file not found ({path})", path="data.path", value=cfg.path, has_value=True
            )
    if cfg.name == "csv" and needs_images and not cfg.image_shape:
        raise ConfigError(
            "a CNN needs images: set data.image_shape (e.g. [28, 28, 1]) for CSV rows",
            path="data.image_shape",
        )
    if cfg.image_shape is not None and (not cfg.image_shape or min(cfg.image_shape) < 1):
        raise ConfigError(
            "a list of positive sizes, e.g. [28, 28, 1]",
            path="data.image_shape",
            value=cfg.image_shape,
            has_value=True,
        )


_CACHE: dict[str, Dataset] = {}


def load_dataset(cfg: DataConfig, base: Path | None = None, task: str = CLASSIFICATION) -> Dataset:
    """Load, scale and split a data set; the result is cached for the process.

    ``task``: the study's resolved task (``StudyFile.task``); ``regression`` keeps the
    targets as numbers (standardized with ``data.standardize_target``).

    Example:
        >>> ds = load_dataset(DataConfig(name="digits", subset=500))
        >>> ds.x_train.shape[1:], ds.num_classes
        ((8, 8, 1), 10)
    """
    base = base or Path.cwd()
    key = json.dumps([cfg.model_dump(), str(base), task], sort_keys=True, default=str)
    if key not in _CACHE:
        _CACHE[key] = _prepare_regression(cfg, base) if task == REGRESSION else _prepare(cfg, base)
    return _CACHE[key]


def _split(
    x: np.ndarray,
    y: np.ndarray,
    size: float | int,
    seed: int,
    what: str,
    stratified: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    n = len(x)
    count = size if isinstance(size, int) else int(round(size * n))
    if not 0 < count < n:
        raise ConfigError(
            f"leaves an empty split: {n} samples available",
            path=f"data.{what}",
            value=size,
            has_value=True,
        )
    _, counts = np.unique(y, return_counts=True)
    stratify = y if counts.min() >= 2 and min(count, n - count) >= len(counts) else None
    if not stratified:  # a regression's targets are not classes
        stratify = None
    xa, xb, ya, yb = train_test_split(x, y, test_size=count, random_state=seed, stratify=stratify)
    return xa, ya, xb, yb


def _prepare(cfg: DataConfig, base: Path) -> Dataset:
    raw = DATASETS[cfg.name].load(cfg, base)
    x, y = np.asarray(raw.x_train), np.asarray(raw.y_train).reshape(-1)
    if len(x) != len(y):
        raise ConfigError(
            f"x_train has {len(x)} rows but y_train has {len(y)}",
            path="data.path",
            value=cfg.path,
            has_value=True,
        )
    classes = np.unique(y if raw.y_test is None else np.concatenate([y, raw.y_test.reshape(-1)]))
    if raw.x_test is None or raw.y_test is None:
        x, y, x_test, y_test = _split(x, y, cfg.test, cfg.seed, "test")
    else:
        x_test, y_test = np.asarray(raw.x_test), np.asarray(raw.y_test).reshape(-1)
    if cfg.subset is not None and cfg.subset < len(x):
        _, _, x, y = _split(x, y, cfg.subset, cfg.seed, "subset")
    x, y, x_val, y_val = _split(x, y, cfg.validation, cfg.seed + 1, "validation")

    # labels -> 0..K-1 (class names keep the original values)
    index = {v: i for i, v in enumerate(classes.tolist())}
    y, y_val, y_test = (
        np.array([index[v] for v in a.tolist()], dtype="int64") for a in (y, y_val, y_test)
    )
    class_names = raw.class_names or [str(c) for c in classes.tolist()]

    shape = tuple(cfg.image_shape) if cfg.image_shape else None
    arrays = [_shape(a, shape) for a in (x, x_val, x_test)]
    scaling = _scaling(cfg.scale, arrays[0], raw.max_value)
    x, x_val, x_test = (apply_scaling(a, scaling) for a in arrays)
    digest = hashlib.sha256()
    for a in (x, y, x_val, y_val):
        digest.update(np.ascontiguousarray(a).tobytes())
    return Dataset(
        cfg.name,
        x,
        y,
        x_val,
        y_val,
        x_test,
        y_test,
        len(classes),
        class_names,
        scaling,
        digest.hexdigest()[:16],
    )


def _shape(x: np.ndarray, shape: tuple[int, ...] | None) -> np.ndarray:
    if shape is not None:
        try:
            return x.reshape((len(x), *shape))
        except ValueError:
            raise ConfigError(
                f"rows of {int(np.prod(x.shape[1:]))} values cannot take this shape",
                path="data.image_shape",
                value=list(shape),
                has_value=True,
            ) from None
    if x.ndim == 3:  # grey images: add the channel axis Conv2D expects
        return x[..., None]
    return x


def _scaling(kind: str, x: np.ndarray, max_value: float | None) -> dict[str, Any]:
    if kind == "none":
        return {"kind": "none"}
    if kind == "standard":
        mean = x.astype("float64").mean(axis=0)
        std = x.astype("float64").std(axis=0)
        std[std == 0] = 1.0
        return {"kind": "standard", "mean": mean.astype("float32"), "std": std.astype("float32")}
    if kind == "auto" and max_value is None and not np.issubdtype(x.dtype, np.integer):
        return {"kind": "none"}
    value = max_value if kind == "auto" and max_value is not None else float(np.max(x)) or 1.0
    return {"kind": "divide", "value": float(value)}


def apply_scaling(x: np.ndarray, scaling: dict[str, Any]) -> np.ndarray:
    """Scale raw inputs the way the training data was scaled."""
    x = np.asarray(x, dtype="float32")
    if scaling["kind"] == "divide":
        return x / np.float32(scaling["value"])
    if scaling["kind"] == "standard":
        return (x - scaling["mean"]) / scaling["std"]
    return x


def _prepare_regression(cfg: DataConfig, base: Path) -> Dataset:
    """:func:`_prepare` for a regression: numeric targets, random (not stratified)
    splits, and the targets standardized on the training split when asked."""
    raw = DATASETS[cfg.name].load(cfg, base)
    x = np.asarray(raw.x_train)
    y = regression_target(raw.y_train, path="data.label_column", value=cfg.label_column)
    if len(x) != len(y):
        raise ConfigError(
            f"x_train has {len(x)} rows but y_train has {len(y)}",
            path="data.path",
            value=cfg.path,
            has_value=True,
        )
    if raw.x_test is None or raw.y_test is None:
        x, y, x_test, y_test = _split(x, y, cfg.test, cfg.seed, "test", stratified=False)
    else:
        x_test = np.asarray(raw.x_test)
        y_test = regression_target(raw.y_test, path="data.path", value=cfg.path)
    if cfg.subset is not None and cfg.subset < len(x):
        _, _, x, y = _split(x, y, cfg.subset, cfg.seed, "subset", stratified=False)
    x, y, x_val, y_val = _split(x, y, cfg.validation, cfg.seed + 1, "validation", False)
    target = target_scaling(y) if cfg.standardize_target else None
    if target is not None:
        y, y_val, y_test = (
            ((a - target["mean"]) / target["std"]).astype("float32") for a in (y, y_val, y_test)
        )
    shape = tuple(cfg.image_shape) if cfg.image_shape else None
    arrays = [_shape(a, shape) for a in (x, x_val, x_test)]
    scaling = _scaling(cfg.scale, arrays[0], raw.max_value)
    x, x_val, x_test = (apply_scaling(a, scaling) for a in arrays)
    digest = hashlib.sha256()
    for a in (x, y, x_val, y_val):
        digest.update(np.ascontiguousarray(a).tobytes())
    return Dataset(
        cfg.name,
        x,
        y,
        x_val,
        y_val,
        x_test,
        y_test,
        1,
        [],
        scaling,
        digest.hexdigest()[:16],
        task=REGRESSION,
        target=target,
    )
