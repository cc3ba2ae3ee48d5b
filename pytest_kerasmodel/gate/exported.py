"""The gate's predictions check for exported graphs: run with the format's own runtime.

The golden is ``<artifact>.golden.npz`` as for Keras files. ``--keras-update-golden`` records it
from the Keras artifact the export was made from when a ``<artifact>.source`` sidecar names one
(a path relative to the exported artifact's folder): that Keras file is safety-scanned and
loaded in safe mode, and its outputs become the golden, so the gate proves that the shipped
graph predicts what the approved model predicts. Without a sidecar the golden is the runtime's
own outputs: later runs prove the artifact did not change.

Inputs come from ``<artifact>.inputs.npz`` when given, else from the source model's input specs
(:func:`~pytest_kerasmodel.frameworks.inputs.make_inputs`), else from the graph's serving signature.
The check runs only after the safety scan found nothing (see ``runner._precluded``). It raises
the gate's own :class:`~pytest_kerasmodel.gate.protocol.CheckFailure`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_kerasmodel import artifacts
from pytest_kerasmodel.gate.protocol import CheckFailure, Request

SOURCE_SUFFIX = ".source"
#: the runtime (assert_export's format name) of each exported artifact format
RUNTIME_OF = {
    artifacts.FORMAT_SAVEDMODEL: "tf_saved_model",
    artifacts.FORMAT_ONNX: "onnx",
    artifacts.FORMAT_TFLITE: "litert",
    artifacts.FORMAT_OPENVINO: "openvino",
}
#: the batch of generated inputs when the signature leaves it open
BATCH = 4


def source_sidecar(artifact: Path) -> Path:
    """``<artifact>.source``: names the Keras artifact this one was exported from."""
    return artifact.with_name(artifact.name + SOURCE_SUFFIX)


def _source_model(path: Path, request: Request) -> tuple[Any, Path] | None:
    """The Keras model the sidecar names, scanned first and loaded in safe mode."""
    sidecar = source_sidecar(path)
    if not sidecar.is_file():
        return None
    from pytest_kerasmodel.frameworks import keras3
    from pytest_kerasmodel.safety import scan_artifact

    name = sidecar.read_text(encoding="utf-8").strip()
    source = (path.parent / name).resolve()
    if not name or not source.exists():
        raise CheckFailure(f"{sidecar.name} names {name!r}, which does not exist")
    findings = scan_artifact(
        source,
        allowed_modules=request.allowed_modules,
        allowed_classes=request.allowed_classes,
    )
    if findings:
        lines = "\n".join(f"  - {f}" for f in findings)
        raise CheckFailure(
            f"the source {name} named by {sidecar.name} is refused by the safety scan:\n{lines}"
        )
    try:
        model = keras3.load_model(source, safe_mode=True, compile=False)
    except Exception as exc:
        raise CheckFailure(
            f"the source {name} cannot be loaded: {type(exc).__name__}: {exc}"
        ) from None
    return model, source


def _signature_inputs(runtime: Any) -> dict[str, Any]:
    """Inputs from the graph's serving signature: open dimensions of 8, an open batch of 4."""
    from pytest_kerasmodel.frameworks.inputs import InputSignature, InputSpec, inputs_for_signature

    inputs: dict[str, Any] = {}
    for name, shape, dtype in zip(
        runtime.input_names, runtime.input_shapes, runtime.input_dtypes, strict=True
    ):
        dims = tuple(shape) if shape else (None,)
        batch = dims[0] if dims[0] is not None else BATCH
        spec = InputSpec(name, (None, *dims[1:]), dtype)
        inputs.update(inputs_for_signature(InputSignature((spec,), "dict"), batch_size=batch))
    return inputs


def _run(runtime: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    from pytest_kerasmodel.frameworks import exporters

    flat = exporters.flatten_inputs(inputs, runtime, list(inputs))
    return dict(zip(runtime.output_names, runtime.run(flat), strict=True))


def check_predictions(path: Path, fmt_name: str, request: Request, golden_path: Path) -> str:
    """Run the exported artifact at ``path`` and compare with its golden; the passing message.
    Raises :class:`CheckFailure` saying why it fails."""
    from pytest_kerasmodel.compare import compare_named_arrays
    from pytest_kerasmodel.frameworks import exporters
    from pytest_kerasmodel.gate import goldens

    fmt = RUNTIME_OF[fmt_name]
    try:
        runtime = exporters.load_runtime(fmt, str(path))
    except ImportError as exc:
        package = exporters.PIP_PACKAGES.get(str(exc.name or "").split(".")[0], exc.name)
        raise CheckFailure(
            f"cannot run it: {exc} (pip install {package}, or pytest-kerasmodel[export])"
        ) from None
    except Exception as exc:
        raise CheckFailure(
            f"the {fmt} runtime cannot load it: {type(exc).__name__}: {exc}"
        ) from None
    source_note = ""
    if request.update_golden:
        sidecar = Path(request.inputs_file) if request.inputs_file else None
        source = _source_model(path, request)
        if sidecar is not None and sidecar.is_file():
            raw: Any = goldens.sidecar_inputs(sidecar)
            origin = f"from {sidecar.name}"
        elif source is not None:
            from pytest_kerasmodel.frameworks.inputs import make_inputs

            raw, origin = make_inputs(source[0]), "generated from the source model"
        else:
            raw, origin = _signature_inputs(runtime), "generated from the signature"
        names = list(raw) if isinstance(raw, dict) else _keras_input_names(source, runtime)
        flat = exporters.flatten_inputs(raw, runtime, names)
        inputs = dict(zip(runtime.input_names, flat, strict=True))
        if source is not None:
            expected = _source_outputs(source[0], raw, runtime)
            source_note = f", outputs of the source {source[1].name}"
        else:
            expected = _run(runtime, inputs)
        goldens.write_predictions(golden_path, inputs, expected)
        recorded = f"golden predictions ({origin} inputs{source_note}) recorded in {golden_path}"
    golden = goldens.read_predictions(golden_path)
    assert golden is not None  # nothing_to_compare skipped a missing golden
    inputs, expected = golden
    try:
        actual = _run(runtime, inputs if isinstance(inputs, dict) else {"input": inputs})
    except Exception as exc:
        raise CheckFailure(f"running it failed: {type(exc).__name__}: {exc}") from None
    diffs = compare_named_arrays(expected, actual, request.rtol, request.atol)
    if diffs:
        body = "\n".join("  " + d.render().replace("\n", "\n  ") for d in diffs)
        raise CheckFailure(
            f"the {fmt} runtime's predictions differ from the golden {golden_path} "
            f"(rtol={request.rtol:g}, atol={request.atol:g}):\n{body}\n{goldens.HOW_TO_UPDATE}",
            diffs=[d.to_dict() for d in diffs],
        )
    if request.update_golden:
        return f"{recorded}; the {fmt} runtime reproduces it"
    return f"{len(expected)} output(s) of the {fmt} runtime match {golden_path.name}"


def _keras_input_names(source: tuple[Any, Path] | None, runtime: Any) -> list[str]:
    if source is None:
        return list(runtime.input_names)
    from pytest_kerasmodel.frameworks import keras3

    return [s.name for s in keras3.input_signature(source[0]).specs]


def _source_outputs(model: Any, inputs: Any, runtime: Any) -> dict[str, Any]:
    """The source model's outputs, in the runtime's output order (a dict's keys sorted)."""
    from pytest_kerasmodel.export import _flat_outputs
    from pytest_kerasmodel.frameworks import keras3

    flat = _flat_outputs(model, keras3.call_model(model, inputs))
    if len(flat) != len(runtime.output_names):
        raise CheckFailure(
            f"the source model gives {len(flat)} output(s), the exported graph "
            f"{len(runtime.output_names)} {runtime.output_names}: not exported from it"
        )
    return dict(zip(runtime.output_names, flat, strict=True))
