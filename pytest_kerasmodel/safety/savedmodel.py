"""Safety for a TensorFlow SavedModel folder, read whole and run never.

Two things in a SavedModel run code when it is loaded or served:

- ``keras_metadata.pb`` (tf-keras's ``model.save(save_format="tf")``): a protobuf list of the
  saved objects, each with the JSON config tf-keras rebuilds it from. It is parsed with the
  protobuf library against the message definition of tf-keras's ``saved_metadata.proto`` (built
  here from a descriptor, same field numbers; TensorFlow and tf-keras are never imported), and
  every node's metadata is scanned as a config (:func:`~pytest_kerasmodel.safety.config.
  scan_config`), so a Lambda, a foreign module or a Keras gadget in it is named like one in a
  ``.keras`` file.
- ``saved_model.pb``: every operation of the main graph and of every function of its function
  library must be pure computation (:mod:`pytest_kerasmodel.safety.tfops`); each other operation
  is an ``unreviewed-op`` finding that says what it can do. The checkpoint ops pass only inside
  the saver (TF2's ``__inference__traced_save_N`` / ``_restore_N`` functions and the functions
  they call by op name; a TF1 graph's ``SaverDef`` scope).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from pytest_kerasmodel.safety.base import NOTHING_ALLOWED, Allowed, Finding, _prefixed
from pytest_kerasmodel.safety.config import scan_config
from pytest_kerasmodel.safety.rules import CONFIG_MAX_BYTES, MEMBER_MAX_BYTES
from pytest_kerasmodel.safety.tfops import SAVER_OPS, op_capability

__all__ = ["scan_graph_ops", "scan_keras_metadata", "scan_saved_model"]

METADATA = "keras_metadata.pb"
GRAPH = "saved_model.pb"
#: the saver functions ``tf.saved_model.save`` writes
_SAVER_FUNCTION = re.compile(r"^__inference__traced_(save|restore)_\d+$")
#: at most this many findings name the same op in one function (the rest are counted)
_SAME_OP_NAMED = 1


def scan_saved_model(
    folder: Path, allowed: Allowed = NOTHING_ALLOWED, parsed: Any = None
) -> list[Finding]:
    """The findings of a SavedModel folder's Keras metadata and of its graph's ops (``parsed``:
    its ``saved_model.pb`` as the reader parsed it, if it was)."""
    findings: list[Finding] = []
    metadata = folder / METADATA
    if metadata.is_file():
        findings += scan_keras_metadata(metadata, allowed)
    graph = folder / GRAPH
    if graph.is_file():
        findings += scan_graph_ops(graph, parsed)
    return findings


@lru_cache(maxsize=1)
def _metadata_schema() -> type:
    """tf-keras's ``SavedMetadata`` message (``tf_keras/protobuf/saved_metadata.proto``)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="pytest_kerasmodel_saved_metadata.proto",
        package="pytest_kerasmodel.saved_metadata",
        syntax="proto3",
    )
    node = proto.message_type.add(name="SavedObject")
    for name, number, kind in (
        ("node_id", 2, F.TYPE_INT32),
        ("node_path", 3, F.TYPE_STRING),
        ("identifier", 4, F.TYPE_STRING),
        ("metadata", 5, F.TYPE_STRING),
    ):
        node.field.add(name=name, number=number, type=kind, label=F.LABEL_OPTIONAL)
    root = proto.message_type.add(name="SavedMetadata")
    root.field.add(
        name="nodes",
        number=1,
        type=F.TYPE_MESSAGE,
        label=F.LABEL_REPEATED,
        type_name=".pytest_kerasmodel.saved_metadata.SavedObject",
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("pytest_kerasmodel.saved_metadata.SavedMetadata")
    )


def scan_keras_metadata(path: Path, allowed: Allowed = NOTHING_ALLOWED) -> list[Finding]:
    """Each node of ``keras_metadata.pb`` scanned as a config, under its node path.

    A layer appears twice: in its own node and inside its model's config; a finding with the
    same check and reason is reported once, at the first node that holds it.
    """
    from google.protobuf.message import DecodeError

    label = path.name
    try:
        if path.stat().st_size > CONFIG_MAX_BYTES:
            return [Finding("unreadable-config", label, "too large to be Keras metadata")]
        data = path.read_bytes()
    except OSError as error:
        return [Finding("unreadable-config", label, f"cannot be read: {error}")]
    saved = _metadata_schema()()
    try:
        saved.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError) as error:
        return [Finding("unreadable-config", label, f"is not tf-keras SavedMetadata: {error}")]
    findings: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    for node in saved.nodes:
        where = f"{label}: node {node.node_id} ({node.node_path or '?'})"
        if not node.metadata:
            continue
        try:
            config = json.loads(node.metadata)
        except (ValueError, RecursionError) as error:
            findings.append(Finding("unreadable-config", where, f"metadata is not JSON: {error}"))
            continue
        for found in _prefixed(
            scan_config(config, allowed_modules=allowed.modules, allowed_classes=allowed.classes),
            f"{where}:",
        ):
            if (found.check, found.reason) not in seen:
                seen.add((found.check, found.reason))
                findings.append(found)
    return findings


def _called(node: Any, library: dict[str, Any]) -> list[str]:
    """The library function a node calls by its op name. (Functions called through a call op's
    attrs are not followed: that keeps a function out of the saver, stricter, never looser;
    ``tf.saved_model.save``'s savers call none.)"""
    return [node.op] if node.op in library else []


def _saver_functions(library: dict[str, Any]) -> set[str]:
    """The saver functions and every function they call by op name, transitively."""
    pending = [name for name in library if _SAVER_FUNCTION.match(name)]
    saver: set[str] = set()
    while pending:
        name = pending.pop()
        if name in saver:
            continue
        saver.add(name)
        for node in library[name].node_def:
            pending += _called(node, library)
    return saver


def _saver_scope(meta: Any) -> str | None:
    """A TF1 graph's saver name scope (``save/``), from its SaverDef, or None."""
    tensor = meta.saver_def.filename_tensor_name or meta.saver_def.save_tensor_name
    if "/" not in tensor:
        return None
    return tensor.split("/", 1)[0] + "/"


def scan_graph_ops(path: Path, parsed: Any = None) -> list[Finding]:
    """Every op of every meta graph and function in ``saved_model.pb`` on the allowlist
    (``parsed``: the file as :func:`~pytest_kerasmodel.artifacts.savedmodel.read_graph` parsed
    it, read instead of parsing it again)."""
    from google.protobuf.message import DecodeError

    from pytest_kerasmodel.artifacts.savedmodel import _schema

    label = path.name
    saved = parsed
    try:
        if saved is None:
            if path.stat().st_size > MEMBER_MAX_BYTES:
                return [Finding("unreadable", label, "too large to be read and vouched for")]
            saved = _schema()()
            saved.ParseFromString(path.read_bytes())
    except OSError as error:
        return [Finding("unreadable", label, f"cannot be read: {error}")]
    except (DecodeError, RecursionError, ValueError) as error:
        return [Finding("unreadable", label, f"is not a SavedModel: {error}")]
    findings: list[Finding] = []
    many = len(saved.meta_graphs) > 1
    for index, meta in enumerate(saved.meta_graphs):
        prefix = f"meta graph {index} " if many else ""
        library = {f.signature.name: f for f in meta.graph_def.library.function}
        saver = _saver_functions(library)
        scope = _saver_scope(meta)
        graph_nodes = [
            (node, bool(scope and node.name.startswith(scope))) for node in meta.graph_def.node
        ]
        findings += _node_findings(f"{prefix}graph", graph_nodes, library)
        for name, function in library.items():
            nodes = [(node, name in saver) for node in function.node_def]
            findings += _node_findings(f"{prefix}function {name}", nodes, library)
        findings += _saver_reached(prefix, meta, library, saver, scope)
    return findings


def _saver_reached(
    prefix: str, meta: Any, library: dict[str, Any], saver: set[str], scope: str | None
) -> list[Finding]:
    """The saver may write and read checkpoint files because only the loader and
    ``tf.saved_model.save`` run it: a function outside it that names a saver function, or a
    signature whose tensors depend on a main-graph node that calls the saver, would run the
    checkpoint ops when served."""
    if not saver and not scope:
        return []
    names = [name.encode() for name in sorted(saver)]
    findings = []
    for name, function in library.items():
        if name in saver:
            continue
        data = function.SerializeToString()
        called = [n.decode() for n in names if n in data]
        if called:
            findings.append(
                Finding(
                    "unreviewed-op",
                    f"{GRAPH}: {prefix}function {name}",
                    f"calls the saver function {called[0]} outside the saver: its checkpoint "
                    "ops would read or write files when the graph runs",
                )
            )
    nodes = {node.name: node for node in meta.graph_def.node}

    def calls_saver(node: Any) -> bool:
        if scope and node.name.startswith(scope):
            return True
        data = node.SerializeToString()
        return any(name in data for name in names)

    for key, signature in sorted((e.key, e.value) for e in meta.signature_def):
        pending = [e.value.name for e in [*signature.inputs, *signature.outputs]]
        seen: set[str] = set()
        while pending:
            node_name = pending.pop().lstrip("^").split(":")[0]
            if node_name in seen or node_name not in nodes:
                continue
            seen.add(node_name)
            if calls_saver(nodes[node_name]):
                findings.append(
                    Finding(
                        "unreviewed-op",
                        f"{GRAPH}: {prefix}signature {key!r}",
                        f"depends on graph node {node_name!r}, which runs the saver: its "
                        "checkpoint ops would read or write files when the signature is served",
                    )
                )
                break
            pending += list(nodes[node_name].input)
    return findings


def _node_findings(
    where: str, nodes: list[tuple[Any, bool]], library: dict[str, Any]
) -> list[Finding]:
    """The findings of one graph or function: one per op that is not pure, with its count."""
    first: dict[str, tuple[str, str]] = {}
    counts: dict[str, int] = {}
    for node, in_saver in nodes:
        op = node.op
        if op in library:
            continue  # a call of a library function, which is scanned on its own
        if op in SAVER_OPS:
            if in_saver:
                continue
            what = "reads or writes checkpoint files outside the saver"
        else:
            capability = op_capability(op)
            if capability is None:
                continue
            what = capability
        counts[op] = counts.get(op, 0) + 1
        first.setdefault(op, (node.name, what))
    findings = []
    for op, (name, what) in first.items():
        more = counts[op] - _SAME_OP_NAMED
        also = f" ({more} more node(s) of it here)" if more > 0 else ""
        findings.append(
            Finding(
                "unreviewed-op",
                f"{GRAPH}: {where} node {name!r}",
                f"operation {op} {what} when the graph runs{also}",
            )
        )
    return findings
