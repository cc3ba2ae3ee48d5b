"""Reader: a LiteRT / TensorFlow Lite model (``.tflite``), parsed with LiteRT's flatbuffer schema.

The flatbuffer is read with the schema module that ``ai-edge-litert`` ships
(``schema_py_generated``): the signature runner's inputs and outputs and every operator code.
A custom operator (``BuiltinOperator.CUSTOM``) needs a kernel registered by native code; a
Flex operator (custom code ``Flex...``) runs full TensorFlow ops through the Flex delegate.
Both are unsafe for a gate: they run code that is not LiteRT's own builtins.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from pytest_kerasmodel.artifacts.base import (
    FORMAT_TFLITE,
    Artifact,
    ExportedGraph,
    Limits,
    TensorSpec,
    graph_artifact,
)
from pytest_kerasmodel.errors import ArtifactError

NAME = "tflite"
IDENTIFIER = b"TFL3"
CUSTOM = 32  # BuiltinOperator.CUSTOM

# TensorType (schema.fbs)
_DTYPES = {
    0: "float32",
    1: "float16",
    2: "int32",
    3: "uint8",
    4: "int64",
    5: "string",
    6: "bool",
    7: "int16",
    9: "int8",
    10: "float64",
    16: "uint32",
    17: "uint16",
}


def claims(path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        with open(path, "rb") as fh:
            return fh.read(8)[4:8] == IDENTIFIER
    except OSError:
        return False


def owned_files(path: Path) -> list[Path]:
    return [path]


def _schema() -> Any:
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError:
        raise ArtifactError(
            "tflite",
            "integrity",
            "reading a .tflite file needs LiteRT's flatbuffer schema",
            hint="pip install ai-edge-litert (or pytest-kerasmodel[export])",
        ) from None
    return schema_py_generated


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")


def read_graph(path: Path) -> ExportedGraph:
    schema = _schema()
    data = path.read_bytes()
    if data[4:8] != IDENTIFIER:
        raise ArtifactError(path, "integrity", "no TFL3 flatbuffer identifier")
    try:
        model = schema.Model.GetRootAs(data, 0)
        names = {
            schema.BuiltinOperator.__dict__[k]: k
            for k in dir(schema.BuiltinOperator)
            if not k.startswith("_")
        }
        graph = ExportedGraph(signature="<none>")
        ops: dict[str, int] = {}
        codes = []
        for i in range(model.OperatorCodesLength()):
            code = model.OperatorCodes(i)
            builtin = max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode()))
            custom = _text(code.CustomCode())
            codes.append((builtin, custom))
        for s in range(model.SubgraphsLength()):
            subgraph = model.Subgraphs(s)
            for o in range(subgraph.OperatorsLength()):
                index = subgraph.Operators(o).OpcodeIndex()
                builtin, custom = codes[index]
                op = custom if builtin == CUSTOM else names.get(builtin, f"builtin {builtin}")
                ops[op] = ops.get(op, 0) + 1
        for builtin, custom in codes:
            if builtin != CUSTOM:
                continue
            if custom.startswith("Flex"):
                reason = (
                    f"Flex operator {custom}: a TensorFlow op run through the Flex delegate "
                    "(full TensorFlow kernels, not LiteRT builtins)"
                )
            else:
                reason = (
                    f"custom operator {custom!r}: its kernel is native code registered by the app"
                )
            graph.unsafe.append((f"operator {custom}", reason))
        graph.ops = dict(sorted(ops.items()))
        if model.SignatureDefsLength():
            signature = model.SignatureDefs(0)
            graph.signature = _text(signature.SignatureKey())
            subgraph = model.Subgraphs(signature.SubgraphIndex())

            def spec(tensor_map: Any) -> TensorSpec:
                tensor = subgraph.Tensors(tensor_map.TensorIndex())
                shape = (
                    tensor.ShapeSignatureAsNumpy()
                    if tensor.ShapeSignatureLength()
                    else tensor.ShapeAsNumpy()
                )
                dims = [None if int(d) < 0 else int(d) for d in (shape if len(shape) else [])]
                return TensorSpec(
                    _text(tensor_map.Name()), dims, _DTYPES.get(tensor.Type(), str(tensor.Type()))
                )

            graph.inputs = [spec(signature.Inputs(i)) for i in range(signature.InputsLength())]
            graph.outputs = [spec(signature.Outputs(i)) for i in range(signature.OutputsLength())]
    except ArtifactError:
        raise
    except Exception as exc:  # flatbuffers raises struct errors, IndexError on a damaged file
        raise ArtifactError(
            path, "integrity", f"not a readable .tflite flatbuffer: {exc}"
        ) from None
    return graph


def open_tflite(path: Path, limits: Limits, stack: contextlib.ExitStack) -> Artifact:
    return graph_artifact(path, FORMAT_TFLITE, read_graph(path))
