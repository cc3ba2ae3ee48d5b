"""Real tiny Keras models for the export tests, one per kind of layer the issue names.

Builders import Keras when called. Each returns a built model with fixed, seeded weights, so the
figures in a report are the same from run to run.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras

L = keras.layers


def _seeded(build: Any) -> Any:
    keras.utils.set_random_seed(7)
    return build()


def dense() -> Any:
    """A softmax MLP: a class-score output."""
    return _seeded(
        lambda: keras.Sequential(
            [
                keras.Input((6,), name="features"),
                L.Dense(16, activation="relu"),
                L.Dense(4, activation="softmax"),
            ],
            name="dense_softmax",
        )
    )


def conv() -> Any:
    return _seeded(
        lambda: keras.Sequential(
            [
                keras.Input((8, 8, 2)),
                L.Conv2D(4, 3, activation="relu"),
                L.MaxPooling2D(),
                L.Flatten(),
                L.Dense(3),
            ],
            name="conv2d",
        )
    )


def lstm() -> Any:
    """An LSTM over a ``None`` time axis."""

    def build() -> Any:
        inputs = keras.Input((None, 3), name="seq")
        hidden = L.LSTM(5)(inputs)
        return keras.Model(inputs, L.Dense(2, name="out")(hidden), name="lstm_none_time")

    return _seeded(build)


def multi_input() -> Any:
    """Dict inputs, dict outputs."""

    def build() -> Any:
        a = keras.Input((3,), name="a")
        b = keras.Input((2,), name="b")
        joined = L.Concatenate()([L.Dense(4, activation="tanh")(a), b])
        return keras.Model(
            {"a": a, "b": b},
            {"score": L.Dense(3, name="score")(joined), "aux": L.Dense(1, name="aux")(joined)},
            name="multi_input",
        )

    return _seeded(build)


def embedding() -> Any:
    """Integer token inputs through an Embedding."""
    return _seeded(
        lambda: keras.Sequential(
            [
                keras.Input((7,), dtype="int32"),
                L.Embedding(20, 4),
                L.GlobalAveragePooling1D(),
                L.Dense(2),
            ],
            name="embedding",
        )
    )


def float16() -> Any:
    """Dense layers computing in float16 (a dtype policy the exporters do not expect)."""
    return _seeded(
        lambda: keras.Sequential(
            [
                keras.Input((4,)),
                L.Dense(3, dtype="float16"),
                L.Dense(2, dtype="float16"),
            ],
            name="float16_dense",
        )
    )


MODELS = {
    "dense": dense,
    "conv": conv,
    "lstm": lstm,
    "multi_input": multi_input,
    "embedding": embedding,
    "float16": float16,
}
