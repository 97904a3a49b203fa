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
