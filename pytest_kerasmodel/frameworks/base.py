"""What a Keras adapter provides: the functions the roundtrip and the gate call on either Keras.

:mod:`~pytest_kerasmodel.frameworks.keras3` (Keras 3) and
:mod:`~pytest_kerasmodel.frameworks.tfkeras` (tf-keras, Keras 2) are modules, not classes; each
satisfies :class:`KerasAdapter` structurally, and :func:`~pytest_kerasmodel.frameworks.module_for`
and :func:`~pytest_kerasmodel.frameworks.loader` return them typed as one, so mypy checks both
modules against this list (a function one adapter lacks, or gives another signature, is a type
error where the adapter is returned). Importing this module imports no Keras.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import AbstractContextManager
from types import ModuleType
from typing import Any, Protocol


class KerasAdapter(Protocol):
    """One Keras, seen through the functions both adapters give (read-only attributes)."""

    @property
    def IMPORTS(self) -> str:
        """The module name the adapter imports (``keras`` or ``tf_keras``)."""

    @property
    def LABEL(self) -> str:
        """The Keras's name in messages (``Keras 3``, ``tf-keras (Keras 2)``)."""

    @property
    def FORMATS(self) -> tuple[str, ...]:
        """The roundtrip formats this Keras saves and reloads."""

    @property
    def FORMAT_FILES(self) -> Mapping[str, str]:
        """The file (or folder) name each format is saved as."""

    @property
    def WEIGHTS_CONFIG_FILE(self) -> str:
        """Where the ``weights`` format keeps the config the model is rebuilt from."""

    @property
    def REGISTER(self) -> str:
        """How a user registers a custom class with this Keras (for hints)."""

    @property
    def MissingPackage(self) -> type[ImportError]:
        """Raised when the Keras (or what it needs) is not installed."""

    def keras(self) -> ModuleType: ...

    def backend(self) -> str: ...

    def keras_version(self) -> str: ...

    def load_model(self, path: str | os.PathLike[str], **kwargs: Any) -> Any: ...

    def load_preset(self, path: str | os.PathLike[str]) -> Any: ...

    def save(self, model: Any, fmt: str, folder: str | os.PathLike[str]) -> str: ...

    def load(
        self,
        fmt: str,
        path: str,
        *,
        custom_objects: dict[str, Any] | None = None,
        compile: bool = True,
        safe_mode: bool = True,
    ) -> tuple[Any, list[str]]: ...

    def weight_variables(self, model: Any) -> list[tuple[str, Any]]: ...

    def weight_arrays(self, model: Any) -> tuple[dict[str, Any], dict[str, str]]: ...

    def state_variables(
        self, model: Any
    ) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]: ...

    def metric_names(self, model: Any, outputs: Any) -> list[str] | None: ...

    def optimizer_state(self, model: Any) -> dict[str, Any] | None: ...

    def model_config(self, model: Any) -> Any: ...

    def compile_config(self, model: Any) -> dict[str, Any] | None: ...

    def layer_attributes(self, model: Any) -> dict[str, dict[str, Any]]: ...

    def vocabularies(self, model: Any) -> dict[str, dict[str, Any]]: ...

    def registered_name(self, class_name: str) -> str | None: ...

    def unregistered_classes(
        self, model: Any, custom_objects: dict[str, Any] | None = None
    ) -> list[str]: ...

    def input_signature(self, model: Any) -> Any: ...

    def call_model(self, model: Any, inputs: Any) -> Any: ...

    def output_names(self, model: Any) -> list[str] | None: ...

    def hints_for(self, diff: Any, original: Any) -> list[str]: ...

    def preserved_global_state(self) -> AbstractContextManager[None]: ...
