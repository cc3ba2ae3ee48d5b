"""What a Keras file is, from its bytes, and how to open it safely without Keras.

Everything here uses h5py, zipfile and json only: no Keras, no TensorFlow, nothing from the file is
ever executed. :func:`detect_format` looks at magic bytes first, then at the structure inside;
the extension is only compared with the content afterwards, to note a mismatch.

:func:`open_artifact` is the one door to a file's content: it checks the HDF5 hygiene (no external
or soft links leaving the file, no external or virtual dataset storage, no dataset declaring far
more bytes than it stores) and the zip hygiene (bounded member count and sizes, no path outside
the archive, no pickled members) BEFORE any dataset is read, and yields an :class:`Artifact` with
the format, config, metadata and the h5py root of the weights. :func:`iter_weights` then walks the
weights dataset by dataset under Keras-level names (see :mod:`pytest_kerasmodel.weightnames`).

Formats (the values of :attr:`Artifact.format`):

``keras``       the ``.keras`` zip (Keras 3, or tf.keras >= 2.13 "keras_v3"): config.json,
                metadata.json and model.weights.h5, read from the archive without extracting.
``h5``          legacy HDF5 full model (Keras 1.x, 2.x, tf.keras, and Keras 3's ``.h5`` writer):
                ``model_config`` attribute and a ``model_weights`` group.
``h5-weights``  legacy HDF5 weights only (``save_weights`` to ``.h5`` before Keras 3, and
                ``legacy`` weights files): ``layer_names`` attribute at the root, no config.
``weights.h5``  Keras 3 ``.weights.h5``: ``layers/<name>/vars/<i>`` groups, no config.
``savedmodel``  a TensorFlow SavedModel directory (detected and named only).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import re
import struct
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from pytest_kerasmodel.errors import ArtifactError

if TYPE_CHECKING:  # pragma: no cover
    import h5py

FORMAT_KERAS = "keras"
FORMAT_H5 = "h5"
FORMAT_H5_WEIGHTS = "h5-weights"
FORMAT_WEIGHTS_H5 = "weights.h5"
FORMAT_SAVEDMODEL = "savedmodel"
FORMATS = (FORMAT_KERAS, FORMAT_H5, FORMAT_H5_WEIGHTS, FORMAT_WEIGHTS_H5, FORMAT_SAVEDMODEL)

FORMAT_TITLES = {
    FORMAT_KERAS: ".keras zip archive (config.json + model.weights.h5)",
    FORMAT_H5: "legacy HDF5 full model (model_config + model_weights)",
    FORMAT_H5_WEIGHTS: "legacy HDF5 weights only (save_weights, no config)",
    FORMAT_WEIGHTS_H5: "Keras 3 .weights.h5 (layers/*/vars, no config)",
    FORMAT_SAVEDMODEL: "TensorFlow SavedModel directory",
}

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
# HDF5 allows a user block before the superblock: the signature sits at 0, 512, 1024, 2048, ...
_HDF5_SIGNATURE_OFFSETS = (0, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)

KERAS_ZIP_WEIGHTS = "model.weights.h5"

# What h5py raises on a damaged file (besides crashing or hanging, which only a separate process
# can contain): these become an ArtifactError naming the file.
H5_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError, UnicodeError, EOFError)
KERAS_ZIP_CONFIG = "config.json"
KERAS_ZIP_METADATA = "metadata.json"


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
}


def extension_of(path: Path) -> str:
    """The file's extension as Keras sees it: ``.weights.h5`` counts as one extension."""
    name = path.name.lower()
    if name.endswith(".weights.h5"):
        return ".weights.h5"
    return path.suffix.lower()


def extension_note(path: Path, fmt: str) -> str | None:
    """A sentence when the file's extension does not match its content, else None."""
    ext = extension_of(path)
    expected = _EXPECTED_EXTENSIONS[fmt]
    if fmt == FORMAT_SAVEDMODEL or ext in expected:
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


# --------------------------------------------------------------------------------------------
# detection


def _hdf5_signature_offset(head: bytes) -> int | None:
    for offset in _HDF5_SIGNATURE_OFFSETS:
        if head[offset : offset + len(HDF5_MAGIC)] == HDF5_MAGIC:
            return offset
    return None


def sniff(path: str | os.PathLike[str]) -> str:
    """The container kind from magic bytes alone: ``"hdf5"``, ``"zip"``, ``"savedmodel"``.

    Raises :class:`ArtifactError` (check ``format``) for anything else.
    """
    p = Path(path)
    if p.is_dir():
        if (p / "saved_model.pb").is_file() or (p / "saved_model.pbtxt").is_file():
            return "savedmodel"
        raise ArtifactError(
            p, "format", "a directory without saved_model.pb is not a Keras artifact"
        )
    try:
        with open(p, "rb") as fh:
            head = fh.read(len(HDF5_MAGIC))
            if head[:4] not in ZIP_MAGICS and head != HDF5_MAGIC:  # after an HDF5 user block?
                head += fh.read(_HDF5_SIGNATURE_OFFSETS[-1])
    except OSError as exc:
        raise ArtifactError(p, "format", f"cannot read the file: {exc.strerror or exc}") from None
    if head[:4] in ZIP_MAGICS:
        return "zip"
    if _hdf5_signature_offset(head) is not None:
        return "hdf5"
    if not head:
        raise ArtifactError(p, "format", "the file is empty")
    raise ArtifactError(
        p,
        "format",
        f"neither HDF5 nor zip: the file starts with {head[:8]!r}",
        hint="Keras artifacts are .keras zips, HDF5 files (.h5, .weights.h5) "
        "or SavedModel directories",
    )


def _hdf5_layout(root: h5py.Group, attrs: Mapping[str, Any]) -> str:
    """Which Keras HDF5 layout an open file has, from its attributes and top-level groups."""
    if "model_config" in attrs or ("model_weights" in root and "layer_names" not in attrs):
        return FORMAT_H5
    if "layer_names" in attrs or "layer_names0" in attrs:
        return FORMAT_H5_WEIGHTS
    keys = set(root.keys())
    if keys & {"layers", "vars", "optimizer", "_layer_checkpoint_dependencies"} or not keys:
        return FORMAT_WEIGHTS_H5
    # A Keras 3 weights file of a subclassed model has attribute-named groups holding
    # `vars` groups; anything else is an HDF5 file that Keras did not write.
    for key in keys:
        obj = root.get(key, getlink=True)
        if type(obj).__name__ == "HardLink":
            child = root[key]
            if hasattr(child, "keys") and "vars" in child:
                return FORMAT_WEIGHTS_H5
    raise ValueError(
        "an HDF5 file without model_config, layer_names or layers/*/vars groups: "
        f"top-level names {sorted(keys)[:8]}"
    )


def detect_format(path: str | os.PathLike[str], *, limits: Limits = DEFAULT_LIMITS) -> str:
    """The artifact's format (one of :data:`FORMATS`) from its content, never its extension."""
    with open_artifact(path, limits=limits) as artifact:
        return artifact.format


# --------------------------------------------------------------------------------------------
# HDF5 hygiene


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


class H5Attr(NamedTuple):
    """An attribute as the walk saw it: its declared type and shape, and its stored size."""

    name: str
    dtype: Any  # numpy dtype
    shape: tuple[int, ...] | None  # None: an empty (null) dataspace
    storage_bytes: int | None  # None: HDF5 reports none (an empty attribute)


class HygieneError(ArtifactError):
    """The file holds something a safe reader must refuse (check ``hdf5-hygiene``/``zip``)."""


def _dtype_name(dtype: Any) -> str:
    import h5py

    if h5py.check_string_dtype(dtype) is not None:
        return "str"
    if dtype.kind == "O" or h5py.check_vlen_dtype(dtype) is not None:
        return "object"
    if dtype.names:
        return "compound"
    return str(dtype)


def h5_name(raw: bytes) -> str:
    """An HDF5 link or attribute name as h5py shows it (UTF-8; undecodable bytes escaped)."""
    return raw.decode("utf-8", "backslashreplace")


def _attr_value(attr_id: Any, shape: tuple[int, ...] | None, dtype: Any) -> Any:
    """An open attribute's value (of that ``shape`` and ``dtype``), exactly as h5py's
    ``obj.attrs[name]`` reads it."""
    import h5py
    import numpy as np

    if shape is None:  # an empty (null) dataspace
        return h5py.Empty(dtype)
    htype = h5py.h5t.py_create(dtype)
    if dtype.subdtype is not None:  # numpy has no top-level array type: fold it into the shape
        dtype, subshape = dtype.subdtype
        shape = shape + subshape
    value = np.zeros(shape, dtype=dtype, order="C")
    attr_id.read(value, mtype=htype)
    string = h5py.check_string_dtype(dtype)
    if string is not None and string.length is None:  # variable-length strings come as bytes
        value = np.array(
            [b.decode("utf-8", "surrogateescape") for b in value.flat], dtype=dtype
        ).reshape(value.shape)
    return value[()] if value.ndim == 0 else value


def _read_attrs(
    obj_id: Any, where: str, path: Path, limits: Limits
) -> tuple[dict[str, Any], tuple[H5Attr, ...]]:
    """The attributes of an open object (an h5py ObjectID): their values in sorted name order,
    and what each declares in h5py's order."""
    import h5py

    raw_names: list[bytes] = []
    h5py.h5a.iterate(obj_id, raw_names.append)  # by name
    values: dict[str, Any] = {}
    info: dict[bytes, H5Attr] = {}
    for name, raw in sorted((h5_name(n), n) for n in raw_names):
        try:
            attr_id = h5py.h5a.open(obj_id, raw)
        except Exception as exc:  # the attribute's header is unreadable
            raise HygieneError(
                path, "hdf5-hygiene", f"attribute {name!r} of /{where} is unreadable: {exc}"
            ) from None
        values[name], info[raw] = _read_attr(attr_id, name, where, path, limits)
    return values, tuple(info[raw] for raw in attr_order(obj_id, raw_names))


def attr_order(obj_id: Any, by_name: list[bytes] | None = None) -> list[bytes]:
    """An open object's raw attribute names in h5py's order for ``obj.attrs``: creation order
    where the object tracks it, else by name. ``by_name``: the names by name, if already listed."""
    import h5py

    if by_name is None:
        by_name = []
        h5py.h5a.iterate(obj_id, by_name.append)
    if len(by_name) < 2 or not (
        obj_id.get_create_plist().get_attr_creation_order() & h5py.h5p.CRT_ORDER_TRACKED
    ):
        return by_name  # (one attribute has no other order)
    order: list[bytes] = []
    h5py.h5a.iterate(obj_id, order.append, index_type=h5py.h5.INDEX_CRT_ORDER)
    return order


def _read_attr(
    attr_id: Any, name: str, where: str, path: Path, limits: Limits
) -> tuple[Any, H5Attr]:
    """An open attribute's value and what it declares, refused when too large or unreadable."""
    try:
        size: int | None = attr_id.get_storage_size()
    except Exception:  # HDF5 reports an empty attribute's size as an error
        size = None
    if (size or 0) > limits.max_attribute_bytes:
        raise HygieneError(
            path,
            "hdf5-hygiene",
            f"attribute {name!r} of /{where} declares {size} bytes "
            f"(limit {limits.max_attribute_bytes})",
        )
    try:
        shape, dtype = attr_id.shape, attr_id.dtype
        return _attr_value(attr_id, shape, dtype), H5Attr(name, dtype, shape, size)
    except Exception as exc:
        raise HygieneError(
            path, "hdf5-hygiene", f"attribute {name!r} of /{where} is unreadable: {exc}"
        ) from None


def check_dataset(dataset_id: Any, where: str, path: Path, limits: Limits) -> H5Node:
    """Refuse external/virtual storage and shape bombs; return the dataset's node. Reads no data.

    ``dataset_id``: an h5py ``DatasetID`` (``dataset.id``).
    """
    return H5Node(**_checked_dataset(dataset_id, where, path, limits))


def _checked_dataset(dataset_id: Any, where: str, path: Path, limits: Limits) -> dict[str, Any]:
    """:func:`check_dataset`'s checks; returns the node's fields."""
    import h5py

    dcpl = dataset_id.get_create_plist()
    if dcpl.get_layout() == h5py.h5d.VIRTUAL:
        raise HygieneError(
            path,
            "hdf5-hygiene",
            f"dataset /{where} uses virtual storage (it maps data from other files)",
        )
    if dcpl.get_external_count() > 0:
        first = dcpl.get_external(0)[0].decode("utf-8", "replace")
        raise HygieneError(
            path,
            "hdf5-hygiene",
            f"dataset /{where} stores its data in an external file ({first!r}): "
            "reading it would read a file outside the artifact",
        )
    shape = tuple(int(n) for n in (dataset_id.shape or ()))
    dtype = dataset_id.dtype
    declared = dtype.itemsize
    for n in shape:
        declared *= n
    storage = int(dataset_id.get_storage_size())
    if declared > limits.shape_bomb_min_bytes and declared > limits.shape_bomb_ratio * max(
        storage, 1
    ):
        raise HygieneError(
            path,
            "hdf5-hygiene",
            f"dataset /{where} declares shape {shape} ({declared} bytes) but stores only "
            f"{storage} bytes: a shape bomb; reading it would allocate the declared size",
        )
    return {
        "path": where,
        "kind": "dataset",
        "shape": shape,
        "dtype": _dtype_name(dtype),
        "storage_bytes": storage,
        "declared_bytes": declared,
        "numpy_dtype": dtype,
        "filters": tuple(dcpl.get_filter(i)[0] for i in range(dcpl.get_nfilters())),
    }


def walk_hdf5(
    root: h5py.Group, path: Path, limits: Limits = DEFAULT_LIMITS, *, with_attrs: bool = True
) -> list[H5Node]:
    """Every object of the file, checked, depth first with each group's links in name order.

    Reads metadata only. External links and user-defined links are refused; soft links are
    recorded, never followed (a dangling one or one leading outside the file is refused); a
    group reached twice (hard-link cycles) is visited once.
    """
    return _Walk(root, path, limits, with_attrs).run()


class _Walk:
    """One pass of HDF5's own link visit (H5Lvisit: depth first, links in name order, each
    group entered once) with h5py's low-level API: an object's type, address and attribute
    count come from one ``h5o.get_info``, and only objects that have attributes are asked for
    them. The checks and messages are :func:`walk_hdf5`'s."""

    def __init__(self, root: h5py.Group, path: Path, limits: Limits, with_attrs: bool) -> None:
        self.root = root
        self.path = path
        self.limits = limits
        self.with_attrs = with_attrs
        self.nodes: list[H5Node] = []
        self.seen: set[tuple[int, int]] = set()
        self.error: BaseException | None = None

    def run(self) -> list[H5Node]:
        import h5py

        info = h5py.h5o.get_info(self.root.id)
        self.seen.add((info.fileno, info.addr))
        attrs, attr_info = self.attrs(self.root.id, "", info.num_attrs)
        self.nodes.append(H5Node("", "group", attrs=attrs, attr_info=attr_info))
        # h5py turns an exception raised inside a visit callback into a SystemError: the
        # callback keeps it and stops the visit (a true return value), and it is raised here.
        self.root.id.links.visit(self.visit, info=True)
        if self.error is not None:
            raise self.error
        return self.nodes

    def visit(self, name: bytes, link: Any) -> bool | None:
        try:
            self.link(name, link)
        except H5_ERRORS as exc:  # the library cannot read this object: say which one
            self.error = RuntimeError(f"/{h5_name(name)} cannot be read: {exc}")
            return True
        except BaseException as exc:
            self.error = exc
            return True
        return None

    def attrs(
        self, obj_id: Any, where: str, count: int
    ) -> tuple[dict[str, Any], tuple[H5Attr, ...] | None]:
        """The ``count`` attributes of an open object: values and what each declares."""
        if not self.with_attrs:
            return {}, None
        if count == 0:
            return {}, ()
        return _read_attrs(obj_id, where, self.path, self.limits)

    def only_attr(
        self, name: bytes, where: str
    ) -> tuple[dict[str, Any], tuple[H5Attr, ...] | None] | None:
        """The one attribute of the object at ``name``, opened through its path (the object
        itself is not opened); None when it cannot be opened so (then read as any other)."""
        import h5py

        try:
            attr_id = h5py.h5a.open(self.root.id, index=0, obj_name=name)
            attr_name = h5_name(attr_id.name)
        except H5_ERRORS:
            return None
        value, attr = _read_attr(attr_id, attr_name, where, self.path, self.limits)
        return {attr_name: value}, (attr,)

    def link(self, name: bytes, link: Any) -> None:
        import h5py

        path, limits = self.path, self.limits
        if len(self.nodes) >= limits.max_hdf5_objects:
            raise HygieneError(
                path, "hdf5-hygiene", f"more than {limits.max_hdf5_objects} HDF5 objects"
            )
        where = h5_name(name)
        root_id = self.root.id
        if link.type == h5py.h5l.TYPE_EXTERNAL:
            filename, target = root_id.links.get_val(name)
            raise HygieneError(
                path,
                "hdf5-hygiene",
                f"/{where} is an external link to {os.fsdecode(filename)!r}:{h5_name(target)}: "
                "it leads outside the file",
            )
        if link.type == h5py.h5l.TYPE_SOFT:
            target = h5_name(root_id.links.get_val(name))
            if target not in self.root.file:
                raise HygieneError(
                    path,
                    "hdf5-hygiene",
                    f"/{where} is a soft link to {target!r}, which is not in the file",
                )
            self.nodes.append(H5Node(path=where, kind="softlink", target=target))
            return
        if link.type != h5py.h5l.TYPE_HARD:
            raise HygieneError(path, "hdf5-hygiene", f"/{where} is a link of unknown kind")
        info = h5py.h5o.get_info(root_id, name)
        if info.type == h5py.h5o.TYPE_DATASET:
            dataset_id = h5py.h5d.open(root_id, name)
            fields = _checked_dataset(dataset_id, where, path, limits)  # before its attributes
            attrs, attr_info = self.attrs(dataset_id, where, info.num_attrs)
            self.nodes.append(H5Node(**fields, attrs=attrs, attr_info=attr_info))
        elif info.type == h5py.h5o.TYPE_GROUP:
            key = (info.fileno, info.addr)
            if key in self.seen:  # HDF5 does not enter it again either
                return
            self.seen.add(key)
            depth = where.count("/") + 1
            if depth > limits.max_hdf5_depth:
                raise HygieneError(
                    path, "hdf5-hygiene", f"groups nested deeper than {limits.max_hdf5_depth}"
                )
            read = self.only_attr(name, where) if self.with_attrs and info.num_attrs == 1 else None
            if read is None:
                opened = self.with_attrs and info.num_attrs > 0
                group_id = h5py.h5g.open(root_id, name) if opened else None
                read = self.attrs(group_id, where, info.num_attrs)
            attrs, attr_info = read
            self.nodes.append(H5Node(where, "group", attrs=attrs, attr_info=attr_info))
        else:  # a committed datatype
            self.nodes.append(H5Node(path=where, kind="datatype"))


# --------------------------------------------------------------------------------------------
# zip hygiene and the inner weights file


@dataclass(frozen=True)
class ZipMember:
    name: str
    size: int
    compressed_size: int
    method: str  # "stored", "deflated", ...
    offset: int  # the member's local header offset


_METHODS = {0: "stored", 8: "deflated", 12: "bzip2", 14: "lzma"}
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".pt", ".pth", ".npy")


def check_zip(zf: zipfile.ZipFile, path: Path, limits: Limits = DEFAULT_LIMITS) -> list[ZipMember]:
    """Refuse a zip whose central directory is unsafe to act on; list its members. Reads no data."""
    infos = zf.infolist()
    if len(infos) > limits.max_zip_members:
        raise HygieneError(path, "zip", f"{len(infos)} members (limit {limits.max_zip_members})")
    members: list[ZipMember] = []
    for info in infos:
        name = info.filename
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or re.match(r"^[A-Za-z]:", name):
            raise HygieneError(path, "zip", f"member {name!r} has a path outside the archive")
        if info.file_size > limits.max_zip_member_bytes:
            raise HygieneError(
                path,
                "zip",
                f"member {name!r} declares {info.file_size} bytes "
                f"(limit {limits.max_zip_member_bytes})",
            )
        if info.compress_type != zipfile.ZIP_STORED and info.file_size > max(
            limits.max_zip_ratio * max(info.compress_size, 1), 1024**2
        ):
            raise HygieneError(
                path,
                "zip",
                f"member {name!r} declares {info.file_size} bytes from {info.compress_size} "
                "compressed bytes: a zip bomb",
            )
        if name.lower().endswith(_PICKLE_SUFFIXES):
            raise HygieneError(
                path, "zip", f"member {name!r} is pickled data, which a Keras archive never holds"
            )
        members.append(
            ZipMember(
                name=name,
                size=info.file_size,
                compressed_size=info.compress_size,
                method=_METHODS.get(info.compress_type, str(info.compress_type)),
                offset=info.header_offset,
            )
        )
    return members


class _Window(io.RawIOBase):
    """A read-only, seekable view of ``length`` bytes at ``start`` of an open file.

    Keras stores the inner model.weights.h5 uncompressed, so h5py can read it in place from
    the archive: no extraction to disk and no copy in memory.
    """

    def __init__(self, fh: Any, start: int, length: int) -> None:
        super().__init__()
        self._fh = fh
        self._start = start
        self._length = length
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self._length + offset
        else:  # pragma: no cover
            raise ValueError(f"bad whence {whence}")
        if pos < 0:
            raise OSError("negative seek position")
        self._pos = pos
        return pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = max(0, min(len(view), self._length - self._pos))
        if n == 0:
            return 0
        self._fh.seek(self._start + self._pos)
        got = self._fh.readinto(view[:n])
        self._pos += got or 0
        return got or 0

    def readall(self) -> bytes:
        out = bytearray(max(0, self._length - self._pos))
        n = self.readinto(out)
        return bytes(out[:n])

    def writable(self) -> bool:
        return False


# An inner model.weights.h5 up to this size is read into memory and opened from there (HDF5's
# core driver with a file image), so that HDF5 reads its metadata without calling back into
# Python for each read; a larger one is read in place from the archive (_Window).
IN_MEMORY_WEIGHTS_BYTES = 8 * 1024**2
_IMAGE_NUMBERS = itertools.count()


def _open_image(data: bytes, name: str) -> h5py.File:
    """A read-only HDF5 file held in memory, with no file behind it."""
    import h5py

    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_fapl_core(backing_store=False)
    fapl.set_file_image(data)
    # HDF5 tells open files apart by name: each image gets a name of its own
    unique = f"{name}#{next(_IMAGE_NUMBERS)}".encode()
    return h5py.File(h5py.h5f.open(unique, h5py.h5f.ACC_RDONLY, fapl=fapl))


def _stored_member_window(fh: Any, info: zipfile.ZipInfo, path: Path) -> _Window:
    fh.seek(info.header_offset)
    header = fh.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise HygieneError(path, "zip", f"member {info.filename!r} has no valid local header")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    start = info.header_offset + 30 + name_len + extra_len
    return _Window(fh, start, info.file_size)


def _json_member(zf: zipfile.ZipFile, name: str, path: Path, limits: Limits) -> Any:
    info = zf.getinfo(name)
    if info.file_size > limits.max_json_bytes:
        raise HygieneError(
            path, "zip", f"{name} declares {info.file_size} bytes (limit {limits.max_json_bytes})"
        )
    try:
        with zf.open(info) as fh:
            data = fh.read(limits.max_json_bytes + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise ArtifactError(path, "zip", f"cannot read {name} from the archive: {exc}") from None
    return _parse_json(data, f"{name} in the archive", path)


def _parse_json(data: bytes | str, what: str, path: Path) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ArtifactError(path, "config", f"{what} is not valid JSON: {exc}") from None


# --------------------------------------------------------------------------------------------
# the artifact


@dataclass
class Artifact:
    """An opened artifact: what :func:`open_artifact` yields. Valid inside the ``with`` only."""

    path: Path
    format: str
    file_size: int
    keras_version: str | None = None
    backend: str | None = None
    config: Any = None  # the model config: {"class_name": ..., "config": ...}
    training_config: Any = None  # compile config (legacy h5 training_config / compile_config)
    metadata: dict[str, Any] = field(default_factory=dict)  # metadata.json or root attributes
    h5: h5py.File | None = None  # the HDF5 file holding the weights (inner file for .keras)
    weights_root: h5py.Group | None = None  # the group holding the model's weights
    nodes: list[H5Node] = field(default_factory=list)  # the checked HDF5 tree
    zip_members: list[ZipMember] = field(default_factory=list)
    zip: zipfile.ZipFile | None = None  # the open archive of a .keras (its central directory read)
    zip_file: Any = None  # the archive's open file (the zip and the inner weights read from it)
    savedmodel_files: list[tuple[str, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _node_index: dict[str, H5Node] | None = field(
        default=None, init=False, repr=False, compare=False
    )

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


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if hasattr(value, "tolist"):
        value = value.tolist()
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
    return str(value)


def _attr_json(attrs: Mapping[str, Any], name: str, path: Path) -> Any:
    if name not in attrs:
        return None
    text = _text(attrs[name])
    if text is None:
        return None
    return _parse_json(text, f"attribute {name!r}", path)


def _fill_hdf5(artifact: Artifact, f: h5py.File, limits: Limits, *, inner: bool) -> None:
    path = artifact.path
    artifact.nodes = walk_hdf5(f, path, limits)  # hygiene first: nothing read before this
    if inner:
        artifact.weights_root = f
        return
    attrs = artifact.nodes[0].attrs  # the root group's, as the walk read them
    try:
        artifact.format = _hdf5_layout(f, attrs)
    except ValueError as exc:
        raise ArtifactError(path, "format", str(exc)) from None
    if artifact.format == FORMAT_H5:
        artifact.config = _attr_json(attrs, "model_config", path)
        artifact.training_config = _attr_json(attrs, "training_config", path)
        weights = f.get("model_weights")
        artifact.weights_root = weights if weights is not None else f
    else:
        artifact.weights_root = f
    for source in (attrs, artifact.attrs_of(artifact.weights_root)):
        if artifact.keras_version is None and "keras_version" in source:
            artifact.keras_version = _text(source["keras_version"])
        if artifact.backend is None and "backend" in source:
            artifact.backend = _text(source["backend"])
    # in the file's attribute order (creation order when the file tracks it)
    artifact.metadata = {k: _text(attrs[k]) for k in f.attrs if k in ("keras_version", "backend")}


@contextlib.contextmanager
def open_artifact(
    path: str | os.PathLike[str], *, limits: Limits = DEFAULT_LIMITS
) -> Iterator[Artifact]:
    """Open an artifact read-only, check its hygiene, and yield an :class:`Artifact`.

    Raises :class:`ArtifactError` naming the file, the check and the reason when the file is not
    a Keras artifact, is damaged, or holds something a safe reader refuses.
    """
    import h5py

    p = Path(path)
    kind = sniff(p)
    if kind == "savedmodel":
        files = sorted(
            (str(f.relative_to(p)), f.stat().st_size) for f in p.rglob("*") if f.is_file()
        )
        notes = []
        if (p / "keras_metadata.pb").is_file():
            notes.append("tf.keras SavedModel (keras_metadata.pb): Keras 3 cannot load it")
        yield Artifact(
            path=p,
            format=FORMAT_SAVEDMODEL,
            file_size=sum(size for _, size in files),
            savedmodel_files=files,
            notes=notes,
        )
        return

    size = p.stat().st_size
    with contextlib.ExitStack() as stack:
        if kind == "hdf5":
            try:
                f = stack.enter_context(h5py.File(p, "r"))
            except H5_ERRORS as exc:
                raise ArtifactError(
                    p, "hdf5", f"HDF5 library cannot open the file: {exc}"
                ) from None
            artifact = Artifact(path=p, format=FORMAT_H5, file_size=size)
            try:
                _fill_hdf5(artifact, f, limits, inner=False)
            except H5_ERRORS as exc:
                raise ArtifactError(p, "hdf5", f"cannot read the file's structure: {exc}") from None
        else:
            fh = stack.enter_context(open(p, "rb"))
            try:
                zf = stack.enter_context(zipfile.ZipFile(fh))
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error) as exc:
                raise ArtifactError(p, "zip", f"not a readable zip archive: {exc}") from None
            artifact = Artifact(path=p, format=FORMAT_KERAS, file_size=size, zip=zf, zip_file=fh)
            artifact.zip_members = check_zip(zf, p, limits)
            names = {m.name for m in artifact.zip_members}
            if len(names) != len(artifact.zip_members):
                raise HygieneError(p, "zip", "duplicate member names")
            if KERAS_ZIP_CONFIG not in names:
                raise ArtifactError(
                    p, "format", "a zip without config.json is not a .keras archive"
                )
            artifact.config = _json_member(zf, KERAS_ZIP_CONFIG, p, limits)
            if KERAS_ZIP_METADATA in names:
                metadata = _json_member(zf, KERAS_ZIP_METADATA, p, limits)
                if isinstance(metadata, dict):
                    artifact.metadata = metadata
                    artifact.keras_version = _text(metadata.get("keras_version"))
            if isinstance(artifact.config, dict):
                artifact.training_config = artifact.config.get("compile_config")
            if KERAS_ZIP_WEIGHTS in names:
                info = zf.getinfo(KERAS_ZIP_WEIGHTS)
                if info.compress_type == zipfile.ZIP_STORED:
                    raw: Any = _stored_member_window(fh, info, p)
                else:
                    artifact.notes.append(
                        f"{KERAS_ZIP_WEIGHTS} is compressed; Keras stores it uncompressed"
                    )
                    raw = stack.enter_context(zf.open(info))
                try:
                    if info.file_size <= IN_MEMORY_WEIGHTS_BYTES:
                        f = _open_image(raw.read(), f"{p}/{KERAS_ZIP_WEIGHTS}")
                    else:
                        f = h5py.File(raw, "r")
                    stack.enter_context(f)
                except H5_ERRORS as exc:
                    raise ArtifactError(
                        p, "hdf5", f"{KERAS_ZIP_WEIGHTS} inside the archive is not HDF5: {exc}"
                    ) from None
                try:
                    _fill_hdf5(artifact, f, limits, inner=True)
                except H5_ERRORS as exc:
                    raise ArtifactError(
                        p, "hdf5", f"cannot read {KERAS_ZIP_WEIGHTS} structure: {exc}"
                    ) from None
                artifact.h5 = f
            else:
                artifact.notes.append(f"the archive has no {KERAS_ZIP_WEIGHTS}")
        if kind == "hdf5":
            artifact.h5 = f
        note = extension_note(p, artifact.format)
        if note:
            artifact.notes.insert(0, note)
        yield artifact


# --------------------------------------------------------------------------------------------
# weights under Keras-level names


class WeightEntry(NamedTuple):
    """One saved variable: its Keras-level name, its HDF5 path, and the (unread) dataset."""

    name: str
    h5_path: str
    dataset: Any  # h5py.Dataset


def iter_weights(artifact: Artifact) -> Iterator[WeightEntry]:
    """The model's variables, in the file's order, named ``layer/variable`` alike in every format.

    Nothing is read: each entry carries the h5py dataset, already checked by
    :func:`open_artifact`, so a caller can stream values one dataset at a time.
    """
    from pytest_kerasmodel import weightnames

    if artifact.weights_root is None:
        return
    root = artifact.weights_root.file
    for weight in weightnames.model_weights(artifact):
        yield WeightEntry(weight.name, weight.h5_path, root[weight.h5_path])


def iter_optimizer_weights(artifact: Artifact) -> Iterator[WeightEntry]:
    """The optimizer's saved variables, named ``optimizer/<i>`` in the optimizer's own order."""
    from pytest_kerasmodel import weightnames

    if artifact.weights_root is None:
        return
    for name, h5_path in weightnames.optimizer_weight_paths(artifact):
        yield WeightEntry(name, h5_path, artifact.weights_root.file[h5_path])
