"""Objectives: which metric each trial returns, and in which direction.

Built in: Keras' ``val_accuracy``, ``val_loss``, ``accuracy``, ``loss``, and two
Keras-aware secondary objectives that need no user code: ``params`` (trainable
and non-trainable parameter count) and ``latency`` (measured inference time per
sample, in milliseconds). Any other name is a Keras metric, compiled into the
model (``val_top_k`` is the validation value of metric ``top_k``); it may be a
Keras metric identifier (``sparse_top_k_categorical_accuracy``) or a
``module:function`` metric.

A regression (``task: regression``) compiles ``mae`` and ``rmse`` (in the target's
units) instead of accuracy: its objectives are ``val_rmse`` (the default), ``val_mae``,
``val_loss`` and their training-set values, all minimized; accuracy means nothing there.
"""

from __future__ import annotations

from dataclasses import dataclass

from hpsearch.config._schema import ObjectiveConfig
from hpsearch.exceptions import ConfigError

__all__ = ["Objective", "check_task", "resolve_objectives"]

KERAS_BUILTIN = {"val_accuracy", "val_loss", "accuracy", "loss"}
REGRESSION_METRICS = {"val_mae", "val_rmse", "mae", "rmse"}  # compiled into every regression
REGRESSION_DEFAULT = "val_rmse"
MODEL_METRICS = {"params", "latency"}
_MINIMIZE_HINTS = ("loss", "error", "mse", "mae", "crossentropy", "params", "latency")


@dataclass(frozen=True)
class Objective:
    """A resolved objective."""

    metric: str
    direction: str

    @property
    def keras_metric(self) -> str | None:
        """The metric to compile into the model, if it is not built in."""
        if self.metric in KERAS_BUILTIN | MODEL_METRICS | REGRESSION_METRICS:
            return None
        if self.metric.startswith("cv_"):  # the scikit-learn engine's mean CV score
            return None
        return self.metric.removeprefix("val_")

    @property
    def per_epoch(self) -> bool:
        """Whether Keras reports this metric every epoch (so it can drive pruning)."""
        return self.metric not in MODEL_METRICS


def resolve_objectives(configs: list[ObjectiveConfig]) -> list[Objective]:
    """Fill in default directions and check the metric names.

    Example:
        >>> from hpsearch.config import ObjectiveConfig
        >>> resolve_objectives([ObjectiveConfig(metric="val_accuracy"),
        ...                     ObjectiveConfig(metric="params")])  # doctest: +NORMALIZE_WHITESPACE
        [Objective(metric='val_accuracy', direction='maximize'),
         Objective(metric='params', direction='minimize')]
        >>> top_k = resolve_objectives([ObjectiveConfig(metric="val_top_k")])[0]
        >>> top_k.direction, top_k.keras_metric  # compiled into the model as top_k
        ('maximize', 'top_k')
        >>> resolve_objectives([ObjectiveConfig(metric="latency")])
        Traceback (most recent call last):
        hpsearch.exceptions.ConfigError: objective.metric: got 'latency'; a single objective ...
    """
    out = []
    seen: set[str] = set()
    for i, cfg in enumerate(configs):
        path = "objective" if len(configs) == 1 else f"objective[{i}]"
        metric = cfg.metric.strip()
        if not metric:
            raise ConfigError("a metric name is required", path=f"{path}.metric")
        if metric in seen:
            raise ConfigError(
                "the same metric is listed twice",
                path=f"{path}.metric",
                value=metric,
                has_value=True,
            )
        seen.add(metric)
        direction = cfg.direction
        if direction is None:
            lowered = metric.lower()
            direction = "minimize" if any(h in lowered for h in _MINIMIZE_HINTS) else "maximize"
        out.append(Objective(metric, direction))
    if not out[0].per_epoch and len(out) == 1:
        raise ConfigError(
            "a single objective must be a training metric (val_accuracy, val_loss, ...); "
            "params and latency are secondary objectives",
            path="objective.metric",
            value=out[0].metric,
            has_value=True,
        )
    return out


def check_task(objectives: list[Objective], task: str) -> None:
    """Refuse objectives that mean nothing for ``task``: accuracy on a regression, a
    regression's ``val_mae``/``val_rmse`` on a classification.

    >>> check_task([Objective("val_rmse", "minimize")], "regression")
    >>> check_task([Objective("val_accuracy", "maximize")], "regression")
    Traceback (most recent call last):
    hpsearch.exceptions.ConfigError: objective.metric: got 'val_accuracy'; a regression ...
    """
    for i, obj in enumerate(objectives):
        path = "objective.metric" if len(objectives) == 1 else f"objective[{i}].metric"
        if task == "regression" and "accuracy" in obj.metric:
            raise ConfigError(
                "a regression has no accuracy; use val_rmse, val_mae or val_loss (minimized), "
                "with params or latency as secondary objectives",
                path=path,
                value=obj.metric,
                has_value=True,
            )
        if task != "regression" and obj.metric in REGRESSION_METRICS:
            raise ConfigError(
                "a regression metric, and this study is a classification; set task: "
                "regression for numeric targets, or use val_accuracy or val_loss",
                path=path,
                value=obj.metric,
                has_value=True,
            )
        if (
            task == "regression"
            and obj.metric in REGRESSION_METRICS
            and obj.direction == "maximize"
        ):
            raise ConfigError(
                "an error is minimized",
                path=path.replace("metric", "direction"),
                value="maximize",
                has_value=True,
            )
