"""The one module that imports tf-keras (Keras 2, ``tf_keras``), lazily, at first use.

It gives what :mod:`pytest_kerasmodel.frameworks.keras3` gives for Keras 3 models, for tf-keras
models:
saving and reloading in each of tf-keras's formats, every weight keyed by place, the optimizer's
variables, the compile state, the config, the layers' attributes, calling the model, and the
global state a reload touches. :mod:`pytest_kerasmodel.roundtrip.run` picks one module or the other
(:func:`pytest_kerasmodel.frameworks.module_for`) and runs the same comparison with either.

Formats (:data:`FORMATS`), all written and read with tf-keras's own API:

- ``keras``: ``model.save("model.keras")``, the v3 zip tf-keras 2.13+ writes;
- ``h5``: ``model.save("model.h5")``, the legacy HDF5 file;
- ``weights``: ``model.save_weights("model.weights.h5")`` loaded into a model rebuilt from
  its config (``tf_keras.saving.deserialize_keras_object``), as Keras 3's ``weights`` format;
- ``savedmodel``: ``model.save(folder, save_format="tf")``, TensorFlow's SavedModel as
  tf-keras writes it, reloaded with ``tf_keras.models.load_model``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from pytest_kerasmodel.frameworks import keras3
from pytest_kerasmodel.frameworks.keras3 import _json_default, _json_roundtrip, attributes_of_layers

_TF_KERAS: ModuleType | None = None

#: the name this Keras goes by in reports (``ModelState.backend``) and in ``--keras-backends``
NAME = "tf_keras"
#: the package this module imports (on first use; in ``sys.modules`` once imported)
IMPORTS = "tf_keras"
#: what reports call this Keras
LABEL = "tf-keras (Keras 2)"
#: the formats a tf-keras model can be saved in, and those checked when none are asked for
FORMATS = ("keras", "h5", "weights", "savedmodel")
#: as for Keras 3 (``keras_roundtrip_formats``): the format tf-keras 2.13+ recommends; ask for
#: the formats you ship (a SavedModel costs seconds of tracing per model)
DEFAULT_FORMATS = ("keras",)
#: where each format saves, relative to the temporary folder (``savedmodel`` is a folder)
FORMAT_FILES = {
    "keras": "model.keras",
    "h5": "model.h5",
    "weights": "model.weights.h5",
    "savedmodel": "savedmodel",
}
WEIGHTS_CONFIG_FILE = "model.config.json"
#: how to make a class known to this Keras, for hints
REGISTER = "@tf_keras.saving.register_keras_serializable(package=...)"


class MissingPackage(ImportError):
    """What the artifact needs is not installed or not readable by tf-keras."""


def keras() -> ModuleType:
    """Import and return ``tf_keras``, quieting TensorFlow's start-up logs."""
    global _TF_KERAS
    if _TF_KERAS is None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            import tf_keras as _k
        except ImportError as exc:
            raise MissingPackage(
                f"tf-keras is not installed: pip install tf-keras to check Keras 2 models ({exc})"
            ) from None
        _TF_KERAS = _k
    return _TF_KERAS


def backend() -> str:
    """What a report says the model ran on: always ``tf_keras`` (TensorFlow underneath)."""
    return NAME


def keras_version() -> str:
    """The installed tf-keras version, without importing it when it is not loaded yet."""
    if _TF_KERAS is not None:
        return str(_TF_KERAS.__version__)
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tf-keras")
    except PackageNotFoundError:
        return "not installed"


def load_model(path: str | os.PathLike[str], **kwargs: Any) -> Any:
    """``tf_keras.models.load_model``; Keras 3's ``safe_mode`` is tf-keras's too (2.13+)."""
    return keras().models.load_model(os.fspath(path), **kwargs)


def load_preset(path: str | os.PathLike[str]) -> Any:
    raise MissingPackage(
        "a KerasHub preset is a Keras 3 artifact: tf-keras cannot load it (check it under "
        "Keras 3, the default backend)"
    )


# --- what a model is made of, as plain data -------------------------------------------------


def _short_name(variable: Any) -> str:
    """``kernel`` for ``dense_3/kernel:0``: tf-keras puts the layer's name, which changes on
    reload for auto-named layers of a subclassed model, in the variable's name."""
    return str(variable.name).rsplit("/", 1)[-1].split(":", 1)[0]


def _label(variable: Any) -> str:
    return str(variable.name).split(":", 1)[0]


def _placed(model: Any, attribute: str, seen: set[int]) -> list[tuple[str, Any, Any]]:
    """As ``keras3._placed``, by each variable's short name (tf-keras's carry the scope)."""
    return keras3._placed(model, attribute, seen, name_of=_short_name)


def weight_variables(model: Any) -> list[tuple[str, Any]]:
    return [(entry, variable) for entry, _, variable in _placed(model, "weights", set())]


def _numpy(variable: Any) -> Any:
    import numpy as np

    return np.asarray(variable.numpy() if hasattr(variable, "numpy") else variable)


def weight_arrays(model: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """``(arrays, labels)``: each weight as a numpy array and its name (``dense/kernel``)."""
    arrays: dict[str, Any] = {}
    labels: dict[str, str] = {}
    for key, variable in weight_variables(model):
        arrays[key] = _numpy(variable)
        labels[key] = _label(variable)
    return arrays, labels


def state_variables(model: Any) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """Every variable of ``model.variables`` that is not a weight (tf-keras has no seed
    generators: in practice none)."""
    weight_ids = {id(v) for _, v in weight_variables(model)}
    arrays: dict[str, Any] = {}
    labels: dict[str, str] = {}
    kinds: dict[str, str] = {}
    for entry, _layer, variable in _placed(model, "variables", set(weight_ids)):
        arrays[entry] = _numpy(variable)
        labels[entry] = _label(variable)
        kinds[entry] = "variable"
    return arrays, labels, kinds


def output_names(model: Any) -> list[str] | None:
    names = getattr(model, "output_names", None)
    try:
        return [str(n) for n in names] if names else None
    except TypeError:
        return None


def model_config(model: Any) -> Any:
    """The model serialized as tf-keras saves it (``config.json``), minus ``compile_config``."""
    config = keras().saving.serialize_keras_object(model)
    if isinstance(config, dict):
        config = {key: value for key, value in config.items() if key != "compile_config"}
    return _json_roundtrip(config)


def compile_config(model: Any) -> dict[str, Any] | None:
    """As ``keras3.compile_config``, names resolved by tf-keras, metrics unwrapped."""
    return keras3.compile_config(
        model, keras(), compiled_flag="_is_compiled", metrics_view=_plain_metrics
    )


def _plain_metrics(metrics: Any) -> Any:
    """Metrics as the user compiled them: tf-keras's ``.h5`` and SavedModel give back
    ``metrics=["mae"]`` as ``[[MeanMetricWrapper(fn=mean_absolute_error, name="y_mae")], ...]``,
    the same metric (one list per output, each function wrapped): unwrapped here, so that the
    ``compile`` check compares what they compute (the names are compared by ``metric_names``)."""
    if isinstance(metrics, list):
        plain = [_plain_metrics(m) for m in metrics]
        if plain and all(isinstance(m, list) and m == plain[0] for m in plain):
            return plain[0]  # the same list for every output: what one flat list means
        return plain
    if isinstance(metrics, dict) and metrics.get("class_name") == "MeanMetricWrapper":
        fn = (metrics.get("config") or {}).get("fn")
        if fn is not None:
            return fn
    if isinstance(metrics, dict) and "class_name" not in metrics:
        return {k: _plain_metrics(v) for k, v in metrics.items()}
    return metrics


def metric_names(model: Any, outputs: Any) -> list[str] | None:
    """The names ``fit``/``evaluate`` log the metrics under, built on a fresh
    ``MetricsContainer`` from the compile arguments (the model is left untouched)."""
    if not getattr(model, "_is_compiled", False):
        return None
    own = getattr(model, "compiled_metrics", None)
    if own is None:
        return ["loss"]
    if outputs is None:
        return None
    import tensorflow as tf
    from tf_keras.src.engine.compile_utils import MetricsContainer

    def copy(metric: Any) -> Any:
        # tf-keras's container renames the metric objects it builds in place (``mae`` becomes
        # ``y_mae``): it gets copies, so the model's own stay as they are
        if isinstance(metric, k.metrics.Metric):
            return type(metric).from_config(metric.get_config())
        return metric

    k = keras()
    try:
        y = tf.nest.map_structure(tf.convert_to_tensor, outputs)
        user, weighted = (
            tf.nest.map_structure(copy, m) if m is not None else None
            for m in (own._user_metrics, own._user_weighted_metrics)
        )
        fresh = MetricsContainer(
            user,
            weighted,
            output_names=output_names(model),
            # a reloaded model's metrics keep the names they were saved under (``y_mae``)
            from_serialized=bool(getattr(own, "_from_serialized", False)),
        )
        fresh.build(y, y)
        return ["loss", *(str(m.name) for m in fresh.metrics)]
    except Exception:  # a custom metric that cannot be built here: not named
        return None


def _optimizer_variables(optimizer: Any) -> list[Any]:
    variables = optimizer.variables
    return list(variables() if callable(variables) else variables)  # legacy: a method


def optimizer_state(model: Any) -> dict[str, Any] | None:
    """The optimizer as plain data, keyed as ``keras3.optimizer_state`` keys it. Its variables
    are taken even when it never stepped (a reloaded SavedModel's optimizer has its step
    counter, at 0, and no slots); they are compared only when the original's is built.

    tf-keras names a slot ``Adam/m/dense/kernel`` (``m/dense/kernel`` once reloaded; the legacy
    optimizers ``Adam/dense/kernel/m``): each is keyed ``m of <weight's structural key>``.
    """
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not getattr(model, "_is_compiled", False):
        return None
    k = keras()
    try:
        config = k.saving.serialize_keras_object(optimizer)
    except Exception as exc:  # a custom optimizer without get_config
        config = {"error": f"{type(exc).__name__}: {exc}"}
    variables = _optimizer_variables(optimizer)
    state: dict[str, Any] = {
        "class_name": type(optimizer).__name__,
        "name": str(getattr(optimizer, "name", None) or getattr(optimizer, "_name", "")),
        "config": _json_roundtrip(config),
        "backend_module": None,
        # an optimizer that never stepped has no slots yet (the new optimizers build lazily)
        "built": bool(getattr(optimizer, "_built", None) or len(variables) > 1),
        "variables": {},
        "labels": {},
    }
    weights = sorted(
        ((_label(v), key) for key, v in weight_variables(model)), key=lambda p: -len(p[0])
    )
    counts: dict[str, int] = {}
    for variable in variables:
        name = _label(variable)
        key, label = name.rsplit("/", 1)[-1], f"{state['name']}/{name.rsplit('/', 1)[-1]}"
        for weight, owner in weights:
            slot = None
            if name.endswith("/" + weight):  # Adam/m/dense/kernel
                slot = name[: -len(weight) - 1].rsplit("/", 1)[-1]
            elif name.startswith(weight + "/") or f"/{weight}/" in name:  # legacy
                slot = name.rsplit("/", 1)[-1]
            if slot:
                key, label = f"{slot} of {owner}", f"{slot} of {weight}"
                break
        n = counts.get(key, 0)
        counts[key] = n + 1
        if n:
            key, label = f"{key}#{n}", f"{label}#{n}"
        state["variables"][key] = _numpy(variable)
        state["labels"][key] = label
    return state


def layer_attributes(model: Any) -> dict[str, dict[str, Any]]:
    return attributes_of_layers(model, keras().Model, frozenset())


def vocabularies(model: Any) -> dict[str, dict[str, Any]]:
    """As :func:`keras3.vocabularies` (tf-keras's lookup layers have the same
    ``get_vocabulary()``)."""
    return keras3.vocabularies(model)


def registered_name(class_name: str) -> str | None:
    from tf_keras.src.saving import object_registration

    return keras3.registered_name(class_name, object_registration._GLOBAL_CUSTOM_OBJECTS)


def unregistered_classes(model: Any, custom_objects: dict[str, Any] | None = None) -> list[str]:
    """Custom layer classes tf-keras could not find on reload: neither registered with
    ``tf_keras.saving.register_keras_serializable`` nor in ``custom_objects``."""
    return keras3.unregistered_classes(model, custom_objects, k=keras(), builtin="tf_keras.")


# --- inputs and calls -----------------------------------------------------------------------


def _consumers(tensor: Any) -> list[Any]:
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return []
    return [node.outbound_layer for node in getattr(history.layer, "_outbound_nodes", [])]


def input_signature(model: Any) -> Any:
    """The model's inputs as an :class:`~pytest_kerasmodel.frameworks.inputs.InputSignature`."""
    __tracebackhide__ = True
    from pytest_kerasmodel.frameworks.inputspec import InputSignature, InputSpec

    k = keras()
    inputs = getattr(model, "inputs", None)
    if inputs:
        names = getattr(model, "input_names", None) or []

        def spec(i: int, tensor: Any) -> InputSpec:
            name = str(names[i]) if i < len(names) else str(getattr(tensor, "name", f"in_{i}"))
            return InputSpec(
                name=name,
                shape=tuple(tensor.shape),
                dtype=str(getattr(tensor.dtype, "name", tensor.dtype)),
                int_range=keras3._int_range_of_consumers(_consumers(tensor), k),
            )

        specs = tuple(spec(i, t) for i, t in enumerate(inputs))
        structure = getattr(model, "_nested_inputs", None)
        if isinstance(structure, dict):
            return InputSignature(specs, "dict")
        return InputSignature(specs, "list" if len(specs) > 1 else "single")
    build = model.get_build_config() if getattr(model, "built", False) else None
    shape = (build or {}).get("input_shape")
    return keras3.built_input_signature(model, shape, k, k.backend.floatx())


def call_model(model: Any, inputs: Any) -> Any:
    """``model(inputs, training=False)`` with every output converted to numpy."""
    import numpy as np
    import tensorflow as tf

    outputs = model(inputs, training=False)
    return tf.nest.map_structure(lambda t: np.asarray(t), outputs)


# --- saving and loading ---------------------------------------------------------------------


def save(model: Any, fmt: str, folder: str | os.PathLike[str]) -> str:
    """Save ``model`` in ``fmt`` under ``folder`` with tf-keras's API; return the path."""
    import warnings

    path = os.path.join(os.fspath(folder), FORMAT_FILES[fmt])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fmt in ("keras", "h5"):
            model.save(path)
        elif fmt == "savedmodel":
            model.save(path, save_format="tf")
        elif fmt == "weights":
            config = keras().saving.serialize_keras_object(model)
            with open(os.path.join(os.fspath(folder), WEIGHTS_CONFIG_FILE), "w") as f:
                json.dump(config, f, default=_json_default)
            model.save_weights(path)
        else:  # pragma: no cover - formats are validated by the caller
            raise ValueError(f"unknown tf-keras roundtrip format {fmt!r}")
    return path


def load(
    fmt: str,
    path: str,
    *,
    custom_objects: dict[str, Any] | None = None,
    compile: bool = True,
    safe_mode: bool = True,
) -> tuple[Any, list[str]]:
    """Reload a model saved by :func:`save`; return it with the warnings tf-keras gave."""
    import warnings

    k = keras()
    logged = _Logged()
    tf_logger = logging.getLogger("tensorflow")  # tf-keras warns through TensorFlow's logger
    tf_logger.addHandler(logged)
    propagate, tf_logger.propagate = tf_logger.propagate, False
    with contextlib.ExitStack() as stack, warnings.catch_warnings(record=True) as caught:
        stack.callback(tf_logger.removeHandler, logged)
        stack.callback(setattr, tf_logger, "propagate", propagate)
        warnings.simplefilter("always")
        if fmt == "keras":
            model = k.models.load_model(
                path, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode
            )
        elif fmt in ("h5", "savedmodel"):  # safe_mode applies to the v3 format only
            model = k.models.load_model(path, custom_objects=custom_objects, compile=compile)
        elif fmt == "weights":
            with open(os.path.join(os.path.dirname(path), WEIGHTS_CONFIG_FILE)) as f:
                config = json.load(f)
            if not compile:
                config.pop("compile_config", None)
            with k.saving.custom_object_scope(custom_objects or {}):
                model = k.saving.deserialize_keras_object(
                    config, custom_objects=custom_objects, safe_mode=safe_mode
                )
            model.load_weights(path)
        else:  # pragma: no cover
            raise ValueError(f"unknown tf-keras roundtrip format {fmt!r}")
    messages = [f"{w.category.__name__}: {w.message}" for w in caught] + logged.messages
    return model, messages


class _Logged(logging.Handler):
    """What tf-keras logs as a warning while reloading (it does not use ``warnings``)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"tf-keras: {record.getMessage()}")


def hints_for(diff: Any, original: Any) -> list[str]:
    """What to do about a tf-keras format limitation behind the differences in ``diff`` (a
    :class:`~pytest_kerasmodel.roundtrip.run.FormatDiff`; ``original``: the original model's
    :class:`~pytest_kerasmodel.roundtrip.run.ModelState`)."""
    lost = [d for d in diff.optimizer if d.kind == "missing"]
    if diff.format == "savedmodel" and lost:
        return [
            "tf-keras's load_model does not restore a SavedModel's optimizer state (TensorFlow "
            "issue 44670): call model.load_weights(the same folder) after load_model, and the "
            "slots are restored when the optimizer is built (the first training step); or "
            "resume training from .keras or .h5"
        ]
    serialized = (original.optimizer or {}).get("config") or {}
    legacy = str(serialized.get("module", "")).endswith(".legacy")  # keras.optimizers.legacy
    if diff.format in ("keras", "weights") and lost and legacy:
        return [
            "a legacy optimizer (tf_keras.optimizers.legacy) saves no state in the .keras and "
            ".weights.h5 formats: use tf_keras.optimizers (the default since TF 2.11), or "
            "resume training from .h5"
        ]
    return []


# --- global state ---------------------------------------------------------------------------


@contextlib.contextmanager
def preserved_global_state() -> Iterator[None]:
    """Leave Python's and numpy's random state, tf-keras's config and name counters and the
    cwd as they were (reloading a model creates layers: names advance, seeds are drawn)."""
    import copy
    import random

    import numpy as np

    k = keras()
    from tf_keras.src import backend as tfk_backend

    py_state = random.getstate()
    np_state = np.random.get_state()
    uids = copy.copy(dict(tfk_backend.PER_GRAPH_OBJECT_NAME_UIDS))
    floatx, epsilon, data_format = (
        k.backend.floatx(),
        k.backend.epsilon(),
        k.backend.image_data_format(),
    )
    cwd = os.getcwd()
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        tfk_backend.PER_GRAPH_OBJECT_NAME_UIDS.clear()
        for graph, counts in uids.items():
            tfk_backend.PER_GRAPH_OBJECT_NAME_UIDS[graph] = copy.copy(counts)
        k.backend.set_floatx(floatx)
        k.backend.set_epsilon(epsilon)
        k.backend.set_image_data_format(data_format)
        if os.getcwd() != cwd:
            os.chdir(cwd)
