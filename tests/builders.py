"""User builders for the tests (``model.family: builders:NAME``)."""

from __future__ import annotations

from typing import Any

import keras


def poisonable(
    params: dict[str, Any], input_shape: tuple[int, ...], num_classes: int
) -> keras.Model:
    """A small MLP whose outputs become NaN when ``params['poison']`` is 1."""
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(int(params.get("units", 16)), activation="relu")(x)
    if params["poison"]:
        x = keras.layers.Lambda(lambda t: t * float("nan"))(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def compiled(params: dict[str, Any]) -> keras.Model:
    """A builder that takes only ``params`` and compiles the model itself."""
    model = keras.Sequential(
        [
            keras.Input(shape=(8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(int(params["units"]), activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def flaky(params: dict[str, Any], input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """A small MLP that cannot be built while ``FLAKY_FAIL=1`` and units is odd."""
    import os

    if os.environ.get("FLAKY_FAIL") == "1" and int(params["units"]) % 2:
        raise RuntimeError("flaky: odd units refused while FLAKY_FAIL=1")
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(int(params["units"]), activation="relu")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def returns_none(params: dict[str, Any], input_shape: tuple[int, ...], num_classes: int) -> Any:
    """A broken builder: forgets to return the model."""
    keras.Sequential([keras.Input(shape=input_shape), keras.layers.Dense(num_classes)])


def wrong_signature(params: Any, input_shape: Any, num_classes: Any, depth: int) -> keras.Model:
    """A broken builder: needs an argument hpsearch does not pass."""
    raise AssertionError("never called")


def always_raises(params: dict[str, Any], input_shape: tuple[int, ...], num_classes: int) -> Any:
    """A builder that fails for every value (each trial fails on its own)."""
    raise ValueError("no model for you")


def no_model_for_wide(
    params: dict[str, Any], input_shape: tuple[int, ...], num_classes: int
) -> Any:
    """Returns a model for ``units`` 4 and a string for any other value (a set-up error
    found only at a later trial)."""
    if int(params["units"]) != 4:
        return "not a model"
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))


def gives_up(params: dict[str, Any], input_shape: tuple[int, ...], num_classes: int) -> Any:
    """Raises hpsearch's SetupError itself (KerasTuner's FatalError)."""
    import hpsearch

    raise hpsearch.SetupError("the GPU this builder wants is not there")


not_callable = 42
