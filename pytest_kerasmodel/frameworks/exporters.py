"""Keras's exporters and each export format's own runtime, imported lazily, at first use.

Like :mod:`pytest_kerasmodel.frameworks.keras3` (which it uses for Keras itself), this is one of
the few
modules that import heavy packages: TensorFlow for SavedModel, ``onnxruntime``, ``ai_edge_litert``
and ``openvino``, each inside the function that needs it, so that nothing here costs anything
until an export is checked or an exported artifact is run.

A runtime takes and gives flat lists of arrays: :func:`flatten_inputs` maps a model's inputs
(array, list or dict) onto the artifact's input names, and outputs come back in the artifact's
output order (a dict output by its sorted keys, as ``keras.tree.flatten`` orders it).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: where each format is exported, inside its own temporary folder
EXPORT_FILES = {
    "tf_saved_model": "saved_model",
    "onnx": "model.onnx",
    "litert": "model.tflite",
    "openvino": "model.xml",
}
#: the module each format's runtime is, and the pip package that installs it
RUNTIME_MODULES = {
    "tf_saved_model": ("tensorflow", "tensorflow"),
    "onnx": ("onnxruntime", "onnxruntime"),
    "litert": ("ai_edge_litert", "ai-edge-litert"),
    "openvino": ("openvino", "openvino"),
}
#: modules an exporter needs besides Keras and its runtime (a missing one fails the export)
EXPORTER_MODULES = {"onnx": ("tf2onnx", "tf2onnx")}
#: pip package of every module an export or a runtime may miss
PIP_PACKAGES = {
    module: package for module, package in [*RUNTIME_MODULES.values(), *EXPORTER_MODULES.values()]
}
PIP_PACKAGES.update({"onnx": "onnx", "scipy": "scipy"})


def export_model(model: Any, fmt: str, folder: str, **kwargs: Any) -> str:
    """``model.export(...)`` into ``folder``, quietly; the artifact's path."""
    import contextlib
    import io
    import warnings

    from pytest_kerasmodel.frameworks import keras3

    keras3.keras()
    path = os.path.join(folder, EXPORT_FILES[fmt])
    kwargs.setdefault("verbose", False)
    # tf2onnx and the LiteRT converter print to stdout and warn (numpy 2, the converter's
    # deprecation); what matters reaches the caller as an exception
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        model.export(path, format=fmt, **kwargs)
    return path


def import_runtime(fmt: str) -> Any:
    """Import the runtime of ``fmt`` (raises ``ImportError`` naming the module)."""
    import importlib

    from pytest_kerasmodel.frameworks import keras3

    if fmt == "tf_saved_model":
        keras3.keras()  # TensorFlow's start-up logs quietened the same way
    module, _ = RUNTIME_MODULES[fmt]
    return importlib.import_module(module)


@dataclass
class Runtime:
    """An exported artifact loaded with its format's runtime.

    ``input_names`` in the artifact's order; ``run(flat_inputs)`` returns the outputs as a flat
    list in the artifact's output order, named by ``output_names``.
    """

    format: str
    input_names: list[str]
    output_names: list[str]
    input_shapes: list[tuple[int | None, ...]]
    input_dtypes: list[str]
    _run: Callable[[list[Any]], list[Any]]
    notes: list[str] = field(default_factory=list)  # how the runtime computes, when it matters

    def run(self, flat_inputs: list[Any]) -> list[Any]:
        return self._run(flat_inputs)


def _numeric_suffix(name: str) -> tuple[int, str]:
    match = re.search(r"(\d+)$", name)
    return (int(match.group(1)) if match else -1, name)


def load_runtime(fmt: str, path: str) -> Runtime:
    """Load an exported artifact with its format's own runtime."""
    module = import_runtime(fmt)
    loader = {
        "tf_saved_model": _load_savedmodel,
        "onnx": _load_onnx,
        "litert": _load_litert,
        "openvino": _load_openvino,
    }[fmt]
    return loader(module, path)


def _load_savedmodel(tf: Any, path: str) -> Runtime:
    loaded = tf.saved_model.load(path)
    signature = loaded.signatures["serving_default"]
    specs = signature.structured_input_signature[1]  # {name: TensorSpec}
    names = sorted(specs)
    outputs = signature.structured_outputs
    out_names = sorted(outputs, key=_numeric_suffix)

    def run(flat: list[Any]) -> list[Any]:
        # ``loaded`` is referenced here to keep it alive: the signature's concrete function
        # references its variables, which TensorFlow deletes with the loaded object
        assert loaded is not None
        result = signature(**{n: tf.constant(a) for n, a in zip(names, flat, strict=True)})
        return [result[n].numpy() for n in out_names]

    return Runtime(
        "tf_saved_model",
        names,
        out_names,
        [tuple(specs[n].shape.as_list()) for n in names],
        [specs[n].dtype.name for n in names],
        run,
    )


def _onnx_dim(dim: Any) -> int | None:
    return dim if isinstance(dim, int) else None


def _load_onnx(ort: Any, path: str) -> Runtime:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    inputs = session.get_inputs()
    names = [i.name for i in inputs]

    def run(flat: list[Any]) -> list[Any]:
        return list(session.run(None, dict(zip(names, flat, strict=True))))

    def dtype(onnx_type: str) -> str:
        inner = onnx_type[len("tensor(") : -1] if onnx_type.startswith("tensor(") else onnx_type
        return {"float": "float32", "double": "float64"}.get(inner, inner)

    return Runtime(
        "onnx",
        names,
        [o.name for o in session.get_outputs()],
        [tuple(_onnx_dim(d) for d in i.shape) for i in inputs],
        [dtype(i.type) for i in inputs],
        run,
    )


def _load_litert(litert: Any, path: str) -> Runtime:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    signatures = interpreter.get_signature_list()
    key = "serving_default" if "serving_default" in signatures else sorted(signatures)[0]
    runner = interpreter.get_signature_runner(key)
    details = runner.get_input_details()
    names = list(signatures[key]["inputs"])
    out_names = sorted(signatures[key]["outputs"], key=_numeric_suffix)

    def run(flat: list[Any]) -> list[Any]:
        result = runner(**dict(zip(names, flat, strict=True)))
        return [result[n] for n in out_names]

    def shape(name: str) -> tuple[int | None, ...]:
        sig = details[name].get("shape_signature", details[name]["shape"])
        return tuple(None if int(d) < 0 else int(d) for d in sig)

    return Runtime(
        "litert",
        names,
        out_names,
        [shape(n) for n in names],
        [str(details[n]["dtype"].__name__) for n in names],
        run,
    )


def _load_openvino(ov: Any, path: str) -> Runtime:
    compiled = ov.Core().compile_model(path, "CPU")
    inputs = list(compiled.inputs)
    names = [i.get_any_name() for i in inputs]
    outputs = list(compiled.outputs)

    def run(flat: list[Any]) -> list[Any]:
        result = compiled(list(flat))
        return [result[o] for o in outputs]

    def shape(port: Any) -> tuple[int | None, ...]:
        return tuple(d.get_length() if d.is_static else None for d in port.get_partial_shape())

    def out_name(i: int, port: Any) -> str:
        names = sorted(port.get_names())
        return names[0] if names else f"output_{i}"

    try:
        notes = _precision_note(compiled.get_property("INFERENCE_PRECISION_HINT"))
    except Exception:  # a device whose plugin does not tell
        notes = []
    return Runtime(
        "openvino",
        names,
        [out_name(i, o) for i, o in enumerate(outputs)],
        [shape(i) for i in inputs],
        [str(i.get_element_type().to_dtype()) for i in inputs],
        run,
        notes,
    )


def _precision_note(precision: Any) -> list[str]:
    """What a report should say when OpenVINO's CPU plugin does not compute in float32."""
    name = str(getattr(precision, "get_type_name", lambda: precision)())
    if name in ("f32", "float32"):
        return []
    return [
        f"OpenVINO's CPU plugin computes in {name} by default on this machine "
        "(INFERENCE_PRECISION_HINT): a deployment with default settings sees these numbers; "
        "set a tolerance for 'openvino' on purpose, or compile with "
        "{'INFERENCE_PRECISION_HINT': 'f32'} where you deploy"
    ]


def flatten_inputs(inputs: Any, runtime: Runtime, keras_names: Sequence[str]) -> list[Any]:
    """The model's inputs as the runtime's flat list: by name where the artifact kept the
    model's input names, else in the model's order (``keras.tree.flatten``'s)."""
    import numpy as np

    if isinstance(inputs, dict):
        by_name = {str(k): np.asarray(v) for k, v in inputs.items()}
    elif isinstance(inputs, (list, tuple)):
        by_name = {n: np.asarray(v) for n, v in zip(keras_names, inputs, strict=True)}
    else:
        by_name = {keras_names[0] if keras_names else "input": np.asarray(inputs)}
    if set(runtime.input_names) == set(by_name):
        return [by_name[n] for n in runtime.input_names]
    # the artifact renamed them (``input_0``, ``inputs:0``): match in order, after a dict's
    # keys sorted the way keras.tree.flatten and the exporters sort them
    keys = sorted(by_name) if isinstance(inputs, dict) else list(by_name)
    ordered = [by_name[k] for k in keys]
    if len(ordered) != len(runtime.input_names):
        raise ValueError(
            f"the artifact takes {len(runtime.input_names)} input(s) {runtime.input_names}, "
            f"the model {len(ordered)} {list(by_name)}"
        )
    return ordered
