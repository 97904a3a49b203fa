"""Data a user's code hands over: a loader function named in the study file
(``data: {name: package.module:function}``) and arrays passed to the Python API
(``hpsearch.run(study, data=(x, y))``).

Both accept the same forms (:func:`to_raw`): ``(x, y)``, ``(x_train, y_train, x_test,
y_test)``, ``((x_train, y_train), (x_test, y_test))`` (``keras.datasets``' layout), a
dict with ``x``/``y`` or ``x_train``/``y_train`` (and optionally ``x_test``/``y_test``,
``class_names``), an :class:`Arrays`, or a ``tf.data.Dataset`` of ``(x, y)`` elements,
batched or not, read into arrays (up to ``data.memory_limit_mb``).

Arrays passed to the API are registered under their fingerprint for as long as the call
that uses them runs (:func:`registered`): the study stores only the fingerprint
(``data.arrays``), so a process without the arrays (``hpsearch export`` from the command
line) says how to pass them instead of training on something else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpsearch.exceptions import ConfigError

__all__ = ["ARRAYS_HOWTO", "Arrays", "call_loader", "fingerprint_of", "registered", "to_raw"]

ARRAYS_HOWTO = (
    "arrays are passed from Python, not read from a file: hpsearch.run(study, data=(x, y)), "
    "and the same arrays to hpsearch.export_trial(study, data=(x, y))"
)

_FORMS = (
    "(x, y), (x_train, y_train, x_test, y_test), ((x_train, y_train), (x_test, y_test)), "
    "a dict with x/y or x_train/y_train (and x_test/y_test), or a tf.data.Dataset of (x, y)"
)


@dataclass(frozen=True)
class Arrays:
    """Arrays to run a study on (``hpsearch.run(study, data=hpsearch.Arrays(x, y))``).

    Attributes:
        x: the inputs, one sample per row (any shape after the first axis).
        y: the labels: class indices or names, one per sample.
        x_test: a test split kept for export (default: ``data.test`` of ``x``).
        y_test: its labels.
        class_names: names for the classes, in the order of the sorted labels.

    Example:
        >>> a = Arrays(np.zeros((4, 2)), np.array([0, 1, 0, 1]))
        >>> a.x.shape, a.x_test is None
        ((4, 2), True)
    """

    x: Any
    y: Any
    x_test: Any = None
    y_test: Any = None
    class_names: list[str] | None = None


def _describe(obj: Any) -> str:
    """What a loader returned, in a few words."""
    if isinstance(obj, tuple | list):
        inner = ", ".join(_describe_item(v) for v in obj[:5])
        return f"a {type(obj).__name__} of {len(obj)} ({inner})"
    if isinstance(obj, Mapping):
        return f"a dict with keys {', '.join(map(str, list(obj)[:8])) or '(none)'}"
    return _describe_item(obj)


def _describe_item(value: Any) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"{type(value).__name__} of shape {tuple(shape)}"
    return type(value).__name__


def _is_tf_dataset(obj: Any) -> bool:
    return type(obj).__module__.startswith("tensorflow") and hasattr(obj, "element_spec")


def to_raw(obj: Any, what: str, limit_mb: int) -> tuple[Any, ...]:
    """Read what a loader (or ``data=``) gave into ``(x, y, x_test, y_test, class_names)``.

    Args:
        obj: the returned value.
        what: who gave it, with a verb, for messages (``data loader 'm:f' returned``).
        limit_mb: the largest ``tf.data.Dataset`` read into memory, in MiB.

    Raises:
        ConfigError: a form or shape not accepted (the message names ``what`` and what
            it returned).
    """
    if isinstance(obj, Arrays):
        parts = (obj.x, obj.y, obj.x_test, obj.y_test, obj.class_names)
    elif _is_tf_dataset(obj):
        parts = (*_from_tf(obj, what, limit_mb), None, None, None)
    elif isinstance(obj, Mapping):
        parts = _from_dict(obj, what)
    elif isinstance(obj, tuple | list) and len(obj) == 2 and all(_is_pair(p) for p in obj):
        (xtr, ytr), (xte, yte) = obj
        parts = (xtr, ytr, xte, yte, None)
    elif isinstance(obj, tuple | list) and len(obj) in (2, 4):
        parts = (*obj, None, None, None)[:4] + (None,)
    else:
        raise _bad(what, obj, f"expected {_FORMS}")
    return _checked(parts, what, obj)


def _is_pair(value: Any) -> bool:
    return isinstance(value, tuple | list) and len(value) == 2


def _from_dict(obj: Mapping[str, Any], what: str) -> tuple[Any, ...]:
    keys = set(obj)
    allowed = {"x", "y", "x_train", "y_train", "x_test", "y_test", "class_names"}
    if not keys <= allowed or not ({"x", "y"} <= keys or {"x_train", "y_train"} <= keys):
        raise _bad(
            what,
            obj,
            "a dict needs x and y (or x_train and y_train), optionally "
            "x_test, y_test and class_names",
        )
    x = obj["x"] if "x" in obj else obj["x_train"]
    y = obj["y"] if "y" in obj else obj["y_train"]
    names = obj.get("class_names")
    return x, y, obj.get("x_test"), obj.get("y_test"), list(names) if names else None


def _from_tf(dataset: Any, what: str, limit_mb: int) -> tuple[np.ndarray, np.ndarray]:
    """A ``tf.data.Dataset`` of ``(x, y)`` read into arrays: batched when its labels have a
    batch axis (a label per sample is a scalar), else stacked."""
    spec = dataset.element_spec
    if not (isinstance(spec, tuple) and len(spec) == 2):
        raise _bad(what, dataset, f"a tf.data.Dataset must give (x, y) elements, not {spec}")
    batched = len(spec[1].shape) >= 1
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    size = 0
    for x, y in dataset.as_numpy_iterator():
        xs.append(np.asarray(x))
        ys.append(np.asarray(y))
        size += xs[-1].nbytes
        if size > limit_mb * 2**20:
            raise ConfigError(
                f"{what} a tf.data.Dataset larger than data.memory_limit_mb="
                f"{limit_mb} MiB; datasets are read into memory: raise the limit",
                path="data.name",
            )
    if not xs:
        raise _bad(what, dataset, "the tf.data.Dataset is empty")
    if batched:
        return np.concatenate(xs), np.concatenate(ys)
    return np.stack(xs), np.stack(ys)


def _bad(what: str, obj: Any, why: str) -> ConfigError:
    return ConfigError(f"{what} {_describe(obj)}; {why}", path="data.name")


def _checked(parts: tuple[Any, ...], what: str, obj: Any) -> tuple[Any, ...]:
    x, y, x_test, y_test, names = parts
    if (x_test is None) != (y_test is None):
        raise _bad(what, obj, "give both x_test and y_test, or neither")
    out: list[Any] = []
    for xa, ya, split in ((x, y, "training"), (x_test, y_test, "test")):
        if xa is None:
            out += [None, None]
            continue
        xa, ya = _as_array(xa), _as_array(ya)
        if ya is not None and ya.ndim == 2 and ya.shape[1] == 1:
            ya = ya.reshape(-1)
        if xa is None or xa.dtype.kind not in "biuf" or xa.ndim < 2:
            raise _bad(
                what,
                obj,
                f"the {split} inputs must be a numeric array with one "
                "sample per row (2 or more dimensions)",
            )
        if ya is None or ya.ndim != 1 or ya.dtype.kind not in "biufUSO":
            raise _bad(
                what,
                obj,
                f"the {split} labels must be one target per sample (a class, as a number "
                "or a name, or a regression's value), a 1-D array",
            )
        if len(xa) != len(ya) or len(xa) == 0:
            raise _bad(what, obj, f"{len(xa)} {split} inputs but {len(ya)} labels")
        out += [xa, ya.astype(str) if ya.dtype.kind == "O" else ya]
    if out[2] is not None and out[2].shape[1:] != out[0].shape[1:]:
        raise _bad(what, obj, "the test inputs' shape differs from the training inputs'")
    return (*out, names)


def _as_array(value: Any) -> np.ndarray | None:
    try:
        return np.asarray(value.numpy() if hasattr(value, "numpy") else value)
    except (ValueError, TypeError):  # ragged lists, objects numpy cannot take
        return None


def call_loader(target: str, limit_mb: int) -> tuple[Any, ...]:
    """Import ``package.module:function``, call it with no arguments and read what it
    returns (:func:`to_raw`). The run has put the study's folder on ``sys.path``.

    Raises:
        ConfigError: the loader cannot be imported, raises, or returns a form not
            accepted; one line naming it.
    """
    from hpsearch.exceptions import SetupError
    from hpsearch.models._builders import load_callable

    what = f"data loader {target!r}"
    try:
        fn = load_callable(target, "data.name")
    except SetupError as exc:
        raise ConfigError(exc.reason, path="data.name", value=target, has_value=True) from None
    try:
        returned = fn()
    except Exception as exc:  # the user's code: one line, not a traceback
        text = (str(exc).strip().splitlines() or [""])[0][:300]
        raise ConfigError(
            f"{what} raised {type(exc).__name__}" + (f": {text}" if text else ""),
            path="data.name",
        ) from None
    return to_raw(returned, f"{what} returned", limit_mb)


# ------------------------------------------------------------------ the API's arrays
_REGISTERED: dict[str, tuple[Any, ...]] = {}


def fingerprint_of(parts: tuple[Any, ...]) -> str:
    """A hash of arrays as given (shapes, dtypes and bytes), 16 hex digits."""
    digest = hashlib.sha256()
    for a in parts[:4]:
        if a is not None:
            digest.update(f"{a.shape}{a.dtype.str}".encode())
            digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()[:16]


@contextmanager
def registered(data: Any, limit_mb: int = 2048) -> Iterator[str]:
    """Make ``data`` (any form :func:`to_raw` takes) loadable as ``data.name: arrays``
    while the block runs; yields its fingerprint.

    Raises:
        ConfigError: a form or shape not accepted.
    """
    try:
        parts = to_raw(data, "data= is", limit_mb)
    except ConfigError as exc:
        raise ConfigError(exc.reason, path="data") from None
    key = fingerprint_of(parts)
    _REGISTERED[key] = parts
    try:
        yield key
    finally:
        _REGISTERED.pop(key, None)


def registered_arrays(key: str | None) -> tuple[Any, ...]:
    """The arrays registered under ``key``.

    Raises:
        ConfigError: none are (a process that was not given them).
    """
    if key is None or key not in _REGISTERED:
        raise ConfigError(ARRAYS_HOWTO, path="data.name", value="arrays", has_value=True)
    return _REGISTERED[key]
