"""Labels and probabilities from an exported model (``hpsearch predict``).

The exported model scales its inputs itself, so raw data go in as they are:
an ``.npz`` (``x``/``x_test`` with optional ``y``/``y_test`` labels, or ``--key``),
an ``.npy``, a CSV (one sample per row; a ``label`` column, if present, is used
to report the accuracy) or images (PNG, JPEG, BMP, GIF: files or a folder). Flat rows
are reshaped to the model's input shape, a missing channel axis is added. Images for a
model trained on an image folder (``data: {name: images}``) are prepared as training
prepared them (:func:`hpsearch.data._images.read_image`: colour mode and size); other
models take images of their exact input size.

A model trained on a table with string columns or gaps (its card has
``data.table``) takes the raw CSV: columns found by their header names (others
are ignored), string cells, gaps and categories never seen in training.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hpsearch.card import CardError, ModelCard
from hpsearch.exceptions import HpsearchError

__all__ = ["Exported", "Predictions", "load_exported", "predict", "read_inputs"]

CARD_FILE = "model_card.json"

_X_KEYS = ("x", "x_test", "inputs", "images", "X", "X_test")
_LABEL_KEYS = {"x": "y", "x_test": "y_test", "X": "y", "X_test": "y_test", "inputs": "labels"}


@dataclass
class Predictions:
    """What :func:`predict` returns.

    Attributes:
        names: one name per sample (a file name, or ``FILE[i]``).
        labels: the predicted class names.
        probabilities: softmax outputs, shape ``(samples, classes)``.
        class_names: the model's classes, in output order.
        true_labels: the labels found in the input, if any (class names).
        accuracy: the share of correct labels, when the input had labels.
        values: a regression model's answers, one number per sample (None for a
            classifier; ``labels`` then hold them as text and ``probabilities`` is empty).
        mae: a regression's mean absolute error against the input's targets, if any.
        rmse: a regression's root mean squared error against them.
    """

    names: list[str]
    labels: list[str]
    probabilities: np.ndarray
    class_names: list[str]
    true_labels: list[str] | None = None
    accuracy: float | None = None
    values: np.ndarray | None = None
    mae: float | None = None
    rmse: float | None = None


@dataclass
class Exported:
    """The model of an export folder, loaded (what :func:`load_exported` returns).

    Attributes:
        run: ``run(x)`` gives the probabilities of a batch of raw inputs (NumPy).
        input_shape: one sample's shape: the card's, else the model's.
        card: the folder's model card, or None if it has none.
    """

    run: Callable[[Any], np.ndarray]
    input_shape: list[int]
    card: ModelCard | None = None


def _card(model_dir: Path) -> ModelCard | None:
    try:
        text = (model_dir / CARD_FILE).read_text("utf-8")
    except FileNotFoundError:
        return None
    try:
        return ModelCard.from_json(text)
    except CardError as exc:
        raise HpsearchError(f"{model_dir}/{CARD_FILE}: {exc}") from None


def load_exported(model_dir: str | Path) -> Exported:
    """The model of an export folder (``model.keras``, else the SavedModel) and its card.

    Raises:
        HpsearchError: not an export folder, no model in it, or a broken model card.
    """
    from hpsearch.training import configure_tensorflow

    path = Path(model_dir)
    if not path.is_dir():
        raise HpsearchError(f"{path}: not an export folder (run hpsearch export first)")
    card = _card(path)
    configure_tensorflow()
    if (path / "model.keras").is_file():
        return _load_keras(path / "model.keras", card)
    if (path / "saved_model").is_dir():
        return _load_savedmodel(path / "saved_model", card)
    raise HpsearchError(f"{path}: no model.keras or saved_model/ in this folder")


def _load_keras(file: Path, card: ModelCard | None) -> Exported:
    import keras

    model = keras.models.load_model(file, compile=False)
    shape = card.model.input.shape if card is not None else [int(d) for d in model.input_shape[1:]]
    return Exported(lambda x: np.asarray(model.predict(x, batch_size=256, verbose=0)), shape, card)


def _load_savedmodel(folder: Path, card: ModelCard | None) -> Exported:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(folder))
    if card is not None:
        shape = card.model.input.shape
    else:
        spec = loaded.serve.concrete_functions[0].structured_input_signature[0][0]
        shape = list(spec.shape[1:])

    def run(x: Any) -> np.ndarray:
        # a table's inputs are a dict of named columns
        n = int(next(iter(x.values())).shape[0]) if isinstance(x, dict) else len(x)
        return np.concatenate(
            [loaded.serve(_rows(x, i, i + 256)).numpy() for i in range(0, n, 256)]
        )

    return Exported(run, shape, card)


def _rows(x: Any, start: int, stop: int) -> Any:
    if isinstance(x, dict):
        return {k: v[start:stop] for k, v in x.items()}
    return x[start:stop]


# ------------------------------------------------------------------ reading
def read_table(
    inputs: Sequence[str | Path], table: dict[str, Any], label_column: str | None
) -> tuple[dict[str, Any], list[str], np.ndarray | None]:
    """Read a raw CSV for a table model: ``(named inputs, names, labels or None)``.

    Raises:
        HpsearchError: not one CSV file, a feature column missing from its header,
            ragged rows, or a word in a numeric column.
    """
    from hpsearch.data._table import TableError, TableSpec, read_csv_rows

    paths = [Path(p) for p in inputs]
    if len(paths) != 1 or paths[0].suffix.lower() not in (".csv", ".txt"):
        raise HpsearchError("this model takes a table: give one .csv file with a header")
    path = paths[0]
    if not path.is_file():
        raise HpsearchError(f"{path}: file not found")
    spec = TableSpec.from_dict(table)
    try:
        header, rows = read_csv_rows(path, None)
        names = [h.strip() for h in header]  # "age, workclass" has " workclass"
        absent = [c.name.strip() for c in spec.columns if c.name.strip() not in names]
        if absent:
            raise TableError(
                f"no column {absent[0]!r} in the header; the model takes "
                + ", ".join(c.name.strip() for c in spec.columns)
            )
        where = [names.index(c.name.strip()) for c in spec.columns]
        cells = np.asarray([[r[j] for j in where] for r in rows], dtype=object)
        x = spec.inputs(cells)
    except TableError as exc:
        raise HpsearchError(f"{path}: {exc}") from None
    col = header.index(label_column) if label_column and label_column in header else None
    labels = np.asarray([r[col] for r in rows]) if col is not None else None
    return x, [f"{path.name}[{i}]" for i in range(len(rows))], labels


def read_inputs(
    inputs: Sequence[str | Path],
    input_shape: Sequence[int],
    *,
    key: str | None = None,
    label_column: str | None = None,
    resize: bool = False,
) -> tuple[np.ndarray, list[str], np.ndarray | None]:
    """Read samples from files; return ``(x, names, labels or None)``.

    ``resize``: images of another size are resized to the input shape (a model
    trained on an image folder), instead of refused.

    Raises:
        HpsearchError: an unreadable file, an unknown kind of file, or arrays
            that do not fit ``input_shape``.
    """
    from hpsearch.data._images import IMAGE_SUFFIXES

    paths = [Path(p) for p in inputs]
    if not paths:
        raise HpsearchError("give an input: an .npz, .npy, .csv, images or a folder of images")
    pngs, names, classes = _collect_images(paths)
    if pngs:
        if any(not p.is_dir() and p.suffix.lower() not in IMAGE_SUFFIXES for p in paths):
            raise HpsearchError("images cannot be mixed with other inputs")
        return _read_images(pngs, input_shape, resize), names, classes
    if len(paths) > 1:
        raise HpsearchError("give one .npz, .npy or .csv file (or several PNG images)")
    path = paths[0]
    if not path.is_file():
        raise HpsearchError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        x, y = _read_npz(path, key)
    elif suffix == ".npy":
        try:
            x, y = np.load(path, allow_pickle=False), None
        except (OSError, ValueError) as exc:
            raise HpsearchError(f"{path}: cannot read as .npy ({exc})") from None
    elif suffix in (".csv", ".txt"):
        x, y = _read_csv(path, label_column or "label")
    else:
        raise HpsearchError(
            f"{path}: unknown kind of input; use .npz, .npy, .csv or images "
            f"({', '.join(IMAGE_SUFFIXES)})"
        )
    x = _fit_shape(x, input_shape, str(path))
    names = [f"{path.name}[{i}]" for i in range(len(x))]
    return x, names, y


def _collect_images(paths: Sequence[Path]) -> tuple[list[Path], list[str], np.ndarray | None]:
    """The image files among ``paths`` (a folder: its images, else its class sub-folders'
    images, as an image-folder study reads them), their names, and their classes (the
    sub-folders' names) when every image came from a class sub-folder."""
    from hpsearch.data._images import IMAGE_SUFFIXES

    def images(folder: Path) -> list[Path]:
        return sorted(
            q for q in folder.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES
        )

    files: list[Path] = []
    names: list[str] = []
    classes: list[str] = []
    for p in paths:
        if not p.is_dir():
            if p.suffix.lower() in IMAGE_SUFFIXES:
                files.append(p)
                names.append(p.name)
            continue
        found = images(p)
        if found:
            files += found
            names += [q.name for q in found]
            continue
        inner = [(c.name, q) for c in sorted(p.iterdir()) if c.is_dir() for q in images(c)]
        if not inner:
            raise HpsearchError(
                f"{p}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder or its sub-folders"
            )
        files += [q for _, q in inner]
        names += [f"{c}/{q.name}" for c, q in inner]
        classes += [c for c, _ in inner]
    labelled = len(classes) == len(files) and bool(files)
    return files, names, np.asarray(classes) if labelled else None


def _read_npz(path: Path, key: str | None) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as exc:
        raise HpsearchError(f"{path}: cannot read as .npz ({exc})") from None
    if key is not None:
        if key not in arrays:
            raise HpsearchError(f"--key: got {key!r}; {path} has: {', '.join(arrays)}")
    else:
        key = next((k for k in _X_KEYS if k in arrays), None)
        if key is None and len(arrays) == 1:
            key = next(iter(arrays))
        if key is None:
            raise HpsearchError(
                f"{path}: which array are the inputs? name it with --key (has: {', '.join(arrays)})"
            )
    label_key = _LABEL_KEYS.get(key)
    labels = arrays.get(label_key) if label_key else None
    return arrays[key], labels


def _read_csv(path: Path, label_column: str) -> tuple[np.ndarray, np.ndarray | None]:
    from hpsearch.data._table import csv_rows

    rows = [r for r in csv_rows(path) if r]
    if not rows:
        raise HpsearchError(f"{path}: empty CSV")
    header: list[str] | None = None
    try:
        [float(v) for v in rows[0]]
    except ValueError:
        header, rows = rows[0], rows[1:]
    col = header.index(label_column) if header and label_column in header else None
    labels = [r[col] for r in rows] if col is not None else None
    try:
        x = np.asarray(
            [[float(v) for i, v in enumerate(r) if i != col] for r in rows], dtype="float32"
        )
    except ValueError as exc:
        raise HpsearchError(f"{path}: non-numeric value ({exc})") from None
    return x, (np.asarray(labels) if labels is not None else None)


def _read_images(paths: Sequence[Path], input_shape: Sequence[int], resize: bool) -> np.ndarray:
    from hpsearch.data._images import ImageError, read_image

    shape = tuple(input_shape)
    if len(shape) == 3:
        height, width, channels = shape
    elif len(shape) == 2:
        (height, width), channels = shape, 1
    else:
        raise HpsearchError(f"this model takes inputs of shape {shape}, not images")
    images = []
    for p in paths:
        try:
            image = read_image(p, (height, width) if resize else None, channels)
        except ImageError as exc:
            raise HpsearchError(str(exc)) from None
        if image.shape[:2] != (height, width):
            raise HpsearchError(
                f"{p}: the image is {image.shape[1]}x{image.shape[0]}; "
                f"the model takes {width}x{height} images"
            )
        images.append(image.reshape(shape))
    return np.stack(images)


def _fit_shape(x: np.ndarray, input_shape: Sequence[int], what: str) -> np.ndarray:
    shape = tuple(int(d) for d in input_shape)
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise HpsearchError(f"{what}: the inputs must be numbers, got dtype {x.dtype}")
    if x.shape[1:] == shape:
        return x
    if x.shape == shape or (x.ndim == len(shape) - 1 and shape[-1] == 1 and x.shape == shape[:-1]):
        return x.reshape((1, *shape))  # one sample
    if x.ndim >= 1 and int(np.prod(x.shape[1:])) == int(np.prod(shape)):
        return x.reshape((len(x), *shape))  # flat rows, or a missing channel axis
    raise HpsearchError(
        f"{what}: arrays of shape {tuple(x.shape)} do not fit the model's input {shape} "
        "(one sample per row)"
    )


# ------------------------------------------------------------------ predicting
def _label_names(y: np.ndarray, class_names: list[str]) -> list[str]:
    values = [str(v) for v in np.asarray(y).reshape(-1).tolist()]
    if all(v in class_names for v in values):
        return values
    if np.issubdtype(np.asarray(y).dtype, np.integer) and all(
        0 <= int(v) < len(class_names) for v in np.asarray(y).reshape(-1)
    ):
        return [class_names[int(v)] for v in np.asarray(y).reshape(-1)]
    return values


def _values(names: list[str], out: np.ndarray, y: np.ndarray | None) -> Predictions:
    """A regression model's answers (in the target's units), and its errors against
    the input's targets when it had them."""
    values = np.asarray(out, dtype="float64").reshape(len(out), -1)[:, 0]
    result = Predictions(
        names, [f"{v:.6g}" for v in values], np.zeros((len(values), 0)), [], values=values
    )
    if y is not None:
        if len(y) != len(values):
            raise HpsearchError(f"{len(y)} targets for {len(values)} inputs")
        try:
            truth = np.asarray(y, dtype="float64").reshape(-1)
        except ValueError:
            raise HpsearchError("the input's targets are not numbers") from None
        result.true_labels = [f"{v:.6g}" for v in truth]
        result.mae = float(np.mean(np.abs(values - truth)))
        result.rmse = float(np.sqrt(np.mean((values - truth) ** 2)))
    return result


def predict(
    model_dir: str | Path,
    inputs: Sequence[str | Path],
    *,
    key: str | None = None,
) -> Predictions:
    """Predict the class of every sample in ``inputs`` with an exported model.

    Args:
        model_dir: a folder written by ``hpsearch export``.
        inputs: one ``.npz``/``.npy``/``.csv`` file, or images / folders of them.
        key: the ``.npz`` array holding the inputs (default ``x``, then ``x_test``).

    Example (it needs an export folder and loads Keras; not run as a test):
        >>> p = predict("exports/quickstart-trial12", ["digits_test.npz"])  # doctest: +SKIP
        >>> p.labels[:3], p.accuracy  # doctest: +SKIP
        (['6', '9', '3'], 0.9694)
    """
    loaded = load_exported(model_dir)
    card = loaded.card
    label_column = card.data.label_column if card is not None else None
    x: Any
    if card is not None and card.data.table:
        x, names, y = read_table(inputs, card.data.table, label_column)
    else:
        resize = card is not None and card.data.name == "images"
        x, names, y = read_inputs(
            inputs, loaded.input_shape, key=key, label_column=label_column, resize=resize
        )
        x = x.astype("float32")
    probs = loaded.run(x)
    if card is not None and card.regression:
        return _values(names, probs, y)
    known = card.data.class_names if card is not None else None
    class_names = [str(c) for c in known or range(probs.shape[1])]
    labels = [class_names[i] for i in probs.argmax(axis=1)]
    result = Predictions(names, labels, probs, class_names)
    if y is not None:
        if len(y) != len(labels):
            raise HpsearchError(f"{len(y)} labels for {len(labels)} inputs")
        result.true_labels = _label_names(y, class_names)
        result.accuracy = float(
            np.mean([a == b for a, b in zip(labels, result.true_labels, strict=True)])
        )
    return result
