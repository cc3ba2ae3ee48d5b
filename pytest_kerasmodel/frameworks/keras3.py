"""The one module that imports Keras and TensorFlow, lazily, at first use.

Everything else in the package that needs Keras calls :func:`keras` (or the helpers below)
inside a function, so that loading pytest with the plugin installed, and every file-only
check, never pays for importing TensorFlow.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
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


def backend() -> str:
    """The backend Keras runs on in this process (``tensorflow``, ``jax``, ``torch``)."""
    return str(keras().backend.backend())


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


class MissingPackage(ImportError):
    """A package the artifact needs to be loaded is not installed (the message names it)."""


def load_preset(path: str | os.PathLike[str]) -> Any:
    """A KerasHub preset folder loaded with KerasHub's own ``from_preset``: the task when the
    preset has a ``task.json``, else the backbone. Keras's safe mode stays on."""
    keras()
    try:
        import keras_hub
    except ImportError as exc:
        raise MissingPackage(
            f"a KerasHub preset: install keras-hub to load it (pip install keras-hub); {exc}"
        ) from None
    folder = os.fspath(path)
    task_file = os.path.join(folder, "task.json")
    if not os.path.isfile(task_file):
        return keras_hub.models.Backbone.from_preset(folder)
    # KerasHub loads a task through its concrete class only: the one task.json registers, looked
    # up among the classes KerasHub registered (nothing is imported by name from the file)
    with open(task_file, encoding="utf-8") as fh:
        name = json.load(fh).get("registered_name")
    cls = keras().saving.get_registered_object(name) if isinstance(name, str) else None
    if not (isinstance(cls, type) and issubclass(cls, keras_hub.models.Task)):
        raise ValueError(f"task.json names {name!r}, which is not a KerasHub task class")
    return cls.from_preset(folder)  # type: ignore[attr-defined]


# --- what a model is made of, as plain data -------------------------------------------------

#: where each roundtrip format saves, relative to the temporary folder
FORMAT_FILES = {"keras": "model.keras", "h5": "model.h5", "weights": "model.weights.h5"}
#: the config saved beside ``model.weights.h5`` to rebuild the model for the "weights" format
WEIGHTS_CONFIG_FILE = "model.config.json"
#: the formats a Keras 3 model can be saved in (``savedmodel`` is tf-keras's only)
FORMATS = ("keras", "h5", "weights")
#: the package this module imports (on first use; in ``sys.modules`` once imported)
IMPORTS = "keras"
#: what reports call this Keras
LABEL = "Keras 3"
#: how to make a class known to Keras, for hints
REGISTER = "@keras.saving.register_keras_serializable(package=...)"


def _sublayers(layer: Any) -> list[Any]:
    flatten = getattr(layer, "_flatten_layers", None)
    if flatten is not None:
        return list(flatten(include_self=False, recursive=False))
    return list(getattr(layer, "layers", []) or [])


def iter_layers(model: Any) -> list[tuple[str, Any]]:
    """Every layer of ``model`` (itself first) with a structural key.

    The key is built from positions and class names (``"1:Dense/0:Kernel"``), not from layer
    names, because Keras gives auto-named layers of a reloaded subclassed or nested model new
    names (``dense`` becomes ``dense_3``) while their positions stay the same.
    """
    found: list[tuple[str, Any]] = []
    seen: set[int] = set()

    def walk(layer: Any, key: str) -> None:
        if id(layer) in seen:
            return
        seen.add(id(layer))
        found.append((key, layer))
        for i, sub in enumerate(_sublayers(layer)):
            walk(sub, f"{key}{i}:{type(sub).__name__}/")

    walk(model, "")
    return found


def weight_variables(model: Any) -> list[tuple[str, Any]]:
    """``model``'s weights (trainable and not), each with a structural key.

    The key is its layer's key from :func:`iter_layers` plus the variable's own name
    (``1:Dense/kernel``), so it matches between a model and its reloaded twin.
    """
    return [(entry, variable) for entry, _, variable in _placed(model, "weights", set())]


#: the names Keras gives a variable created without one: ``auto_name`` of its class
#: (``variable``, ``variable_17``; tf-keras: ``Variable``), numbered by a process-wide counter
AUTO_VARIABLE_NAME = re.compile(r"\A[Vv]ariable(?:_\d+)?\Z")


def unnumbered(name: str) -> str:
    """``name`` as it matches between a model and its reloaded twin: an auto-generated variable
    name (:data:`AUTO_VARIABLE_NAME`) loses its number, which depends on how many unnamed
    variables the process made before (``LayerScale``'s ``variable_17`` comes back as
    ``variable_53``). Such variables then match by their layer and creation order (the ``#n``
    of :func:`_placed`), as Keras's own saving does (``vars/0``, ``vars/1``)."""
    return "variable" if AUTO_VARIABLE_NAME.match(name) else name


def _placed(
    model: Any,
    attribute: str,
    seen: set[int],
    name_of: Callable[[Any], str] = lambda variable: str(variable.name),
) -> list[tuple[str, Any, Any]]:
    """``(key, layer, variable)`` for each variable in a layer's ``attribute`` (``weights`` or
    ``variables``) not in ``seen``, innermost layer first (each layer's own variables), keyed
    by the layer's key plus the variable's name (``name_of``: tf-keras's names carry the layer's
    scope; an auto-generated name without its number, :func:`unnumbered`; ``#1`` for a second
    of one name, in creation order)."""
    entries: list[tuple[str, Any, Any]] = []
    for key, layer in reversed(iter_layers(model)):
        counts: dict[str, int] = {}
        for variable in getattr(layer, attribute, []):
            if id(variable) in seen:
                continue
            seen.add(id(variable))
            name = unnumbered(name_of(variable))
            n = counts.get(name, 0)
            counts[name] = n + 1
            entries.append((f"{key}{name}" + (f"#{n}" if n else ""), layer, variable))
    return entries


def weight_arrays(model: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """``(arrays, labels)``: each weight as a numpy array, and its Keras path (``dense/kernel``).

    Both are keyed as in :func:`weight_variables`.
    """
    arrays: dict[str, Any] = {}
    labels: dict[str, str] = {}
    for key, variable in weight_variables(model):
        arrays[key] = _numpy(variable)
        labels[key] = str(getattr(variable, "path", variable.name))
    return arrays, labels


def state_variables(model: Any) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """``(arrays, labels, kinds)``: every variable of ``model.variables`` that is not a weight.

    In Keras 3 these are the states of the layers' seed generators (Dropout, GaussianNoise,
    random augmentation layers: ``kinds[key] == "seed_generator"``), kept with the layer but
    never saved by Keras. Keyed like :func:`weight_variables` (the layer's structural key plus
    the variable's name), so a variable matches its reloaded twin by place.
    """
    weight_ids = {id(v) for _, v in weight_variables(model)}
    arrays: dict[str, Any] = {}
    labels: dict[str, str] = {}
    kinds: dict[str, str] = {}
    seeds = {
        id(g.state)
        for _, layer in iter_layers(model)
        for g in getattr(layer, "_seed_generators", []) or []
    }
    for entry, layer, variable in _placed(model, "variables", set(weight_ids)):
        name = str(variable.name)
        arrays[entry] = _numpy(variable)
        owner = str(getattr(layer, "path", None) or getattr(layer, "name", ""))
        labels[entry] = f"{owner}/{name}" if owner else name
        kinds[entry] = "seed_generator" if id(variable) in seeds else "variable"
    return arrays, labels, kinds


def _numpy(variable: Any) -> Any:
    import numpy as np

    return np.asarray(keras().ops.convert_to_numpy(variable))


def metric_names(model: Any, outputs: Any) -> list[str] | None:
    """The names a compiled model's metrics have in ``fit``/``evaluate`` logs (history keys,
    what callbacks ``monitor``): ``["loss", "mse"]``, or ``None`` when not compiled.

    Built on a fresh ``CompileMetrics`` from the arguments the model was compiled with, so the
    model itself (whose compile metrics Keras builds lazily, on first fit or evaluate) is left
    as it was. ``outputs`` (the model's outputs on some inputs, as numpy) give the structure
    Keras builds the metrics for; ``None`` when there are none to build on.
    """
    if not getattr(model, "compiled", False):
        return None
    own = getattr(model, "_compile_metrics", None)
    if own is None:
        return ["loss"]
    if outputs is None:
        return None
    from keras.src.trainers.compile_utils import CompileMetrics

    k = keras()
    y = k.tree.map_structure(k.ops.convert_to_tensor, outputs)
    try:
        fresh = CompileMetrics(
            own._user_metrics, own._user_weighted_metrics, output_names=output_names(model)
        )
        fresh.build(y, y)
        return ["loss", *(str(n) for n in fresh.result())]
    except Exception:  # a custom metric that cannot be built here: not named
        return None


def optimizer_state(model: Any) -> dict[str, Any] | None:
    """The optimizer as plain data, or ``None`` when the model is not compiled with one.

    ``variables`` is keyed so that it survives Keras renaming on reload: a slot variable
    (``adam/dense_1_kernel_momentum``) is keyed ``momentum of <weight's structural key>``
    and labelled ``momentum of dense_1/kernel``; others (``iteration``) keep their name.
    """
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not getattr(model, "compiled", False):
        return None
    k = keras()
    try:
        config = k.saving.serialize_keras_object(optimizer)
    except Exception as exc:  # a custom optimizer without get_config
        config = {"error": f"{type(exc).__name__}: {exc}"}
    backend_module = None
    if isinstance(config, dict) and str(config.get("module", "")).startswith(_BACKEND_PACKAGE):
        # torch's Adam is keras.src.backend.torch.optimizers.torch_adam.Adam: the same
        # optimizer as keras.optimizers.Adam, serialized under its backend's module
        backend_module = config["module"]
        config = {**config, "module": "keras.optimizers", "registered_name": None}
    state: dict[str, Any] = {
        "class_name": type(optimizer).__name__,
        "name": str(getattr(optimizer, "name", "")),
        "config": _json_roundtrip(config),
        "backend_module": backend_module,
        "built": bool(getattr(optimizer, "built", True)),
        "variables": {},
        "labels": {},
    }
    if not state["built"]:
        return state
    by_path: dict[str, str] = {}
    weight_labels: dict[str, str] = {}
    for wkey, variable in weight_variables(model):
        path = str(getattr(variable, "path", variable.name))
        by_path[path.replace("/", "_")] = wkey
        weight_labels[wkey] = path
    counts: dict[str, int] = {}
    for variable in optimizer.variables:
        name = str(variable.name)
        key, label = name, f"{state['name']}/{name}"
        # slot names are f"{weight.path.replace('/', '_')}_{slot}": find the longest prefix
        cut = len(name)
        while True:
            cut = name.rfind("_", 0, cut)
            if cut <= 0:
                break
            owner = by_path.get(name[:cut])
            if owner is not None:
                slot = name[cut + 1 :]
                key = f"{slot} of {owner}"
                label = f"{slot} of {weight_labels.get(owner, name[:cut])}"
                break
        n = counts.get(key, 0)
        counts[key] = n + 1
        if n:
            key, label = f"{key}#{n}", f"{label}#{n}"
        state["variables"][key] = _numpy(variable)
        state["labels"][key] = label
    return state


#: where a backend's own classes live (a torch or JAX optimizer is serialized under it)
_BACKEND_PACKAGE = "keras.src.backend."


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return repr(value)


def _json_roundtrip(value: Any) -> Any:
    """What a config looks like once written to and read from a JSON file."""
    return json.loads(json.dumps(value, default=_json_default))


def model_config(model: Any) -> Any:
    """The model serialized as Keras saves it in ``config.json``, minus ``compile_config``."""
    k = keras()
    config = k.saving.serialize_keras_object(model)
    if isinstance(config, dict):
        config = {key: value for key, value in config.items() if key != "compile_config"}
    return _json_roundtrip(config)


def _snake(name: str) -> str:
    from pytest_kerasmodel.artifacts.names import to_snake_case  # Keras's own, without Keras

    return to_snake_case(name)


def canonical_compile_entry(entry: Any, k: ModuleType | None = None) -> Any:
    """A loss or metric as what it computes, so aliases compare equal.

    ``"mse"``, ``"mean_squared_error"``, a serialized function and a default
    ``MeanSquaredError()`` all become ``"mean_squared_error"``. ``k``: the Keras that
    resolves the names (``tf_keras`` for a Keras 2 model); Keras 3 by default.
    """
    k = keras() if k is None else k
    if isinstance(entry, str):
        for getter in (k.losses.get, k.metrics.get):
            try:
                resolved = getter(entry)
            except Exception:
                continue
            if resolved is None:
                continue
            if isinstance(resolved, type):
                return _snake(resolved.__name__)
            name = getattr(resolved, "__name__", None)
            return _snake(name) if name else _snake(type(resolved).__name__)
        return entry
    if isinstance(entry, dict) and "class_name" in entry:
        cfg = entry.get("config")
        if entry["class_name"] == "function" and isinstance(cfg, str):
            return canonical_compile_entry(cfg, k)
        if isinstance(cfg, dict):
            defaults = _default_config(entry, k)
            rest = {
                key: value
                for key, value in cfg.items()
                if key not in ("name", "dtype")
                and not (key == "reduction" and value == "sum_over_batch_size")
                and not (key == "fn" and isinstance(value, str))
                and not (key in defaults and _json_roundtrip(defaults[key]) == value)
            }
            base = _snake(str(entry["class_name"]))
            return base if not rest else {"class": base, "config": canonical_compile_entry(rest, k)}
        return _snake(str(entry["class_name"]))
    if isinstance(entry, dict):
        return {key: canonical_compile_entry(value, k) for key, value in entry.items()}
    if isinstance(entry, (list, tuple)):
        return [canonical_compile_entry(value, k) for value in entry]
    return entry


def _default_config(entry: dict[str, Any], k: ModuleType) -> dict[str, Any]:
    """The config of a default-constructed instance of a serialized loss or metric class,
    so that ``"AUC"`` and a serialized ``AUC()`` with every default compare equal."""
    try:
        obj = k.saving.deserialize_keras_object(entry)
        config = type(obj)().get_config()
    except Exception:
        return {}
    return config if isinstance(config, dict) else {}


def compile_config(
    model: Any,
    k: ModuleType | None = None,
    *,
    compiled_flag: str = "compiled",
    metrics_view: Callable[[Any], Any] | None = None,
) -> dict[str, Any] | None:
    """The model's compile arguments other than the optimizer, losses and metrics canonical
    (``k``: the Keras that compiled it, as in :func:`canonical_compile_entry`; tf-keras says
    it is compiled by ``_is_compiled`` and gives its metrics back wrapped: ``metrics_view``)."""
    if not getattr(model, compiled_flag, False):
        return None
    try:
        config = model.get_compile_config()
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    if not isinstance(config, dict):
        return None
    config = _json_roundtrip(config)
    if metrics_view is not None:
        for key in ("metrics", "weighted_metrics"):
            config[key] = metrics_view(config.get(key))
    result = {
        key: canonical_compile_entry(value, k) if key in _LOSS_AND_METRIC_KEYS else value
        for key, value in config.items()
        if key != "optimizer"
    }
    arguments = _loss_arguments(getattr(model, "loss", None))
    if arguments is not None:
        result["loss_arguments"] = arguments
    return result


def _loss_arguments(loss: Any) -> Any:
    """The arguments a loss object calls its function with (``Huber(delta=2.0)``: delta).

    Some loss classes do not return them from ``get_config`` (Keras 3.15's ``Huber`` drops
    ``delta``), so the reloaded loss silently computes something else; comparing them
    catches it.
    """
    if isinstance(loss, dict):
        found = {str(key): _loss_arguments(value) for key, value in loss.items()}
        return found if any(v is not None for v in found.values()) else None
    if isinstance(loss, (list, tuple)):
        items = [_loss_arguments(value) for value in loss]
        return items if any(v is not None for v in items) else None
    kwargs = getattr(loss, "_fn_kwargs", None)
    return _json_roundtrip(dict(kwargs)) if isinstance(kwargs, dict) and kwargs else None


_LOSS_AND_METRIC_KEYS = ("loss", "metrics", "weighted_metrics")

#: attribute types compared between an original layer and its reloaded twin
_SIMPLE = (bool, int, float, str, type(None))
#: attributes that legitimately differ on reload: auto-generated names (``dense`` -> ``dense_3``)
IGNORED_LAYER_ATTRIBUTES = frozenset({"name"})
#: attributes a backend puts on every layer that are not the model's state, per backend:
#: under torch a Keras layer is a ``torch.nn.Module``, whose ``training`` mode ``fit`` and
#: ``predict`` switch and Keras never reads back (it passes ``training=`` to ``call``)
BACKEND_LAYER_ATTRIBUTES: dict[str, frozenset[str]] = {"torch": frozenset({"training"})}
#: a model's training-loop state, and compile arguments the ``compile`` check compares already
IGNORED_MODEL_ATTRIBUTES = frozenset(
    {
        "compiled",
        "loss",
        "loss_weights",
        "steps_per_execution",
        "jit_compile",
        "run_eagerly",
        "stop_training",
        "stop_evaluating",
        "stop_predicting",
    }
)


def _simple_value(value: Any) -> tuple[bool, Any]:
    """``(True, comparable value)`` for attributes worth comparing, else ``(False, None)``."""
    import numpy as np

    if isinstance(value, _SIMPLE):
        return True, value
    if isinstance(value, (tuple, list)) and all(isinstance(v, _SIMPLE) for v in value):
        return True, list(value)
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf" and value.size <= 1_000_000:
        return True, value
    if isinstance(value, np.generic):
        return True, value.item()
    return False, None


def layer_attributes(model: Any) -> dict[str, dict[str, Any]]:
    """Each layer's public, simple attributes (numbers, strings, tuples, numpy arrays).

    A value that differs between a layer and its reloaded twin is a constructor argument
    that ``get_config`` forgot, or state kept outside Keras variables and the config.
    """
    return attributes_of_layers(
        model, keras().Model, BACKEND_LAYER_ATTRIBUTES.get(backend(), frozenset())
    )


def attributes_of_layers(
    model: Any, model_class: type, backend_ignored: frozenset[str]
) -> dict[str, dict[str, Any]]:
    """:func:`layer_attributes` for a model of any Keras (``model_class``: its ``Model``)."""
    import inspect

    result: dict[str, dict[str, Any]] = {}
    for key, layer in iter_layers(model):
        attrs: dict[str, Any] = {}
        ignored = IGNORED_LAYER_ATTRIBUTES | backend_ignored
        if isinstance(layer, model_class):
            ignored = ignored | IGNORED_MODEL_ATTRIBUTES
        for name, value in vars(layer).items():
            if name.startswith("_") or name in ignored:
                continue
            ok, simple = _simple_value(value)
            if ok:
                attrs[name] = simple
        try:
            params = set(inspect.signature(type(layer).__init__).parameters) - {"self"}
        except (TypeError, ValueError):
            params = set()
        try:
            config_keys = set(layer.get_config())
        except Exception:
            config_keys = set()
        result[key] = {
            "name": str(getattr(layer, "name", key)),
            "class_name": type(layer).__name__,
            "attributes": attrs,
            "constructor_args": sorted(params),
            "config_keys": sorted(config_keys),
        }
    return result


def vocabularies(model: Any) -> dict[str, dict[str, Any]]:
    """The vocabulary of every lookup layer (``StringLookup``, ``IntegerLookup``,
    ``TextVectorization``: whatever has ``get_vocabulary()``), keyed as :func:`iter_layers`:
    ``{"layer", "class_name", "tokens"}``, tokens as strings. ``tokens`` is ``None`` when the
    layer cannot give its vocabulary (a reloaded layer whose lookup table was never filled
    raises "Table not initialized"). Kept apart from the weights because Keras keeps a
    vocabulary outside its variables: ``.keras`` stores it as the layer's asset, and a format
    without assets loses it."""
    found: dict[str, dict[str, Any]] = {}
    for key, layer in iter_layers(model):
        get = getattr(layer, "get_vocabulary", None)
        if not callable(get):
            continue
        try:
            tokens: list[str] | None = [
                t.decode("utf-8", "replace") if isinstance(t, bytes) else str(t) for t in get()
            ]
        except Exception:
            tokens = None
        found[key] = {
            "layer": str(getattr(layer, "name", "")),
            "class_name": type(layer).__name__,
            "tokens": tokens,
        }
    return found


def registered_name(class_name: str, registry: Mapping[str, Any] | None = None) -> str | None:
    """The registered name (``package>Class``) of a class registered under ``class_name``, in
    Keras's registry or the one given (tf-keras's)."""
    if registry is None:
        from keras.src.saving import object_registration

        registry = object_registration.GLOBAL_CUSTOM_OBJECTS
    for key in registry:
        if key.rsplit(">", 1)[-1] == class_name and key != class_name:
            return str(key)
    return None


def unregistered_classes(
    model: Any,
    custom_objects: dict[str, Any] | None = None,
    *,
    k: ModuleType | None = None,
    builtin: str = "keras.",
) -> list[str]:
    """Custom layer classes of ``model`` (not from the module ``builtin`` names) that Keras
    (or ``k``, tf-keras) could not find on reload: neither registered with
    ``register_keras_serializable`` nor in ``custom_objects``."""
    k = k or keras()
    given = set(custom_objects or {})
    given |= {getattr(v, "__name__", "") for v in (custom_objects or {}).values()}
    found: list[str] = []
    for _, layer in iter_layers(model):
        cls = type(layer)
        if cls.__module__.startswith(builtin) or cls.__name__ in given:
            continue
        if k.saving.get_registered_object(k.saving.get_registered_name(cls)) is cls:
            continue
        if cls.__name__ not in found:
            found.append(cls.__name__)
    return found


# --- inputs and calls -----------------------------------------------------------------------


def _int_range_of_consumers(
    operations: list[Any], k: ModuleType | None = None
) -> tuple[int, int] | None:
    """The valid range of integer inputs read by ``operations`` (an Embedding's ``input_dim``,
    a CategoryEncoding's ``num_tokens``), looking into a nested model's first layer."""
    k = k or keras()
    for op in operations:
        if isinstance(op, k.layers.Embedding):
            return (0, int(op.input_dim))
        if isinstance(op, k.layers.CategoryEncoding):
            return (0, int(op.num_tokens))
        sub = _sublayers(op) if isinstance(op, k.Model) else []
        if sub:
            first = [s for s in sub if not isinstance(s, k.layers.InputLayer)][:1]
            found = _int_range_of_consumers(first, k)
            if found:
                return found
    return None


def _consumers(tensor: Any) -> list[Any]:
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return []
    op = history.operation
    return [node.operation for node in getattr(op, "_outbound_nodes", [])]


def input_signature(model: Any) -> Any:
    """The model's inputs as an :class:`~pytest_kerasmodel.frameworks.inputs.InputSignature`."""
    __tracebackhide__ = True
    from pytest_kerasmodel.frameworks.inputspec import InputSignature, InputSpec

    k = keras()
    struct: Any = None
    try:
        struct = model.input
    except (AttributeError, ValueError):
        struct = None
    if struct is None:
        inputs = getattr(model, "inputs", None)
        if inputs:
            struct = inputs[0] if len(inputs) == 1 else list(inputs)

    def spec(name: str, tensor: Any) -> InputSpec:
        dtype = str(getattr(tensor, "dtype", None) or k.config.floatx())
        return InputSpec(
            name=name,
            shape=tuple(tensor.shape),
            dtype=dtype,
            int_range=_int_range_of_consumers(_consumers(tensor)),
        )

    if isinstance(struct, dict):
        return InputSignature(tuple(spec(str(n), t) for n, t in struct.items()), "dict")
    if isinstance(struct, (list, tuple)):
        specs = tuple(spec(str(getattr(t, "name", f"input_{i}")), t) for i, t in enumerate(struct))
        return InputSignature(specs, "list")
    if struct is not None:
        return InputSignature((spec(str(getattr(struct, "name", "input")), struct),), "single")

    # A subclassed model: Keras records the shapes it was built with.
    build = model.get_build_config() if getattr(model, "built", False) else None
    shape = (build or {}).get("input_shape")
    if shape is None:
        shapes = (build or {}).get("shapes_dict") or {}
        if len(shapes) == 1:
            shape = next(iter(shapes.values()))
    return built_input_signature(model, shape, k, k.config.floatx())


def built_input_signature(model: Any, shape: Any, k: ModuleType, floatx: str) -> Any:
    """A subclassed model's one input, from the shape it was built with (``k``: the Keras it
    comes from); :class:`InputsError` when no single input shape is known."""
    __tracebackhide__ = True
    from pytest_kerasmodel.frameworks.inputspec import InputsError, InputSignature, InputSpec

    if (
        shape is None
        or not isinstance(shape, (list, tuple))
        or (shape and isinstance(shape[0], (list, tuple, dict)))
    ):
        raise InputsError(
            f"cannot generate inputs for {type(model).__name__} {getattr(model, 'name', '')!r}: "
            "its input shape is not known (a subclassed model never called, or called with "
            "several arguments); pass inputs= with a few real samples"
        )
    sub = [s for s in _sublayers(model) if not isinstance(s, k.layers.InputLayer)][:1]
    return InputSignature(
        (InputSpec("input", tuple(shape), floatx, _int_range_of_consumers(sub, k)),),
        "single",
    )


def call_model(model: Any, inputs: Any) -> Any:
    """``model(inputs, training=False)`` with every output converted to numpy.

    Calling the model directly avoids ``predict()``'s per-call tracing and batching
    overhead; the outputs keep the model's structure (array, list or dict).
    """
    k = keras()
    outputs = model(inputs, training=False)
    return k.tree.map_structure(k.ops.convert_to_numpy, outputs)


def output_names(model: Any) -> list[str] | None:
    """The names of a model's outputs (the output layers' names), when Keras knows them."""
    names = getattr(model, "output_names", None)
    if not names:  # a Sequential keeps them on the Functional model it wraps
        names = getattr(getattr(model, "_functional", None), "output_names", None)
    try:
        return [str(n) for n in names] if names else None
    except TypeError:
        return None


# --- saving and loading ---------------------------------------------------------------------


def save(model: Any, fmt: str, folder: str | os.PathLike[str]) -> str:
    """Save ``model`` in ``fmt`` under ``folder``; return the path of the saved file.

    Keras's legacy HDF5 writer pops ``optimizer`` from the model's own compile config
    (``keras/src/legacy/saving/saving_utils.py``, ``model_metadata``), so a ``.keras``
    saved after an ``.h5`` would lose its optimizer: the compile config is restored after.
    """
    import warnings

    path = os.path.join(os.fspath(folder), FORMAT_FILES[fmt])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fmt == "keras":
            model.save(path)
        elif fmt == "h5":
            _save_h5(model, path)
        elif fmt == "weights":
            k = keras()
            config = k.saving.serialize_keras_object(model)
            config_path = os.path.join(os.fspath(folder), WEIGHTS_CONFIG_FILE)
            with open(config_path, "w", encoding="utf-8") as f:
                json.dump(config, f, default=_json_default)
            model.save_weights(path)
        else:  # pragma: no cover - formats are validated by the caller
            raise ValueError(f"unknown roundtrip format {fmt!r}")
    return path


#: what Keras warns when it skips ``compile_from_config`` for a class with its own compile()
CUSTOM_COMPILE_WARNING = "because the model's `compile()` method is custom"


def hints_for(diff: Any, original: Any) -> list[str]:
    """What a known Keras 3 limitation behind the differences in ``diff`` (a
    :class:`~pytest_kerasmodel.roundtrip.report.FormatDiff`) is and what to do about it; the
    failures of saving and reloading are explained where they are described
    (``roundtrip.hints.failure_of``)."""
    hints = []
    lost = [d for d in diff.optimizer if d.kind == "missing"]
    custom_compile = any(CUSTOM_COMPILE_WARNING in w for w in diff.warnings)
    if custom_compile and (lost or diff.compile):
        hints.append(
            "the model's class overrides compile() (keras-hub tasks compile themselves with "
            "their own defaults in __init__), so Keras skips compile_from_config on reload: the "
            "reloaded model keeps the optimizer, loss and metrics its constructor chose, and "
            "the saved optimizer state is not loaded into it. Call compile() yourself after "
            "load_model (the slots then start fresh), or reload with compile=False"
        )
    elif diff.format == "h5" and lost:
        hints.append(
            "Keras 3's legacy .h5 loader builds the optimizer for the model's own variables "
            "only (legacy_h5_format.load_model_from_hdf5: optimizer.build(model."
            "_trainable_variables)), so the slots the file holds under optimizer_weights/ are "
            "not restored (Keras logs 'Error in loading the saved optimizer state'): training "
            "resumes with fresh slots. Resume training from .keras"
        )
    return hints


def _save_h5(model: Any, path: str) -> None:
    from keras.src.legacy.saving import legacy_h5_format

    compile_config = getattr(model, "_compile_config", None)
    saved = dict(compile_config.config) if compile_config is not None else None
    try:
        legacy_h5_format.save_model_to_hdf5(model, path)
    finally:
        if saved is not None and compile_config is not None:
            compile_config.config.clear()
            compile_config.config.update(saved)


def load(
    fmt: str,
    path: str,
    *,
    custom_objects: dict[str, Any] | None = None,
    compile: bool = True,
    safe_mode: bool = True,
) -> tuple[Any, list[str]]:
    """Reload a model saved by :func:`save`; return it with the warnings Keras gave."""
    import warnings

    k = keras()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if fmt in ("keras", "h5"):
            model = k.models.load_model(
                path, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode
            )
        elif fmt == "weights":
            config_path = os.path.join(os.path.dirname(path), WEIGHTS_CONFIG_FILE)
            with open(config_path, encoding="utf-8") as f:
                config = json.load(f)
            if not compile:
                config.pop("compile_config", None)
            from keras.src.saving.object_registration import CustomObjectScope
            from keras.src.saving.serialization_lib import ObjectSharingScope

            with CustomObjectScope(custom_objects or {}), ObjectSharingScope():
                model = k.saving.deserialize_keras_object(
                    config, custom_objects=custom_objects, safe_mode=safe_mode
                )
            model.load_weights(path)
        else:  # pragma: no cover
            raise ValueError(f"unknown roundtrip format {fmt!r}")
    messages = [
        f"{w.category.__name__}: {w.message}"
        for w in caught
        if "__array__ implementation" not in str(w.message)
    ]
    return model, messages


# --- global state ---------------------------------------------------------------------------


@contextlib.contextmanager
def preserved_global_state() -> Iterator[None]:
    """Leave random seeds, Keras's global config, name counters and the cwd as they were.

    Reloading a model creates layers: that draws seeds from Python's ``random`` (every
    ``SeedGenerator`` without a seed) and advances Keras's auto-naming counters.
    """
    import copy
    import random

    import numpy as np

    k = keras()
    from keras.src.backend.common import global_state

    py_state = random.getstate()
    np_state = np.random.get_state()
    generator = global_state.get_global_attribute("global_seed_generator")
    generator_state = generator.state.numpy() if generator is not None else None
    uids = global_state.get_global_attribute("object_name_uids")
    uids_copy = copy.copy(uids) if uids is not None else None
    policy = global_state.get_global_attribute("dtype_policy")
    safe_mode = global_state.get_global_attribute("safe_mode_saving")
    floatx, epsilon, data_format = (
        k.config.floatx(),
        k.config.epsilon(),
        k.config.image_data_format(),
    )
    cwd = os.getcwd()
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        if generator is not None:
            generator.state.assign(generator_state)
        global_state.set_global_attribute("global_seed_generator", generator)
        global_state.set_global_attribute("object_name_uids", uids_copy)
        global_state.set_global_attribute("dtype_policy", policy)
        global_state.set_global_attribute("safe_mode_saving", safe_mode)
        k.config.set_floatx(floatx)
        k.config.set_epsilon(epsilon)
        k.config.set_image_data_format(data_format)
        if os.getcwd() != cwd:
            os.chdir(cwd)


# --- export -----------------------------------------------------------------------------------


def dtype_policy_name(model: Any) -> str | None:
    """The name of the model's dtype policy (``"float32"``, ``"mixed_float16"``), if it has one."""
    policy = getattr(model, "dtype_policy", None)
    name = getattr(policy, "name", None)
    return str(name) if name is not None else None


def non_float32_layers(model: Any) -> list[tuple[str, str]]:
    """``(layer name, dtype policy)`` of every layer (the model too) whose policy is not
    ``float32``: mixed precision or float16/bfloat16 layers, which the exporters do not expect."""
    found = []
    for _, layer in iter_layers(model):
        name = dtype_policy_name(layer)
        if name not in (None, "float32"):
            found.append((str(getattr(layer, "name", type(layer).__name__)), name))
    return found


def has_rnn(model: Any) -> bool:
    """Whether any layer of ``model`` is a recurrent layer (LSTM, GRU, SimpleRNN, RNN, ...)."""
    k = keras()
    return any(isinstance(layer, k.layers.RNN) for _, layer in iter_layers(model))
