"""Real tiny Keras models for the roundtrip tests: healthy ones and real broken ones.

Builders import Keras when called (the test process has it loaded anyway). Custom classes
are registered under the package ``kerasmodel_tests`` so their names never clash with a
user's or another test file's. Each builder returns a built model; ``trained=True`` runs one
optimizer step on four samples so that the optimizer has slots.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras

L = keras.layers
PACKAGE = "kerasmodel_tests"


def train_one_step(model: Any) -> Any:
    """Compile with Adam (unless compiled) and apply one optimizer step.

    The step applies fixed gradients eagerly: the optimizer's step counter and slots are
    Keras's own, without the second of tracing that ``fit`` costs.
    """
    if not model.compiled:
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mean_squared_error")
    grads = [
        keras.ops.convert_to_tensor(np.full(tuple(v.shape), 0.1, "float32"))
        for v in model.trainable_variables
    ]
    model.optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
    return model


# --- healthy models --------------------------------------------------------------------------


def dense() -> Any:
    return keras.Sequential(
        [keras.Input((4,)), L.Dense(3, activation="relu"), L.Dense(2)], name="dense_mlp"
    )


def conv() -> Any:
    return keras.Sequential(
        [
            keras.Input((6, 6, 1)),
            L.Conv2D(2, 3),
            L.BatchNormalization(),
            L.Dropout(0.5),
            L.Flatten(),
            L.Dense(2),
        ],
        name="conv",
    )


def embedding_lstm() -> Any:
    return keras.Sequential(
        [keras.Input((5,), dtype="int32"), L.Embedding(30, 3), L.LSTM(2), L.Dense(1)],
        name="embedding_lstm",
    )


def gru() -> Any:
    return keras.Sequential([keras.Input((None, 3)), L.GRU(2), L.Dense(1)], name="gru")


def nested() -> Any:
    inner = keras.Sequential([keras.Input((4,)), L.Dense(3)], name="inner")
    x = keras.Input((4,), name="x")
    return keras.Model(x, L.Dense(1)(inner(x)), name="outer")


def multi_io() -> Any:
    tokens = keras.Input((5,), dtype="int32", name="tokens")
    features = keras.Input((3,), name="features")
    pooled = L.GlobalAveragePooling1D()(L.Embedding(40, 4)(tokens))
    both = L.Concatenate()([pooled, features])
    return keras.Model(
        {"tokens": tokens, "features": features},
        {"score": L.Dense(1, name="score")(both), "label": L.Dense(2, name="label")(features)},
        name="multi_io",
    )


def normalization() -> Any:
    norm = L.Normalization()
    norm.adapt(np.random.default_rng(0).normal(2.0, 3.0, size=(16, 3)).astype("float32"))
    return keras.Sequential([keras.Input((3,)), norm, L.Dense(2)], name="normalized")


def attention() -> Any:
    x = keras.Input((4, 6), name="sequence")
    attended = L.MultiHeadAttention(num_heads=2, key_dim=3)(x, x)
    pooled = L.GlobalAveragePooling1D()(L.LayerNormalization()(x + attended))
    return keras.Model(x, L.Dense(2)(pooled), name="attention")


def masked_embedding() -> Any:
    return keras.Sequential(
        [keras.Input((5,), dtype="int32"), L.Embedding(20, 3, mask_zero=True), L.LSTM(2)],
        name="masked_embedding",
    )


@keras.saving.register_keras_serializable(package=PACKAGE)
class Tower(keras.Model):
    """A registered subclassed model with a constructor argument it returns from get_config."""

    def __init__(self, units: int = 3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.hidden = L.Dense(units, activation="tanh")
        self.norm = L.BatchNormalization()
        self.head = L.Dense(1)

    def call(self, x: Any, training: bool = False) -> Any:
        return self.head(self.norm(self.hidden(x), training=training))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units}


def subclassed() -> Any:
    model = Tower(units=3, name="tower")
    model(np.zeros((2, 4), "float32"))
    return model


HEALTHY = {
    "dense": dense,
    "conv": conv,
    "embedding_lstm": embedding_lstm,
    "gru": gru,
    "nested": nested,
    "multi_io": multi_io,
    "normalization": normalization,
    "subclassed": subclassed,
    "attention": attention,
    "masked_embedding": masked_embedding,
}
#: healthy models legacy HDF5 cannot reload: a subclassed model (it cannot be rebuilt before its
#: weights load) and, a Keras 3.15 bug, MultiHeadAttention in a Functional model ("TypeError:
#: too many positional arguments" from the legacy loader, under every backend)
NOT_H5 = ("subclassed", "attention")


@keras.saving.register_keras_serializable(package=PACKAGE)
class UnnamedScale(L.Layer):
    """Scales and shifts with weights created without a name, as keras.applications'
    ``LayerScale`` does: Keras names them ``variable``, ``variable_17``, ... from a process-wide
    counter, so their names change on reload."""

    def build(self, input_shape: Any) -> None:
        self.gamma = self.add_weight(shape=(input_shape[-1],), initializer="ones")
        self.beta = self.add_weight(shape=(input_shape[-1],), initializer="zeros")
        self.seen = self.add_weight(shape=(), initializer="zeros", trainable=False)

    def call(self, x: Any) -> Any:
        return x * self.gamma + self.beta + 0.0 * self.seen


def unnamed_weights() -> Any:
    """A Dense between two ``UnnamedScale`` layers, after one Adam step (slots for every weight,
    unnamed ones included), with a non-zero untrained state in the non-trainable weight."""
    model = keras.Sequential(
        [keras.Input((3,)), UnnamedScale(), L.Dense(2), UnnamedScale()], name="unnamed"
    )
    for layer in model.layers:
        if isinstance(layer, UnnamedScale):
            layer.seen.assign(3.0)
    return train_one_step(model)


# --- real broken models ----------------------------------------------------------------------


@keras.saving.register_keras_serializable(package=PACKAGE)
class ForgetfulScale(L.Layer):
    """Multiplies by ``factor``, but its get_config forgets ``factor``."""

    def __init__(self, factor: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x: Any) -> Any:
        return x * self.factor

    def get_config(self) -> dict[str, Any]:
        return super().get_config()  # the bug: "factor" is missing


@keras.saving.register_keras_serializable(package=PACKAGE)
class HiddenOffset(L.Layer):
    """Adds an offset kept in a plain attribute: neither a Keras variable nor in the config."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.offset = 0.0

    def call(self, x: Any) -> Any:
        return x + self.offset


@keras.saving.register_keras_serializable(package=PACKAGE)
class SkipsCounter(L.Layer):
    """Has a non-trainable ``counter`` variable that save_own_variables skips."""

    def build(self, input_shape: Any) -> None:
        self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], 2))
        self.counter = self.add_weight(
            name="counter", shape=(), initializer="zeros", trainable=False
        )

    def call(self, x: Any) -> Any:
        return keras.ops.matmul(x, self.kernel)

    def save_own_variables(self, store: Any) -> None:
        store["0"] = self.kernel.numpy()  # the bug: "counter" is not saved

    def load_own_variables(self, store: Any) -> None:
        self.kernel.assign(store["0"])


class Unregistered(L.Layer):
    """A custom layer neither registered nor passed in custom_objects."""

    def call(self, x: Any) -> Any:
        return x * 2.0


def forgetful_scale() -> Any:
    return keras.Sequential(
        [keras.Input((3,)), L.Dense(2), ForgetfulScale(factor=3.0, name="scale")], name="forgets"
    )


def hidden_offset() -> Any:
    model = keras.Sequential(
        [keras.Input((3,)), L.Dense(2), HiddenOffset(name="offset")], name="hidden_state"
    )
    model.get_layer("offset").offset = 5.0
    return model


def skips_counter() -> Any:
    model = keras.Sequential([keras.Input((3,)), SkipsCounter(name="skipper")], name="skips")
    model.get_layer("skipper").counter.assign(7.0)
    return model


def unregistered() -> Any:
    return keras.Sequential(
        [keras.Input((3,)), L.Dense(2), Unregistered(name="doubler")], name="unregistered"
    )


def trained_dense() -> Any:
    return train_one_step(dense())


@keras.saving.register_keras_serializable(package=PACKAGE)
class Drifting(L.Layer):
    """get_config returns a derived value (``size + 1``) instead of the argument."""

    def __init__(self, size: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.size = size

    def call(self, x: Any) -> Any:
        return x

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "size": self.size + 1}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ConfigMeddler(L.Layer):
    """Changes Keras's global config and the random state while being deserialised."""

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Any:
        import random

        keras.config.set_image_data_format("channels_first")
        keras.config.set_epsilon(0.5)
        random.random()
        np.random.rand()
        return super().from_config(config)

    def call(self, x: Any) -> Any:
        return x


def drifting() -> Any:
    return keras.Sequential([keras.Input((3,)), Drifting(size=2, name="drift")], name="drifts")


def config_meddler() -> Any:
    return keras.Sequential([keras.Input((3,)), ConfigMeddler(name="meddler")], name="meddles")


@keras.saving.register_keras_serializable(package=PACKAGE)
class ForgetfulReshape(L.Layer):
    """Reshapes to ``target``, but its get_config forgets it: the reloaded layer's call fails."""

    def __init__(self, target: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target = tuple(target) if target is not None else None

    def call(self, x: Any) -> Any:
        if self.target is None:
            raise ValueError("ForgetfulReshape has no target shape")
        return keras.ops.reshape(x, (-1, *self.target))

    def compute_output_spec(self, x: Any) -> Any:  # the symbolic call Keras makes on reload
        shape = (x.shape[0], *self.target) if self.target is not None else x.shape
        return keras.KerasTensor(shape, x.dtype)

    def get_config(self) -> dict[str, Any]:
        return super().get_config()  # the bug: "target" is missing


def forgetful_reshape() -> Any:
    return keras.Sequential(
        [keras.Input((6,)), ForgetfulReshape(target=(2, 3), name="reshape")], name="reshapes"
    )


def fitted_dropout(metrics: Any = ("mean_absolute_error",)) -> Any:
    """A Dropout MLP after one epoch of fit and a predict (torch flips its module mode)."""
    model = keras.Sequential(
        [keras.Input((4,)), L.Dense(3), L.Dropout(0.5), L.Dense(2)], name="dropout_mlp"
    )
    model.compile(optimizer="adam", loss="mean_squared_error", metrics=list(metrics))
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    model.fit(x, np.zeros((8, 2), "float32"), epochs=1, batch_size=8, verbose=0)
    model.predict(x, verbose=0)
    return model
