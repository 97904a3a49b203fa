"""A regression's Keras pieces: its losses, its metrics in the target's own units, and
the fixed layer that undoes a standardized target in an exported model.

With ``data.standardize_target`` the network learns ``(y - mean) / std``; the metrics
compiled here multiply the errors back by ``std``, so ``val_mae`` and ``val_rmse`` (what
the progress lines, ``hpsearch best`` and the objective read) are in the target's units.
``val_loss`` stays in the units the network learns. Imported lazily (Keras).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

__all__ = [
    "plain_regression_metrics",
    "regression_loss",
    "regression_metrics",
    "target_scale_layer",
]


def regression_loss(name: str) -> Any:
    """The Keras loss for ``loss`` (mse, mae or huber)."""
    if name == "huber":
        return keras.losses.Huber(name="huber")
    return {"mse": "mean_squared_error", "mae": "mean_absolute_error"}[name]


@keras.saving.register_keras_serializable(package="hpsearch")
class ScaledMAE(keras.metrics.MeanMetricWrapper):
    """Mean absolute error times ``scale`` (a standardized target's std)."""

    def __init__(self, scale: float = 1.0, name: str = "mae", dtype: Any = None) -> None:
        self.scale = float(scale)
        super().__init__(self._error, name=name, dtype=dtype)

    def _error(self, y_true: Any, y_pred: Any) -> Any:
        y_true = keras.ops.reshape(keras.ops.cast(y_true, y_pred.dtype), keras.ops.shape(y_pred))
        return keras.ops.mean(keras.ops.abs(y_true - y_pred), axis=-1) * self.scale

    def get_config(self) -> dict[str, Any]:
        return {"scale": self.scale, "name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="hpsearch")
class ScaledRMSE(keras.metrics.RootMeanSquaredError):
    """Root mean squared error times ``scale`` (a standardized target's std)."""

    def __init__(self, scale: float = 1.0, name: str = "rmse", dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)
        self.scale = float(scale)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        y_pred = keras.ops.cast(y_pred, self.dtype)
        y_true = keras.ops.reshape(keras.ops.cast(y_true, self.dtype), keras.ops.shape(y_pred))
        return super().update_state(y_true * self.scale, y_pred * self.scale, sample_weight)

    def get_config(self) -> dict[str, Any]:
        return {"scale": self.scale, "name": self.name, "dtype": self.dtype}


def regression_metrics(target: Mapping[str, float] | None) -> list[keras.metrics.Metric]:
    """``mae`` and ``rmse`` in the target's units (``target``: the standardization, or
    None when the network learns the target as it is)."""
    scale = float(target["std"]) if target else 1.0
    return [ScaledMAE(scale), ScaledRMSE(scale)]


def target_scale_layer(target: Mapping[str, float]) -> keras.layers.Layer:
    """``y * std + mean``: the last layer of an exported model trained on a standardized
    target, so that it answers in the target's units. A frozen one-unit ``Dense`` (Keras'
    own layer, so that plain ``keras.models.load_model`` reads it and ONNX exports it;
    ``Rescaling`` mangled a (None, 1) output in ``predict``)."""
    import numpy as np

    return keras.layers.Dense(
        1,
        name="target_scale",
        trainable=False,
        kernel_initializer=keras.initializers.Constant(np.float32(target["std"])),
        bias_initializer=keras.initializers.Constant(np.float32(target["mean"])),
    )


def plain_regression_metrics() -> list[keras.metrics.Metric]:
    """``mae`` and ``rmse`` as Keras' own metrics, for an exported model (loadable
    without hpsearch)."""
    return [
        keras.metrics.MeanAbsoluteError(name="mae"),
        keras.metrics.RootMeanSquaredError(name="rmse"),
    ]
