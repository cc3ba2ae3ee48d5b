"""Builders of real tiny Keras artifacts for the describe/structure/golden tests.

Every file is written by a real Keras: Keras 3 for ``.keras``, legacy ``.h5`` and ``.weights.h5``,
tf-keras 2.21 for Keras-2-style HDF5. The same architecture (same layer names) is used everywhere
so that the Keras-level weight names can be compared across formats.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

# ../shared/realworld beside the repository (PYTEST_KERASMODEL_REALWORLD overrides, e.g. in a
# git worktree that does not sit beside shared/)
REALWORLD = Path(
    os.environ.get("PYTEST_KERASMODEL_REALWORLD")
    or Path(__file__).resolve().parents[3] / "shared" / "realworld"
)

# Keras-level names of the tiny model's variables, whatever the format
TINY_WEIGHTS = {
    "hidden/kernel": [6, 4],
    "hidden/bias": [4],
    "bn/gamma": [4],
    "bn/beta": [4],
    "bn/moving_mean": [4],
    "bn/moving_variance": [4],
    "bi/forward/kernel": [2, 12],
    "bi/forward/recurrent_kernel": [3, 12],
    "bi/forward/bias": [12],
    "bi/backward/kernel": [2, 12],
    "bi/backward/recurrent_kernel": [3, 12],
    "bi/backward/bias": [12],
    "out/kernel": [6, 2],
}


def _tiny(k: object) -> object:
    layers = k.layers  # type: ignore[attr-defined]
    inp = k.Input((6,), name="x")  # type: ignore[attr-defined]
    h = layers.Dense(4, name="hidden")(inp)
    h = layers.BatchNormalization(name="bn")(h)
    h = layers.Reshape((2, 2), name="reshape")(h)
    h = layers.Bidirectional(layers.LSTM(3), name="bi")(h)
    out = layers.Dense(2, use_bias=False, name="out")(h)
    model = k.Model(inp, out, name="tiny")  # type: ignore[attr-defined]
    # Keras 3 records the optimizer's instance name in .weights.h5; an explicit name keeps it from
    # depending on how many optimizers this xdist worker built before ("adam_1").
    optimizer = k.optimizers.Adam(name="adam") if k.__name__ == "keras" else "adam"  # type: ignore[attr-defined]
    model.compile(optimizer=optimizer, loss="mse")
    x = np.linspace(-1, 1, 24, dtype="float32").reshape(4, 6)
    model.fit(x, np.zeros((4, 2), "float32"), epochs=1, verbose=0)
    return model


# A second model exercising the naming table: embeddings, normalisation, TimeDistributed, GRU,
# convolution and a nested Sequential ("inner/<sublayer>/<variable>").
RICH_WEIGHTS = {
    "emb/embeddings": [20, 4],
    "ln/gamma": [4],
    "ln/beta": [4],
    "td/kernel": [4, 3],
    "td/bias": [3],
    "gru/kernel": [3, 6],
    "gru/recurrent_kernel": [2, 6],
    "gru/bias": [2, 6],
    "conv/kernel": [2, 2, 2],
    "conv/bias": [2],
    "inner/a/kernel": [8, 3],
    "inner/a/bias": [3],
    "inner/b/gamma": [3],
    "inner/b/beta": [3],
    "inner/b/moving_mean": [3],
    "inner/b/moving_variance": [3],
}


def _rich(k: object) -> object:
    layers = k.layers  # type: ignore[attr-defined]
    inp = k.Input((5,), dtype="int32", name="tokens")  # type: ignore[attr-defined]
    h = layers.Embedding(20, 4, name="emb")(inp)
    h = layers.LayerNormalization(name="ln")(h)
    h = layers.TimeDistributed(layers.Dense(3), name="td")(h)
    h = layers.GRU(2, return_sequences=True, name="gru")(h)
    h = layers.Conv1D(2, 2, name="conv")(h)
    h = layers.Flatten(name="flat")(h)
    inner = k.Sequential(  # type: ignore[attr-defined]
        [layers.Dense(3, name="a"), layers.BatchNormalization(name="b")], name="inner"
    )
    return k.Model(inp, inner(h), name="rich")  # type: ignore[attr-defined]


def build_keras3(folder: Path) -> dict[str, Path]:
    """The tiny model saved by Keras 3 in every format it writes."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    keras.utils.set_random_seed(0)
    model = _tiny(keras)
    paths = {
        "keras": folder / "tiny.keras",
        "h5": folder / "tiny.h5",
        "weights.h5": folder / "tiny.weights.h5",
    }
    model.save(paths["keras"])
    model.save(paths["h5"])
    model.save_weights(paths["weights.h5"])
    seq = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(2, name="d1"), keras.layers.Dense(1, name="d2")],
        name="seq",
    )
    paths["sequential.keras"] = folder / "seq.keras"
    seq.save(paths["sequential.keras"])
    rich = _rich(keras)
    for key, name in (("rich.keras", "rich.keras"), ("rich.h5", "rich.h5")):
        paths[key] = folder / name
        rich.save(paths[key])
    paths["rich.weights.h5"] = folder / "rich.weights.h5"
    rich.save_weights(paths["rich.weights.h5"])
    return paths


def build_tf_keras(folder: Path) -> dict[str, Path]:
    """The tiny model saved by tf-keras 2.21: Keras-2-style legacy HDF5 (weight names with :0)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    model = _tiny(tf_keras)
    paths = {
        "h5": folder / "tiny_tfk.h5",
        "h5-weights": folder / "tiny_tfk_weights.h5",
        "keras": folder / "tiny_tfk.keras",
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "HDF5 ... is considered legacy"
        model.save(paths["h5"])
    model.save_weights(paths["h5-weights"])
    model.save(paths["keras"])
    rich = _rich(tf_keras)
    paths["rich.h5"], paths["rich.keras"] = folder / "rich_tfk.h5", folder / "rich_tfk.keras"
    paths["rich.h5-weights"] = folder / "rich_tfk_weights.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        rich.save(paths["rich.h5"])
    rich.save(paths["rich.keras"])
    rich.save_weights(paths["rich.h5-weights"])
    return paths
