"""KerasTuner HyperModels (needs keras_tuner), for tests/test_define_by_run.py."""

from __future__ import annotations

from typing import Any

import keras
import keras_tuner
from hp_builders import kt_arch
from keras import layers


class ArchHyperModel(keras_tuner.HyperModel):
    """``kt_arch`` as a HyperModel subclass."""

    def build(self, hp: Any) -> keras.Model:
        return kt_arch(hp)


# ---- copied unchanged from KerasTuner's "Getting started" guide (keras.io,
# guides/keras_tuner/getting_started, Apache License 2.0): its build_model and
# MyHyperModel, which compile with categorical cross-entropy for one-hot labels
def build_model(hp):
    model = keras.Sequential()
    model.add(layers.Flatten())
    model.add(
        layers.Dense(
            # Tune number of units.
            units=hp.Int("units", min_value=32, max_value=512, step=32),
            # Tune the activation function to use.
            activation=hp.Choice("activation", ["relu", "tanh"]),
        )
    )
    # Tune whether to use dropout.
    if hp.Boolean("dropout"):
        model.add(layers.Dropout(rate=0.25))
    model.add(layers.Dense(10, activation="softmax"))
    # Define the optimizer learning rate as a hyperparameter.
    learning_rate = hp.Float("lr", min_value=1e-4, max_value=1e-2, sampling="log")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


class MyHyperModel(keras_tuner.HyperModel):
    def build(self, hp):
        model = keras.Sequential()
        model.add(layers.Flatten())
        model.add(
            layers.Dense(
                units=hp.Int("units", min_value=32, max_value=512, step=32),
                activation="relu",
            )
        )
        model.add(layers.Dense(10, activation="softmax"))
        model.compile(
            optimizer="adam",
            loss="categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    def fit(self, hp, model, *args, **kwargs):
        return model.fit(
            *args,
            # Tune whether to shuffle the data in each epoch.
            shuffle=hp.Boolean("shuffle"),
            **kwargs,
        )


# ---- end of the copy

my_hypermodel = MyHyperModel()
