"""Builders that declare their own parameters, for tests/test_define_by_run.py.

Nothing here imports keras_tuner: the KerasTuner-style builders must run without it.
"""

from __future__ import annotations

import os
from typing import Any

import keras


def kt_arch(hp: Any) -> keras.Model:
    """A KerasTuner ``build_model(hp)``: a choice of architecture, a conditional block
    with one ``units_i`` per layer, and a learning rate the study file leaves alone."""
    assert hp.get("epochs") >= 1 and "batch_size" in hp  # the study file's parameters
    arch = hp.Choice("arch", ["shallow", "deep"])
    model = keras.Sequential([keras.Input(shape=(8, 8, 1)), keras.layers.Flatten()])
    with hp.conditional_scope("arch", ["shallow"]):
        width = hp.Int("width", 16, 64, step=16)
        if arch == "shallow":
            model.add(keras.layers.Dense(width, activation="relu"))
    with hp.conditional_scope("arch", ["deep"]):
        if arch == "deep":
            for i in range(hp.Int("layers", 1, 3)):
                units = hp.Int(f"units_{i}", 8, 32, step=8)
                model.add(keras.layers.Dense(units, activation="relu"))
    hp.Float("learning_rate", 1e-3, 3e-2, sampling="log")  # compiled with by hpsearch
    model.add(keras.layers.Dense(10, activation="softmax"))
    return model


def optuna_mlp(trial: Any, input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """An Optuna-style builder; fails for odd units while ``DBR_FAIL=1`` (retry tests)."""
    units = trial.suggest_int("units", 4, 32, log=True)
    activation = trial.suggest_categorical("activation", ["relu", "tanh"])
    if os.environ.get("DBR_FAIL") == "1" and units % 2:
        raise RuntimeError(f"odd units refused while DBR_FAIL=1: {units}")
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(units, activation=activation)(x)
    if trial.suggest_float("dropout", 0.0, 0.3) > 0.15:
        x = keras.layers.Dropout(0.2)(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))


def _tiny(hp: Any) -> keras.Model:
    return keras.Sequential(
        [keras.Input(shape=(8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]
    )


def int_min_above_max(hp: Any) -> keras.Model:
    hp.Int("units", 32, 8)
    return _tiny(hp)


def unknown_sampling(hp: Any) -> keras.Model:
    hp.Float("lr", 1e-4, 1e-2, sampling="exponential")
    return _tiny(hp)


def empty_choice(hp: Any) -> keras.Model:
    hp.Choice("activation", [])
    return _tiny(hp)


def kt_wrong_signature(hp: Any, depth: int) -> keras.Model:
    """A broken KerasTuner-style builder: needs an argument hpsearch does not pass."""
    raise AssertionError("never called")
