"""Reader: an OpenVINO IR model, ``model.xml`` (the graph) and ``model.bin`` (its weights).

The XML is the IR's own text form, parsed with the standard library's XML parser (no
entities are resolved): every layer, its operation set, the ``Parameter`` inputs and ``Result``
outputs, and every constant's slice of the ``.bin``, which must lie inside that file. A layer
whose operation set is not one of OpenVINO's own (``opsetN``) is an extension: a native library
must be loaded to run it, which a gate must refuse.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from pytest_kerasmodel.artifacts.base import (
    FORMAT_OPENVINO,
    Artifact,
    ExportedGraph,
    Limits,
    TensorSpec,
    graph_artifact,
)
from pytest_kerasmodel.errors import ArtifactError

NAME = "openvino-ir"
SUFFIX = ".xml"
_OWN_OPSETS = re.compile(r"^opset\d+$")
_HEAD_BYTES = 512


def claims(path: Path) -> bool:
    if not (path.is_file() and path.name.lower().endswith(SUFFIX)):
        return False
    try:
        with open(path, "rb") as fh:
            return b"<net " in fh.read(_HEAD_BYTES)
    except OSError:
        return False


def weights_file(path: Path) -> Path:
    return path.with_suffix(".bin")


def owned_files(path: Path) -> list[Path]:
    return [path, weights_file(path)] if weights_file(path).is_file() else [path]


def _dims(text: str | None) -> list[int | None] | None:
    if text is None:
        return None
    if not text.strip():
        return []
    return [
        int(d) if d.strip().lstrip("-").isdigit() and int(d) >= 0 else None for d in text.split(",")
    ]


_ELEMENT_TYPES = {
    "f32": "float32",
    "f16": "float16",
    "bf16": "bfloat16",
    "f64": "float64",
    "i32": "int32",
    "i64": "int64",
    "i8": "int8",
    "u8": "uint8",
    "boolean": "bool",
}


def read_graph(path: Path) -> ExportedGraph:
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ArtifactError(path, "integrity", f"model.xml is not XML: {exc}") from None
    if root.tag != "net":
        raise ArtifactError(path, "integrity", f"not an OpenVINO IR: the root is <{root.tag}>")
    binary = weights_file(path)
    bin_size = binary.stat().st_size if binary.is_file() else None
    graph = ExportedGraph(signature=root.get("name") or "main")
    ops: dict[str, int] = {}
    needs_bin = 0
    for layer in root.iter("layer"):
        kind = layer.get("type") or "?"
        version = layer.get("version") or ""
        ops[kind] = ops.get(kind, 0) + 1
        if version and not _OWN_OPSETS.match(version):
            graph.unsafe.append(
                (
                    f"layer {layer.get('name')!r}",
                    f"operation {kind} of operation set {version!r}: an extension, whose kernel "
                    "is a native library OpenVINO must load",
                )
            )
        data = layer.find("data")
        if kind == "Const" and data is not None and data.get("offset") is not None:
            end = int(data.get("offset", "0")) + int(data.get("size", "0"))
            needs_bin = max(needs_bin, end)
        if kind in ("Parameter", "Result"):
            port = layer.find("output/port" if kind == "Parameter" else "input/port")
            names = (port.get("names") if port is not None else None) or layer.get("name") or ""
            name = names.split(",")[0]
            dims = _dims(data.get("shape") if data is not None else None)
            if dims is None and port is not None:
                dims = [
                    int(d.text)
                    if d.text and d.text.strip().lstrip("-").isdigit() and int(d.text) >= 0
                    else None
                    for d in port.findall("dim")
                ]
            element = (data.get("element_type") if data is not None else None) or (
                port.get("precision", "").lower() if port is not None else ""
            )
            spec = TensorSpec(name, dims, _ELEMENT_TYPES.get(element, element or "?"))
            (graph.inputs if kind == "Parameter" else graph.outputs).append(spec)
    if needs_bin and bin_size is None:
        raise ArtifactError(path, "integrity", f"its weights file {binary.name} is missing")
    if bin_size is not None and needs_bin > bin_size:
        raise ArtifactError(
            path,
            "integrity",
            f"constants reach byte {needs_bin} of {binary.name}, which has {bin_size} bytes "
            "(truncated or from another export)",
        )
    graph.ops = dict(sorted(ops.items()))
    return graph


def open_openvino(path: Path, limits: Limits, stack: contextlib.ExitStack) -> Artifact:
    return graph_artifact(path, FORMAT_OPENVINO, read_graph(path), owned_files(path))
