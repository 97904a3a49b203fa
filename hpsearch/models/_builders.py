"""Keras model builders (imports Keras: load only when training).

A user builder (``model.family: package.module:function``) is called in one of the
styles of ``model.api`` (see :mod:`hpsearch.models._hp`): ``params`` as
``fn(params, input_shape=..., num_classes=...)``; ``keras_tuner`` as ``fn(hp)`` or
``HyperModel().build(hp)``; ``optuna`` as ``fn(trial)``. The last two declare their own
parameters while they build: :func:`sample_builder` builds once on a live Optuna trial
and returns what the builder sampled; :func:`build_model` builds a trial's model again
from its stored values (the search trains that second build, so that a re-training
from the stored values and seed, as export does, gives the same network).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import keras

from hpsearch.exceptions import SetupError
from hpsearch.models._catalog import fit_to_depth
from hpsearch.models._hp import (
    Api,
    HyperParameters,
    ReplayTrial,
    TrialProxy,
    builder_target,
    detect_api,
)


def _regularizer(l2: float) -> keras.regularizers.Regularizer | None:
    return keras.regularizers.L2(l2) if l2 else None


def _output(x: Any, num_classes: int) -> Any:
    """The output layer: softmax over the classes, or for a regression (one output,
    ``num_classes == 1``) one linear unit."""
    if num_classes == 1:
        return keras.layers.Dense(1, name="value")(x)
    return keras.layers.Dense(num_classes, activation="softmax")(x)


def _task_of(num_classes: int) -> str:
    return "regression" if num_classes == 1 else "classification"


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
    return keras.Model(inputs, _output(x, num_classes), name="mlp")


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
    return keras.Model(inputs, _output(x, num_classes), name="cnn")


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


def load_callable(
    target: str, path: str = "model.family", *, hypermodel: bool = False
) -> Callable[..., Any]:
    """Import ``package.module:function``; with ``hypermodel``, an object with a
    ``build`` method (a KerasTuner HyperModel instance) is taken too.

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
    if not callable(obj) and not (hypermodel and callable(getattr(obj, "build", None))):
        raise SetupError(
            f"module {module_name!r} has no function {func!r}",
            path=path,
            value=target,
            has_value=True,
        )
    return obj  # type: ignore[return-value]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


_CALL = "fn(params, input_shape=..., num_classes=...) (the last two may be left out)"


def builder_api(family: str, api: str = "auto") -> Api:
    """The style a family's builder is called in (``params`` for the built-in ones).

    Raises:
        SetupError: the builder cannot be imported.
    """
    if family in BUILDERS:
        return "params"
    return detect_api(load_callable(family, hypermodel=True), api)


def build_model(
    family: str,
    params: Mapping[str, Any],
    input_shape: Sequence[int],
    num_classes: int,
    *,
    api: str = "auto",
) -> keras.Model:
    """Build the model for one trial.

    A ``params``-style user builder is called as ``fn(params, input_shape=...,
    num_classes=...)``; keyword arguments it does not declare are left out, so
    ``def build(params)`` works too. A define-by-run builder (``api``: see
    :func:`builder_api`) gets an ``hp`` or ``trial`` that answers every declaration
    from ``params`` (a stored trial's values: the study file's and the builder's).
    It may return a compiled model (kept as is) or an uncompiled one (compiled with
    the trial's optimizer).

    Raises:
        SetupError: a user builder whose signature cannot take that call, or that
            returned something other than a ``keras.Model`` (every trial would fail
            the same way). Whatever else the builder raises is that trial's failure
            (a replay asking for a value the trial does not have is a ValueError).
    """
    if family in BUILDERS:
        return BUILDERS[family](params, input_shape, num_classes)
    obj = load_callable(family, hypermodel=True)
    style = detect_api(obj, api)
    if style != "params":
        replay = ReplayTrial(params)
        handle = _handle(style, replay, params, owned=None)
        return _build_define_by_run(family, obj, style, handle, input_shape, num_classes)
    fn = obj
    kwargs: dict[str, Any] = {
        "input_shape": tuple(input_shape),
        "num_classes": num_classes,
        "task": _task_of(num_classes),
    }
    try:
        sig: inspect.Signature | None = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin or C callable: just call it
        sig = None
    kwargs = _bind(family, fn, sig, dict(params), kwargs, _CALL)
    return _checked_model(family, lambda: fn(dict(params), **kwargs))


def _bind(
    family: str,
    fn: Callable[..., Any],
    sig: inspect.Signature | None,
    first: Any,
    kwargs: dict[str, Any],
    call: str,
) -> dict[str, Any]:
    """The keyword arguments ``fn`` takes of ``kwargs``; SetupError if it cannot be
    called with ``first`` and them."""
    if sig is None:
        return kwargs
    if not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in sig.parameters}
    try:
        sig.bind(first, **kwargs)
    except TypeError as exc:
        raise SetupError(
            f"the builder cannot be called as {call}: {exc}",
            path="model.family",
            value=family,
            has_value=True,
        ) from None
    return kwargs


def _checked_model(family: str, call: Callable[[], Any]) -> keras.Model:
    """Run the builder; its SetupError names the builder; it must return a model."""
    try:
        model = call()
    except SetupError as exc:  # raised by the builder itself (or by hp): name the builder
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


_CALLS = {
    "keras_tuner": "fn(hp) or HyperModel().build(hp) (KerasTuner style; a function gets "
    "input_shape= and num_classes= too if it declares them)",
    "optuna": "fn(trial) (Optuna style; a function gets input_shape= and num_classes= too "
    "if it declares them)",
}


def _handle(
    style: Api, trial: Any, given: Mapping[str, Any], owned: Collection[str] | None
) -> HyperParameters | TrialProxy:
    if style == "keras_tuner":
        return HyperParameters(trial, given=given, owned=owned)
    return TrialProxy(trial, given=given, owned=owned)


def _build_define_by_run(
    family: str,
    obj: Any,
    style: Api,
    handle: HyperParameters | TrialProxy,
    input_shape: Sequence[int],
    num_classes: int,
) -> keras.Model:
    try:
        target = builder_target(obj, style)
    except SetupError as exc:
        raise SetupError(exc.reason, path="model.family", value=family, has_value=True) from None
    # a function may take input_shape= and num_classes=; a HyperModel's build(hp) takes
    # hp only (KerasTuner's own wraps it in build(hp, *args, **kwargs))
    kwargs: dict[str, Any] = (
        {
            "input_shape": tuple(input_shape),
            "num_classes": num_classes,
            "task": _task_of(num_classes),
        }
        if target is obj
        else {}
    )
    try:
        sig: inspect.Signature | None = inspect.signature(target)
    except (TypeError, ValueError):
        sig = None
    kwargs = _bind(family, target, sig, handle, kwargs, _CALLS[style])
    return _checked_model(family, lambda: target(handle, **kwargs))


def sample_builder(
    family: str,
    trial: Any,
    params: Mapping[str, Any],
    owned: Collection[str],
    input_shape: Sequence[int],
    num_classes: int,
    *,
    api: str = "auto",
) -> dict[str, Any] | None:
    """Build a define-by-run builder's model once on a live Optuna ``trial``, so that
    what it declares is suggested on the trial; the values it got (those of names the
    study file does not own). None for a ``params``-style builder (nothing is built).

    ``params`` are the trial's study-file values (``hp.get``, ``hp.values``); a name
    in ``owned`` (the study file's ``space``) is answered with its value, never sampled.

    Raises:
        SetupError: see :func:`build_model`; a bad ``hp`` argument is one too.
    """
    if family in BUILDERS:
        return None
    obj = load_callable(family, hypermodel=True)
    style = detect_api(obj, api)
    if style == "params":
        return None
    handle = _handle(style, trial, params, owned)
    _build_define_by_run(family, obj, style, handle, input_shape, num_classes)
    return dict(handle.declared)


def check_builder(
    family: str,
    params: Mapping[str, Any],
    input_shape: Sequence[int],
    num_classes: int,
    *,
    api: str = "auto",
    owned: Collection[str] = (),
) -> None:
    """Build a user builder's model once, before a run writes anything.

    A set-up error (see :func:`build_model`) stops the run with nothing written; any
    other exception is left for the trials, since a builder may refuse some values
    only. Built-in families are not checked. A define-by-run builder gets every
    parameter it declares at its default (KerasTuner's) or low end / first value
    (Optuna's), the study file's ``owned`` names at ``params``' values.

    Raises:
        SetupError: the builder cannot be imported or called, returns no model, or
            calls ``hp`` with bad arguments.
    """
    if family in BUILDERS:
        return
    try:
        obj = load_callable(family, hypermodel=True)
        style = detect_api(obj, api)
        if style == "params":
            build_model(family, params, input_shape, num_classes)
        else:
            handle = _handle(style, None, params, owned)
            _build_define_by_run(family, obj, style, handle, input_shape, num_classes)
    except SetupError:
        raise
    except Exception:  # noqa: S110 - this builder fails for these values: a trial's failure
        pass
    finally:
        keras.backend.clear_session(free_memory=False)
