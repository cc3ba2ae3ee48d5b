"""An artifact explained as plain data: :func:`describe_artifact` and its text rendering.

The description is computed with h5py, zipfile and json only (never Keras or TensorFlow), reads
metadata and never weight values (unless ``scan_values=True``), and is deterministic and
JSON-serialisable: the same file always gives the same dict, so it can be stored as a golden.

Schema (``DESCRIPTION_VERSION`` 1)::

    {
      "description_version": 1,
      "file": "model.keras",             # the file's name (not its folder: goldens travel)
      "file_size": 51690,                # bytes (a SavedModel: the sum of its files)
      "format": "keras",                 # keras | keras-dir | kerashub-preset | h5 | h5-weights
                                         # | weights.h5 | weights.json | savedmodel | orbax
      "format_title": "...",             # the format in words
      "extension": ".keras",
      "keras_version": "3.15.1",         # as the file records it, else null
      "backend": "tensorflow",           # legacy HDF5 only, else null
      "metadata": {...},                 # metadata.json of a .keras (e.g. date_saved)
      "model": {"class_name": "Functional", "name": "tiny"} | null,
      "layers": [{"name", "class_name", "params", "weights": ["hidden/kernel", ...]}],
      "params": 220,                     # values in the saved model variables
      "weights": {"hidden/kernel": {"shape": [6, 4], "dtype": "float32"}, ...},
      "weight_paths": {"hidden/kernel": "layers/dense/vars/0", ...},
      "optimizer": {"class_name": "Adam", "variables": {"optimizer/0": {...}}} | null,
      "metric_variables": {"metrics/mean/0": {"shape": [], "dtype": "float32"}},  # tf.keras
      "unread": [{"path": "/extra/x", "kind": "dataset", "reason": "...", "shape": [2],
                  "dtype": "float32"} | {"path": "/vars@note", "kind": "attribute", ...}],
                                         # every dataset and attribute no reader interpreted
      "lambda_layers": ["lambda_3"],     # Lambda layers anywhere in the config
      "hdf5": {"<path>": {"kind": "group", "attrs": {...}}
               | {"kind": "dataset", "shape": [...], "dtype": "float32", "attrs": {...}}
               | {"kind": "softlink", "target": "/x"}},   # "" is the root group
      "zip": [{"name", "size", "compressed_size", "method"}] | null,
      "savedmodel_files": [["saved_model.pb", 1234], ...] | null,
      "parts": [{"name": "config.json", "role": "config", "size": 2769, "link": null}, ...],
      "link": "../../blobs/3f2a..." | null,   # where the path leads, when it is a symlink
      "weights_unread": "why" | null,    # the weights are there but not readable without
                                         # unpickling (model.weights.npz): nothing is vouched
      "components": {"task": {"class_name": ..., "registered_name": ...,
                              "weights": {"dense/kernel": {...}}}, "tokenizer": {...}},
      "notes": ["anything unusual, in words"],
      "values": {"hidden/kernel": {"nan": 0, "inf": 0}, "optimizer/3": {...},
                 "/extra/x": {...}} | null   # only with scan_values=True: every numeric
                                         # dataset, by name where interpreted, else by path
      "tree": [{"path", "name", "depth", "kind", "shape", "dtype", "value", "meaning",
                "weight"}]           # the hdf5 tree explained (structure.tree.explain_tree)
    }

For a ``.keras`` archive or a model folder, ``hdf5`` is the tree of its ``model.weights.h5``;
for sharded weights, the union of the shards' trees; ``parts`` lists every file the artifact is
made of (a folder's files, a manifest and its shards). A KerasHub preset describes its backbone
as the model; its task, preprocessor and tokenizer are ``components``.
``weights`` is the same dict for one model saved in any format (see
:mod:`pytest_kerasmodel.artifacts.names` for the naming rule).
"""

from __future__ import annotations

import hashlib
import math
import os
from typing import Any

from pytest_kerasmodel.artifacts import FORMAT_TITLES, Artifact, extension_of, open_artifact
from pytest_kerasmodel.artifacts.base import H5_ERRORS
from pytest_kerasmodel.artifacts.hdf5 import H5Node
from pytest_kerasmodel.errors import ArtifactError

DESCRIPTION_VERSION = 1
_SHORT_TEXT = 120
_SHORT_LIST = 16
_SCAN_BLOCK_BYTES = 64 * 1024**2


def describe_artifact(
    path: str | os.PathLike[str] | Artifact, *, scan_values: bool = False, tree: bool = True
) -> dict[str, Any]:
    """Describe a Keras artifact without loading it: format, writer, layers, weights, tree.

    ``path`` may also be an :class:`~pytest_kerasmodel.artifacts.Artifact` already opened by
    :func:`~pytest_kerasmodel.artifacts.open_artifact` (the gate shares one open between its
    checks). ``scan_values=True`` also reads every weight, block by block, to count NaN and
    infinite values (the only part whose cost grows with the weights). ``tree=False`` leaves out
    the explained HDF5 tree (``"tree": None``): the gate's integrity check, which never shows it,
    does not build it.
    Raises :class:`~pytest_kerasmodel.errors.ArtifactError` when the file cannot be read safely.
    """
    if not isinstance(path, (str, os.PathLike)):  # an Artifact (of any copy of formats)
        return _describe_opened(path, scan_values=scan_values, tree=tree)
    with open_artifact(path) as artifact:
        return _describe_opened(artifact, scan_values=scan_values, tree=tree)


def _describe_opened(artifact: Artifact, *, scan_values: bool, tree: bool) -> dict[str, Any]:
    try:
        return _describe(artifact, scan_values=scan_values, tree=tree)
    except H5_ERRORS as exc:  # a damaged file that passed the structural walk
        raise ArtifactError(
            artifact.path, "describe", f"cannot read the file: {type(exc).__name__}: {exc}"
        ) from None


def _describe(artifact: Artifact, *, scan_values: bool, tree: bool) -> dict[str, Any]:
    from pytest_kerasmodel.artifacts import names as weightnames
    from pytest_kerasmodel.artifacts.accounting import account

    accounted = account(artifact)
    named = accounted.weights
    datasets = {n.path: n for n in artifact.nodes if n.kind == "dataset"}
    weights: dict[str, dict[str, Any]] = {}
    weight_paths: dict[str, str] = {}
    for w in named:
        node = datasets.get(w.h5_path)
        if node is None:
            continue
        weights[w.name] = {"shape": list(node.shape or ()), "dtype": node.dtype}
        weight_paths[w.name] = w.h5_path

    notes = list(artifact.notes)
    config_layers = weightnames.model_layers(artifact.config)
    layers = _layers(config_layers, named, weights, _recorded_layer_names(artifact))
    lambdas = sorted(set(_lambda_layers(artifact.config)))
    for name in lambdas:
        notes.append(
            f"Lambda layer {name!r}: its function is stored as Python bytecode or source; "
            "loading it runs that code (Keras refuses it unless safe_mode=False)"
        )
    for node in artifact.nodes:
        if node.kind == "dataset" and node.dtype == "object":
            notes.append(f"dataset /{node.path} holds Python objects (variable-length data)")
    if artifact.format in ("h5", "keras") and artifact.config is None:
        notes.append("no model config in the file")

    description: dict[str, Any] = {
        "description_version": DESCRIPTION_VERSION,
        "file": artifact.path.name,
        "file_size": artifact.file_size,
        "format": artifact.format,
        "format_title": FORMAT_TITLES[artifact.format],
        "extension": extension_of(artifact.path),
        "keras_version": artifact.keras_version,
        "backend": artifact.backend,
        "metadata": _plain(artifact.metadata),
        "model": _model(artifact.config),
        "layers": layers,
        "params": sum(_size(w["shape"]) for w in weights.values()),
        "weights": weights,
        "weight_paths": weight_paths,
        "optimizer": _optimizer(artifact, datasets, accounted.optimizer),
        "metric_variables": {
            name: {"shape": list(datasets[p].shape or ()), "dtype": datasets[p].dtype}
            for name, p in accounted.metrics
        },
        "unread": [u.as_dict() for u in accounted.unread],
        "lambda_layers": lambdas,
        "hdf5": {node.path: _node(node) for node in artifact.nodes} if artifact.nodes else None,
        "zip": (
            [
                {
                    "name": m.name,
                    "size": m.size,
                    "compressed_size": m.compressed_size,
                    "method": m.method,
                }
                for m in artifact.zip_members
            ]
            if artifact.format == "keras"
            else None
        ),
        "savedmodel_files": (
            [list(f) for f in artifact.savedmodel_files]
            if artifact.format == "savedmodel"
            else None
        ),
        "parts": [p._asdict() for p in artifact.parts],
        # an exported graph's serving signature, operations and unsafe ones (else None)
        "signature": artifact.graph.as_dict() if artifact.graph is not None else None,
        "link": artifact.link,
        "weights_unread": artifact.weights_unread,
        "components": _components(artifact),
        "notes": notes,
        "values": None,
    }
    if scan_values:
        description["values"] = values = _scan_values(artifact, weight_paths, accounted)
        for name, count in values.items():
            if count["nan"] or count["inf"]:
                what = "weight" if name in weights else "variable"
                notes.append(
                    f"{what} {name} holds {count['nan']} NaN and {count['inf']} infinite value(s)"
                )
    description["tree"] = None
    if tree:
        from pytest_kerasmodel.structure.tree import explain_tree

        description["tree"] = explain_tree(description)  # the hdf5 tree, each node's meaning
    return description


def _scan_values(
    artifact: Artifact, weight_paths: dict[str, str], accounted: Any
) -> dict[str, dict[str, int]]:
    """NaN and Inf counts of every numeric dataset of every HDF5 file of the artifact, whatever
    it is: model weights by name, optimizer and metric variables by name, anything else by its
    HDF5 path (:func:`~pytest_kerasmodel.artifacts.accounting.hdf5_where`)."""
    from pytest_kerasmodel.artifacts.accounting import hdf5_where

    named: dict[tuple[int, str], str] = {}
    for name, h5_path in [
        *weight_paths.items(),
        *accounted.optimizer,
        *accounted.metrics,
    ]:
        node = artifact.node(h5_path)
        if node is not None:
            named[(node.store, h5_path)] = name
    stores = [(i, s.h5, s.nodes) for i, s in enumerate(artifact.stores)] or (
        [(0, artifact.weights_root.file, artifact.nodes)]
        if artifact.weights_root is not None
        else []
    )
    values: dict[str, dict[str, int]] = {}
    for index, h5, nodes in stores:
        numeric = [n for n in nodes if n.kind == "dataset" and _numeric(n)]
        if not numeric:
            continue
        scratch = _scan_buffer(h5, [n.path for n in numeric], {n.path: n for n in numeric})
        for node in numeric:
            key = named.get((index, node.path)) or hdf5_where(artifact, index, node.path)
            nan, inf = count_nonfinite(_open_dataset(h5, node.path), scratch, node)
            values[key] = {"nan": nan, "inf": inf}
    return values


def _numeric(node: H5Node) -> bool:
    dtype = node.numpy_dtype
    return dtype is not None and dtype.kind in "biufc"


def _signature_lines(signature: dict[str, Any]) -> list[str]:
    """An exported graph's serving signature and operations, for ``inspect``."""

    def spec(t: dict[str, Any]) -> str:
        shape = (
            "?"
            if t["shape"] is None
            else "("
            + ", ".join("None" if d is None else str(d) for d in t["shape"])
            + ("," if len(t["shape"]) == 1 else "")
            + ")"
        )
        return f"{t['name']} {shape} {t['dtype']}"

    lines = ["", f"  signature:      {signature['signature']}"]
    lines += [f"    input   {spec(t)}" for t in signature["inputs"]]
    lines += [f"    output  {spec(t)}" for t in signature["outputs"]]
    ops = signature["ops"]
    shown = ", ".join(f"{op} x{n}" for op, n in list(ops.items())[:_SHORT_LIST])
    more = f", ... {len(ops) - _SHORT_LIST} more" if len(ops) > _SHORT_LIST else ""
    lines.append(f"  operations:     {sum(ops.values())} of {len(ops)} kind(s): {shown}{more}")
    for where, reason in signature["unsafe"]:
        lines.append(f"    unsafe: {where}: {reason}")
    return lines


def _components(artifact: Artifact) -> dict[str, Any]:
    """A preset's task, preprocessor and tokenizer; the task's own weights by name."""
    from pytest_kerasmodel.artifacts import names as weightnames
    from pytest_kerasmodel.artifacts.accounting import store_view

    components: dict[str, Any] = {}
    for name, component in artifact.components.items():
        entry = {k: v for k, v in component.items() if k != "weights_store"}
        index = component.get("weights_store")
        if isinstance(index, int):
            store = artifact.stores[index]
            view = store_view(artifact, index)
            datasets = {n.path: n for n in store.nodes if n.kind == "dataset"}
            entry["weights"] = {
                w.name: {
                    "shape": list(datasets[w.h5_path].shape or ()),
                    "dtype": datasets[w.h5_path].dtype,
                }
                for w in weightnames.model_weights(view)
                if w.h5_path in datasets
            }
        components[name] = entry
    return components


def _scan_buffer(root: Any, h5_paths: Any, datasets: dict[str, H5Node]) -> Any:
    """One byte buffer, as large as the largest block :func:`count_nonfinite` will read."""
    import numpy as np

    if root is None:
        return None
    largest = max((datasets[p].declared_bytes or 0 for p in h5_paths), default=0)
    return np.empty(max(1, min(largest, _SCAN_BLOCK_BYTES)), dtype=np.uint8)


def _size(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _model(config: Any) -> dict[str, Any] | None:
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        return None
    inner = config.get("config")
    name = inner.get("name") if isinstance(inner, dict) else None
    return {"class_name": config["class_name"], "name": name if isinstance(name, str) else None}


def _recorded_layer_names(artifact: Artifact) -> list[str]:
    """Layer names a file without config still records, weightless layers included."""
    from pytest_kerasmodel.artifacts import names as weightnames

    if artifact.config is not None or artifact.weights_root is None:
        return []
    if artifact.format == "h5-weights":
        return weightnames.attr_list(artifact.attrs_of(artifact.weights_root), "layer_names")
    names = []
    for node in artifact.nodes:
        parts = node.path.split("/")
        if len(parts) == 3 and parts[0] in weightnames.KERAS_CONTAINERS and parts[2] == "vars":
            recorded = node.attrs.get("name")
            names.append(str(recorded) if isinstance(recorded, str) and recorded else parts[1])
    return names


def _layers(
    config_layers: list[Any], named: list[Any], weights: dict[str, Any], recorded: list[str]
) -> list[Any]:
    by_layer: dict[str, list[str]] = {}
    for w in named:
        if w.name in weights:
            by_layer.setdefault(w.layer, []).append(w.name)
    layers = []
    seen = set()
    for layer in config_layers:
        names = by_layer.get(layer.name, [])
        layers.append(
            {
                "name": layer.name,
                "class_name": layer.class_name,
                "params": sum(_size(weights[n]["shape"]) for n in names),
                "weights": names,
            }
        )
        seen.add(layer.name)
    # weights-only files: layers known by name only
    for layer_name in [*recorded, *by_layer]:
        names = by_layer.get(layer_name, [])
        if layer_name not in seen:
            seen.add(layer_name)
            layers.append(
                {
                    "name": layer_name,
                    "class_name": None,
                    "params": sum(_size(weights[n]["shape"]) for n in names),
                    "weights": names,
                }
            )
    return layers


def _lambda_layers(config: Any, depth: int = 0, names: list[str] | None = None) -> list[str]:
    """Names of Lambda layers anywhere in a config (nested models, wrappers), 200 levels deep."""
    names = [] if names is None else names
    if depth > 200:
        return names
    if isinstance(config, dict):
        if config.get("class_name") == "Lambda":
            inner = config.get("config")
            name = config.get("name") or (inner.get("name") if isinstance(inner, dict) else None)
            names.append(str(name or "?"))
        values: Any = config.values()
    elif isinstance(config, list):
        values = config
    else:
        return names
    for value in values:
        if isinstance(value, (dict, list)):  # nothing else can hold a layer
            _lambda_layers(value, depth + 1, names)
    return names


def _optimizer(
    artifact: Artifact, datasets: dict[str, H5Node], paths: list[tuple[str, str]]
) -> dict[str, Any] | None:
    variables: dict[str, dict[str, Any]] = {}
    for name, h5_path in paths:
        node = datasets.get(h5_path)
        if node is not None:
            variables[name] = {"shape": list(node.shape or ()), "dtype": node.dtype}
    class_name = _optimizer_class(artifact.training_config)
    if class_name is None:  # a weights file: the optimizer's own name, e.g. "adam"
        recorded = next(
            (n.attrs.get("name") for n in artifact.nodes if n.path == "optimizer/vars"), None
        )
        class_name = str(recorded) if isinstance(recorded, str) and recorded else None
    if not variables and class_name is None:
        return None
    return {"class_name": class_name, "variables": variables}


def _optimizer_class(training_config: Any) -> str | None:
    if not isinstance(training_config, dict):
        return None
    opt = training_config.get("optimizer_config") or training_config.get("optimizer")
    if isinstance(opt, dict) and isinstance(opt.get("class_name"), str):
        return str(opt["class_name"])
    if isinstance(opt, str):
        return opt
    return None


def _node(node: H5Node) -> dict[str, Any]:
    if node.kind == "dataset":
        return {
            "kind": "dataset",
            "shape": list(node.shape or ()),
            "dtype": node.dtype,
            "attrs": {k: summarise(v) for k, v in node.attrs.items()},
        }
    if node.kind == "softlink":
        return {"kind": "softlink", "target": node.target}
    if node.kind == "group":
        return {"kind": "group", "attrs": {k: summarise(v) for k, v in node.attrs.items()}}
    return {"kind": node.kind}


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def summarise(value: Any) -> Any:
    """An attribute value as short plain JSON: long texts and arrays become a summary line."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        if len(value) <= _SHORT_TEXT:
            return value
        return f"<text of {len(value)} chars, sha256 {_digest(value.encode())}>"
    if hasattr(value, "tolist"):
        shape = getattr(value, "shape", ())
        plain = _plain(value.tolist())
        if not shape:
            return summarise(plain) if isinstance(plain, str) else plain
        if len(plain) <= _SHORT_LIST and len(repr(plain)) <= 4 * _SHORT_TEXT:
            return plain
        encoded = repr(plain).encode()
        return f"<array of {len(plain)} items, sha256 {_digest(encoded)}>"
    return _plain(value)


def _plain(value: Any) -> Any:
    from pytest_kerasmodel.diff import jsonable

    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return jsonable(value)


def _open_dataset(root: Any, h5_path: str) -> Any:
    """The dataset at ``h5_path`` as a low-level ``DatasetID`` (no high-level object built)."""
    import h5py

    return h5py.h5d.open(root.id, h5_path.encode("utf-8"))


def count_nonfinite(
    dataset: Any, scratch: Any = None, node: H5Node | None = None
) -> tuple[int, int]:
    """NaN and infinite values in a dataset, read block by block (bounded memory).

    ``dataset``: an ``h5py.Dataset`` or its low-level ``DatasetID``. Each block is read into one
    reused buffer (``scratch``: a byte buffer the caller may pass to share between datasets),
    and checked with one sum: the sum of finite values is finite unless it overflows, so only
    a block whose sum is NaN or infinite is counted value by value. ``node``: the dataset as the
    HDF5 walk saw it (its shape and numpy dtype), so that they are not asked of HDF5 again.
    """
    import h5py
    import numpy as np

    dataset_id = dataset if isinstance(dataset, h5py.h5d.DatasetID) else dataset.id
    if node is not None and node.numpy_dtype is not None:
        dtype, walked = node.numpy_dtype, node.shape
    else:
        dtype, walked = dataset_id.dtype, None
    if dtype.kind not in "fc":  # not floats
        return 0, 0
    if walked:
        shape = walked
    else:  # a scalar, or no dataspace at all (which the walk also shows as shape ())
        if dataset_id.shape is None:
            return 0, 0
        shape = tuple(dataset_id.shape)
    size = math.prod(shape)
    if size == 0:
        return 0, 0
    if not shape:
        value = np.empty((), dtype=dtype)
        dataset_id.read(h5py.h5s.ALL, h5py.h5s.ALL, value)
        return int(np.isnan(value).sum()), int(np.isinf(value).sum())
    row = size // shape[0]
    row_bytes = max(1, dtype.itemsize * row)
    step = max(1, _SCAN_BLOCK_BYTES // row_bytes)
    rows = min(step, shape[0])
    if scratch is None or len(scratch) < rows * row_bytes:
        scratch = np.empty(rows * row_bytes, dtype=np.uint8)
    # float16 sums overflow early: accumulate them in float32
    acc = np.float32 if dtype.itemsize < 4 and dtype.kind == "f" else None
    if rows == shape[0]:  # one block: the whole dataset (most weights)
        block = np.frombuffer(scratch, dtype=dtype, count=size).reshape(shape)
        dataset_id.read(h5py.h5s.ALL, h5py.h5s.ALL, block)
        with np.errstate(over="ignore", invalid="ignore"):
            if math.isfinite(np.add.reduce(block, axis=None, dtype=acc)):
                return 0, 0
        return int(np.count_nonzero(np.isnan(block))), int(np.count_nonzero(np.isinf(block)))
    nan = inf = 0
    file_space = dataset_id.get_space()
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, shape[0], step):
            stop = min(start + step, shape[0])
            block = np.frombuffer(scratch, dtype=dtype, count=(stop - start) * row)
            block = block.reshape((stop - start, *shape[1:]))
            file_space.select_hyperslab((start,) + (0,) * (len(shape) - 1), block.shape)
            dataset_id.read(h5py.h5s.create_simple(block.shape), file_space, block)
            if np.isfinite(np.add.reduce(block, axis=None, dtype=acc)):
                continue
            nan += int(np.count_nonzero(np.isnan(block)))
            inf += int(np.count_nonzero(np.isinf(block)))
    return nan, inf


# --------------------------------------------------------------------------------------------
# text


def _shape(shape: list[int]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def render_description(description: dict[str, Any]) -> str:
    """The description as text for a person: what ``python -m pytest_kerasmodel inspect`` prints."""
    d = description
    lines = [f"{d['file']}  ({d['file_size']:,} bytes)"]
    lines.append(f"  format:         {d['format']}: {d['format_title']}")
    writer = f"Keras {d['keras_version']}" if d["keras_version"] else "not recorded in the file"
    if d["backend"]:
        writer += f" (backend {d['backend']})"
    lines.append(f"  written by:     {writer}")
    if d["metadata"].get("date_saved"):
        lines.append(f"  saved on:       {d['metadata']['date_saved']}")
    if d["model"]:
        name = f" {d['model']['name']!r}" if d["model"]["name"] else ""
        lines.append(f"  model:          {d['model']['class_name']}{name}")
    if d["format"] == "savedmodel":
        lines.append("  parameters:     not read (TensorFlow checkpoint under variables/)")
    elif d.get("signature") is not None:
        lines.append("  parameters:     not counted (an exported inference graph)")
    else:
        lines.append(f"  parameters:     {d['params']:,} in {len(d['weights'])} saved variable(s)")
    if d["layers"]:
        lines.append("")
        lines.append("  layers (name, class, parameters, variables):")
        width = max(len(layer["name"]) for layer in d["layers"])
        for layer in d["layers"]:
            cls = layer["class_name"] or "?"
            lines.append(f"    {layer['name']:<{width}}  {cls:<20} {layer['params']:>10,}")
            prefix = layer["name"] + "/"
            for wname in layer["weights"]:
                w = d["weights"][wname]
                short = wname[len(prefix) :] if wname.startswith(prefix) else wname
                lines.append(f"      {short:<28} {_shape(w['shape']):<16} {w['dtype']}")
    if d.get("signature") is not None:
        lines += _signature_lines(d["signature"])
    opt = d["optimizer"]
    lines.append("")
    if opt:
        variables = opt["variables"]
        size = sum(_size(v["shape"]) for v in variables.values())
        lines.append(
            f"  optimizer:      {opt['class_name'] or 'unknown class'}, "
            f"{len(variables)} saved variable(s), {size:,} values"
        )
    else:
        lines.append("  optimizer:      none saved")
    metric_vars = d.get("metric_variables") or {}
    if metric_vars:
        lines.append(f"  metrics:        {len(metric_vars)} saved variable(s) of metric state")
    unread = d.get("unread") or []
    if unread:
        lines.append(f"  unread:         {len(unread)} dataset(s) or attribute(s) not interpreted:")
        for entry in unread[:_SHORT_LIST]:
            shape = f" {_shape(entry['shape'])} {entry['dtype']}" if "shape" in entry else ""
            lines.append(f"    {entry['path']}{shape}: {entry['reason']}")
        if len(unread) > _SHORT_LIST:
            lines.append(f"    ... {len(unread) - _SHORT_LIST} more (see --json)")
    elif d.get("hdf5"):
        lines.append("  unread:         nothing (every dataset and attribute interpreted)")
    if d["zip"]:
        lines.append(
            "  archive:        " + ", ".join(f"{m['name']} ({m['method']})" for m in d["zip"])
        )
    if d["savedmodel_files"]:
        lines.append(f"  files:          {len(d['savedmodel_files'])} in the directory")
    elif len(d.get("parts") or []) > 1:
        parts = d["parts"]
        shown = ", ".join(f"{p['name']} ({p['role']})" for p in parts[:_SHORT_LIST])
        more = f", ... {len(parts) - _SHORT_LIST} more" if len(parts) > _SHORT_LIST else ""
        lines.append(f"  files:          {len(parts)}: {shown}{more}")
    links = [p for p in d.get("parts") or [] if p["link"]]
    if d.get("link"):
        lines.append(f"  link:           the path is a symbolic link to {d['link']}")
    if links:
        lines.append(
            f"  linked files:   {len(links)} (e.g. {links[0]['name']} -> {links[0]['link']})"
        )
    for name, component in (d.get("components") or {}).items():
        weights = component.get("weights")
        count = f", {len(weights)} own weight variable(s)" if weights else ""
        lines.append(f"  {name + ':':<16}{component.get('class_name') or '?'}{count}")
    if d["values"] is not None:
        bad = {k: v for k, v in d["values"].items() if v["nan"] or v["inf"]}
        lines.append(
            f"  values:         {len(d['values'])} numeric dataset(s) scanned, "
            f"{len(bad)} with NaN or infinite values"
        )
    lines.append("")
    if d["notes"]:
        lines.append("  unusual:")
        lines.extend(f"    ! {note}" for note in d["notes"])
    else:
        lines.append("  unusual:        nothing")
    return "\n".join(lines)
