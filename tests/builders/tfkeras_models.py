"""Real tiny tf-keras (Keras 2) models for the tf-keras roundtrip and gate tests.

Built with ``tf_keras`` itself (what ``tf.keras`` is under ``TF_USE_LEGACY_KERAS=1``). Custom
classes are registered with tf-keras's own registry under the package ``kerasmodel_tfk_tests``,
which is not Keras 3's: the tests check nothing leaks between the two.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tf_keras

L = tf_keras.layers
PACKAGE = "kerasmodel_tfk_tests"


def train_one_step(model: Any) -> Any:
    """Compile with Adam (unless compiled) and apply one optimizer step on fixed gradients,
    so that the optimizer has its step counter and slots (no ``fit`` tracing)."""
    import tensorflow as tf

    if not model._is_compiled:
        model.compile(
            optimizer=tf_keras.optimizers.Adam(1e-2), loss="mean_squared_error", metrics=["mae"]
        )
    grads = [tf.fill(v.shape, 0.1) for v in model.trainable_variables]
    model.optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
    return model


def sequential() -> Any:
    return tf_keras.Sequential(
        [L.Input((4,)), L.Dense(3, activation="relu"), L.BatchNormalization(), L.Dense(2)],
        name="tfk_sequential",
    )


def dense() -> Any:
    return tf_keras.Sequential([L.Input((4,)), L.Dense(3, activation="relu"), L.Dense(2)])


def functional() -> Any:
    a = tf_keras.Input((4,), name="a")
    b = tf_keras.Input((3,), name="b")
    x = L.Concatenate()([L.Dense(3)(a), b])
    return tf_keras.Model([a, b], [L.Dense(2, name="y")(x), L.Dense(1, name="z")(x)])


def embedding() -> Any:
    return tf_keras.Sequential(
        [L.Input((5,), dtype="int32"), L.Embedding(10, 4, mask_zero=True), L.LSTM(3)],
        name="tfk_embedding",
    )


@tf_keras.saving.register_keras_serializable(package=PACKAGE)
class TwoDense(tf_keras.Model):
    """A registered subclassed model."""

    def __init__(self, units: int = 3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.hidden = L.Dense(units, activation="relu")
        self.out = L.Dense(2)

    def call(self, inputs: Any) -> Any:
        return self.out(self.hidden(inputs))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units}


def subclassed() -> Any:
    model = TwoDense(units=3, name="tfk_subclassed")
    model(np.zeros((1, 4), "float32"))
    return model


HEALTHY = {
    "sequential": sequential,
    "functional": functional,
    "embedding": embedding,
    "subclassed": subclassed,
}


@tf_keras.saving.register_keras_serializable(package=PACKAGE)
class ForgetfulScale(L.Layer):
    """A layer whose ``get_config`` forgets its ``factor`` constructor argument."""

    def __init__(self, factor: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, inputs: Any) -> Any:
        return inputs * self.factor

    def get_config(self) -> dict[str, Any]:
        return super().get_config()  # "factor" forgotten


def forgetful() -> Any:
    return tf_keras.Sequential(
        [L.Input((4,)), L.Dense(3), ForgetfulScale(factor=3.0, name="scale")], name="tfk_forgetful"
    )


def trained_with_legacy_adam() -> Any:
    """Trained with ``tf_keras.optimizers.legacy.Adam``, which Keras 2 code bases still use."""
    model = sequential()
    model.compile(optimizer=tf_keras.optimizers.legacy.Adam(1e-2), loss="mean_squared_error")
    return train_one_step(model)


class Unregistered(L.Layer):
    """A custom layer neither registered nor passed as a custom object."""

    def call(self, inputs: Any) -> Any:
        return inputs * 2.0


def unregistered() -> Any:
    return tf_keras.Sequential([L.Input((4,)), Unregistered()], name="tfk_unregistered")
