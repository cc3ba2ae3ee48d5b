"""HDF5 read safely with h5py's low-level API: every object checked before any value is read.

:func:`walk_hdf5` is the one walk of an HDF5 file (hygiene: no external or soft links leaving
the file, no external or virtual dataset storage, no dataset declaring far more bytes than it
stores, bounded object count and depth); :func:`hdf5_layout` tells which Keras layout an open
file has. Every reader that opens an HDF5 file (a legacy ``.h5``, a ``.weights.h5``, the
``model.weights.h5`` of a ``.keras`` or of a folder, each shard) goes through here.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_kerasmodel.artifacts.base import (
    DEFAULT_LIMITS,
    FORMAT_H5,
    FORMAT_H5_WEIGHTS,
    FORMAT_WEIGHTS_H5,
    H5_ERRORS,
    Artifact,
    ArtifactError,
    H5Attr,
    H5Node,
    HygieneError,
    Limits,
    Store,
)

if TYPE_CHECKING:  # pragma: no cover
    import h5py


# the names of plain numeric dtypes (no h5py metadata), computed once each
_NUMERIC_NAMES: dict[Any, str] = {}


def _dtype_name(dtype: Any) -> str:
    if dtype.metadata is None and dtype.kind in "biufc":
        name = _NUMERIC_NAMES.get(dtype)
        if name is None:
            name = _NUMERIC_NAMES[dtype] = str(dtype)
        return name
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


def hdf5_layout(root: h5py.Group, attrs: Mapping[str, Any]) -> str:
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


# An inner model.weights.h5 up to this size is read into memory and opened from there (HDF5's
# core driver with a file image), so that HDF5 reads its metadata without calling back into
# Python for each read; a larger one is read in place from the archive (_Window).
IN_MEMORY_WEIGHTS_BYTES = 8 * 1024**2
_IMAGE_NUMBERS = itertools.count()


def open_image(data: bytes, name: str) -> h5py.File:
    """A read-only HDF5 file held in memory, with no file behind it."""
    import h5py

    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_fapl_core(backing_store=False)
    fapl.set_file_image(data)
    # HDF5 tells open files apart by name: each image gets a name of its own
    unique = f"{name}#{next(_IMAGE_NUMBERS)}".encode()
    return h5py.File(h5py.h5f.open(unique, h5py.h5f.ACC_RDONLY, fapl=fapl))


def add_store(artifact: Artifact, f: h5py.File, label: str, limits: Limits) -> Store:
    """Walk ``f`` (hygiene first: nothing is read before this) and keep it among the
    artifact's stores; its nodes point at that store."""
    nodes = walk_hdf5(f, artifact.path, limits)
    index = len(artifact.stores)
    if index:
        nodes = [replace(n, store=index) for n in nodes]
    store = Store(label, f, nodes)
    artifact.stores.append(store)
    return store


def _walked_store(artifact: Artifact, f: h5py.File, label: str, limits: Limits, what: str) -> Store:
    """:func:`add_store`, a file HDF5 cannot walk refused naming it (``what``)."""
    try:
        return add_store(artifact, f, label, limits)
    except H5_ERRORS as exc:
        raise ArtifactError(artifact.path, "hdf5", f"cannot read {what} structure: {exc}") from None


def open_store(
    artifact: Artifact,
    file: Path,
    label: str,
    stack: contextlib.ExitStack,
    limits: Limits,
    *,
    what: str | None = None,
) -> Store:
    """Open an HDF5 file of a layout of several files (read-only, closed with ``stack``), walk
    it and keep it among the artifact's stores; errors name it as ``what`` (default ``label``)."""
    import h5py

    what = what or label
    try:
        f = stack.enter_context(h5py.File(file, "r"))
    except H5_ERRORS as exc:
        raise ArtifactError(
            artifact.path, "hdf5", f"{what} is not a readable HDF5 file: {exc}"
        ) from None
    return _walked_store(artifact, f, label, limits, what)


def _use_as_weights(artifact: Artifact, store: Store) -> None:
    artifact.nodes = store.nodes
    artifact.weights_root = store.h5
    artifact.h5 = store.h5


def use_weights_file(artifact: Artifact, f: h5py.File, label: str, limits: Limits) -> None:
    """``f`` is the model's weights file (``model.weights.h5`` of a ``.keras`` or a folder)."""
    _use_as_weights(artifact, _walked_store(artifact, f, label, limits, label))


def open_weights_file(
    artifact: Artifact, file: Path, label: str, stack: contextlib.ExitStack, limits: Limits
) -> None:
    """Open a weights file of a folder layout (read-only) and use it as the model's weights."""
    _use_as_weights(artifact, open_store(artifact, file, label, stack, limits))
