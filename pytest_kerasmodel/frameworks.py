"""Which Keras a model object comes from, and the module that handles that Keras.

A Keras 3 model is handled by :mod:`pytest_kerasmodel._keras`, a tf-keras (Keras 2) model by
:mod:`pytest_kerasmodel._tfkeras`; both give the same functions (save and load per format,
weights by place, optimizer and compile state, config, layer attributes, calling the model),
so :mod:`pytest_kerasmodel.roundtrip` runs one comparison and one report for both.

Decided from the classes the model's class derives from, never by importing a Keras: a user's
subclassed ``tf_keras.Model`` lives in the user's module. ``tf.keras`` is Keras 3 under
TensorFlow 2.16+ (``keras._tf_keras.keras``) and tf-keras when ``TF_USE_LEGACY_KERAS=1``; its
classes are the ones of the Keras it aliases, so this finds the right one either way.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

#: the name of each Keras, as reports, ``backends=`` and ``--keras-backends`` say it
KERAS3 = "keras"
TF_KERAS = "tf_keras"


def which(model: Any) -> str:
    """:data:`TF_KERAS` for a tf-keras model, :data:`KERAS3` otherwise.

    A model of the Keras TensorFlow carried before 2.16 (``tensorflow.python.keras``, no longer
    shipped) is a ``ValueError``: no installed Keras can save or reload it.
    """
    modules = [str(getattr(c, "__module__", "")) for c in type(model).__mro__]
    if any(m == "tf_keras" or m.startswith("tf_keras.") for m in modules):
        return TF_KERAS
    if any(m.startswith("tensorflow.python.keras") for m in modules):
        raise ValueError(
            f"{type(model).__name__} is a model of TensorFlow's own old Keras "
            f"({type(model).__module__}), which neither Keras 3 nor tf-keras reloads: "
            "rebuild it with tf_keras or keras"
        )
    return KERAS3


def module_for(model: Any) -> ModuleType:
    """The module that handles ``model``'s Keras (imported, not the Keras itself)."""
    if which(model) == TF_KERAS:
        from pytest_kerasmodel import _tfkeras

        return _tfkeras
    from pytest_kerasmodel import _keras

    return _keras
