"""Reader: a TensorFlow SavedModel folder, its ``saved_model.pb`` parsed with protobuf.

The graph is parsed with the protobuf library against the few fields of TensorFlow's own
``saved_model.proto`` / ``graph.proto`` / ``meta_graph.proto`` that the checks read (same field
numbers; every other field is skipped as unknown), so reading it imports no TensorFlow and runs
nothing: the serving signatures and every operation of the graph and its function library.

Operations that read or write files or call Python when the graph runs are unsafe
(:data:`UNSAFE_OPS`); TensorFlow's checkpoint ops are expected in the saver functions that
``tf.saved_model.save`` writes (``__inference__traced_save_*`` / ``_restore_*``) and unsafe
anywhere else.
"""

from __future__ import annotations

import contextlib
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from pytest_kerasmodel.artifacts.base import (
    FORMAT_SAVEDMODEL,
    Artifact,
    ExportedGraph,
    Limits,
    Part,
    TensorSpec,
    link_of,
)
from pytest_kerasmodel.errors import ArtifactError

NAME = "savedmodel"
#: the signature of a graph that has none to serve
NO_SIGNATURE = "<none>"
MARKERS = ("saved_model.pb", "saved_model.pbtxt")

#: graph operations that reach outside the graph when it runs: files, Python, summaries
UNSAFE_OPS: dict[str, str] = {
    **dict.fromkeys(
        ("ReadFile", "MatchingFiles", "WholeFileReader", "WholeFileReaderV2"), "reads files"
    ),
    **dict.fromkeys(
        (
            "WriteFile",
            "CreateSummaryFileWriter",
            "WriteSummary",
            "WriteScalarSummary",
            "WriteRawProtoSummary",
            "DatasetToTFRecord",
            "ExperimentalDatasetToTFRecord",
            "SaveDataset",
            "SaveDatasetV2",
            "DebugIdentityV2",
            "DebugIdentityV3",
        ),
        "writes files",
    ),
    **dict.fromkeys(
        (
            "TFRecordDataset",
            "TFRecordDatasetV2",
            "TextLineDataset",
            "FixedLengthRecordDataset",
            "FixedLengthRecordDatasetV2",
            "TFRecordReaderV2",
            "TextLineReaderV2",
            "FixedLengthRecordReaderV2",
            "LoadDataset",
        ),
        "reads files",
    ),
    **dict.fromkeys(("PyFunc", "PyFuncStateless", "EagerPyFunc"), "calls Python code"),
}
#: checkpoint ops: expected in the saver functions only
CHECKPOINT_OPS = (
    "SaveV2",
    "RestoreV2",
    "MergeV2Checkpoints",
    "Save",
    "SaveSlices",
    "Restore",
    "RestoreSlice",
)
_SAVER_FUNCTION = re.compile(r"^__inference__traced_(save|restore)_\d+$")

# TensorFlow's DataType enum (types.proto), for the signatures' dtypes
_DTYPES = {
    1: "float32",
    2: "float64",
    3: "int32",
    4: "uint8",
    5: "int16",
    6: "int8",
    7: "string",
    9: "int64",
    10: "bool",
    14: "bfloat16",
    17: "uint16",
    19: "float16",
    22: "uint32",
    23: "uint64",
}


def claims(path: Path) -> bool:
    return path.is_dir() and any((path / marker).is_file() for marker in MARKERS)


def owned_files(path: Path) -> list[Path]:
    return sorted(f for f in path.rglob("*") if not f.is_dir())


@lru_cache(maxsize=1)
def _schema() -> type:
    """The SavedModel message, from the subset of TensorFlow's schema the checks read."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="pytest_kerasmodel_savedmodel_subset.proto",
        package="pytest_kerasmodel.savedmodel",
        syntax="proto3",
    )
    pkg = ".pytest_kerasmodel.savedmodel."

    def message(name: str, *fields: tuple[str, int, int, str | None, bool]) -> None:
        m = proto.message_type.add(name=name)
        for fname, number, ftype, type_name, repeated in fields:
            field = m.field.add(
                name=fname,
                number=number,
                type=ftype,
                label=F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL,
            )
            if type_name:
                field.type_name = pkg + type_name

    S, I32, I64, MSG = F.TYPE_STRING, F.TYPE_INT32, F.TYPE_INT64, F.TYPE_MESSAGE
    message("Dim", ("size", 1, I64, None, False))
    message("Shape", ("dim", 2, MSG, "Dim", True), ("unknown_rank", 3, F.TYPE_BOOL, None, False))
    message(
        "TensorInfo",
        ("name", 1, S, None, False),
        ("dtype", 2, I32, None, False),
        ("tensor_shape", 3, MSG, "Shape", False),
    )
    message("TensorEntry", ("key", 1, S, None, False), ("value", 2, MSG, "TensorInfo", False))
    message(
        "SignatureDef",
        ("inputs", 1, MSG, "TensorEntry", True),
        ("outputs", 2, MSG, "TensorEntry", True),
        ("method_name", 3, S, None, False),
    )
    message("SignatureEntry", ("key", 1, S, None, False), ("value", 2, MSG, "SignatureDef", False))
    message(
        "NodeDef",
        ("name", 1, S, None, False),
        ("op", 2, S, None, False),
        ("input", 3, S, None, True),
    )
    message("OpDef", ("name", 1, S, None, False))
    message(
        "FunctionDef", ("signature", 1, MSG, "OpDef", False), ("node_def", 3, MSG, "NodeDef", True)
    )
    message("Library", ("function", 1, MSG, "FunctionDef", True))
    message("GraphDef", ("node", 1, MSG, "NodeDef", True), ("library", 2, MSG, "Library", False))
    message("MetaInfoDef", ("tags", 4, S, None, True))
    message(
        "SaverDef",
        ("filename_tensor_name", 1, S, None, False),
        ("save_tensor_name", 2, S, None, False),
        ("restore_op_name", 3, S, None, False),
    )
    message(
        "MetaGraphDef",
        ("meta_info_def", 1, MSG, "MetaInfoDef", False),
        ("graph_def", 2, MSG, "GraphDef", False),
        ("saver_def", 3, MSG, "SaverDef", False),
        ("signature_def", 5, MSG, "SignatureEntry", True),
    )
    message(
        "SavedModel",
        ("saved_model_schema_version", 1, I64, None, False),
        ("meta_graphs", 2, MSG, "MetaGraphDef", True),
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(pkg[1:] + "SavedModel"))


def _spec(name: str, info: Any) -> TensorSpec:
    shape = info.tensor_shape
    dims = None if shape.unknown_rank else [None if d.size < 0 else int(d.size) for d in shape.dim]
    return TensorSpec(name, dims, _DTYPES.get(int(info.dtype), f"dtype {info.dtype}"))


def read_graph(path: Path) -> ExportedGraph:
    """Parse ``saved_model.pb``: the serving signature, the ops, the unsafe ones."""
    pb = path / "saved_model.pb"
    if not pb.is_file():
        raise ArtifactError(path, "integrity", "saved_model.pbtxt only: the text form is not read")
    from google.protobuf.message import DecodeError

    saved = _schema()()
    try:
        saved.ParseFromString(pb.read_bytes())
    except (DecodeError, RecursionError, ValueError) as exc:
        raise ArtifactError(
            path, "integrity", f"saved_model.pb is not a SavedModel: {exc}"
        ) from None
    if not saved.meta_graphs:
        return ExportedGraph(signature=NO_SIGNATURE, parsed=saved)
    meta = next((m for m in saved.meta_graphs if "serve" in m.meta_info_def.tags), None)
    meta = meta or saved.meta_graphs[0]
    signatures = {entry.key: entry.value for entry in meta.signature_def}
    key = (
        "serving_default"
        if "serving_default" in signatures
        else next((k for k in sorted(signatures) if not k.startswith("__")), "")
    )
    graph = ExportedGraph(signature=key or NO_SIGNATURE, parsed=saved)
    if key:
        sig = signatures[key]
        graph.inputs = [_spec(e.key, e.value) for e in sorted(sig.inputs, key=lambda e: e.key)]
        graph.outputs = [_spec(e.key, e.value) for e in sorted(sig.outputs, key=lambda e: e.key)]
    ops: dict[str, int] = {}

    def visit(where: str, op: str, in_saver: bool) -> None:
        ops[op] = ops.get(op, 0) + 1
        if op in UNSAFE_OPS:
            graph.unsafe.append((where, f"operation {op} {UNSAFE_OPS[op]} when the graph runs"))
        elif op in CHECKPOINT_OPS and not in_saver:
            graph.unsafe.append(
                (where, f"operation {op} reads or writes checkpoint files outside the saver")
            )

    for node in meta.graph_def.node:
        visit(f"graph node {node.name!r}", node.op, False)
    for function in meta.graph_def.library.function:
        fname = function.signature.name
        saver = bool(_SAVER_FUNCTION.match(fname))
        for node in function.node_def:
            visit(f"function {fname} node {node.name!r}", node.op, saver)
    graph.ops = dict(sorted(ops.items()))
    return graph


def open_savedmodel(path: Path, limits: Limits, stack: contextlib.ExitStack) -> Artifact:
    files = sorted(
        (str(f.relative_to(path)), f.stat().st_size) for f in owned_files(path) if f.is_file()
    )
    notes = []
    if (path / "keras_metadata.pb").is_file():
        notes.append("tf.keras SavedModel (keras_metadata.pb): Keras 3 cannot load it")
    return Artifact(
        path=path,
        format=FORMAT_SAVEDMODEL,
        file_size=sum(size for _, size in files),
        savedmodel_files=files,
        parts=[Part(name, "savedmodel", size, link_of(path / name)) for name, size in files],
        link=link_of(path),
        graph=read_graph(path) if (path / "saved_model.pb").is_file() else None,
        notes=notes,
    )
