"""Keras model builders (imports Keras: load only when training)."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras

from hpsearch.exceptions import SetupError
from hpsearch.models._catalog import fit_to_depth


def _regularizer(l2: float) -> keras.regularizers.Regularizer | None:
    return keras.regularizers.L2(l2) if l2 else None


def build_mlp(
    params: Mapping[str, Any], input_shape: Sequence[int], num_classes: int
) -> keras.Model:
    """Flatten -> [Dense -> (BatchNorm) -> Activation -> (Dropout)] x depth -> Dense softmax."""
    depth = int(params["depth"])
    widths = fit_to_depth(params["width"], depth)
    dropouts = fit_to_depth(params["dropout"], depth)
    inputs = keras.Input(shape=tuple(input_shape))
    x = keras.layers.Flatten()(inputs)
    for i in range(depth):
        x = keras.layers.Dense(
            int(widths[i]),
            kernel_initializer=params["kernel_initializer"],
            kernel_regularizer=_regularizer(params["l2"]),
            use_bias=not params["batch_norm"],
        )(x)
        if params["batch_norm"]:
            x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation(params["activation"])(x)
        if dropouts[i]:
            x = keras.layers.Dropout(float(dropouts[i]))(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="mlp")


def build_cnn(
    params: Mapping[str, Any], input_shape: Sequence[int], num_classes: int
) -> keras.Model:
    """(Augmentation) -> [Conv2D -> (BatchNorm) -> Activation -> Pool -> (Dropout)] x blocks
    -> Dense head.

    With padding ``valid`` each convolution needs a feature map at least as large as
    its kernel; strides, kernels and pooling that shrink the map below that raise
    ValueError naming the block (the trial fails with that reason).

    The augmentation layers act in training only: an exported model passes its inputs
    through them unchanged.
    """
    blocks = int(params["blocks"])
    filters = fit_to_depth(params["filters"], blocks)
    kernels = fit_to_depth(params["kernel_size"], blocks)
    strides = fit_to_depth(params.get("strides", 1), blocks)
    pool = {"max": keras.layers.MaxPooling2D, "avg": keras.layers.AveragePooling2D}.get(
        params["pooling"]
    )
    inputs = keras.Input(shape=tuple(input_shape))
    x = inputs
    translate = float(params["augment_translate"])
    rotate = float(params["augment_rotate"])
    if rotate:
        x = keras.layers.RandomRotation(rotate, fill_mode="constant", name="augment_rotate")(x)
    if translate:
        x = keras.layers.RandomTranslation(
            translate, translate, fill_mode="constant", name="augment_translate"
        )(x)
    for i in range(blocks):
        if params["padding"] == "valid":
            _check_kernel_fits(i + 1, int(kernels[i]), int(strides[i]), x.shape[1:3])
        x = keras.layers.Conv2D(
            int(filters[i]),
            int(kernels[i]),
            strides=int(strides[i]),
            padding=params["padding"],
            kernel_initializer=params["kernel_initializer"],
            kernel_regularizer=_regularizer(params["l2"]),
            use_bias=not params["batch_norm"],
        )(x)
        if params["batch_norm"]:
            x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation(params["activation"])(x)
        # pool only while the feature map is big enough, so deep stacks on small
        # images (digits is 8x8) stay valid instead of failing the trial
        if pool is not None and min(x.shape[1:3]) >= int(params["pool_size"]):
            x = pool(int(params["pool_size"]))(x)
        if params["conv_dropout"]:
            x = keras.layers.Dropout(float(params["conv_dropout"]))(x)
    x = keras.layers.Flatten()(x)
    if int(params["dense_width"]):
        x = keras.layers.Dense(
            int(params["dense_width"]),
            activation=params["activation"],
            kernel_initializer=params["kernel_initializer"],
            kernel_regularizer=_regularizer(params["l2"]),
        )(x)
    if params["dropout"]:
        x = keras.layers.Dropout(float(params["dropout"]))(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="cnn")


def _check_kernel_fits(block: int, kernel: int, stride: int, size: Sequence[int | None]) -> None:
    """Refuse a ``valid`` convolution whose kernel is larger than the feature map it
    gets (earlier strides, kernels and pooling left no room), before Keras' own
    "output size would be zero or negative".

    Raises:
        ValueError: the kernel does not fit; the message names the block.
    """
    height, width = size
    if height is None or width is None or min(height, width) >= kernel:
        return
    raise ValueError(
        f"block {block}: a {kernel}x{kernel} kernel with stride {stride} does not fit "
        f"the {height}x{width} feature map (padding valid)"
    )


BUILDERS: dict[str, Callable[..., keras.Model]] = {"mlp": build_mlp, "cnn": build_cnn}


def load_callable(target: str, path: str = "model.family") -> Callable[..., Any]:
    """Import ``package.module:function``.

    Raises:
        SetupError: the module cannot be imported (or raised while importing), or has
            no such function.
    """
    module_name, _, func = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SetupError(
            f"cannot import {module_name!r}: {exc}", path=path, value=target, has_value=True
        ) from None
    except Exception as exc:  # the user's module raised (or has a syntax error) on import
        raise SetupError(
            f"importing {module_name!r} raised {type(exc).__name__}: {_first_line(exc)}",
            path=path,
            value=target,
            has_value=True,
        ) from None
    obj = getattr(module, func, None)
    if not callable(obj):
        raise SetupError(
            f"module {module_name!r} has no function {func!r}",
            path=path,
            value=target,
            has_value=True,
        )
    return obj


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


_CALL = "fn(params, input_shape=..., num_classes=...) (the last two may be left out)"


def build_model(
    family: str, params: Mapping[str, Any], input_shape: Sequence[int], num_classes: int
) -> keras.Model:
    """Build the model for one trial.

    A user builder is called as ``fn(params, input_shape=..., num_classes=...)``;
    keyword arguments it does not declare are left out, so ``def build(params)``
    works too. It may return a compiled model (kept as is) or an uncompiled one
    (compiled with the trial's optimizer).

    Raises:
        SetupError: a user builder whose signature cannot take that call, or that
            returned something other than a ``keras.Model`` (every trial would fail
            the same way). Whatever else the builder raises is that trial's failure.
    """
    if family in BUILDERS:
        return BUILDERS[family](params, input_shape, num_classes)
    fn = load_callable(family)
    kwargs: dict[str, Any] = {"input_shape": tuple(input_shape), "num_classes": num_classes}
    try:
        sig: inspect.Signature | None = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin or C callable: just call it
        sig = None
    if sig is not None:
        if not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
            kwargs = {k: v for k, v in kwargs.items() if k in sig.parameters}
        try:
            sig.bind(dict(params), **kwargs)
        except TypeError as exc:
            raise SetupError(
                f"the builder cannot be called as {_CALL}: {exc}",
                path="model.family",
                value=family,
                has_value=True,
            ) from None
    try:
        model = fn(dict(params), **kwargs)
    except SetupError as exc:  # raised by the builder itself: name the builder
        if exc.path is not None:
            raise
        raise SetupError(exc.reason, path="model.family", value=family, has_value=True) from None
    if not isinstance(model, keras.Model):
        raise SetupError(
            f"the builder returned {type(model).__name__}, not a keras.Model",
            path="model.family",
            value=family,
            has_value=True,
        )
    return model


def check_builder(
    family: str, params: Mapping[str, Any], input_shape: Sequence[int], num_classes: int
) -> None:
    """Build a user builder's model once, before a run writes anything.

    A set-up error (see :func:`build_model`) stops the run with nothing written; any
    other exception is left for the trials, since a builder may refuse some values
    only. Built-in families are not checked.

    Raises:
        SetupError: the builder cannot be imported or called, or returns no model.
    """
    if family in BUILDERS:
        return
    try:
        build_model(family, params, input_shape, num_classes)
    except SetupError:
        raise
    except Exception:  # noqa: S110 - this builder fails for these values: a trial's failure
        pass
    finally:
        keras.backend.clear_session(free_memory=False)
