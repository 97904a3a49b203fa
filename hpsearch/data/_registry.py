"""Data sets by name, loaded once per process, scaled and split.

``digits``, ``wine`` (classification) and ``diabetes`` (regression) ship with
scikit-learn (offline); ``california_housing`` (regression) comes through
``keras.datasets`` or a local copy of Keras' file as ``data.path``; ``mnist``,
``fashion_mnist`` and ``cifar10`` come through ``keras.datasets`` (downloaded
and cached when online) or from a local ``.npz`` given as ``data.path``; ``npz``
and ``csv`` read a user's file; ``images`` a folder of class sub-folders
(:mod:`hpsearch.data._images`); ``package.module:function`` calls a user's loader and
``arrays`` takes the arrays given to the Python API (:mod:`hpsearch.data._arrays`).
The test split is kept apart and never used for selection: only export looks at it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from hpsearch.config._schema import DataConfig
from hpsearch.data._table import (
    TableError,
    TableSpec,
    column_kinds,
    is_missing,
    is_number,
    read_csv_rows,
)
from hpsearch.data._task import CLASSIFICATION, REGRESSION, regression_target, target_scaling
from hpsearch.exceptions import ConfigError, HpsearchError

if TYPE_CHECKING:
    from hpsearch.data._images import ImageFolder

__all__ = ["DATASETS", "Dataset", "check_data_config", "load_dataset", "load_raw"]


@dataclass
class RawData:
    """Arrays as a loader returns them, before scaling and splitting."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    class_names: list[str] | None = None
    max_value: float | None = None
    columns: list[str] | None = None  # a table (hpsearch.data._table): x holds raw cells
    kinds: list[str] | None = None


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
    raw_shapes: dict[str, list[int]] = field(default_factory=dict)
    """The arrays' shapes as a loader or the Python API gave them (empty for the others)."""
    table: TableSpec | None = None
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
        } | (
            ({"raw_shapes": self.raw_shapes} if self.raw_shapes else {})
            | ({"table": self.table.summary()} if self.table is not None else {})
        )


@dataclass(frozen=True)
class DataSource:
    """A registry entry: how to load one kind of data set."""

    load: Callable[[DataConfig, Path], RawData]
    needs_path: bool = False
    images: bool = True
    user: bool = False  # a loader or the API's arrays: their shapes are recorded
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
    """A CSV with a header: all-numeric features as a float matrix, else a table of raw
    cells with its columns' kinds (see :mod:`hpsearch.data._table`)."""
    path = _resolve(cfg, base)
    try:
        header, rows = read_csv_rows(path, None)
        if cfg.label_column not in header:
            raise ConfigError(
                "label column not in the CSV header (columns: "
                f"{', '.join(header[:10])}{' ...' if len(header) > 10 else ''})"
                + (
                    "; the first line holds a number: it must name the columns"
                    if any(map(is_number, header))
                    else ""
                ),
                path="data.label_column",
                value=cfg.label_column,
                has_value=True,
            )
        col = header.index(cfg.label_column)
        labels = [r[col] for r in rows]
        _check_labels(labels, cfg.label_column)
        names = [h for i, h in enumerate(header) if i != col]
        if not names:
            raise TableError("the CSV has only the label column: no feature to learn from")
        features = [[v for i, v in enumerate(r) if i != col] for r in rows]
        numbers = all(is_number(v) and not is_missing(v) for r in features for v in r)
        if cfg.categorical or not numbers:
            kinds = column_kinds(names, features, cfg.categorical, cfg.numeric)
            cells = np.asarray(features, dtype=object)
            return RawData(cells, np.asarray(labels), columns=names, kinds=kinds)
    except TableError as exc:
        raise ConfigError(str(exc), path="data.path", value=cfg.path, has_value=True) from None
    x = np.asarray([[float(v) for v in r] for r in features], dtype="float32")
    return RawData(x, np.asarray(labels))


def _images(cfg: DataConfig, base: Path) -> RawData:
    from hpsearch.data._images import load_images

    x, y, class_names = load_images(cfg, _resolve(cfg, base))
    return RawData(x, y, class_names=class_names, max_value=255.0)


def _user_loader(cfg: DataConfig, base: Path) -> RawData:
    from hpsearch.data._arrays import call_loader

    return RawData(*call_loader(cfg.name, cfg.memory_limit_mb))


def _arrays(cfg: DataConfig, base: Path) -> RawData:
    from hpsearch.data._arrays import registered_arrays

    return RawData(*registered_arrays(cfg.arrays))


def _check_labels(labels: list[str], column: str) -> None:
    gaps = [i for i, v in enumerate(labels) if is_missing(v)]
    if gaps:
        raise TableError(
            f"the label column {column!r} has {len(gaps)} missing value(s) (first on line "
            f"{gaps[0] + 2}); drop those rows or fill them in"
        )


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
    "images": DataSource(_images, needs_path=True),
    "arrays": DataSource(_arrays, images=False, user=True),
}
_LOADER = DataSource(_user_loader, images=False, user=True)


def source_of(name: str) -> DataSource:
    """The registry entry of ``data.name`` (a ``module:function`` is a user's loader)."""
    return _LOADER if ":" in name else DATASETS[name]


_RAW_CACHE: dict[str, RawData] = {}


def load_raw(cfg: DataConfig, base: Path) -> RawData:
    """The data set as its loader returns it. An image folder's decoded images and a
    user loader's return are kept for the process (export reads the test split again;
    a loader is called once)."""
    if cfg.name not in ("images",) and ":" not in cfg.name:
        return source_of(cfg.name).load(cfg, base)
    key = json.dumps([cfg.model_dump(), str(base)], sort_keys=True, default=str)
    if key not in _RAW_CACHE:
        _RAW_CACHE[key] = source_of(cfg.name).load(cfg, base)
    return _RAW_CACHE[key]


def check_data_config(cfg: DataConfig, base: Path, *, needs_images: bool) -> None:
    """Check the ``data`` section without loading anything (an image folder is listed,
    a user loader's module is found by :func:`hpsearch.study.check_user_builder`)."""
    _check_name(cfg)
    source = source_of(cfg.name)
    if source.needs_path and not cfg.path:
        raise ConfigError(f"data set {cfg.name!r} needs data.path", path="data.path")
    _check_images(cfg)
    if cfg.name == "images":
        from hpsearch.data._images import list_image_folder

        list_image_folder(_resolve(cfg, base), str(cfg.path))
    elif cfg.path:
        path = _resolve(cfg, base)
        if not path.is_file():
            raise ConfigError(
                f"file not found ({path})", path="data.path", value=cfg.path, has_value=True
            )
    for key in ("categorical", "numeric"):
        if getattr(cfg, key) and cfg.name != "csv":
            raise ConfigError(
                "column kinds are for data.name: csv only",
                path=f"data.{key}",
                value=getattr(cfg, key),
                has_value=True,
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


def _check_name(cfg: DataConfig) -> None:
    if ":" in cfg.name:
        module, _, func = cfg.name.partition(":")
        if (
            not module
            or not func.isidentifier()
            or not all(p.isidentifier() for p in module.split("."))
        ):
            raise ConfigError(
                "a loader is package.module:function",
                path="data.name",
                value=cfg.name,
                has_value=True,
            )
    elif cfg.name not in DATASETS:
        raise ConfigError(
            "allowed: " + ", ".join(DATASETS) + ", or package.module:function (a loader)",
            path="data.name",
            value=cfg.name,
            has_value=True,
        )


def _check_images(cfg: DataConfig) -> None:
    if cfg.image_size is not None and (len(cfg.image_size) != 2 or min(cfg.image_size) < 1):
        raise ConfigError(
            "[height, width], two positive sizes, e.g. [64, 64]",
            path="data.image_size",
            value=cfg.image_size,
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
    if cfg.name == "arrays":  # held only while the call that passed them runs
        return _prepare_or_one_line(cfg, base, task)
    key = json.dumps([cfg.model_dump(), str(base), task], sort_keys=True, default=str)
    if key not in _CACHE:
        _CACHE[key] = _prepare_or_one_line(cfg, base, task)
    return _CACHE[key]


def _prepare_or_one_line(cfg: DataConfig, base: Path, task: str) -> Dataset:
    """``_prepare``, with the last resort for what a user's data may raise that no check
    foresaw: one line naming the data field (``--debug`` shows the traceback)."""
    try:
        return _prepare(cfg, base, task)
    except (HpsearchError, KeyboardInterrupt):
        raise
    except Exception as exc:
        text = " ".join(str(exc).split())[:200]
        field_name = "path" if cfg.path is not None else "name"
        raise ConfigError(
            f"cannot load the data: unexpected {type(exc).__name__}"
            + (f": {text}" if text else "")
            + " (hpsearch --debug shows the traceback)",
            path=f"data.{field_name}",
            value=getattr(cfg, field_name),
            has_value=True,
        ) from exc


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


def _prepare(cfg: DataConfig, base: Path, task: str = CLASSIFICATION) -> Dataset:
    if cfg.name == "images" and task != REGRESSION:
        from hpsearch.data._images import stream_images

        large = stream_images(cfg, _resolve(cfg, base))
        if large is not None:
            return _prepare_stream(cfg, _resolve(cfg, base), *large)
    raw = load_raw(cfg, base)
    x, y = np.asarray(raw.x_train), np.asarray(raw.y_train).reshape(-1)
    if len(x) != len(y):
        raise ConfigError(
            f"x_train has {len(x)} rows but y_train has {len(y)}",
            path="data.path",
            value=cfg.path,
            has_value=True,
        )
    targets = _regression_targets if task == REGRESSION else _class_targets
    (x, x_val, x_test), (y, y_val, y_test), labels = targets(cfg, raw, x, y)
    table, scaling, (x, x_val, x_test) = _features(cfg, raw, x, x_val, x_test)
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
        labels.num_classes,
        labels.class_names,
        scaling,
        digest.hexdigest()[:16],
        _raw_shapes(raw) if source_of(cfg.name).user else {},
        table,
        task=task,
        target=labels.target,
    )


@dataclass
class _Labels:
    """What the targets tell a :class:`Dataset` besides the arrays."""

    num_classes: int
    class_names: list[str]
    target: dict[str, float] | None = None


_Splits = tuple[list[np.ndarray], list[np.ndarray], _Labels]


def _three_splits(
    cfg: DataConfig,
    raw: RawData,
    x: np.ndarray,
    y: np.ndarray,
    y_test: np.ndarray | None,
    stratified: bool,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Training, validation and test splits: the test split given (``raw.x_test`` with
    ``y_test``) or held out, then ``data.subset`` and ``data.validation`` of the rest."""
    if raw.x_test is None or y_test is None:
        x, y, x_test, y_test = _split(x, y, cfg.test, cfg.seed, "test", stratified)
    else:
        x_test = np.asarray(raw.x_test)
    if cfg.subset is not None and cfg.subset < len(x):
        _, _, x, y = _split(x, y, cfg.subset, cfg.seed, "subset", stratified)
    x, y, x_val, y_val = _split(x, y, cfg.validation, cfg.seed + 1, "validation", stratified)
    return [x, x_val, x_test], [y, y_val, y_test]


def _class_targets(cfg: DataConfig, raw: RawData, x: np.ndarray, y: np.ndarray) -> _Splits:
    """Stratified splits, labels as 0..K-1 (class names keep the original values)."""
    classes = np.unique(y if raw.y_test is None else np.concatenate([y, raw.y_test.reshape(-1)]))
    y_given = None if raw.y_test is None else np.asarray(raw.y_test).reshape(-1)
    (x, x_val, x_test), (y, y_val, y_test) = _three_splits(cfg, raw, x, y, y_given, True)
    index = {v: i for i, v in enumerate(classes.tolist())}
    ys = [np.array([index[v] for v in a.tolist()], dtype="int64") for a in (y, y_val, y_test)]
    class_names = raw.class_names or [str(c) for c in classes.tolist()]
    if len(class_names) != len(classes):
        raise ConfigError(
            f"{len(class_names)} class names for {len(classes)} classes in the labels",
            path="data.name",
            value=cfg.name,
            has_value=True,
        )
    return [x, x_val, x_test], ys, _Labels(len(classes), class_names)


def _regression_targets(cfg: DataConfig, raw: RawData, x: np.ndarray, y: np.ndarray) -> _Splits:
    """Numeric targets, random (not stratified) splits, and the targets standardized on
    the training split when ``data.standardize_target`` asks."""
    y = regression_target(y, path="data.label_column", value=cfg.label_column)
    y_given = None
    if raw.y_test is not None:
        y_given = regression_target(raw.y_test, path="data.path", value=cfg.path)
    (x, x_val, x_test), (y, y_val, y_test) = _three_splits(cfg, raw, x, y, y_given, False)
    target = target_scaling(y) if cfg.standardize_target else None
    ys = [y, y_val, y_test]
    if target is not None:
        ys = [((a - target["mean"]) / target["std"]).astype("float32") for a in ys]
    return [x, x_val, x_test], ys, _Labels(1, [], target)


def _prepare_stream(
    cfg: DataConfig, root: Path, folder: ImageFolder, size: tuple[int, int], channels: int
) -> Dataset:
    """An image folder too large for memory: its splits are lists of files
    (:class:`~hpsearch.data._images.ImageFiles`), split as :func:`_prepare` splits arrays."""
    from hpsearch.data._images import ImageFiles, fingerprint_files

    index, y = np.arange(len(folder.files)), folder.labels
    index, y, test_index, y_test = _split(index, y, cfg.test, cfg.seed, "test")
    if cfg.subset is not None and cfg.subset < len(index):
        _, _, index, y = _split(index, y, cfg.subset, cfg.seed, "subset")
    index, y, val_index, y_val = _split(index, y, cfg.validation, cfg.seed + 1, "validation")
    scaling: dict[str, Any] = (
        {"kind": "none"} if cfg.scale == "none" else {"kind": "divide", "value": 255.0}
    )
    divide = 1.0 if cfg.scale == "none" else 255.0

    def files(part: np.ndarray) -> np.ndarray:
        # an ImageFiles stands where the split's array would (len, shape, dtype, x[:n])
        return cast(
            np.ndarray,
            ImageFiles(tuple(folder.files[i] for i in part), size, channels, divide),
        )

    return Dataset(
        cfg.name,
        files(index),
        y,
        files(val_index),
        y_val,
        files(test_index),
        y_test,
        len(folder.class_names),
        folder.class_names,
        scaling,
        fingerprint_files(folder, root, [index, val_index, test_index]),
    )


def _raw_shapes(raw: RawData) -> dict[str, list[int]]:
    arrays: dict[str, np.ndarray | None] = {"x_train": raw.x_train, "y_train": raw.y_train}
    arrays |= {"x_test": raw.x_test, "y_test": raw.y_test}
    return {k: [int(d) for d in np.shape(v)] for k, v in arrays.items() if v is not None}


def _features(
    cfg: DataConfig, raw: RawData, *splits: np.ndarray
) -> tuple[TableSpec | None, dict[str, Any], list[np.ndarray]]:
    """The splits as the network takes them: a table encoded (fitted on the training
    split, the first), arrays shaped and scaled; with the table and the scaling."""
    if raw.columns is not None:
        table = _fit_table(cfg, raw, splits[0])
        return table, {"kind": "none"}, [_encode(table, a, cfg) for a in splits]
    shape = tuple(cfg.image_shape) if cfg.image_shape else None
    arrays = [_shape(a, shape) for a in splits]
    scaling = _scaling(cfg.scale, arrays[0], raw.max_value)
    return None, scaling, [apply_scaling(a, scaling) for a in arrays]


def _fit_table(cfg: DataConfig, raw: RawData, x_train: np.ndarray) -> TableSpec:
    """The table's encoding, fitted on the training split only."""
    assert raw.columns is not None and raw.kinds is not None
    for key, bad in (("image_shape", cfg.image_shape), ("scale", cfg.scale in ("none", "unit"))):
        if bad:
            raise ConfigError(
                "not for a table with string columns or gaps (numeric columns are "
                "standardized, categorical ones one-hot encoded)",
                path=f"data.{key}",
                value=getattr(cfg, key),
                has_value=True,
            )
    return TableSpec.fit(raw.columns, raw.kinds, x_train, cfg.max_categories)


def _encode(table: TableSpec, cells: np.ndarray, cfg: DataConfig) -> np.ndarray:
    try:
        return table.encode(cells)
    except TableError as exc:
        raise ConfigError(str(exc), path="data.path", value=cfg.path, has_value=True) from None


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
