"""Generate ``keras_names.json``: every class and function Keras, tf-keras and KerasHub define.

The safety scan passes a config only when each class, module, registered name and serialised
function in it is one of these (or one the user allowed). The table is data, generated from the
installed packages by walking their public API (``keras.layers``, ``tf_keras.losses``,
``keras_hub.models`` ...) and their serialization registries (``GLOBAL_CUSTOM_OBJECTS`` and each
``ALL_OBJECTS_DICT``), so that a new release that adds a layer fails
``tests/test_safety_allowlist.py`` instead of a user. Regenerate with::

    python -m pytest_kerasmodel.safety.generate_allowlist

Regenerating merges into the committed table (names older releases define stay: files they wrote
still name them). Only running this module imports Keras; the scan reads the JSON.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import sys
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: The committed table, beside this module.
TABLE_PATH = Path(__file__).with_name("keras_names.json")

TABLE_FORMAT = 1

#: The packages walked, and the public roots of each (module prefixes whose attributes are API).
PACKAGES = ("keras", "tf_keras", "keras_hub")

#: Names the installed packages no longer define but older Keras wrote in the files it saved
#: (Keras 1.x layers and Keras 2.0-2.2 legacy names, read by DL4J, frugally-deep and archives of
#: those eras). Bare class names only: a legacy HDF5 ``model_config`` stores nothing else.
HISTORICAL_NAMES = (
    "AtrousConv1D",
    "AtrousConv2D",
    "AtrousConvolution1D",
    "AtrousConvolution2D",
    "Deconvolution2D",
    "Highway",
    "MaxoutDense",
    "Merge",
    "SrelU",
    "SReLU",
    "TimeDistributedDense",
    "ThresholdedReLU",
    "Convolution1D",
    "Convolution2D",
    "Convolution3D",
    "CuDNNGRU",
    "CuDNNLSTM",
    "Cropping1D",
    "InputSpec",
    "Node",
    "Container",
    "Graph",
    "TensorShape",
    "TypeSpec",
    "CompositeTensor",
    "ShapeAndSpec",
)

#: The markers the serializers themselves write as ``class_name`` (tensors, bytes, tuples,
#: slices ...): data, not classes. ``__lambda__`` is not among them: it is code.
SERIALIZER_MARKERS = (
    "__bytes__",
    "__ellipsis__",
    "__keras_tensor__",
    "__numpy__",
    "__slice__",
    "__tensor__",
    "__tuple__",
    "__typespec__",
)


def _public_modules(package: str) -> Iterable[types.ModuleType]:
    """Every public API module of ``package``, found by following module attributes."""
    root = importlib.import_module(package)
    seen: set[str] = set()
    stack = [root]
    while stack:
        module = stack.pop()
        if module.__name__ in seen:
            continue
        seen.add(module.__name__)
        yield module
        for attribute in dir(module):
            child = getattr(module, attribute, None)
            if (
                isinstance(child, types.ModuleType)
                and child.__name__.startswith(package + ".")
                and ".src" not in child.__name__
                and "._" not in child.__name__.removeprefix(package)
            ):
                stack.append(child)


def _defined(value: Any) -> bool:
    return inspect.isclass(value) or inspect.isfunction(value) or inspect.isbuiltin(value)


def _record(table: dict[str, set[str]], module: str, name: str) -> None:
    table.setdefault(module, set()).add(name)


def collect(packages: Iterable[str] = PACKAGES) -> dict[str, Any]:
    """The names the installed ``packages`` define, as the JSON table (imports them)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    modules: dict[str, set[str]] = {}
    names: set[str] = set(HISTORICAL_NAMES)
    registered: set[str] = set()
    versions: dict[str, str] = {}
    for package in packages:
        try:
            root = importlib.import_module(package)
        except ImportError:
            continue
        versions[package] = str(getattr(root, "__version__", "?"))
        for module in _public_modules(package):
            for attribute in dir(module):
                if attribute.startswith("_"):
                    continue
                value = getattr(module, attribute, None)
                if not _defined(value):
                    continue
                _record(modules, module.__name__, attribute)
                own = getattr(value, "__module__", None)
                if isinstance(own, str) and own.split(".")[0] in packages:
                    _record(modules, own, getattr(value, "__name__", attribute))
                names.add(attribute)
        for cls in _subclasses(package):
            _record(modules, cls.__module__, cls.__name__)
            names.add(cls.__name__)
        for registry in _registries(package):
            for key, value in registry.items():
                if not isinstance(key, str) or not _defined(value):
                    continue
                if ">" in key:
                    registered.add(key)
                names.add(key.split(">")[-1])
                own = getattr(value, "__module__", None)
                if isinstance(own, str):
                    _record(modules, own, getattr(value, "__name__", key))
                    names.add(getattr(value, "__name__", key))
    return {
        "format": TABLE_FORMAT,
        "generated_from": versions,
        "markers": sorted(SERIALIZER_MARKERS),
        "names": sorted(names),
        "registered": sorted(registered),
        "modules": {module: sorted(found) for module, found in sorted(modules.items())},
    }


#: The base classes whose every subclass a package defines is serialisable (layers, models,
#: losses, ...): walked through ``__subclasses__`` so that classes the public API does not export
#: (``Functional``, KerasHub's backbones' inner layers) are in the table by the module they live in.
BASES = {
    "keras": ("keras.src.saving.keras_saveable:KerasSaveable", "keras.src.ops.operation:Operation"),
    "tf_keras": (
        "tf_keras.src.engine.base_layer:Layer",
        "tf_keras.src.losses:Loss",
        "tf_keras.src.optimizers.optimizer:Optimizer",
        "tf_keras.src.optimizers.legacy.optimizer_v2:OptimizerV2",
        "tf_keras.src.initializers.initializers:Initializer",
        "tf_keras.src.regularizers:Regularizer",
        "tf_keras.src.constraints:Constraint",
        "tf_keras.src.optimizers.schedules.learning_rate_schedule:LearningRateSchedule",
        "tf_keras.src.mixed_precision.policy:Policy",
    ),
    "keras_hub": ("keras.src.saving.keras_saveable:KerasSaveable",),
}


def _subclasses(package: str) -> Iterable[type]:
    """Every class of ``package`` that derives from one of its serialisable bases."""
    for source in BASES.get(package, ()):
        module_name, attribute = source.split(":")
        try:
            base = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError):
            continue
        stack, seen = [base], set()
        while stack:
            cls = stack.pop()
            if cls in seen:
                continue
            seen.add(cls)
            stack.extend(cls.__subclasses__())
            if cls.__module__.split(".")[0] == package:
                yield cls


def _registries(package: str) -> Iterable[dict[str, Any]]:
    """The serialization registries of ``package``: custom objects and each kind's lookup."""
    sources = {
        "keras": (
            "keras.src.saving.object_registration:GLOBAL_CUSTOM_OBJECTS",
            "keras.src.activations:ALL_OBJECTS_DICT",
            "keras.src.losses:ALL_OBJECTS_DICT",
            "keras.src.metrics:ALL_OBJECTS_DICT",
            "keras.src.initializers:ALL_OBJECTS_DICT",
            "keras.src.regularizers:ALL_OBJECTS_DICT",
            "keras.src.constraints:ALL_OBJECTS_DICT",
            "keras.src.optimizers:ALL_OBJECTS_DICT",
            "keras.src.optimizers.schedules.learning_rate_schedule:ALL_OBJECTS_DICT",
            "keras.src.dtype_policies:ALL_OBJECTS_DICT",
            "keras.src.quantizers:ALL_OBJECTS_DICT",
        ),
        "tf_keras": ("tf_keras.src.saving.object_registration:_GLOBAL_CUSTOM_OBJECTS",),
        "keras_hub": ("keras.src.saving.object_registration:GLOBAL_CUSTOM_OBJECTS",),
    }
    for source in sources.get(package, ()):
        module_name, attribute = source.split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        registry = getattr(module, attribute, None)
        if isinstance(registry, dict):
            yield registry
    if package == "tf_keras":
        for kind in ("activations", "losses", "metrics", "initializers", "optimizers"):
            try:
                module = importlib.import_module(f"tf_keras.src.{kind}")
            except ImportError:
                continue
            yield {k: v for k, v in vars(module).items() if not k.startswith("_")}


def merge(committed: dict[str, Any], fresh: dict[str, Any]) -> dict[str, Any]:
    """``fresh`` with everything ``committed`` already held (older releases' names stay)."""
    modules = {m: set(n) for m, n in committed.get("modules", {}).items()}
    for module, found in fresh["modules"].items():
        modules.setdefault(module, set()).update(found)
    return {
        "format": TABLE_FORMAT,
        "generated_from": fresh["generated_from"],
        "markers": sorted(set(committed.get("markers", ())) | set(fresh["markers"])),
        "names": sorted(set(committed.get("names", ())) | set(fresh["names"])),
        "registered": sorted(set(committed.get("registered", ())) | set(fresh["registered"])),
        "modules": {module: sorted(found) for module, found in sorted(modules.items())},
    }


def missing(committed: dict[str, Any], fresh: dict[str, Any]) -> list[str]:
    """What ``fresh`` defines that ``committed`` lacks, one line each (empty when up to date)."""
    lines = [f"name {n}" for n in sorted(set(fresh["names"]) - set(committed.get("names", ())))]
    lines += [
        f"registered {n}"
        for n in sorted(set(fresh["registered"]) - set(committed.get("registered", ())))
    ]
    have = committed.get("modules", {})
    for module, found in fresh["modules"].items():
        lines += [f"{module}.{n}" for n in sorted(set(found) - set(have.get(module, ())))]
    return lines


def write(table: dict[str, Any], path: Path = TABLE_PATH) -> None:
    """Write the table atomically: a temporary file in the same folder, moved into place."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(table, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def main(argv: list[str] | None = None) -> int:
    """Regenerate the committed table from the installed packages; print what was added."""
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else TABLE_PATH
    committed = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    fresh = collect()
    added = missing(committed, fresh)
    write(merge(committed, fresh), path)
    print(f"{path}: {len(added)} name(s) added from {fresh['generated_from']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
