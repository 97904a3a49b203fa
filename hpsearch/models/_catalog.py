"""The hyperparameters each model family understands (no TensorFlow import here).

The catalog is data: names, kinds, defaults, allowed values and the conditions under
which a parameter is used (``active_if``). ``hpsearch.space`` checks study files
against it and the builders read their parameters from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

OPTIMIZERS = ("sgd", "rmsprop", "adam", "adamax", "nadam")
LR_SCHEDULES = ("constant", "cosine")
ACTIVATIONS = ("relu", "tanh", "sigmoid", "elu", "selu", "gelu", "swish", "leaky_relu")
INITIALIZERS = (
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "orthogonal",
    "random_normal",
    "random_uniform",
)


@dataclass(frozen=True)
class Condition:
    """A parameter is active only while ``param`` takes one of ``values``.

    >>> sgd_only = Condition("optimizer", ("sgd",))
    >>> [sgd_only.holds(p) for p in ({"optimizer": "sgd"}, {"optimizer": "adam"}, {})]
    [True, False, False]
    """

    param: str
    values: tuple[Any, ...]

    def holds(self, params: Mapping[str, Any]) -> bool:
        """Whether ``params`` (the active values chosen so far) meet the condition."""
        return self.param in params and params[self.param] in self.values

    def values_text(self) -> str:
        """The allowed values in words: ``sgd``, ``sgd or rmsprop``."""
        return " or ".join(map(str, self.values))


def fit_to_depth(value: Any, depth: int) -> list[Any]:
    """A per-layer value as one value per layer: a list is cut to ``depth``, a single
    value repeated (the builders' half of the per-layer codec in :mod:`hpsearch.space`,
    kept here so that the models layer below the space can use it).

    >>> fit_to_depth([64, 32, 16], 2), fit_to_depth(8, 3)
    ([64, 32], [8, 8, 8])
    """
    return list(value)[:depth] if isinstance(value, list | tuple) else [value] * depth


@dataclass(frozen=True)
class ParamDef:
    """What one hyperparameter accepts."""

    kind: Literal["int", "float", "str", "bool"]
    default: Any
    doc: str
    low: float | None = None
    high: float | None = None
    high_exclusive: bool = False
    choices: tuple[str, ...] | None = None
    per_layer: bool = False
    keras_default: bool = False  # the string "default" stands for Keras' own default
    active_if: tuple[Condition, ...] = ()  # searched and used only while all of these hold

    def allowed(self) -> str:
        """Describe the allowed values in words, for error messages."""
        if self.keras_default:
            return (
                ParamDef(
                    self.kind,
                    self.default,
                    self.doc,
                    self.low,
                    self.high,
                    self.high_exclusive,
                    self.choices,
                ).allowed()
                + ", or default"
            )
        if self.choices is not None:
            return "one of " + ", ".join(self.choices)
        if self.kind == "bool":
            return "true or false"
        kind = "an integer" if self.kind == "int" else "a number"
        if self.low is not None and self.high is not None:
            close = ")" if self.high_exclusive else "]"
            return f"{kind} in [{self.low:g}, {self.high:g}{close}"
        if self.low is not None:
            return f"{kind} >= {self.low:g}"
        return kind

    def check(self, value: Any) -> bool:
        """Return True if ``value`` is allowed."""
        if self.keras_default and value == "default":
            return True
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "str":
            return isinstance(value, str) and (self.choices is None or value in self.choices)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.kind == "int" and not isinstance(value, int):
            return False
        if self.low is not None and value < self.low:
            return False
        if self.high is not None:
            if self.high_exclusive and value >= self.high:
                return False
            if value > self.high:
                return False
        return True


TRAINING: dict[str, ParamDef] = {
    "optimizer": ParamDef("str", "adam", "optimizer", choices=OPTIMIZERS),
    "learning_rate": ParamDef(
        "float",
        1e-3,
        "learning rate (default: the optimizer's own)",
        low=1e-12,
        high=10.0,
        keras_default=True,
    ),
    "momentum": ParamDef(
        "float",
        0.9,
        "momentum (sgd only)",
        low=0.0,
        high=1.0,
        high_exclusive=True,
        active_if=(Condition("optimizer", ("sgd",)),),
    ),
    "beta_1": ParamDef(
        "float",
        0.9,
        "Adam-family first-moment decay (adam, adamax, nadam only)",
        low=0.0,
        high=1.0,
        high_exclusive=True,
        active_if=(Condition("optimizer", ("adam", "adamax", "nadam")),),
    ),
    "batch_size": ParamDef("int", 128, "batch size", low=1),
    "epochs": ParamDef("int", 10, "training epochs", low=1),
    "patience": ParamDef("int", 0, "early-stopping patience in epochs (0: off)", low=0),
    "chance_patience": ParamDef(
        "int",
        0,
        "stop a trial whose validation accuracy has been no better than always answering the "
        "most common class for this many epochs in a row, at its first such epoch without "
        "improvement (0: off)",
        low=0,
    ),
    "lr_schedule": ParamDef(
        "str",
        "constant",
        "learning rate over training: constant, or cosine (decays to 0 by the last epoch)",
        choices=LR_SCHEDULES,
    ),
}

LOSSES = ("mse", "mae", "huber")

REGRESSION_TRAINING: dict[str, ParamDef] = {
    # a regression's only: a classification trains with sparse categorical cross-entropy
    "loss": ParamDef(
        "str",
        "mse",
        "training loss of a regression: mse, mae or huber (Keras' Huber, delta 1, in the "
        "units the network learns: standardized ones with data.standardize_target)",
        choices=LOSSES,
    ),
}


def training_params(task: str = "classification") -> dict[str, ParamDef]:
    """The training parameters of a study of ``task``: a regression adds ``loss``.

    >>> "loss" in training_params("regression"), "loss" in training_params()
    (True, False)
    """
    return {**TRAINING, **(REGRESSION_TRAINING if task == "regression" else {})}


_COMMON: dict[str, ParamDef] = {
    "activation": ParamDef("str", "relu", "hidden activation", choices=ACTIVATIONS),
    "batch_norm": ParamDef("bool", False, "batch normalization after each hidden layer"),
    "kernel_initializer": ParamDef("str", "glorot_uniform", "weight init", choices=INITIALIZERS),
    "l2": ParamDef("float", 0.0, "L2 weight penalty", low=0.0),
}

MLP: dict[str, ParamDef] = {
    "depth": ParamDef("int", 2, "hidden layers", low=1, high=64),
    "width": ParamDef("int", 128, "units per hidden layer", low=1, per_layer=True),
    "dropout": ParamDef(
        "float",
        0.0,
        "dropout after each hidden layer",
        low=0.0,
        high=1.0,
        high_exclusive=True,
        per_layer=True,
    ),
    **_COMMON,
}

CNN: dict[str, ParamDef] = {
    "blocks": ParamDef("int", 2, "convolution blocks", low=1, high=16),
    "filters": ParamDef("int", 32, "filters per block", low=1, per_layer=True),
    "kernel_size": ParamDef("int", 3, "kernel size", low=1, per_layer=True),
    "strides": ParamDef("int", 1, "convolution stride", low=1, per_layer=True),
    "pooling": ParamDef("str", "max", "pooling after each block", choices=("max", "avg", "none")),
    "pool_size": ParamDef("int", 2, "pooling window", low=1),
    "padding": ParamDef("str", "same", "convolution padding", choices=("same", "valid")),
    "conv_dropout": ParamDef(
        "float", 0.0, "dropout after each block", low=0.0, high=1.0, high_exclusive=True
    ),
    "dense_width": ParamDef("int", 128, "units of the dense head (0: none)", low=0),
    "dropout": ParamDef(
        "float", 0.0, "dropout before the output layer", low=0.0, high=1.0, high_exclusive=True
    ),
    "augment_translate": ParamDef(
        "float",
        0.0,
        "random shifts of the training images, as a fraction of their height and width "
        "(0: off; shifted-in pixels are 0)",
        low=0.0,
        high=1.0,
        high_exclusive=True,
    ),
    "augment_rotate": ParamDef(
        "float",
        0.0,
        "random rotations of the training images, as a fraction of a full turn (0: off)",
        low=0.0,
        high=1.0,
        high_exclusive=True,
    ),
    **_COMMON,
}


@dataclass(frozen=True)
class Family:
    """A model family: its own parameters and the one that sets the layer count."""

    name: str
    params: dict[str, ParamDef] = field(default_factory=dict)
    depth_param: str | None = None
    needs_images: bool = False
    task: str = "classification"  # a regression's families take ``loss`` too

    @property
    def is_user(self) -> bool:
        return ":" in self.name

    def all_params(self) -> dict[str, ParamDef]:
        return {**training_params(self.task), **self.params}


BUILTIN_FAMILIES: dict[str, Family] = {
    "mlp": Family("mlp", MLP, depth_param="depth"),
    "cnn": Family("cnn", CNN, depth_param="blocks", needs_images=True),
}


def get_family(name: str, task: str = "classification") -> Family:
    """Return the family for ``name`` in a study of ``task``; a ``module:function`` name
    is a user builder."""
    from dataclasses import replace

    if name in BUILTIN_FAMILIES:
        return replace(BUILTIN_FAMILIES[name], task=task)
    return Family(name, task=task)
