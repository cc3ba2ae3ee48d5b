"""What every artifact reader shares: the :class:`Artifact` an open yields, its parts, the
limits that keep reading an untrusted file cheap, and the format names.

No reader is imported here, so every module of the package (and
:mod:`pytest_kerasmodel.artifacts.names`) can depend on this one without a circle.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from pytest_kerasmodel.errors import ArtifactError

if TYPE_CHECKING:  # pragma: no cover
    import zipfile

    import h5py


FORMAT_KERAS = "keras"
FORMAT_H5 = "h5"
FORMAT_H5_WEIGHTS = "h5-weights"
FORMAT_WEIGHTS_H5 = "weights.h5"
FORMAT_SAVEDMODEL = "savedmodel"
FORMAT_KERAS_DIR = "keras-dir"
FORMAT_PRESET = "kerashub-preset"
FORMAT_SHARDED = "weights.json"
FORMAT_ORBAX = "orbax"
FORMAT_ONNX = "onnx"
FORMAT_TFLITE = "tflite"
FORMAT_OPENVINO = "openvino-ir"
FORMATS = (
    FORMAT_KERAS,
    FORMAT_KERAS_DIR,
    FORMAT_PRESET,
    FORMAT_H5,
    FORMAT_H5_WEIGHTS,
    FORMAT_WEIGHTS_H5,
    FORMAT_SHARDED,
    FORMAT_SAVEDMODEL,
    FORMAT_ORBAX,
    FORMAT_ONNX,
    FORMAT_TFLITE,
    FORMAT_OPENVINO,
)
#: exported inference graphs (model.export): run by their format's runtime, never by Keras
EXPORTED_FORMATS = (FORMAT_SAVEDMODEL, FORMAT_ONNX, FORMAT_TFLITE, FORMAT_OPENVINO)
#: formats that hold weights and no model config: nothing to load without the user's code
WEIGHTS_ONLY_FORMATS = (FORMAT_H5_WEIGHTS, FORMAT_WEIGHTS_H5, FORMAT_SHARDED)

FORMAT_TITLES = {
    FORMAT_KERAS: ".keras zip archive (config.json + model.weights.h5)",
    FORMAT_H5: "legacy HDF5 full model (model_config + model_weights)",
    FORMAT_H5_WEIGHTS: "legacy HDF5 weights only (save_weights, no config)",
    FORMAT_WEIGHTS_H5: "Keras 3 .weights.h5 (layers/*/vars, no config)",
    FORMAT_SAVEDMODEL: "TensorFlow SavedModel directory",
    FORMAT_KERAS_DIR: "unzipped Keras model folder (config.json + model.weights.h5)",
    FORMAT_PRESET: "KerasHub preset folder (config.json + model.weights.h5, task, tokenizer)",
    FORMAT_SHARDED: "sharded Keras 3 weights (a .weights.json manifest + .weights.h5 shards)",
    FORMAT_ORBAX: "Orbax checkpoint folder (detected and named; its contents are not read)",
    FORMAT_ONNX: "ONNX model (protobuf graph, run by onnxruntime)",
    FORMAT_TFLITE: "LiteRT / TensorFlow Lite flatbuffer (.tflite)",
    FORMAT_OPENVINO: "OpenVINO IR (.xml graph + .bin weights)",
}

ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
# HDF5 allows a user block before the superblock: the signature sits at 0, 512, 1024, 2048, ...
HDF5_SIGNATURE_OFFSETS = (0, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)

KERAS_ZIP_WEIGHTS = "model.weights.h5"
#: names of pickled data (pickle, joblib, torch.save), which a Keras artifact never holds
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".pt", ".pth")

# What h5py raises on a damaged file (besides crashing or hanging, which only a separate process
# can contain): these become an ArtifactError naming the file.
H5_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError, UnicodeError, EOFError)
# the files Keras's saving_lib writes, in a .keras zip or an unzipped folder alike
KERAS_ZIP_CONFIG = "config.json"
KERAS_ZIP_METADATA = "metadata.json"
KERAS_ZIP_WEIGHTS_NPZ = "model.weights.npz"
KERAS_ASSETS = "assets"


@dataclass(frozen=True)
class Limits:
    """Bounds that keep reading an untrusted file cheap and finite."""

    max_hdf5_objects: int = 200_000
    max_hdf5_depth: int = 64
    max_attribute_bytes: int = 64 * 1024**2
    # a dataset is a "shape bomb" when it declares more than this many bytes ...
    shape_bomb_min_bytes: int = 64 * 1024**2
    # ... and more than this many times the bytes it actually stores
    shape_bomb_ratio: int = 1024
    max_zip_members: int = 10_000
    max_zip_member_bytes: int = 64 * 1024**3
    max_zip_ratio: int = 1024
    max_json_bytes: int = 256 * 1024**2


DEFAULT_LIMITS = Limits()

# Extensions that a file of each format is expected to carry.
_EXPECTED_EXTENSIONS = {
    FORMAT_KERAS: (".keras",),
    FORMAT_H5: (".h5", ".hdf5", ".hdf", ".he5"),
    FORMAT_H5_WEIGHTS: (".h5", ".hdf5", ".hdf", ".he5"),
    FORMAT_WEIGHTS_H5: (".weights.h5",),
    FORMAT_SAVEDMODEL: ("",),
    FORMAT_KERAS_DIR: ("",),
    FORMAT_PRESET: ("",),
    FORMAT_SHARDED: (".weights.json",),
    FORMAT_ORBAX: ("",),
    FORMAT_ONNX: (".onnx",),
    FORMAT_TFLITE: (".tflite",),
    FORMAT_OPENVINO: (".xml",),
}


def extension_of(path: Path) -> str:
    """The file's extension as Keras sees it: ``.weights.h5`` counts as one extension."""
    name = path.name.lower()
    for double in (".weights.h5", ".weights.json"):
        if name.endswith(double):
            return double
    return path.suffix.lower()


def extension_note(path: Path, fmt: str) -> str | None:
    """A sentence when the file's extension does not match its content, else None."""
    ext = extension_of(path)
    expected = _EXPECTED_EXTENSIONS[fmt]
    if expected == ("",) or ext in expected:
        return None
    shown = ext or "(no extension)"
    if fmt == FORMAT_WEIGHTS_H5 and ext in (".h5", ".hdf5"):
        return (
            f"extension {shown} but the content is a Keras 3 .weights.h5 layout; "
            "Keras 3 only reads it from a name ending in .weights.h5"
        )
    if fmt in (FORMAT_H5, FORMAT_H5_WEIGHTS) and ext == ".weights.h5":
        return (
            f"extension {shown} but the content is {FORMAT_TITLES[fmt]}; "
            "Keras 3 would read a .weights.h5 name as its new weights layout"
        )
    return f"extension {shown} but the content is {FORMAT_TITLES[fmt]} (expected {expected[0]})"


class HygieneError(ArtifactError):
    """The file holds something a safe reader must refuse (check ``hdf5-hygiene``/``zip``)."""


def parse_json(data: bytes | str, what: str, path: Path) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ArtifactError(path, "config", f"{what} is not valid JSON: {exc}") from None


# --------------------------------------------------------------------------------------------
# the artifact


@dataclass(frozen=True)
class H5Node:
    """One object of an HDF5 tree, as seen before any dataset value is read."""

    path: str  # without leading slash; "" is the root group
    kind: str  # "group", "dataset" or "softlink"
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    storage_bytes: int | None = None
    declared_bytes: int | None = None
    target: str | None = None  # a soft link's target
    attrs: dict[str, Any] = field(default_factory=dict)
    # What else the walk saw, for the safety scan (so that it opens nothing again); not part of
    # a node's identity. attr_info: each attribute in h5py's order (creation order where the
    # object tracks it, else by name), None when the walk did not read attributes.
    attr_info: tuple[H5Attr, ...] | None = field(default=None, compare=False, repr=False)
    numpy_dtype: Any = field(default=None, compare=False, repr=False)  # a dataset's
    filters: tuple[int, ...] = field(default=(), compare=False, repr=False)  # a dataset's
    store: int = field(default=0, compare=False, repr=False)  # which Artifact.stores holds it


class H5Attr(NamedTuple):
    """An attribute as the walk saw it: its declared type and shape, and its stored size."""

    name: str
    dtype: Any  # numpy dtype
    shape: tuple[int, ...] | None  # None: an empty (null) dataspace
    storage_bytes: int | None  # None: HDF5 reports none (an empty attribute)


@dataclass(frozen=True)
class ZipMember:
    name: str
    size: int
    compressed_size: int
    method: str  # "stored", "deflated", ...
    offset: int  # the member's local header offset


@dataclass
class TensorSpec:
    """One serving input or output of an exported graph: name, shape (None unknown), dtype."""

    name: str
    shape: list[int | None] | None
    dtype: str


@dataclass
class ExportedGraph:
    """What a reader of an exported format parsed, with the format's own reader and nothing run.

    ``inputs`` / ``outputs``: the serving signature. ``ops``: how many times each operation
    occurs. ``unsafe``: ``(where, reason)`` for every operation or reference that could read or
    write files, run processes, call Python or load native code when the graph runs.
    """

    signature: str
    inputs: list[TensorSpec] = field(default_factory=list)
    outputs: list[TensorSpec] = field(default_factory=list)
    ops: dict[str, int] = field(default_factory=dict)
    unsafe: list[tuple[str, str]] = field(default_factory=list)
    #: the format's parsed message (a SavedModel's), for the safety scan to read without a
    #: second parse; not part of the description
    parsed: Any = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import fields

        return {f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.name != "parsed"}


def _plain(value: Any) -> Any:
    """``dataclasses.asdict``'s conversion for one field's value."""
    from dataclasses import asdict, is_dataclass

    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class Part(NamedTuple):
    """One file of an artifact: where it is (relative to the artifact's folder, or its own name
    for a single file), what it is for, its size, and where it leads when it is a symbolic link."""

    name: str
    role: str  # "config", "metadata", "weights", "shard", "manifest", "asset", "task", ...
    size: int
    link: str | None = None


@dataclass
class Store:
    """One HDF5 file of an artifact, open and checked: the weights file of a single-file
    layout, each shard of sharded weights, a preset's ``task.weights.h5``."""

    label: str  # how findings and notes name it: "" (the artifact itself), "model.weights.h5"
    h5: h5py.File
    nodes: list[H5Node]


@dataclass
class Artifact:
    """An opened artifact: what :func:`~pytest_kerasmodel.artifacts.open_artifact` yields.
    Valid inside the ``with`` only.

    Every reader fills the same fields, so that describe, the weight names, the safety scan and
    the gate need not know which layout they look at: :attr:`config` and :attr:`nodes` describe
    the model and its weights (the union of all shards for sharded weights), :attr:`stores` are
    every HDF5 file opened, :attr:`configs` every JSON document a loader would deserialise, and
    :attr:`parts` every file the artifact is made of.
    """

    path: Path
    format: str
    file_size: int
    keras_version: str | None = None
    backend: str | None = None
    config: Any = None  # the model config: {"class_name": ..., "config": ...}
    training_config: Any = None  # compile config (legacy h5 training_config / compile_config)
    metadata: dict[str, Any] = field(default_factory=dict)  # metadata.json or root attributes
    h5: h5py.File | None = None  # the HDF5 file holding the weights (inner file for .keras)
    weights_root: Any = None  # the h5py group (or sharded view) holding the model's weights
    nodes: list[H5Node] = field(default_factory=list)  # the checked HDF5 tree
    stores: list[Store] = field(default_factory=list)
    configs: list[tuple[str, Any]] = field(default_factory=list)  # (file name, parsed JSON)
    parts: list[Part] = field(default_factory=list)
    link: str | None = None  # where the artifact's path leads, when it is a symbolic link
    weights_unread: str | None = None  # why the weights' values cannot be read here, if so
    components: dict[str, Any] = field(default_factory=dict)  # a preset's task, tokenizer, ...
    zip_members: list[ZipMember] = field(default_factory=list)
    zip: zipfile.ZipFile | None = None  # the open archive of a .keras (its central directory read)
    zip_file: Any = None  # the archive's open file (the zip and the inner weights read from it)
    savedmodel_files: list[tuple[str, int]] = field(default_factory=list)
    # an exported graph (SavedModel, ONNX, LiteRT, OpenVINO IR) as its reader parsed it:
    # an ExportedGraph, whose unsafe operations the safety scan reports
    graph: ExportedGraph | None = None
    notes: list[str] = field(default_factory=list)
    _node_index: dict[str, H5Node] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def file_of(self, h5_path: str) -> Any:
        """The open HDF5 file (of :attr:`stores`) that holds ``h5_path`` of :attr:`nodes`."""
        node = self.node(h5_path)
        if node is not None and self.stores:
            return self.stores[node.store].h5
        assert self.weights_root is not None
        return self.weights_root.file

    def dataset(self, h5_path: str) -> Any:
        """The h5py dataset at ``h5_path`` of :attr:`nodes`, from the store that holds it."""
        return self.file_of(h5_path)[h5_path]

    def node(self, h5_path: str) -> H5Node | None:
        """The checked node at ``h5_path`` (no leading slash) of :attr:`nodes`, else None."""
        if self._node_index is None or len(self._node_index) != len(self.nodes):
            self._node_index = {n.path: n for n in self.nodes}
        return self._node_index.get(h5_path)

    def attrs_of(self, obj: Any) -> Mapping[str, Any]:
        """The attributes of an HDF5 object of :attr:`h5`: those the hygiene walk read when it
        recorded the object under the same path (no second read), else read from the file."""
        name = obj.name
        node = self.node(name.lstrip("/")) if isinstance(name, str) else None
        if node is not None and node.kind in ("group", "dataset"):
            return node.attrs
        return obj.attrs

    @property
    def title(self) -> str:
        return FORMAT_TITLES[self.format]

    @property
    def model_class(self) -> str | None:
        return self.config.get("class_name") if isinstance(self.config, dict) else None


def text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if hasattr(value, "tolist"):
        value = value.tolist()
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
    return str(value)


def attr_json(attrs: Mapping[str, Any], name: str, path: Path) -> Any:
    if name not in attrs:
        return None
    value = text(attrs[name])
    if value is None:
        return None
    return parse_json(value, f"attribute {name!r}", path)


def read_json_file(file: Path, what: str, artifact: Path, limits: Limits) -> Any:
    """A JSON file of a folder layout, bounded in size, parsed (never evaluated)."""
    try:
        size = file.stat().st_size
        if size > limits.max_json_bytes:
            raise HygieneError(
                artifact, "json", f"{what} declares {size} bytes (limit {limits.max_json_bytes})"
            )
        with open(file, "rb") as fh:
            data = fh.read(limits.max_json_bytes + 1)
    except OSError as exc:
        raise ArtifactError(
            artifact, "json", f"cannot read {what}: {exc.strerror or exc}"
        ) from None
    return parse_json(data, what, artifact)


def inside(folder: Path, name: str) -> Path | None:
    """``folder / name`` when ``name`` is a plain relative path that stays inside ``folder``
    (no absolute path, no ``..``, no drive), else None. Links are judged where they lie, not
    where they lead: a Hugging Face snapshot's files are links into its blob store."""
    parts = name.replace("\\", "/").split("/")
    if (
        not name
        or name.startswith(("/", "\\"))
        or ".." in parts
        or (len(name) > 1 and name[1] == ":")
    ):
        return None
    return folder.joinpath(*[p for p in parts if p not in ("", ".")])


def link_of(path: Path) -> str | None:
    """Where ``path`` leads when it is a symbolic link (its target as written), else None."""
    try:
        return os.readlink(path) if path.is_symlink() else None
    except OSError:
        return None


def check_path_kind(path: Path) -> None:
    """Refuse what cannot be read as a file or folder, before anything opens it: a broken
    symbolic link, a link loop, a FIFO (reading it would block forever), a device or socket."""
    try:
        st = os.stat(path)
    except OSError as exc:
        target = link_of(path)
        if exc.errno == errno.ELOOP:
            raise ArtifactError(
                path, "link", "a symbolic link loop: it never reaches a file"
            ) from None
        if target is not None:
            raise ArtifactError(
                path, "link", f"a broken symbolic link to {target!r}: nothing is there"
            ) from None
        raise ArtifactError(path, "format", f"cannot be read: {exc.strerror or exc}") from None
    if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
        return
    kind = (
        "a FIFO (named pipe): reading it would block"
        if stat.S_ISFIFO(st.st_mode)
        else "a socket"
        if stat.S_ISSOCK(st.st_mode)
        else "a device"
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
        else "not a regular file"
    )
    target = link_of(path)
    lead = f"a symbolic link to {target!r}, which is " if target is not None else ""
    raise ArtifactError(path, "format", f"{lead}{kind}; only regular files and folders are read")


def check_part_kind(artifact: Path, file: Path, name: str) -> None:
    """:func:`check_path_kind` for one file of an artifact, the error naming the artifact and
    the file (a FIFO as ``model.weights.h5`` would block the loader; a broken link is no file)."""
    try:
        check_path_kind(file)
    except ArtifactError as error:
        raise ArtifactError(artifact, error.check, f"{name}: {error.reason}") from None


def graph_artifact(
    path: Path, fmt: str, graph: ExportedGraph, files: list[Path] | None = None
) -> Artifact:
    """An exported graph file's artifact: the graph file (role ``graph``) and the files beside
    it that it needs (role ``weights``: OpenVINO's ``.bin``)."""
    parts = [
        Part(f.name, "graph" if f == path else "weights", f.stat().st_size, link_of(f))
        for f in files or [path]
    ]
    return Artifact(
        path=path,
        format=fmt,
        file_size=sum(p.size for p in parts),
        parts=parts,
        link=link_of(path),
        graph=graph,
    )


def part(folder: Path, file: Path, role: str) -> Part:
    """The :class:`Part` for ``file`` of an artifact whose files lie in ``folder``; refused
    (naming it) when it is no regular file."""
    name = file.relative_to(folder).as_posix()
    check_part_kind(folder, file, name)
    return Part(name, role, file.stat().st_size, link_of(file))


def hdf5_signature_offset(head: bytes) -> int | None:
    for offset in HDF5_SIGNATURE_OFFSETS:
        if head[offset : offset + len(HDF5_MAGIC)] == HDF5_MAGIC:
            return offset
    return None


def read_head(path: Path) -> bytes:
    """The first bytes of a file, enough to find a zip or HDF5 signature (after a user block)."""
    with open(path, "rb") as fh:
        head = fh.read(len(HDF5_MAGIC))
        if head[:4] not in ZIP_MAGICS and head != HDF5_MAGIC:  # after an HDF5 user block?
            head += fh.read(HDF5_SIGNATURE_OFFSETS[-1])
    return head


def container_of(head: bytes) -> str | None:
    """``"zip"`` or ``"hdf5"`` from a file's first bytes, else None."""
    if head[:4] in ZIP_MAGICS:
        return "zip"
    if hdf5_signature_offset(head) is not None:
        return "hdf5"
    return None


def sniff_file(path: Path) -> str | None:
    """The container of a regular file from its magic bytes (``"zip"``, ``"hdf5"``), None for
    anything else or a file that cannot be read (the integrity check says why)."""
    try:
        return container_of(read_head(path))
    except OSError:
        return None
