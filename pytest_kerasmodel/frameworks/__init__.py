"""Keras 3 or tf-keras, and which backend: the only door to the heavy imports.

A Keras 3 model is handled by :mod:`.keras3`, a tf-keras (Keras 2) model by :mod:`.tfkeras`; both
give the same functions (save and load per format, weights by place, optimizer and compile state,
config, layer attributes, calling the model), which :class:`.base.KerasAdapter` lists, so
:mod:`pytest_kerasmodel.roundtrip` runs one comparison and one report for both. :func:`module_for`
picks the adapter of a model, :func:`loader` the one a gate worker loads artifacts with; the
backend names, what each needs installed and :func:`parse_backends` live here too;
:mod:`.versions` says which side of a writer/installed Keras gap is newer and what to do.

Which Keras a model comes from is decided from the classes its class derives from, never by
importing a Keras: a user's subclassed ``tf_keras.Model`` lives in the user's module. ``tf.keras``
is Keras 3 under TensorFlow 2.16+ (``keras._tf_keras.keras``) and tf-keras when
``TF_USE_LEGACY_KERAS=1``; its classes are the ones of the Keras it aliases, so this finds the
right one either way. Importing this package imports no Keras: the adapters are imported when
asked for.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pytest_kerasmodel.errors import KerasModelError

if TYPE_CHECKING:  # pragma: no cover
    from pytest_kerasmodel.frameworks.base import KerasAdapter

#: the name of each Keras, as reports, ``backends=`` and ``--keras-backends`` say it; tf-keras
#: (Keras 2) is also what the gate can load artifacts with (``--keras-backends tf_keras``), not a
#: Keras 3 backend, so not in ``"all"`` and not for ``assert_roundtrip(backends=...)``
KERAS3 = "keras"
TF_KERAS = "tf_keras"

#: the backends a roundtrip can reload under
KNOWN_BACKENDS = ("tensorflow", "jax", "torch")


#: set to ``tf_keras`` in the gate worker of ``--keras-backends tf_keras``: it loads with tf-keras
LOADER_ENV = "PYTEST_KERASMODEL_LOADER"


#: the module each backend needs, and what to pip install when it is missing
BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch", TF_KERAS: "tf_keras"}


BACKEND_PACKAGES = {
    "tensorflow": "tensorflow",
    "jax": "jax[cpu]",
    "torch": "torch",
    TF_KERAS: "tf-keras",
}


class BackendError(KerasModelError, ValueError):
    """A backend that was asked for is unknown or not installed (the message says what to
    install)."""


def installed(backend: str) -> bool:
    """Whether ``backend``'s package can be imported here (found, not imported)."""
    try:
        return importlib.util.find_spec(BACKEND_MODULES[backend]) is not None
    except (ImportError, ValueError):  # blocked (sys.modules[name] = None) or broken
        return False


def parse_backends(value: str | Iterable[str] | None, *, source: str = "backends") -> list[str]:
    """The backends asked for (``"jax,torch"``, ``["jax"]``, ``"all"``), checked.

    ``"all"`` is every known backend that is installed. A backend that is asked for by name
    and not installed is a :class:`BackendError` naming the package to install, not a skip.
    ``tf_keras`` (:data:`TF_KERAS`) is accepted by name only, never in ``"all"``.
    """
    if value is None:
        return []
    words = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    chosen: list[str] = []
    for word in words:
        name = str(word).strip().lower()
        if name == "all":
            chosen += [b for b in KNOWN_BACKENDS if installed(b)]
            continue
        if name not in KNOWN_BACKENDS and name != TF_KERAS:
            raise BackendError(
                f"{source}: unknown backend {word!r}; choose from {list(KNOWN_BACKENDS)}, "
                f"'all' or {TF_KERAS!r} (Keras 2, for the gate)"
            )
        if not installed(name):
            raise BackendError(
                f"{source}: the {name} backend is not installed: pip install "
                f"{BACKEND_PACKAGES[name]!r} to reload models under it"
                + (
                    " (the CPU build: pip install torch --index-url "
                    "https://download.pytorch.org/whl/cpu)"
                    if name == "torch"
                    else ""
                )
            )
        chosen.append(name)
    return list(dict.fromkeys(chosen))


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


def module_for(model: Any) -> KerasAdapter:
    """The module that handles ``model``'s Keras (imported, not the Keras itself)."""
    if which(model) == TF_KERAS:
        from pytest_kerasmodel.frameworks import tfkeras

        return tfkeras
    from pytest_kerasmodel.frameworks import keras3

    return keras3


def loader() -> KerasAdapter:
    """The module this process loads artifacts with: :mod:`.tfkeras` in the worker of
    ``--keras-backends tf_keras`` (:data:`LOADER_ENV` set to ``tf_keras``), else :mod:`.keras3`
    (Keras 3 on ``KERAS_BACKEND``)."""
    if os.environ.get(LOADER_ENV) == TF_KERAS:
        from pytest_kerasmodel.frameworks import tfkeras

        return tfkeras
    from pytest_kerasmodel.frameworks import keras3

    return keras3
