"""Loading an artifact with Keras in the gate's worker, and why a load failed, in the user's
words."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from typing import Any

from pytest_kerasmodel import artifacts
from pytest_kerasmodel.frameworks import loader, versions
from pytest_kerasmodel.gate.protocol import CheckFailure, CheckSkipped
from pytest_kerasmodel.gate.subject import Subject
from pytest_kerasmodel.gate.usercode import HOW_TO_PROVIDE


def _explain_load_error(subject: Subject, exc: BaseException) -> str:
    message = str(exc).strip() or type(exc).__name__
    if len(message) > 1500:
        message = message[:1500] + " ..."
    writer = f"Keras {subject.writer}" if subject.writer else "an unknown Keras version"
    _keras = loader()
    installed = _keras.keras_version()
    keras2 = _keras.IMPORTS == "tf_keras"
    name = "tf-keras" if keras2 else "Keras"
    lines = [f"load_model failed on a file written by {writer} (installed: {name} {installed})"]
    suffix = subject.path.name.lower()
    if keras2 and subject.writer.split(".")[0].isdigit() and int(subject.writer.split(".")[0]) >= 3:
        lines.append(
            "why: a Keras 3 file, loaded with tf-keras (Keras 2, --keras-backends tf_keras): "
            "tf-keras reads Keras 3 files only when every layer and argument in them exists in "
            "Keras 2; this one does not, so a Keras 2 runtime cannot serve it"
        )
    elif subject.format == "h5" and suffix.endswith(".keras"):
        lines.append(
            "why: this is a legacy HDF5 file named .keras; Keras 3 picks its loader from the file "
            "name and looks for a zip archive, hence its 'File not found'. Rename it to .h5."
        )
    elif subject.format == "keras" and not suffix.endswith(".keras"):
        lines.append(
            "why: this is a .keras zip archive under another name; Keras 3 picks its loader from "
            "the file name. Rename it to .keras."
        )
    elif _keras1_sequential(subject) or "pop expected at most 1 argument" in message:
        lines.append(
            "why: a Keras 1 Sequential model (its config is a plain list of layers), which Keras 3 "
            "cannot rebuild. Re-save it with Keras 2 or 3."
        )
    elif "OOM when allocating" in message or isinstance(exc, MemoryError):
        lines.append(
            "why: building the model needs more memory than the worker may use "
            "(keras_memory_limit): its config declares layers far larger than its weights"
        )
    elif unrecognized := re.search(
        r"Unrecognized keyword arguments passed to (\w+): (.*)", message
    ):
        lines.append(
            f"why: the saved config of a {unrecognized.group(1)} layer has argument(s) "
            f"{unrecognized.group(2)} that the installed {name} does not accept; "
            + versions.advice(subject.writer, installed, name)
        )
    else:
        match = re.search(
            r"(?:Could not locate (?:class|function)|Unknown (?:layer|object|class)(?: name)?:?)"
            r"\s*'?([\w.]+)'?",
            message,
        )
        if match:
            lines.append(_missing_class(subject, match.group(1).rsplit(".", 1)[-1], message))
    if len(lines) == 1 and not keras2 and subject.writer.startswith("2."):
        lines.append(
            f"why: written by Keras 2 ({subject.writer}); Keras 3 rebuilds it with its own layers, "
            "which fails where a saved argument has a form only Keras 2 accepts. If production "
            "runs Keras 2, gate it with tf-keras: --keras-backends tf_keras"
        )
    elif len(lines) == 1 and versions.gap(subject.writer, installed) == versions.NEWER_WRITER:
        # Keras often wraps the real cause (an argument it does not know) in a generic
        # "could not be deserialized"; a newer writer is then the likely reason.
        lines.append(
            "why: likely a version gap, " + versions.advice(subject.writer, installed, name)
        )
    lines.append(f"Keras said: {type(exc).__name__}: {message}")
    return "\n".join(lines)


def _keras1_sequential(subject: Subject) -> bool:
    """A Keras 1 (or early Keras 2) Sequential: its config is a plain list of layers."""
    with subject.open() as opened:
        return isinstance(opened.config, list)


def _layer_configs(
    config: Any, class_name: str, parent: dict[str, Any] | None = None
) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
    """(entry, enclosing layer entry) for each layer of ``class_name`` in a model config."""
    if isinstance(config, dict):
        is_layer = "class_name" in config and isinstance(config.get("config"), dict)
        if is_layer and config["class_name"] == class_name:
            yield config, parent
        for value in config.values():
            yield from _layer_configs(value, class_name, config if is_layer else parent)
    elif isinstance(config, list):
        for value in config:
            yield from _layer_configs(value, class_name, parent)


def _missing_class(subject: Subject, class_name: str, message: str) -> str:
    """Why Keras said it cannot find ``class_name``: truly absent, or a built-in layer that it
    could not rebuild from what an older Keras saved (then Keras's message is misleading)."""
    _keras = loader()
    cls = getattr(_keras.keras().layers, class_name, None)
    if cls is None:
        installed = _keras.keras_version()
        if versions.gap(subject.writer, installed) == versions.NEWER_WRITER:
            return (
                f"why: the class {class_name!r} could not be built: it is not part of the "
                "installed Keras, and it may be one a newer Keras added: "
                + versions.advice(subject.writer, installed)
            )
        return (
            f"why: the class {class_name!r} could not be built: it is not part of the installed "
            "Keras (a custom object from the writer's code, or removed from Keras). If it is your "
            f"team's class, {HOW_TO_PROVIDE}."
        )
    named = re.search(r"'name': '([^']+)'", message)
    with subject.open() as opened:  # the safety scan passed: the config holds only Keras objects
        entries = list(_layer_configs(opened.config, class_name))
    for entry, parent in entries:
        name = entry["config"].get("name", "?")
        if named and name != named.group(1):
            continue
        wrapper = parent.get("class_name") if parent else None
        if (
            wrapper
            and wrapper not in ("Functional", "Model", "Sequential")
            and ("module" not in entry)
        ):
            outer = parent["config"].get("name", "?") if parent else "?"
            return (
                f"why: {class_name} is a built-in Keras layer; layer {name!r} is wrapped in "
                f"{wrapper} layer {outer!r}, and Keras 3 rebuilds a wrapper's inner layer with "
                "its new deserializer, which needs the 'module' key that older Keras did not "
                "save. Keras's 'could not locate' is misleading: re-save the model with Keras 3."
            )
        try:
            cls.from_config(dict(entry["config"]))
        except Exception as exc:
            return (
                f"why: {class_name} is a built-in Keras layer, but layer {name!r} cannot be "
                f"rebuilt from its saved config: {type(exc).__name__}: {exc}"
            )
    return (
        f"why: {class_name} is a built-in Keras layer, so Keras's 'could not locate' is "
        "misleading: Keras 3 could not rebuild it from the config an older Keras saved."
    )


def _import_keras(subject: Subject) -> None:
    _keras = loader()
    if _keras.IMPORTS in sys.modules or subject.notify is None:  # (backend() would import it)
        _keras.keras()
        return
    subject.notify({"event": "import"})
    start = time.perf_counter()
    _keras.keras()
    subject.notify({"event": "imported", "seconds": round(time.perf_counter() - start, 4)})


def _tf_keras_savedmodel(subject: Subject) -> None:
    """Skip unless the SavedModel was written by tf-keras's ``model.save`` (the only ones tf-keras
    reloads as a Keras model): it then holds ``keras_metadata.pb``."""
    if not (subject.path / "keras_metadata.pb").is_file():
        raise CheckSkipped(
            "not applicable: a SavedModel without tf-keras's keras_metadata.pb (written by "
            "model.export or tf.saved_model.save, not by tf-keras's model.save): tf-keras "
            "reloads only the SavedModels it wrote; the predictions check runs its serving "
            "signature"
        )


def load(subject: Subject) -> Any:
    if subject.model is None:
        _keras = loader()
        _import_keras(subject)
        custom_objects = subject.user_code().custom_objects or None
        try:
            if subject.format == artifacts.FORMAT_PRESET:
                subject.model = _keras.load_preset(subject.path)
            elif subject.format == artifacts.FORMAT_SAVEDMODEL:
                _tf_keras_savedmodel(subject)
                subject.model = _keras.load_model(
                    subject.path, compile=False, custom_objects=custom_objects
                )
            else:
                subject.model = _keras.load_model(
                    subject.path, safe_mode=True, compile=False, custom_objects=custom_objects
                )
        except _keras.MissingPackage as exc:
            raise CheckFailure(str(exc)) from None
        except CheckSkipped:
            raise
        except Exception as exc:
            raise CheckFailure(_explain_load_error(subject, exc)) from None
    return subject.model
