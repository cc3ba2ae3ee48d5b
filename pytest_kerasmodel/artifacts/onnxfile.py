"""Reader: an ONNX model file, parsed with the ``onnx`` package's own protobuf reader.

The graph is loaded without its external data (``load_external_data=False``): every tensor
stored outside the file names its location, and a location that is absolute or leads out of
the model's folder is unsafe (the runtime would read any file it names). Operators outside the
standard domains (``""``/``ai.onnx``, ``ai.onnx.ml``, ``ai.onnx.preview.training``) need a
custom operator library that the runtime loads as native code: unsafe too.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from pytest_kerasmodel.artifacts.base import (
    FORMAT_ONNX,
    Artifact,
    ExportedGraph,
    Limits,
    TensorSpec,
    graph_artifact,
)
from pytest_kerasmodel.errors import ArtifactError

NAME = "onnx"
SUFFIX = ".onnx"
STANDARD_DOMAINS = ("", "ai.onnx", "ai.onnx.ml", "ai.onnx.preview.training")


def claims(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(SUFFIX)


def owned_files(path: Path) -> list[Path]:
    return [path]


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ArtifactError(
            "onnx",
            "integrity",
            "reading an .onnx file needs the onnx package",
            hint="pip install onnx (or pytest-kerasmodel[export])",
        ) from None
    return onnx


def _spec(value: Any, onnx: Any) -> TensorSpec:
    tensor = value.type.tensor_type
    dims: list[int | None] | None = None
    if tensor.HasField("shape"):
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name if tensor.elem_type else "?"
    return TensorSpec(value.name, dims, dtype)


def _tensors(graph: Any) -> list[Any]:
    """Every tensor of a graph and of its subgraphs (If / Loop / Scan bodies)."""
    found = list(graph.initializer) + [s.values for s in graph.sparse_initializer]
    for node in graph.node:
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                found += _tensors(sub)
            if attr.HasField("t"):
                found.append(attr.t)
    return found


def _nodes(graph: Any) -> list[Any]:
    nodes = list(graph.node)
    for node in graph.node:
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                nodes += _nodes(sub)
    return nodes


def read_graph(path: Path) -> ExportedGraph:
    onnx = _onnx()
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # DecodeError and whatever a damaged file makes protobuf raise
        raise ArtifactError(path, "integrity", f"not an ONNX model: {exc}") from None
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise ArtifactError(path, "integrity", f"the ONNX checker refuses it: {exc}") from None
    graph = ExportedGraph(signature=model.graph.name or "main")
    initializers = {t.name for t in model.graph.initializer}
    graph.inputs = [_spec(v, onnx) for v in model.graph.input if v.name not in initializers]
    graph.outputs = [_spec(v, onnx) for v in model.graph.output]
    local = {f.domain for f in model.functions}
    ops: dict[str, int] = {}
    nodes = _nodes(model.graph) + [n for f in model.functions for n in f.node]
    for node in nodes:
        op = f"{node.domain}.{node.op_type}" if node.domain else node.op_type
        ops[op] = ops.get(op, 0) + 1
    graph.ops = dict(sorted(ops.items()))
    for domain in sorted({n.domain for n in nodes} | {o.domain for o in model.opset_import}):
        if domain not in STANDARD_DOMAINS and domain not in local:
            users = sorted({n.op_type for n in nodes if n.domain == domain})
            graph.unsafe.append(
                (
                    f"operator domain {domain!r}",
                    f"not a standard ONNX domain: its operators {users} come from a custom "
                    "operator library the runtime loads as native code",
                )
            )
    folder = os.path.realpath(path.parent)
    for tensor in _tensors(model.graph):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        target = os.path.realpath(os.path.join(folder, location))
        if os.path.isabs(location) or os.path.commonpath([folder, target]) != folder:
            graph.unsafe.append(
                (
                    f"tensor {tensor.name!r}",
                    f"external data at {location!r} leads out of the model's folder",
                )
            )
    return graph


def open_onnx(path: Path, limits: Limits, stack: contextlib.ExitStack) -> Artifact:
    return graph_artifact(path, FORMAT_ONNX, read_graph(path))
