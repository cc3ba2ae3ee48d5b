"""Why a reload failed, in the user's words: the exception Keras raised, classified, with what to
do about it (register the class, add the constructor argument to ``get_config``, install the
backend).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pytest_kerasmodel.roundtrip.report import LoadFailure

if TYPE_CHECKING:  # pragma: no cover
    from pytest_kerasmodel.frameworks.base import KerasAdapter

_CLASS_PATTERNS = (
    re.compile(r"Could not locate (?:class|function) '([^']+)'"),
    re.compile(r"Unknown (?:layer|object|class|optimizer|loss|metric)[^'\"]*['\"]([^'\"]+)['\"]"),
    re.compile(r"Could not deserialize '([^']+)'"),
)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


#: a backend's own module in Keras's message (``keras.src.backend.torch.optimizers.torch_adam``)
_BACKEND_MODULE = re.compile(r"keras\.src\.backend\.(torch|jax|tensorflow|numpy)(?:\.\w+)+")


def _plain(message: str) -> str:
    """Keras's message without the terminal colour codes TensorFlow puts in some."""
    return _ANSI.sub("", message)


def failure_of(
    stage: str, exc: BaseException, framework: KerasAdapter | None = None
) -> LoadFailure:
    """Describe an exception from saving, reloading or calling, with a hint where known
    (``framework``: the module of the model's Keras, :mod:`pytest_kerasmodel.frameworks.keras3` when
    ``None``)."""
    message = str(exc)
    missing = None
    for pattern in _CLASS_PATTERNS:
        match = pattern.search(message)
        if match:
            missing = match.group(1)
            break
    hint = None
    registered = None
    backend_module = _BACKEND_MODULE.search(message)
    if backend_module:
        hint = (
            f"the file names {backend_module.group(0)!r}, a class of the "
            f"{backend_module.group(1)} backend that Keras cannot import under another backend "
            "(a Keras bug: it saves the backend's own optimizer class): reload with "
            "compile=False and compile again, or reload under the backend that saved it"
        )
        return LoadFailure(stage, type(exc).__name__, _plain(message), hint, missing)
    if missing == "Functional" and stage == "load":
        hint = (
            "'Functional' is the class tf-keras (Keras 2) names a Functional model by in the "
            "config it saves, which Keras 3 does not find: Keras 3 cannot load this file. Save "
            "the model as .h5 with tf-keras (Keras 3 reads tf-keras's legacy HDF5) or rebuild "
            "it with Keras 3"
        )
        return LoadFailure(stage, type(exc).__name__, _plain(message), hint, missing)
    if "is_legacy_optimizer" in message and stage == "load":
        hint = (
            "the optimizer config tf-keras (Keras 2) saved has arguments Keras 3's optimizers "
            "do not take (is_legacy_optimizer, jit_compile): in Keras 3, reload with "
            "compile=False and compile again (the optimizer's slots are then not restored)"
        )
        return LoadFailure(stage, type(exc).__name__, _plain(message), hint, missing)
    if missing and missing.startswith("keras."):
        alias = missing.rsplit(".", 1)[-1]
        hint = (
            f"{missing!r} is Keras's own name, which Keras cannot load back from this format "
            f"(a Keras limitation, not your code): compile with the full name instead of the "
            f"alias {alias!r} (e.g. loss='mean_squared_error') or a loss/metric object, or "
            "save as .keras"
        )
        return LoadFailure(stage, type(exc).__name__, _plain(message), hint, missing)
    if framework is None:
        from pytest_kerasmodel.frameworks import keras3

        framework = keras3
    register = framework.REGISTER
    if missing and stage == "load":
        short = missing.rsplit(".", 1)[-1].rsplit(">", 1)[-1]
        registered = framework.registered_name(short)
    if missing and registered:
        hint = (
            f"{short!r} is registered as {registered!r}, but this format looks classes up by "
            f"their bare name (the legacy HDF5 writer stores only {short!r}): pass "
            f"custom_objects={{{short!r}: {short}}} or save as .keras"
        )
    elif missing and stage == "load":
        hint = (
            f"Keras cannot find {missing!r}: decorate the class with "
            f"{register} or pass "
            f"custom_objects={{{short!r}: {short}}}"
        )
    elif "lambda" in message.lower() and ("safe_mode" in message or "unsafe" in message):
        hint = (
            "the model holds a Lambda layer, whose Python bytecode Keras refuses to load in "
            "safe mode: replace the Lambda with a registered custom layer (only for a file you "
            "trust: keras.config.enable_unsafe_deserialization())"
        )
    elif "requires the model to be a Functional" in message:
        hint = (
            "the legacy HDF5 format cannot save a subclassed model: save it as .keras, or "
            "its weights (the 'weights' format)"
        )
    elif "expected 0 layers" in message:
        hint = (
            "the legacy HDF5 format cannot rebuild a subclassed model before loading its "
            "weights: save it as .keras (or .weights.h5 into a model built from its config)"
        )
    elif stage == "load" and "Only input tensors may be passed as positional" in message:
        hint = (
            "the legacy HDF5 config cannot rebuild an operation called with a Python number as "
            "a positional argument (MobileNetV3's hard_sigmoid: x + 3.0): save as .keras, or "
            "wrap the operation in a layer"
        )
    elif stage == "save" and ("get_config" in message or isinstance(exc, NotImplementedError)):
        hint = "implement get_config() returning every constructor argument"
    elif stage == "load" and "__init__" in message and "argument" in message:
        hint = "get_config() and __init__() disagree: get_config() must return every argument"
    return LoadFailure(stage, type(exc).__name__, _plain(message), hint, missing)
