"""Keras-level names for saved variables, the same whatever format wrote them.

The formats name a variable differently::

    .keras, .weights.h5   layers/dense/vars/0                  (class-derived group, index)
    Keras 3 legacy .h5    model_weights/hidden/hidden/kernel   (layer name, variable path)
    Keras 2 / tf.keras    model_weights/hidden/hidden/kernel:0
    Keras 1               model_weights/dense_1/dense_1_W

Every one of them is named here ``<layer name>/<variable name>``, e.g. ``hidden/kernel``:

1. The **layer name** is the name the model's config gives the layer. In a ``.keras`` archive,
   the group ``layers/<snake_case(class)>[_<k>]`` is the k-th layer of that class in the
   config's layer list (how Keras's saving_lib names them); without a config (``.weights.h5``)
   the name recorded in the group's ``vars`` attribute ``name`` is used, else the group's key.
   In legacy HDF5 it is the group listed in ``layer_names``.
2. The **variable name** comes from a table of built-in Keras layers (Dense: ``kernel``,
   ``bias``; BatchNormalization: ``gamma``, ``beta``, ``moving_mean``, ``moving_variance``;
   LSTM/GRU/SimpleRNN: ``kernel``, ``recurrent_kernel``, ``bias``; Bidirectional:
   ``forward/...`` and ``backward/...``; nested models: ``<inner layer>/<variable>``; ...),
   applied to the layer's class and config when the variables found match the table exactly:
   by position in legacy HDF5 (whose order is trainable then non-trainable variables) and by
   group path in ``.keras`` (``cell/vars/1`` is an LSTM's ``recurrent_kernel``). This makes the
   names identical across formats for built-in layers.
3. Without a config (weights-only files) the class is guessed: in ``.weights.h5`` from the group
   key (``dense_3`` -> Dense; nested models recursively, each sublayer named by its recorded
   ``vars`` name), and the table is used when exactly one of its variants fits; legacy HDF5
   keeps the names it recorded, shortened: ``:0`` and the path up to the layer's name removed,
   then ``kernel`` when all variables sit in one (sub)layer, ``forward/kernel`` for a
   Bidirectional, ``<sublayer>/kernel`` for a nested model. These give the same names as 2.
4. Otherwise (custom layers, a Keras 1 LSTM's twelve arrays, tables that do not fit), legacy HDF5
   keeps its shortened recorded names and ``.keras`` / ``.weights.h5`` use the group path
   without ``vars`` (``<layer>/0``, ``<layer>/cell/1``): such names may differ across formats.
   A name Keras generated for a variable created without one (``variable_17``: numbered
   process-wide, different each time the model is built or reloaded) becomes ``variable#<k>``,
   the k-th unnamed variable of its (sub)layer, so that re-saving a model keeps its names.
5. In ``.keras`` / ``.weights.h5`` every object Keras saved is read, wherever saving_lib put
   it: ``layers/<key>``, a subclassed model's attributes (``d1/vars/0`` for ``self.d1``),
   lists and dicts of layers (``blocks/dense_1/vars/0``), nested models and the sub-layers of
   custom layers (``<layer>/<sub path>/<i>``); a layer is named by the name its ``vars`` group
   records. :mod:`pytest_kerasmodel.artifacts.accounting` tells what the other datasets are.

The optimizer's variables are named ``optimizer/<i>`` in the optimizer's own order, which is the
same in ``.keras``, ``.weights.h5`` and Keras 3 legacy HDF5.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from pytest_kerasmodel.artifacts.base import FORMAT_H5, FORMAT_H5_WEIGHTS

if TYPE_CHECKING:  # pragma: no cover
    from pytest_kerasmodel.artifacts.base import Artifact

MODEL_CLASSES = {"Sequential", "Functional", "Model"}
KERAS_CONTAINERS = ("layers", "_layer_checkpoint_dependencies")
#: top-level groups of a Keras 3 weights file that hold no model variable: the optimizer, and
#: the trainer attributes under which Keras saves metric state (tf.keras: ``metrics``)
OPTIMIZER_ROOT = "optimizer"
METRIC_ROOTS = ("metrics", "compile_metrics", "_compile_metrics", "loss_tracker", "_loss_tracker")
NOT_MODEL_ROOTS = (OPTIMIZER_ROOT, *METRIC_ROOTS)


def keras_unit(path: str, groups: Mapping[str, Any]) -> str | None:
    """The outermost saveable holding a Keras 3 weights file's dataset, or None when the
    dataset is not a variable (Keras's saving_lib writes each object's variables as
    ``<object path>/vars/<index>``, and a ``vars`` group for every object it saves, also one
    without variables; lists, dicts and ``layers`` are plain groups).

    ``groups``: the file's groups by path. The model's own variables (``vars/<i>``) are the
    unit ``"vars"``.
    """
    parts = path.split("/")
    if len(parts) < 2 or parts[-2] != "vars" or not parts[-1].isdigit():
        return None
    owner = parts[:-2]
    if not owner:
        return "vars"
    for end in range(1, len(owner) + 1):
        prefix = "/".join(owner[:end])
        if f"{prefix}/vars" in groups:
            return prefix
    return None  # pragma: no cover - its own vars group is there (the dataset's parent)


def to_snake_case(name: str) -> str:
    """Keras's ``naming.to_snake_case``: how saving_lib names a layer's group from its class."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


@dataclass(frozen=True)
class LayerConfig:
    name: str
    class_name: str
    config: dict[str, Any]


def _layer_from(entry: Any) -> LayerConfig | None:
    if not isinstance(entry, dict):
        return None
    cfg = entry.get("config")
    cfg = cfg if isinstance(cfg, dict) else {}
    name = entry.get("name") or cfg.get("name")
    class_name = entry.get("class_name")
    if not isinstance(name, str) or not isinstance(class_name, str):
        return None
    return LayerConfig(name=name, class_name=class_name, config=cfg)


def model_layers(model_config: Any) -> list[LayerConfig]:
    """The layers of a model config, in order, for every Keras era.

    Keras 1 and early Keras 2 store a Sequential's config as a plain list of layers; later
    versions as ``{"name": ..., "layers": [...]}``.
    """
    if not isinstance(model_config, dict):
        return []
    inner = model_config.get("config")
    entries = inner if isinstance(inner, list) else (inner or {}).get("layers")
    if not isinstance(entries, list):
        return []
    return [layer for layer in map(_layer_from, entries) if layer is not None]


# --------------------------------------------------------------------------------------------
# the table of built-in layers


@dataclass(frozen=True)
class VarSpec:
    name: str  # within the layer: "kernel", "forward/kernel", "dense/bias"
    keras_path: str  # within the layer's .keras group: "vars/0", "cell/vars/1"
    trainable: bool


def _own(names: Iterable[tuple[str, bool]]) -> list[VarSpec]:
    return [VarSpec(n, f"vars/{i}", t) for i, (n, t) in enumerate(names)]


def _nested(prefix_name: str, prefix_path: str, specs: list[VarSpec]) -> list[VarSpec]:
    return [
        VarSpec(
            f"{prefix_name}/{s.name}" if prefix_name else s.name,
            f"{prefix_path}/{s.keras_path}",
            s.trainable,
        )
        for s in specs
    ]


_KERNEL_BIAS = {
    "Dense", "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose",
    "Conv3DTranspose", "Convolution1D", "Convolution2D", "Convolution3D",
    "Convolution2DTranspose", "Deconvolution2D",
}  # fmt: skip
_RNN = {"SimpleRNN", "LSTM", "GRU", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"}


def variable_specs(class_name: str, config: dict[str, Any] | None) -> list[VarSpec] | None:
    """The variables a built-in layer saves, in its natural order, or None when unknown.

    ``config`` None (a weights-only file) means the layer's defaults.
    """
    cfg = config or {}
    bias = bool(cfg.get("use_bias", True))
    specs: list[VarSpec] | None
    if class_name in _KERNEL_BIAS:
        specs = _own([("kernel", True)] + ([("bias", True)] if bias else []))
    elif class_name == "EinsumDense":
        has_bias = config is None or bool(cfg.get("bias_axes"))
        specs = _own([("kernel", True)] + ([("bias", True)] if has_bias else []))
    elif class_name in ("DepthwiseConv1D", "DepthwiseConv2D"):
        specs = _own([("depthwise_kernel", True)] + ([("bias", True)] if bias else []))
    elif class_name in ("SeparableConv1D", "SeparableConv2D", "SeparableConvolution2D"):
        specs = _own(
            [("depthwise_kernel", True), ("pointwise_kernel", True)]
            + ([("bias", True)] if bias else [])
        )
    elif class_name == "Embedding":
        specs = _own([("embeddings", True)])
    elif class_name == "PReLU":
        specs = _own([("alpha", True)])
    elif class_name in ("BatchNormalization", "LayerNormalization"):
        names = [("gamma", True)] if cfg.get("scale", True) else []
        names += [("beta", True)] if cfg.get("center", True) else []
        if class_name == "BatchNormalization":
            names += [("moving_mean", False), ("moving_variance", False)]
        specs = _own(names)
    elif class_name in _RNN:
        cell = [("kernel", True), ("recurrent_kernel", True)] + ([("bias", True)] if bias else [])
        specs = _nested("", "cell", _own(cell))
    elif class_name == "Bidirectional":
        inner = _layer_from(cfg.get("layer"))
        backward = _layer_from(cfg.get("backward_layer")) or inner
        if inner is None or backward is None:
            return None
        fwd = variable_specs(inner.class_name, inner.config)
        bwd = variable_specs(backward.class_name, backward.config)
        if fwd is None or bwd is None:
            return None
        specs = _nested("forward", "forward_layer", fwd) + _nested(
            "backward", "backward_layer", bwd
        )
    elif class_name == "TimeDistributed":
        inner = _layer_from(cfg.get("layer"))
        sub = variable_specs(inner.class_name, inner.config) if inner else None
        if sub is None:
            return None
        specs = _nested("", "layer", sub)
    elif class_name in MODEL_CLASSES or "layers" in cfg:
        specs = []
        used: dict[str, int] = {}
        for layer in model_layers({"config": cfg}):
            sub = variable_specs(layer.class_name, layer.config)
            if sub is None:
                return None
            key = _unique(to_snake_case(layer.class_name), used)
            specs += _nested(layer.name, f"layers/{key}", sub)
    elif class_name in _NO_VARIABLES:
        specs = []
    else:
        return None
    if cfg.get("trainable") is False:
        specs = [VarSpec(s.name, s.keras_path, False) for s in specs]
    return specs


_NO_VARIABLES = {
    "InputLayer", "Activation", "Dropout", "Flatten", "Reshape", "Permute", "RepeatVector",
    "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
    "AveragePooling3D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
    "GlobalAveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
    "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D",
    "UpSampling1D", "UpSampling2D", "UpSampling3D", "ReLU", "LeakyReLU", "ELU", "Softmax",
    "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
    "GaussianDropout", "AlphaDropout", "Masking", "Identity", "Rescaling", "Resizing",
    "CenterCrop", "Lambda", "TFOpLambda", "SlicingOpLambda", "UnitNormalization",
}  # fmt: skip

# snake_case(class) -> class, to guess a layer's class from a .weights.h5 group key
_CLASS_BY_SNAKE = {
    to_snake_case(c): c
    for c in (
        _KERNEL_BIAS
        | _RNN
        | {"EinsumDense", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D"}
        | {"SeparableConv2D", "Embedding", "PReLU", "BatchNormalization", "LayerNormalization"}
    )
}


_GUESS_CONFIGS: tuple[dict[str, Any], ...] = (
    {},
    {"use_bias": False},
    {"scale": False},
    {"center": False},
    {"center": False, "scale": False},
)
_WRAPPERS = {"bidirectional": "Bidirectional", "time_distributed": "TimeDistributed"}


def guess_specs(key: str, found: set[str]) -> list[VarSpec] | None:
    """Names for a layer known only by its ``.weights.h5`` group key (no config).

    The class is guessed from the key (``dense_3`` -> Dense, as saving_lib derived it) and the
    variables found must fit exactly one naming of that class, else None.
    """
    base = re.sub(r"_\d+$", "", key)
    candidates: list[list[VarSpec]] = []
    if base in _WRAPPERS:
        for inner in ("LSTM", "Dense"):
            for cfg in _GUESS_CONFIGS[:2]:
                layer = {"class_name": inner, "name": "inner", "config": cfg}
                specs = variable_specs(_WRAPPERS[base], {"layer": layer})
                if specs is not None:
                    candidates.append(specs)
    elif base in _CLASS_BY_SNAKE:
        for cfg in _GUESS_CONFIGS:
            specs = variable_specs(_CLASS_BY_SNAKE[base], cfg)
            if specs is not None:
                candidates.append(specs)
    fitting = {
        tuple((s.name, s.keras_path) for s in specs): specs
        for specs in candidates
        if {s.keras_path for s in specs} == found
    }
    if len(fitting) != 1:
        return None
    return next(iter(fitting.values()))


def legacy_order(specs: list[VarSpec]) -> list[VarSpec]:
    """The order legacy HDF5 saves a layer's variables in: trainable first, then the others."""
    return [s for s in specs if s.trainable] + [s for s in specs if not s.trainable]


def _unique(name: str, used: dict[str, int]) -> str:
    """saving_lib's ``_get_unique_name``: dense, dense_1, dense_2, ..."""
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


# --------------------------------------------------------------------------------------------
# naming the variables of an opened artifact


@dataclass(frozen=True)
class NamedWeight:
    layer: str
    variable: str
    h5_path: str  # absolute within the HDF5 file, without the leading slash

    @property
    def name(self) -> str:
        return f"{self.layer}/{self.variable}"


def _strip_vars(rel: str) -> str:
    return "/".join(part for part in rel.split("/") if part != "vars")


def _index_key(rel: str) -> tuple[Any, ...]:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in rel.split("/"))


def _keras_layout_weights(artifact: Artifact) -> list[NamedWeight]:
    datasets = [n.path for n in artifact.nodes if n.kind == "dataset"]
    groups = {n.path: n for n in artifact.nodes if n.kind == "group"}
    layers = model_layers(artifact.config)
    by_key: dict[str, LayerConfig] = {}
    used: dict[str, int] = {}
    for config_layer in layers:
        by_key[_unique(to_snake_case(config_layer.class_name), used)] = config_layer
    order = {config_layer.name: i for i, config_layer in enumerate(layers)}

    # units: the outermost saveable (a group with a ``vars`` group of its own) holding each
    # ``<path>/vars/<i>`` dataset: layers/<key>, a list or dict's <attr>/<key>, an attribute's
    # <attr>; the model's own variables are the unit "vars"
    units: dict[str, list[str]] = {}
    for path in datasets:
        unit = keras_unit(path, groups)
        if unit is not None and unit.split("/")[0] not in NOT_MODEL_ROOTS:
            units.setdefault(unit, []).append(path)
    named: list[tuple[tuple[Any, ...], list[NamedWeight]]] = []
    for unit, paths in units.items():
        key = unit.split("/")[-1]
        in_layers = unit.count("/") == 1 and unit.split("/")[0] in KERAS_CONTAINERS
        layer: LayerConfig | None = by_key.get(key) if in_layers else None
        vars_group = groups.get(f"{unit}/vars")
        recorded = vars_group.attrs.get("name") if vars_group is not None else None
        if layer is not None:
            layer_name = layer.name
        elif unit == "vars":
            layer_name = str(recorded or (artifact.config or {}).get("name") or "model")
        else:
            layer_name = str(recorded) if isinstance(recorded, str) and recorded else key
        rels = {p[len(unit) + 1 :]: p for p in paths} if unit != "vars" else {p: p for p in paths}
        if layer is not None:
            specs = variable_specs(layer.class_name, layer.config)
            if specs is not None and {s.keras_path for s in specs} == set(rels):
                named_rels = [(s.name, rels[s.keras_path]) for s in specs]
            else:
                named_rels = _fallback_names(rels)
        else:
            named_rels = _guess_names(unit, key, rels, groups)
        weights = [NamedWeight(layer_name, v, p) for v, p in named_rels]
        rank = order.get(layer_name, len(order))
        named.append(((rank, _index_key(unit)), weights))
    return [w for _, ws in sorted(named, key=lambda item: item[0]) for w in ws]


def _fallback_names(rels: dict[str, str]) -> list[tuple[str, str]]:
    """Variables named by their group path without ``vars``: ``0``, ``cell/1``."""
    ordered = sorted(rels.items(), key=lambda kv: _index_key(kv[0]))
    return [(_strip_vars(rel) or rel, path) for rel, path in ordered]


def _guess_names(
    unit: str, key: str, rels: dict[str, str], groups: dict[str, Any]
) -> list[tuple[str, str]]:
    """Names for a layer without config: guessed from its group key, recursing into nested
    models (``layers/<key>`` subgroups, each named by its recorded ``vars`` name)."""
    specs = guess_specs(key, set(rels))
    if specs is not None:
        return [(s.name, rels[s.keras_path]) for s in specs]
    subunits: dict[str, dict[str, str]] = {}
    own: dict[str, str] = {}
    for rel, path in rels.items():
        parts = rel.split("/")
        if parts[0] in KERAS_CONTAINERS and len(parts) > 2:
            subunits.setdefault(parts[1], {})["/".join(parts[2:])] = path
        else:
            own[rel] = path
    if not subunits:
        return _fallback_names(rels)
    named = _fallback_names(own)
    for subkey, subrels in sorted(subunits.items(), key=lambda kv: _index_key(kv[0])):
        container = next(iter(subrels.values())).split("/" + subkey + "/")[0]
        vars_group = groups.get(f"{container}/{subkey}/vars")
        recorded = vars_group.attrs.get("name") if vars_group is not None else None
        sub_name = str(recorded) if isinstance(recorded, str) and recorded else subkey
        sub_unit = f"{container}/{subkey}"
        named += [
            (f"{sub_name}/{v}", p) for v, p in _guess_names(sub_unit, subkey, subrels, groups)
        ]
    return named


def attr_list(source: Any, name: str) -> list[str]:
    """A list attribute that legacy HDF5 may split into ``name0``, ``name1``, ... chunks.

    ``source``: an HDF5 object, or its attributes (``group.attrs``, a dict from
    :meth:`Artifact.attrs_of`).
    """
    attrs: Mapping[str, Any] = getattr(source, "attrs", source)
    values: list[Any] = []
    if name in attrs:
        values = list(attrs[name])
    else:
        k = 0
        while f"{name}{k}" in attrs:
            values.extend(attrs[f"{name}{k}"])
            k += 1
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values]


def _short_names(layer: str, stored: list[str]) -> list[str]:
    shortened = []
    for name in stored:
        name = re.sub(r":\d+$", "", name)
        parts = name.split("/")
        if layer in parts:
            parts = parts[parts.index(layer) + 1 :] or parts
        elif len(parts) == 1 and name.startswith(layer + "_"):  # Keras 1: dense_1_W
            parts = [name[len(layer) + 1 :]]
        shortened.append("/".join(parts))
    lasts = [s.split("/")[-1] for s in shortened]
    parents = {s.rsplit("/", 1)[0] if "/" in s else "" for s in shortened}
    if len(parents) == 1 and len(set(lasts)) == len(lasts):  # one (sub)layer: lstm_cell/kernel
        return lasts
    # a Bidirectional wrapper: forward_lstm/lstm_cell/kernel -> forward/kernel
    directions = [s.split("/")[0].split("_")[0] for s in shortened]
    if set(directions) <= {"forward", "backward"}:
        paired = [f"{d}/{last}" for d, last in zip(directions, lasts, strict=True)]
        if len(set(paired)) == len(paired):
            return paired
    # several sublayers (a nested model): keep <sublayer>/<variable>
    tails = ["/".join(s.split("/")[-2:]) if "/" in s else s for s in shortened]
    if len(set(tails)) == len(tails):
        return tails
    if len(set(shortened)) == len(shortened):
        return shortened
    return [f"{i}" for i in range(len(stored))]


#: the names Keras gives a variable created without one: ``variable``, ``variable_17`` (Keras
#: 3, numbered process-wide, so they change when the model is built again or reloaded) and
#: tf.keras's ``Variable``, ``Variable_3``
UNNAMED_VARIABLE = re.compile(r"^(variable|Variable)(_\d+)?$")


def renumber_unnamed(variables: list[str]) -> list[str]:
    """A layer's variable names with each name Keras numbered (``variable_17``) replaced by
    ``variable#<k>``: the k-th unnamed variable of the same (sub)layer, in the layer's saving
    order. Re-saving the same model renumbers Keras's names, never these; named variables keep
    their names."""
    seen: dict[str, int] = {}
    renamed = []
    for name in variables:
        owner, _, last = name.rpartition("/")
        if UNNAMED_VARIABLE.match(last):
            k = seen.get(owner, 0)
            seen[owner] = k + 1
            last = f"variable#{k}"
        renamed.append(f"{owner}/{last}" if owner else last)
    if len(set(renamed)) != len(renamed):  # a real name took that form: keep the file's
        return variables
    return renamed


def _join(group_path: str, name: str) -> str:
    return f"{group_path}/{name}" if group_path else name


def _legacy_layout_weights(artifact: Artifact) -> list[NamedWeight]:
    """Named from the ``layer_names``/``weight_names`` attributes. The groups and links come
    from the checked tree where it recorded them (no second read); whatever it did not record
    under the same path (e.g. reached through a soft link) is asked of the file."""
    root = artifact.weights_root
    assert root is not None
    root_path = root.name.lstrip("/")
    configs = {layer.name: layer for layer in model_layers(artifact.config)}
    names = attr_list(artifact.attrs_of(root), "layer_names")
    top = "top_level_model_weights"
    if artifact.node(_join(root_path, top)) is not None or top in root:
        names.append(top)
    result: list[NamedWeight] = []
    for layer_name in names:
        group: Any = None
        attrs: Mapping[str, Any]
        plain = layer_name not in ("", ".") and "/" not in layer_name
        node = artifact.node(_join(root_path, layer_name)) if plain else None
        if node is not None and node.kind == "group":
            base, attrs = node.path, node.attrs
        else:
            group = root.get(layer_name)
            if group is None or not hasattr(group, "attrs"):
                continue
            base, attrs = group.name.lstrip("/"), artifact.attrs_of(group)
        present = []
        for stored in attr_list(attrs, "weight_names"):
            if not stored or artifact.node(_join(base, stored)) is None:
                group = group if group is not None else root[layer_name]
                if stored not in group:
                    continue
            present.append(stored)
        if not present:
            continue
        layer = configs.get(layer_name)
        specs = variable_specs(layer.class_name, layer.config) if layer else None
        if specs is not None and len(specs) == len(present):
            variables = [s.name for s in legacy_order(specs)]
        else:
            variables = _short_names(layer_name, present)
        pairs = zip(renumber_unnamed(variables), present, strict=True)
        result.extend(NamedWeight(layer_name, v, f"{base}/{w}") for v, w in pairs)
    return result


def model_weights(artifact: Artifact) -> list[NamedWeight]:
    """Every saved model variable of an opened artifact, under its Keras-level name."""
    if artifact.weights_root is None:
        return []
    if artifact.format in (FORMAT_H5, FORMAT_H5_WEIGHTS):
        return _legacy_layout_weights(artifact)
    return _keras_layout_weights(artifact)


def model_weight_paths(artifact: Artifact) -> list[tuple[str, str]]:
    return [(w.name, w.h5_path) for w in model_weights(artifact)]


def optimizer_weight_paths(artifact: Artifact) -> list[tuple[str, str]]:
    """The optimizer's saved variables as (``optimizer/<i>``, HDF5 path), in saving order."""
    if artifact.h5 is None:
        return []
    if artifact.format in (FORMAT_H5, FORMAT_H5_WEIGHTS):
        group = artifact.h5.get("optimizer_weights")
        if group is None or not hasattr(group, "attrs"):
            return []
        stored = [w for w in attr_list(artifact.attrs_of(group), "weight_names") if w in group]
        if not stored:
            stored = sorted(
                (n.path[len("optimizer_weights/") :] for n in artifact.nodes
                 if n.kind == "dataset" and n.path.startswith("optimizer_weights/")),
                key=_index_key,
            )  # fmt: skip
        return [(f"optimizer/{i}", f"optimizer_weights/{w}") for i, w in enumerate(stored)]
    paths = sorted(
        (n.path for n in artifact.nodes if n.kind == "dataset" and n.path.startswith("optimizer/")),
        key=_index_key,
    )
    return [(f"optimizer/{_strip_vars(p[len('optimizer/') :])}", p) for p in paths]


class WeightEntry(NamedTuple):
    """One saved variable: its Keras-level name, its HDF5 path, and the (unread) dataset."""

    name: str
    h5_path: str
    dataset: Any  # h5py.Dataset


def iter_weights(artifact: Artifact) -> Iterator[WeightEntry]:
    """The model's variables, in the file's order, named ``layer/variable`` alike in every
    format and layout.

    Nothing is read: each entry carries the h5py dataset, already checked when the artifact was
    opened, so a caller can stream values one dataset at a time.
    """
    for weight in model_weights(artifact):
        yield WeightEntry(weight.name, weight.h5_path, artifact.dataset(weight.h5_path))


def iter_optimizer_weights(artifact: Artifact) -> Iterator[WeightEntry]:
    """The optimizer's saved variables, named ``optimizer/<i>`` in the optimizer's own order."""
    for name, h5_path in optimizer_weight_paths(artifact):
        yield WeightEntry(name, h5_path, artifact.dataset(h5_path))
