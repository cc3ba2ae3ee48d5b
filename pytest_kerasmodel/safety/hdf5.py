"""The HDF5 scan: links, external storage, virtual datasets, filters, shapes and object data,
and the ``model_config`` / ``training_config`` attributes a legacy file stores.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_kerasmodel.safety.base import Allowed, Finding, _prefixed
from pytest_kerasmodel.safety.config import _parse_config, scan_config
from pytest_kerasmodel.safety.rules import CONFIG_MAX_BYTES, H5_MAX_ATTR_BYTES, MEMBER_MAX_BYTES

if TYPE_CHECKING:  # pragma: no cover
    import h5py

    from pytest_kerasmodel.artifacts.hdf5 import H5Node

#: HDF5 filters built into the library or h5py; any other needs a plugin library loaded at read.
_BUILTIN_FILTERS = frozenset({1, 2, 3, 4, 5, 6, 32000})


_PICKLE_PROTOCOLS = frozenset({2, 3, 4, 5})


#: What h5py raises on a damaged file (the HDF5 C library's errors surface as these).
_H5_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError, IndexError)


#: artifacts.hdf5.walk_hdf5 refuses a file with one HygieneError; its reason says which rule broke.
_HYGIENE_CHECKS = (
    ("external link", "h5-external-link"),
    ("soft link", "h5-soft-link"),
    ("virtual storage", "h5-virtual-dataset"),
    ("external file", "h5-external-storage"),
    ("shape bomb", "h5-shape-bomb"),
    ("HDF5 objects", "h5-too-many-objects"),
    ("nested deeper", "h5-too-many-objects"),
)


def _dtype_problem(dtype: Any) -> str | None:
    """Why an HDF5 dtype may hold pickled or arbitrary Python objects, or None."""
    import h5py

    if h5py.check_string_dtype(dtype) is not None:
        return None
    if h5py.check_ref_dtype(dtype) is not None:
        return "holds HDF5 object references, which Keras never writes"
    if h5py.check_vlen_dtype(dtype) is not None:
        return "variable-length object data (how pickled arrays are stored), never written by Keras"
    if dtype.kind == "O":
        return "object dtype (arbitrary Python objects, e.g. pickles)"
    if dtype.kind == "V":
        if dtype.names:
            for field in dtype.names:
                problem = _dtype_problem(dtype.fields[field][0])
                if problem:
                    return f"field {field!r}: {problem}"
            return None
        if dtype.subdtype is not None:
            return _dtype_problem(dtype.subdtype[0])
        return "opaque bytes (how pickled objects are smuggled into HDF5), never written by Keras"
    return None


def _declared_bytes(shape: tuple[int, ...] | None, itemsize: int) -> int:
    if not shape:
        return itemsize
    return math.prod(int(d) for d in shape) * itemsize


class _H5Scanner:
    """Structural hygiene from :func:`~pytest_kerasmodel.artifacts.hdf5.walk_hdf5`, then what
    only a safety scan refuses: links of any kind, object/opaque/reference data, pickle bytes
    and filter plugins."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.findings: list[Finding] = []

    def add(self, check: str, path: str, reason: str) -> None:
        self.findings.append(Finding(check, f"{self.label}HDF5 {path!r}", reason))

    def scan(self, h5file: h5py.File, nodes: list[H5Node] | None = None) -> list[Finding]:
        """``nodes``: the tree :func:`~pytest_kerasmodel.artifacts.hdf5.walk_hdf5` already
        checked (when the file was opened by :func:`~pytest_kerasmodel.artifacts.open_artifact`),
        else the file is walked here."""
        import h5py

        from pytest_kerasmodel.artifacts import HygieneError
        from pytest_kerasmodel.artifacts.hdf5 import walk_hdf5

        try:
            if nodes is None:
                nodes = walk_hdf5(h5file, Path(self.label or "HDF5"), with_attrs=False)
        except HygieneError as error:
            check = next((c for key, c in _HYGIENE_CHECKS if key in error.reason), "h5-hygiene")
            match = re.search(r"(?:^|\s)(/\S*?)(?::|\s|$)", error.reason)
            self.add(check, match.group(1) if match else "/", error.reason)
            return self.findings
        except _H5_ERRORS as error:
            self.findings.append(
                Finding(
                    "unreadable", f"{self.label}HDF5", f"the HDF5 structure is damaged: {error}"
                )
            )
            return self.findings
        for node in nodes:
            path = "/" + node.path
            if node.kind == "softlink":
                self.add(
                    "h5-soft-link",
                    path,
                    f"soft link to {node.target!r}: Keras never writes links and refuses them "
                    "when loading weights (Keras 3.13+); a link can alias one weight as another",
                )
                continue
            name = node.path.encode("utf-8") if node.path else b"."
            known_dataset = node.kind == "dataset" and node.numpy_dtype is not None
            if node.attr_info is not None and (node.kind != "dataset" or known_dataset):
                # the walk that checked the tree saw each attribute and the dataset's storage
                for attr in node.attr_info:
                    self.judge_attr(path, attr.name, attr.dtype, attr.shape)
                if node.kind == "dataset":
                    try:
                        self.judge_dataset(
                            path,
                            node.numpy_dtype,
                            node.shape or (),
                            node.filters,
                            node.storage_bytes or 0,
                            lambda: h5py.h5d.open(h5file.id, name),  # noqa: B023 (called now)
                        )
                    except _H5_ERRORS as error:
                        self.add("h5-unreadable", path, f"cannot be read: {error}")
                continue
            # else with h5py's low-level API: an object without attributes that is not a dataset
            # is not opened at all, and nothing is opened twice
            try:
                info = h5py.h5o.get_info(h5file.id, name)
                if info.type == h5py.h5o.TYPE_DATASET:
                    dataset = h5py.h5d.open(h5file.id, name)
                    self.scan_attrs(dataset, path, info.num_attrs)
                    self.scan_dataset(dataset, path)
                elif info.num_attrs:
                    self.scan_attrs(h5py.h5o.open(h5file.id, name), path, info.num_attrs)
            except _H5_ERRORS as error:
                self.add("h5-unreadable", path, f"cannot be read: {error}")
        return self.findings

    def scan_attrs(self, obj_id: Any, path: str, count: int) -> None:
        """``obj_id``: an open object (h5py ObjectID) with ``count`` attributes."""
        import h5py

        from pytest_kerasmodel.artifacts.hdf5 import attr_order, h5_name

        if not count:
            return
        for raw in attr_order(obj_id):  # h5py's order for obj.attrs
            name = h5_name(raw)
            try:
                attr = h5py.h5a.open(obj_id, raw)
                dtype, shape = attr.dtype, attr.shape
            except _H5_ERRORS as error:
                self.add("h5-unreadable", f"{path}@{name}", f"attribute cannot be read: {error}")
                continue
            self.judge_attr(path, name, dtype, shape)

    def judge_attr(self, path: str, name: str, dtype: Any, shape: tuple[int, ...] | None) -> None:
        problem = _dtype_problem(dtype)
        if problem:
            self.add("h5-object-data", f"{path}@{name}", f"attribute {problem}")
        elif (declared := _declared_bytes(shape, dtype.itemsize)) > H5_MAX_ATTR_BYTES:
            self.add(
                "h5-shape-bomb",
                f"{path}@{name}",
                f"attribute declares {declared} bytes (limit {H5_MAX_ATTR_BYTES})",
            )

    def scan_dataset(self, dataset: Any, path: str) -> None:
        """``dataset``: an open ``h5py.h5d.DatasetID``."""
        dtype, shape = dataset.dtype, dataset.shape
        plist = dataset.get_create_plist()
        filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
        self.judge_dataset(path, dtype, shape, filters, dataset.get_storage_size(), lambda: dataset)

    def judge_dataset(
        self,
        path: str,
        dtype: Any,
        shape: Any,
        filters: Iterable[int],
        stored: int,
        open_dataset: Callable[[], Any],
    ) -> None:
        """``open_dataset()``: the ``DatasetID``, only opened to peek at a byte array."""
        unknown = [f for f in filters if f not in _BUILTIN_FILTERS]
        if unknown:
            self.add(
                "h5-filter",
                path,
                f"uses HDF5 filter id(s) {unknown} that need a plugin library loaded at read time",
            )
        problem = _dtype_problem(dtype)
        if problem:
            self.add(
                "h5-object-data",
                path,
                f"dataset {problem}{self.pickle_detail(open_dataset, dtype, shape, stored)}",
            )
        elif self.looks_pickled(open_dataset, dtype, shape, stored):
            self.add(
                "h5-object-data",
                path,
                "bytes start like a Python pickle stream; Keras never stores pickles"
                + self.pickle_detail(open_dataset, dtype, shape, stored),
            )

    @staticmethod
    def looks_pickled(
        open_dataset: Callable[[], Any], dtype: Any, shape: tuple[int, ...], stored: int
    ) -> bool:
        """Peek at two bytes of byte arrays: a pickle starts with PROTO (0x80) and 2..5."""
        import h5py

        if stored == 0:
            return False
        if dtype.kind == "S" and shape == ():
            head = bytes(h5py.Dataset(open_dataset())[()])[:2]
        elif dtype.kind == "u" and dtype.itemsize == 1 and len(shape) == 1 and shape[0] >= 2:
            head = bytes(h5py.Dataset(open_dataset())[:2].tobytes())
        else:
            return False
        return len(head) == 2 and head[0] == 0x80 and head[1] in _PICKLE_PROTOCOLS

    @staticmethod
    def pickle_detail(
        open_dataset: Callable[[], Any], dtype: Any, shape: tuple[int, ...], stored: int
    ) -> str:
        """``"; it is a pickle that imports and calls ..."`` when the dataset's bytes (a byte
        string, a uint8 vector or opaque bytes, up to MEMBER_MAX_BYTES) are a pickle, else ``""``.
        Variable-length data is not read: its stored size says nothing of what it holds."""
        import h5py

        from pytest_kerasmodel.safety.pickles import analyse_pickle, looks_like_pickle

        declared = _declared_bytes(shape, dtype.itemsize)
        if stored == 0 or declared > MEMBER_MAX_BYTES or stored > MEMBER_MAX_BYTES:
            return ""
        opaque = dtype.kind == "V" and not dtype.names and dtype.subdtype is None
        if dtype.kind == "S" and shape == ():
            data = bytes(h5py.Dataset(open_dataset())[()])
        elif (dtype.kind == "u" and dtype.itemsize == 1 and len(shape) == 1) or (
            opaque and len(shape) <= 1
        ):
            data = h5py.Dataset(open_dataset())[()].tobytes()
        else:
            return ""
        if not looks_like_pickle(data):
            return ""
        return f"; it is a pickle that {analyse_pickle(data).summary()}"


def scan_hdf5(h5file: h5py.File, *, label: str = "") -> list[Finding]:
    """HDF5 hygiene of an open file, reading metadata only (and two bytes of byte arrays).

    The structural rules (external links, soft links leaving the file, external and virtual
    dataset storage, shape bombs, object counts) are
    :func:`pytest_kerasmodel.artifacts.hdf5.walk_hdf5`'s;
    this adds soft links of any kind, unknown filter plugins, and object/opaque/reference data
    (how pickles are smuggled in). ``label`` prefixes each location (``"model.weights.h5: "``).
    """
    return _H5Scanner(label).scan(h5file)


def _open_h5(source: Any) -> h5py.File:
    import h5py

    try:
        return h5py.File(source, "r", locking=False)
    except TypeError:  # pragma: no cover - h5py built without locking support
        return h5py.File(source, "r")


def _read_h5_config_attr(
    h5file: h5py.File, name: str, root: H5Node | None = None
) -> tuple[str | None, list[Finding]]:
    """A config attribute of the root group as text. ``root``: the root group's node from the
    walk that checked the file; when it read the attributes, they are not read again."""
    walked = {a.name: a for a in root.attr_info} if root and root.attr_info is not None else None
    attr = walked.get(name) if walked is not None else None
    if walked is None or (attr is not None and attr.storage_bytes is None):
        return _read_h5_config_attr_from_file(h5file, name)  # (an empty attribute: as before)
    if attr is None:
        return None, []
    if _dtype_problem(attr.dtype) or (attr.storage_bytes or 0) > CONFIG_MAX_BYTES:
        return None, []  # reported by scan_hdf5
    assert root is not None
    return _config_text(root.attrs[name], name)


def _read_h5_config_attr_from_file(
    h5file: h5py.File, name: str
) -> tuple[str | None, list[Finding]]:
    if name not in h5file.attrs:
        return None, []
    attr = h5file.attrs.get_id(name)
    if _dtype_problem(attr.dtype) or attr.get_storage_size() > CONFIG_MAX_BYTES:
        return None, []  # reported by scan_hdf5
    return _config_text(h5file.attrs[name], name)


def _config_text(value: Any, name: str) -> tuple[str | None, list[Finding]]:
    if hasattr(value, "tolist") and not isinstance(value, (bytes, str)):
        value = value.tolist()
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None, [Finding("unreadable-config", f"HDF5 '/@{name}'", "not a JSON string")]
    return value, []


def _scan_h5_artifact(source: Any, label: str, allowed: Allowed) -> list[Finding]:
    try:
        h5file = _open_h5(source)
    except (OSError, ValueError, RuntimeError) as error:
        return [Finding("unreadable", f"{label}HDF5", f"HDF5 library cannot open it: {error}")]
    with h5file:
        return _scan_h5_file(h5file, label, allowed)


def _scan_h5_file(
    h5file: h5py.File, label: str, allowed: Allowed, nodes: list[H5Node] | None = None
) -> list[Finding]:
    findings = _H5Scanner(label).scan(h5file, nodes)
    root = nodes[0] if nodes and nodes[0].path == "" and nodes[0].kind == "group" else None
    for attr in ("model_config", "training_config"):
        try:
            text, problems = _read_h5_config_attr(h5file, attr, root)
        except _H5_ERRORS as error:
            where = f"{label}HDF5 '/@{attr}'"
            findings.append(Finding("unreadable-config", where, f"cannot be read: {error}"))
            continue
        findings += problems
        if text is None:
            continue
        config, problems = _parse_config(text, f"{label}HDF5 '/@{attr}'")
        findings += problems
        if config is not None:
            findings += _prefixed(
                scan_config(
                    config, allowed_modules=allowed.modules, allowed_classes=allowed.classes
                ),
                f"{label}{attr}:",
            )
    return findings
