"""Real Keras models whose saved variables sit outside ``layers/...``, for the accounting tests.

A subclassed model whose layers are attributes (``self.d1 = ScaledDense(8)``), in lists and in
dicts, with nested models, shared layers and custom layers holding named and unnamed variables:
``saving_lib`` writes each of them under its attribute's path (``d1/vars/0``). :func:`build`
turns a plain recipe (what hypothesis draws) into such a model; :func:`plant_nan` writes a NaN
into one dataset of a copy of a saved file (a ``.keras`` archive's inner weights file included).

Imports Keras when imported (the test process has it loaded anyway).
"""

from __future__ import annotations

import io
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras

from builders.roundtrip_models import train_one_step

PACKAGE = "kerasmodel_tests_accounting"


@keras.saving.register_keras_serializable(package=PACKAGE)
class ScaledDense(keras.layers.Layer):
    """A custom layer with one unnamed variable (Keras names it ``variable``, ``variable_3``)
    and one named ``scale``, and an optional non-trainable counter."""

    def __init__(self, units: int, counter: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.counter = counter

    def build(self, input_shape: Any) -> None:
        self.w = self.add_weight(shape=(int(input_shape[-1]), self.units))
        self.scale = self.add_weight(shape=(self.units,), initializer="ones", name="scale")
        if self.counter:
            self.seen = self.add_weight(shape=(), initializer="zeros", trainable=False)

    def call(self, x: Any) -> Any:
        return keras.ops.matmul(x, self.w) * self.scale

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units, "counter": self.counter}


@keras.saving.register_keras_serializable(package=PACKAGE)
class Block(keras.layers.Layer):
    """A custom layer holding a sub-layer (saved as ``<attr>/inner/vars/...``) beside a
    variable of its own."""

    def __init__(self, units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.inner = keras.layers.Dense(units)

    def build(self, input_shape: Any) -> None:
        self.inner.build(input_shape)
        self.gain = self.add_weight(shape=(self.units,), initializer="ones")

    def call(self, x: Any) -> Any:
        return self.inner(x) * self.gain

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units}


def make_layer(kind: str, units: int) -> Any:
    """One layer of a recipe: ``dense``, ``dense_nobias``, ``bn``, ``ln``, ``scaled``,
    ``scaled_counter``, ``block``, ``dropout``."""
    L = keras.layers
    return {
        "dense": lambda: L.Dense(units),
        "dense_nobias": lambda: L.Dense(units, use_bias=False),
        "bn": lambda: L.BatchNormalization(),
        "ln": lambda: L.LayerNormalization(),
        "scaled": lambda: ScaledDense(units),
        "scaled_counter": lambda: ScaledDense(units, counter=True),
        "block": lambda: Block(units),
        "dropout": lambda: L.Dropout(0.1),
    }[kind]()


@keras.saving.register_keras_serializable(package=PACKAGE)
class Holder(keras.Model):
    """A subclassed model holding its layers as attributes: one as ``first``, the others in a
    list ``stack`` and a dict ``named``, an optional nested Functional model ``sub``, and when
    ``shared`` a Dense held under two attributes (``twice``, ``alias``) and applied twice: its
    weights are saved once."""

    def __init__(
        self,
        first: str,
        stack: list[str],
        named: list[str],
        units: int,
        nested: bool,
        shared: bool,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.recipe = dict(
            first=first, stack=stack, named=named, units=units, nested=nested, shared=shared
        )
        self.first = make_layer(first, units)
        self.stack = [make_layer(k, units) for k in stack]
        self.named = {f"k{i}": make_layer(k, units) for i, k in enumerate(named)}
        self.proj = keras.layers.Dense(units) if shared else None
        self.twice = keras.layers.Dense(units) if shared else None
        self.alias = self.twice
        if nested:
            i = keras.Input((units,))
            self.sub = keras.Model(i, keras.layers.Dense(units)(i))
        else:
            self.sub = None

    def call(self, x: Any) -> Any:
        y = self.first(x)
        if self.twice is not None:
            y = self.alias(self.twice(self.proj(y)))
        for layer in self.stack:
            y = layer(y)
        for layer in self.named.values():
            y = layer(y)
        if self.sub is not None:
            y = self.sub(y)
        return y

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self.recipe}


def build(recipe: dict[str, Any]) -> Any:
    """A built (and, when the recipe says so, trained and compiled) model from a recipe:

    ``{"kind": "sequential"|"functional"|"subclassed", "units": n, "features": f,
    "layers": [kind, ...], "stack": [...], "named": [...], "nested": bool, "shared": bool,
    "optimizer": None|"adam"|"sgd", "metrics": bool}``.
    """
    units, features = recipe["units"], recipe["features"]
    kind = recipe["kind"]
    if kind == "sequential":
        model = keras.Sequential(
            [keras.Input((features,)), *[make_layer(k, units) for k in recipe["layers"]]]
        )
    elif kind == "functional":
        i = keras.Input((features,))
        y = keras.layers.Dense(units)(i)
        if recipe["shared"]:
            shared = keras.layers.Dense(units, name="shared")
            y = shared(shared(y))
        for k in recipe["layers"]:
            y = make_layer(k, units)(y)
        if recipe["nested"]:
            j = keras.Input((units,))
            inner = keras.Model(j, keras.layers.Dense(units)(j), name="inner")
            y = inner(y)
        model = keras.Model(i, y)
    else:
        model = Holder(
            first=recipe["layers"][0],
            stack=recipe["stack"],
            named=recipe["named"],
            units=units,
            nested=recipe["nested"],
            shared=recipe["shared"],
        )
        model(np.zeros((1, features), "float32"))
    model.build((None, features)) if not model.built else None
    if recipe["optimizer"]:
        optimizer = (
            keras.optimizers.Adam(1e-2)
            if recipe["optimizer"] == "adam"
            else keras.optimizers.SGD(1e-2, momentum=0.9)
        )
        model.compile(
            optimizer=optimizer, loss="mse", metrics=["mae"] if recipe["metrics"] else None
        )
        train_one_step(model)
    return model


def plant_nan(source: Path, target: Path, h5_path: str) -> None:
    """Copy ``source`` to ``target`` with the first value of dataset ``h5_path`` set to NaN
    (in a ``.keras`` archive: in its ``model.weights.h5``, the archive rewritten)."""
    import h5py

    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as z:
            members = [(info, z.read(info.filename)) for info in z.infolist()]
        scratch = target.with_suffix(".scratch.h5")
        for info, data in members:
            if info.filename == "model.weights.h5":
                scratch.write_bytes(data)
        _nan_into(scratch, h5_path, h5py)
        with zipfile.ZipFile(target, "w") as out:
            for info, data in members:
                if info.filename == "model.weights.h5":
                    data = scratch.read_bytes()
                out.writestr(info, data)
        scratch.unlink()
        return
    shutil.copyfile(source, target)
    _nan_into(target, h5_path, h5py)


def _nan_into(file: Path, h5_path: str, h5py: Any) -> None:
    with h5py.File(file, "r+") as f:
        dataset = f[h5_path]
        value = np.array(dataset[()])
        value.reshape(-1)[0] = np.nan
        dataset[()] = value


def float_datasets(file: Path) -> list[str]:
    """Every floating-point dataset of a saved file (a ``.keras`` archive: its weights file),
    with at least one value, in name order."""
    import h5py

    if zipfile.is_zipfile(file):
        with zipfile.ZipFile(file) as z:
            handle: Any = io.BytesIO(z.read("model.weights.h5"))
    else:
        handle = file
    found: list[str] = []
    with h5py.File(handle, "r") as f:
        f.visititems(
            lambda name, obj: (
                found.append(name)
                if isinstance(obj, h5py.Dataset) and obj.dtype.kind == "f" and obj.size
                else None
            )
        )
    return sorted(found)
