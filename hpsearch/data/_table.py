"""Mixed tables: CSV columns of strings (categories) and numbers with gaps.

A CSV whose features are all numbers (no gap) keeps the plain path of
:func:`hpsearch.data._registry._csv`. Any other CSV is a *table*:

* **kinds**: a column is ``categorical`` if one of its non-missing cells (in the
  whole file: the kind is the file's schema, not a statistic) does not parse as a
  number, else ``numeric``; ``data.categorical`` / ``data.numeric`` override it.
* **missing**: an empty cell, ``NA``, ``N/A``, ``NaN`` or ``?`` (any case, spaces
  around ignored). A numeric gap is imputed with the training split's median, and a
  column with gaps in the training split gets a 0/1 missing-indicator feature. In a
  categorical column a gap is a category of its own (the empty string).
* **encoding** (fitted on the training split only): numeric columns standardized
  with the training mean and std of their observed values; categorical columns
  one-hot over their ``data.max_categories`` most frequent training values plus one
  out-of-vocabulary bucket, which takes rarer values and values never seen in
  training (at prediction time too).

The searched network trains on the encoded float matrix (:meth:`TableSpec.encode`);
export puts the same preprocessing in front of it as Keras layers
(:meth:`TableSpec.keras_inputs`: one named input per column, ``StringLookup`` one-hot
and imputation/standardization ops), so the exported model takes raw columns.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import keras

__all__ = [
    "MISSING",
    "Column",
    "TableSpec",
    "csv_rows",
    "is_missing",
    "is_number",
    "read_csv_rows",
]

MISSING = ("", "na", "n/a", "nan", "?")
"""Cells read as missing (compared stripped and lower-cased)."""


def is_missing(cell: str) -> bool:
    """Whether a CSV cell is a gap (see :data:`MISSING`)."""
    return cell.strip().lower() in MISSING


def is_number(cell: str) -> bool:
    """Whether a CSV cell reads as a number (``float`` takes it)."""
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _number_or_gap(cell: str) -> bool:
    return is_missing(cell) or is_number(cell)


class TableError(ValueError):
    """Bad table input; the caller turns it into its own one-line error."""


DELIMITERS = (",", ";", "\t", "|")


def csv_text(path: Path) -> str:
    """A CSV file's text: UTF-8 (a byte-order mark, as Excel writes, dropped); a file that
    is not UTF-8 is read as Windows-1252 (Excel's own), else Latin-1, which reads any
    bytes. Training and ``predict`` read a file by the same rule, so its categories match.

    Raises:
        OSError: the file cannot be read.
    """
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


_DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+")


def csv_rows(path: Path) -> Iterator[list[str]]:
    r"""The rows of a CSV (see :func:`csv_text`), split at the delimiter its first line uses
    most among ``, ; tab |`` (a comma when it has none: one column). In a ``;`` file (the
    European form) a decimal comma is read as a point: ``1,5`` is 1.5.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "eu.csv"
    ...     _ = path.write_bytes("\ufeffprix;ville\n1,5;Besançon\n".encode())
    ...     list(csv_rows(path))
    [['prix', 'ville'], ['1.5', 'Besançon']]
    """
    text = csv_text(path)
    first = text.split("\n", 1)[0]
    delimiter = max(DELIMITERS, key=first.count)  # the earliest on a tie: a comma
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    if delimiter != ";":
        return reader
    return (
        [cell.replace(",", ".") if _DECIMAL_COMMA.fullmatch(cell) else cell for cell in row]
        for row in reader
    )


def read_csv_rows(path: Path, label_column: str | None) -> tuple[list[str], list[list[str]]]:
    """The header and the rows of a CSV, every row as long as the header.

    Raises:
        TableError: an empty file, no header (a first line of numbers or without
            ``label_column``), ragged rows, or no data rows.
    """
    reader = csv_rows(path)
    header = next(reader, None)
    if not header:
        raise TableError("empty CSV: the first line must name the columns")
    if label_column is not None and label_column not in header:
        if any(is_number(v) for v in header):
            raise TableError("the first line holds a number: it must name the columns")
        raise TableError(f"label column {label_column!r} not in the CSV header")
    rows = []
    for line_no, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise TableError(f"line {line_no} has {len(row)} cells, the header {len(header)}")
        rows.append(row)
    if not rows:
        raise TableError("the CSV has a header but no rows")
    return header, rows


@dataclass
class Column:
    """One feature column and its fitted encoding.

    Attributes:
        name: the CSV column.
        kind: ``numeric`` or ``categorical``.
        input: the exported model's input name for this column.
        missing_in_train: gaps in the training split.
        median: numeric: the imputed value (training median).
        mean: numeric: the training mean of the observed values.
        std: numeric: the training std of the observed values (1 if constant).
        indicator: numeric: a 0/1 missing-indicator feature follows the value.
        vocabulary: categorical: the one-hot categories (``""`` is the gap).
        categories_in_train: categorical: distinct training values, gap included.
    """

    name: str
    kind: str
    input: str
    missing_in_train: int = 0
    median: float | None = None
    mean: float | None = None
    std: float | None = None
    indicator: bool = False
    vocabulary: list[str] = field(default_factory=list)
    categories_in_train: int = 0

    @property
    def width(self) -> int:
        """Encoded features of this column."""
        if self.kind == "numeric":
            return 1 + int(self.indicator)
        return len(self.vocabulary) + 1


def _input_names(columns: Sequence[str]) -> list[str]:
    """Names TensorFlow accepts for signature inputs, unique: ``"unit price"`` → ``unit_price``."""
    names: list[str] = []
    for col in columns:
        base = re.sub(r"[^A-Za-z0-9_]", "_", col.strip()) or "column"
        base = base if base[0].isalpha() else f"c_{base}"
        name, n = base, 2
        while name in names:
            name, n = f"{base}_{n}", n + 1
        names.append(name)
    return names


@dataclass
class TableSpec:
    """The columns of a table and their encoding, fitted on the training split.

    Example:
        >>> rows = np.array([["red", "1"], ["blue", ""], ["red", "3"]], dtype=object)
        >>> spec = TableSpec.fit(["color", "size"], ["categorical", "numeric"], rows, 10)
        >>> [(c.name, c.kind, c.width) for c in spec.columns]
        [('color', 'categorical', 3), ('size', 'numeric', 2)]
        >>> spec.encode(np.array([["green", "?"]], dtype=object)).tolist()
        [[1.0, 0.0, 0.0, 0.0, 1.0]]
    """

    columns: list[Column]
    max_categories: int

    @classmethod
    def fit(
        cls, names: Sequence[str], kinds: Sequence[str], rows: np.ndarray, max_categories: int
    ) -> TableSpec:
        """Fit every column's encoding on ``rows`` (the training split, raw cells)."""
        columns = []
        for j, (name, kind, input_name) in enumerate(
            zip(names, kinds, _input_names(names), strict=True)
        ):
            cells = [str(v).strip() for v in rows[:, j]]
            gaps = sum(is_missing(v) for v in cells)
            col = Column(name, kind, input_name, missing_in_train=gaps)
            if kind == "numeric":
                _fit_numeric(col, cells)
            else:
                _fit_categorical(col, cells, max_categories)
            columns.append(col)
        return cls(columns, max_categories)

    @property
    def width(self) -> int:
        """Features of the encoded matrix."""
        return sum(c.width for c in self.columns)

    def encode(self, rows: np.ndarray) -> np.ndarray:
        """Raw cells (one row per sample, one column per feature) → the float32 matrix
        the network trains on (the same numbers the exported model's layers compute)."""
        parts = []
        for j, col in enumerate(self.columns):
            cells = [str(v).strip() for v in rows[:, j]]
            if col.kind == "numeric":
                values = _numbers(cells)
                gap = np.isnan(values)
                filled = np.where(gap, np.float32(col.median), values)
                parts.append(((filled - np.float32(col.mean)) / np.float32(col.std))[:, None])
                if col.indicator:
                    parts.append(gap.astype("float32")[:, None])
            else:
                index = {v: i + 1 for i, v in enumerate(col.vocabulary)}
                hot = np.zeros((len(cells), col.width), dtype="float32")
                hot[np.arange(len(cells)), [index.get(_category(v), 0) for v in cells]] = 1.0
                parts.append(hot)
        return np.concatenate(parts, axis=1).astype("float32")

    def inputs(self, rows: np.ndarray) -> dict[str, Any]:
        """Raw cells → the exported model's inputs: ``{input: (n, 1) tensor}``, a float
        (NaN for a gap) or a string (``""`` for a gap) per column."""
        import tensorflow as tf

        out: dict[str, Any] = {}
        for j, col in enumerate(self.columns):
            cells = [str(v).strip() for v in rows[:, j]]
            if col.kind == "numeric":
                out[col.input] = tf.constant(_numbers(cells, col.name)[:, None])
            else:
                out[col.input] = tf.constant([[_category(v)] for v in cells], dtype=tf.string)
        return out

    def keras_inputs(self) -> tuple[dict[str, keras.KerasTensor], keras.KerasTensor]:
        """The exported model's named inputs and the encoded features computed from them
        with built-in Keras layers and ops (``load_model`` needs no custom object)."""
        import keras

        inputs: dict[str, keras.KerasTensor] = {}
        parts = []
        for col in self.columns:
            if col.kind == "numeric":
                x = keras.Input(shape=(1,), dtype="float32", name=col.input)
                gap = keras.ops.isnan(x)
                filled = keras.ops.where(gap, float(col.median or 0.0), x)
                parts.append((filled - float(col.mean or 0.0)) / float(col.std or 1.0))
                if col.indicator:
                    parts.append(keras.ops.cast(gap, "float32"))
            else:
                x = keras.Input(shape=(1,), dtype="string", name=col.input)
                lookup = keras.layers.StringLookup(
                    vocabulary=col.vocabulary,
                    num_oov_indices=1,
                    output_mode="one_hot",
                    name=f"{col.input}_onehot",
                )
                parts.append(lookup(x))
            inputs[col.input] = x
        encoded = keras.layers.Concatenate(name="table_features")(parts)
        return inputs, encoded

    def to_dict(self) -> dict[str, Any]:
        """JSON values (the model card's ``data.table``)."""
        return {
            "missing_values": [v or "(empty)" for v in MISSING],
            "max_categories": self.max_categories,
            "columns": [asdict(c) for c in self.columns],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableSpec:
        """Read back :meth:`to_dict`'s values."""
        return cls([Column(**c) for c in data["columns"]], int(data["max_categories"]))

    def summary(self) -> dict[str, Any]:
        """A short description (stored on the study): columns, kinds, vocabulary sizes."""
        return {
            "columns": {
                c.name: c.kind if c.kind == "numeric" else f"categorical ({len(c.vocabulary)})"
                for c in self.columns
            },
            "width": self.width,
        }

    def describe(self) -> str:
        """The preprocessing in words (the card's ``data.preprocessing``)."""
        numeric = [c for c in self.columns if c.kind == "numeric"]
        categorical = [c for c in self.columns if c.kind == "categorical"]
        return (
            f"a table of {len(self.columns)} named inputs, one per column: "
            f"{len(numeric)} numeric (gaps imputed with the training median, a missing "
            "indicator where training had gaps, then standardized with the training mean "
            f"and std) and {len(categorical)} categorical (one-hot over at most "
            f"{self.max_categories} training values plus an out-of-vocabulary bucket for "
            "unseen values; a gap is its own category), inside the model"
        )


def _category(cell: str) -> str:
    return "" if is_missing(cell) else cell


def _numbers(cells: Sequence[str], name: str = "") -> np.ndarray:
    """Cells of a numeric column as float32, NaN for gaps.

    Raises:
        TableError: a cell that is neither a number nor a gap.
    """
    out = np.empty(len(cells), dtype="float32")
    for i, v in enumerate(cells):
        if is_missing(v):
            out[i] = np.nan
            continue
        try:
            out[i] = float(v)
        except ValueError:
            raise TableError(f"column {name!r}, row {i + 1}: {v!r} is not a number") from None
    return out


def _fit_numeric(col: Column, cells: Sequence[str]) -> None:
    values = _numbers(cells).astype("float64")
    seen = values[~np.isnan(values)]
    if len(seen) == 0:  # gaps only in the training split: impute 0, keep the indicator
        col.median, col.mean, col.std = 0.0, 0.0, 1.0
    else:
        std = float(seen.std())
        col.median, col.mean = float(np.median(seen)), float(seen.mean())
        col.std = std if std > 0 else 1.0
    col.indicator = col.missing_in_train > 0


def _fit_categorical(col: Column, cells: Sequence[str], max_categories: int) -> None:
    counts = Counter(_category(v) for v in cells)
    ranked = sorted(counts, key=lambda v: (-counts[v], v))
    col.vocabulary = ranked[:max_categories]
    col.categories_in_train = len(counts)


def column_kinds(
    names: Sequence[str],
    rows: Sequence[Sequence[str]],
    categorical: Sequence[str] = (),
    numeric: Sequence[str] = (),
) -> list[str]:
    """Each column's kind (see the module's docstring).

    Raises:
        TableError: a column named twice or with no value at all, an override naming
            no column or both kinds, or a ``numeric`` column holding a word.
    """
    for what, given in (("categorical", categorical), ("numeric", numeric)):
        unknown = [c for c in given if c not in names]
        if unknown:
            raise TableError(f"data.{what}: no column {unknown[0]!r} among the features")
    twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if twice is not None:
        raise TableError(f"column {twice!r} appears twice in the header")
    both = set(categorical) & set(numeric)
    if both:
        raise TableError(f"column {sorted(both)[0]!r} is in both data.categorical and data.numeric")
    kinds = []
    for j, name in enumerate(names):
        if all(is_missing(r[j]) for r in rows):
            raise TableError(f"column {name!r} has no value (every cell is missing)")
        word = next((i for i, r in enumerate(rows) if not _number_or_gap(r[j])), None)
        if name in numeric and word is not None:
            raise TableError(
                f"column {name!r} is listed in data.numeric but line {word + 2} has "
                f"{rows[word][j].strip()!r}"
            )
        kinds.append("categorical" if name in categorical or word is not None else "numeric")
    return kinds
