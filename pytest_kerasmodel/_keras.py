"""The one module that imports Keras and TensorFlow, lazily, at first use.

Everything else in the package that needs Keras calls :func:`keras` (or the helpers below)
inside a function, so that loading pytest with the plugin installed, and every file-only
check, never pays for importing TensorFlow.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

_KERAS: ModuleType | None = None


def keras() -> ModuleType:
    """Import and return the ``keras`` module (Keras 3), quieting TensorFlow's start-up logs."""
    global _KERAS
    if _KERAS is None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras as _k

        major = int(_k.__version__.split(".")[0])
        if major < 3:  # pragma: no cover - guarded by install_requires
            raise ImportError(f"pytest-kerasmodel needs Keras 3, found keras {_k.__version__}")
        _KERAS = _k
    return _KERAS


def keras_version() -> str:
    """The installed Keras version, without importing Keras when it is not loaded yet."""
    if _KERAS is not None:
        return str(_KERAS.__version__)
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("keras")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


def load_model(path: str | os.PathLike[str], **kwargs: Any) -> Any:
    """``keras.models.load_model`` with Keras imported on demand."""
    return keras().models.load_model(os.fspath(path), **kwargs)
