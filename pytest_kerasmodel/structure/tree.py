"""The HDF5 tree of an artifact, each group, dataset and attribute with its Keras meaning.

The question the project began from: a user who opens a Keras file with h5py sees
``model_weights/hidden/hidden/kernel``, ``top_level_model_weights`` or
``optimizer_weights/adam/hidden_kernel_momentum`` and cannot tell what they are. This module
answers it as data: :func:`explain_tree` turns a description (:func:`describe_artifact`, no
file access of its own) into one node per HDF5 object and attribute, in path order, each with
its ``meaning`` and, for a variable, the Keras ``weight`` it holds. ``kerasmodel inspect --tree``
(:func:`render_tree`), ``--json`` (the description's ``tree``) and ``--html``
(:mod:`pytest_kerasmodel.structure.html`) render these nodes and compute nothing.

The layouts explained: the ``model.weights.h5`` of a ``.keras`` archive, an unzipped model
folder or a KerasHub preset, and ``.weights.h5`` (Keras 3's ``saving_lib``:
``layers/<attr>/vars/<i>``, ``optimizer/vars/<i>``); sharded weights (the union of the
shards); the legacy ``.h5`` written by Keras 3, by tf-keras / Keras 2 and by Keras 1
(``model_weights/<layer>/...`` with ``layer_names`` and ``weight_names``,
``optimizer_weights``), and their weights-only files.
What no rule explains is said to be not interpreted, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: ``meaning`` of a dataset, group or attribute no rule explains
NOT_INTERPRETED = "not interpreted by this reader (listed, not read)"

#: Keras bookkeeping attributes, by name
ATTRIBUTES = {
    "keras_version": "the Keras version that wrote the file",
    "backend": "the Keras backend the model was saved under",
    "model_config": "the model's architecture as JSON: what load_model rebuilds before it "
    "reads any weight",
    "training_config": "the compile() arguments as JSON (optimizer, loss, metrics): what "
    "load_model(compile=True) compiles again",
    "layer_names": "the layers whose weight groups follow, in the model's order: the loader "
    "reads the layers named here, in this order, whatever other groups exist",
    "name": "the Keras name of the object whose variables this group holds",
}
WEIGHT_NAMES = (
    "this layer's variables in the order the layer creates them: the loader gives the layer "
    "the datasets named here, by position, not by matching names"
)
OPTIMIZER_WEIGHT_NAMES = (
    "the optimizer's variables in the order its get_weights() returns them: the loader sets "
    "them by position"
)
DOUBLED = (
    "the layer's name again: Keras 2 and tf-keras save each variable under its full name, "
    "which begins with the layer's name scope ('{layer}/<variable>:0'), and every '/' in it makes "
    "a group; Keras 3's legacy .h5 writer keeps these paths so that both read each other's files"
)
TOP_LEVEL = (
    "variables the model holds itself, outside any layer (the legacy .h5 writer of tf-keras and "
    "Keras 3 adds this group; weight_names lists them, usually none)"
)
#: the slot variables Keras 3 optimizers create per trainable weight, in creation order
OPTIMIZER_SLOTS: dict[str, tuple[str, ...]] = {
    "adam": ("momentum", "velocity"),
    "adamw": ("momentum", "velocity"),
    "nadam": ("momentum", "velocity"),
    "adamax": ("m", "u"),
    "sgd": ("momentum",),
    "rmsprop": ("velocity",),
    "adagrad": ("accumulator",),
    "adadelta": ("accumulated_grad", "accumulated_delta_var"),
    "lion": ("momentum",),
    "ftrl": ("accumulator", "linear"),
}
#: optimizer datasets that are no slot of a weight, by their last name (":0" removed)
OPTIMIZER_SCALARS = {
    "iteration": "the optimizer's step counter (iterations)",
    "iterations": "the optimizer's step counter (iterations)",
    "iter": "the optimizer's step counter (iterations)",
    "learning_rate": "the learning rate, saved as a variable",
    "lr": "the learning rate, saved as a variable",
    "decay": "the learning-rate decay (a legacy optimizer's hyperparameter)",
    "beta_1": "Adam's beta_1 (a legacy optimizer's hyperparameter)",
    "beta_2": "Adam's beta_2 (a legacy optimizer's hyperparameter)",
    "momentum": "the momentum hyperparameter (a legacy optimizer's)",
    "rho": "RMSprop's rho (a legacy optimizer's hyperparameter)",
}


def explain_tree(description: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One node per HDF5 group, dataset, soft link and attribute of ``description["hdf5"]``,
    in path order (an object's attributes right after it), each a plain dict::

        {"path": "model_weights/hidden/hidden/kernel", "name": "kernel", "depth": 4,
         "kind": "dataset" | "group" | "softlink" | "attribute",
         "shape": [6, 4] | None, "dtype": "float32" | None, "value": <attribute> | None,
         "meaning": "variable 'hidden/kernel' of layer 'hidden' (Dense)",
         "weight": "hidden/kernel" | None}

    An attribute's ``path`` is ``<object path>@<name>``. Empty for an artifact with no HDF5
    tree (a SavedModel, an exported graph).
    """
    hdf5 = description.get("hdf5") or {}
    if not hdf5:
        return []
    context = _Context(description)
    nodes: list[dict[str, Any]] = []
    for path in sorted(hdf5, key=lambda p: [int(s) if s.isdigit() else s for s in p.split("/")]):
        node = hdf5[path]
        name = path.rsplit("/", 1)[-1] if path else "/"
        depth = path.count("/") + 1 if path else 0
        kind = str(node.get("kind", "?"))
        weight = context.by_path.get(path)
        nodes.append(
            {
                "path": path,
                "name": name,
                "depth": depth,
                "kind": kind,
                "shape": node.get("shape") if kind == "dataset" else None,
                "dtype": node.get("dtype") if kind == "dataset" else None,
                "value": node.get("target") if kind == "softlink" else None,
                "meaning": context.meaning(path, kind, node),
                "weight": weight,
            }
        )
        for attr, value in (node.get("attrs") or {}).items():
            nodes.append(
                {
                    "path": f"{path}@{attr}",
                    "name": f"@{attr}",
                    "depth": depth + 1,
                    "kind": "attribute",
                    "shape": None,
                    "dtype": None,
                    "value": value,
                    "meaning": context.attribute(path, attr),
                    "weight": None,
                }
            )
    return nodes


class _Context:
    """What the description says about each path: the rules of :func:`explain_tree`."""

    def __init__(self, description: Mapping[str, Any]) -> None:
        self.hdf5: Mapping[str, Any] = description.get("hdf5") or {}
        self.by_path = {p: w for w, p in (description.get("weight_paths") or {}).items()}
        self.layer_of: dict[str, tuple[str, str]] = {}
        self.layer_class: dict[str, str] = {}
        for layer in description.get("layers") or []:
            self.layer_class[str(layer.get("name"))] = str(layer.get("class_name"))
            for w in layer.get("weights") or []:
                self.layer_of[w] = (str(layer.get("name")), str(layer.get("class_name")))
        self.weights: Mapping[str, Any] = description.get("weights") or {}
        optimizer = description.get("optimizer") or {}
        self.optimizer_class = str(optimizer.get("class_name") or "")
        # the group holding one group per layer: the one whose attributes name the layers
        self.weights_root = next(
            (p for p, n in self.hdf5.items() if "layer_names" in (n.get("attrs") or {})), None
        )
        self.legacy = self.weights_root is not None
        self._flat: dict[str, str] | None = None
        self.slots = self._keras3_slots()
        self.legacy_slots = self._legacy_slots() if self.legacy else {}

    # -- datasets and groups ----------------------------------------------------------------

    def meaning(self, path: str, kind: str, node: Mapping[str, Any]) -> str:
        if path == "":
            return self._root()
        if kind == "softlink":
            return f"a soft link to {node.get('target')}: the reader refuses links"
        if kind == "dataset":
            return self._dataset(path)
        if kind == "group":
            return self._group(path)
        return NOT_INTERPRETED

    def _root(self) -> str:
        if self.weights_root == "":
            return (
                "a weights-only legacy HDF5 file (model.save_weights to .h5): one group per layer"
            )
        if self.legacy:
            return (
                "a legacy HDF5 model file (model.save to .h5): the config in attributes, the "
                "weights in model_weights, the optimizer's state in optimizer_weights"
            )
        return (
            "the weights file of Keras 3's saving_lib (model.weights.h5 inside a .keras, a "
            "model folder or a preset, or a .weights.h5): one group per tracked object"
        )

    def _dataset(self, path: str) -> str:
        weight = self.by_path.get(path)
        if weight is not None:
            owner = self.layer_of.get(weight)
            where = f" of layer {owner[0]!r} ({owner[1]})" if owner else ""
            shape = (self.weights.get(weight) or {}).get("shape")
            return f"variable {weight!r}{where}, shape {shape}"
        if path in self.slots:
            return self.slots[path]
        if path in self.legacy_slots:
            return self.legacy_slots[path]
        return NOT_INTERPRETED

    def _group(self, path: str) -> str:
        parts = path.split("/")
        if self.legacy:
            return self._legacy_group(path, parts)
        if path == "layers":
            return (
                "the model's layers, each under the attribute name saving_lib tracks it by "
                "(dense, dense_1, ... for layers in a list), not always the layer's own name"
            )
        if path == "vars":
            return f"the model's own variables ({self._name_of(path)!r})"
        if path == "optimizer":
            return "the optimizer (its variables in optimizer/vars)"
        if path == "optimizer/vars":
            slots = OPTIMIZER_SLOTS.get(self._optimizer_key())
            order = (
                f"; then {', '.join(slots)} of each trainable weight in model order"
                if slots
                else ""
            )
            return (
                f"the variables of optimizer {self._name_of(path)!r}, numbered in creation "
                f"order: 0 its step counter (iterations), then the learning rate (unless it is "
                f"a schedule){order}"
            )
        if parts[-1] == "vars":
            owner = self._name_of(path)
            return f"the variables of {owner!r}, numbered in the order it creates them"
        vars_name = self._name_of(f"{path}/vars")
        if parts[0] == "layers" and vars_name:
            cls = self.layer_class.get(vars_name)
            what = f"layer {vars_name!r} ({cls})" if cls else f"{vars_name!r}"
            return f"{what}: its variables in vars, its sub-layers and attributes below it"
        if parts[0] in ("layers", "metrics") or f"{path}/vars" in self.hdf5:
            return "an object the parent tracks as an attribute (a sub-layer, cell or metric)"
        return NOT_INTERPRETED

    def _legacy_group(self, path: str, parts: list[str]) -> str:
        root = self.weights_root or ""
        if path == root:
            return "the model's weights: one group per layer, in layer_names order"
        if path == "optimizer_weights":
            return "the optimizer's state (its slots and step counter): training resumes from it"
        if parts[0] == "optimizer_weights":
            if len(parts) == 2:
                return f"the variables of optimizer {parts[1]!r}"
            return "a part of an optimizer variable's name (every '/' in it makes a group)"
        inner = path[len(root) + 1 :].split("/") if root else parts
        if path.startswith(f"{root}/" if root else "") and len(inner) >= 1:
            layer = inner[0]
            if len(inner) == 1:
                if layer == "top_level_model_weights":
                    return TOP_LEVEL
                cls = self.layer_class.get(layer)
                return (
                    f"layer {layer!r}"
                    + (f" ({cls})" if cls else "")
                    + ": weight_names lists its variables"
                )
            if len(inner) == 2 and inner[1] == layer:
                return DOUBLED.format(layer=layer)
            return (
                "a name scope inside the layer's variable names (a wrapped layer, a cell or a "
                "sub-model's layer)"
            )
        return NOT_INTERPRETED

    # -- attributes --------------------------------------------------------------------------

    def attribute(self, path: str, attr: str) -> str:
        if attr == "weight_names":
            if path == "optimizer_weights":
                return OPTIMIZER_WEIGHT_NAMES
            if path.endswith("top_level_model_weights"):
                return "the model's own variables, outside any layer (usually none)"
            return WEIGHT_NAMES
        if attr == "name" and path.endswith("vars"):
            return ATTRIBUTES["name"]
        if attr in ATTRIBUTES and attr != "name":
            return ATTRIBUTES[attr]
        return NOT_INTERPRETED

    # -- optimizer slots ---------------------------------------------------------------------

    def _optimizer_key(self) -> str:
        named = self._name_of("optimizer/vars") or ""
        key = self.optimizer_class.lower() or named.lower().rstrip("_0123456789")
        return key

    def _name_of(self, path: str) -> str | None:
        value = ((self.hdf5.get(path) or {}).get("attrs") or {}).get("name")
        return str(value) if isinstance(value, str) else None

    def _keras3_slots(self) -> dict[str, str]:
        """``optimizer/vars/<i>`` explained: 0 the step counter, then the scalars that precede
        the slots (the learning rate), then each trainable weight's slots in model order,
        matched by order and shape; no attribution when the shapes do not line up."""
        prefix = "optimizer/vars/"
        indices = sorted(
            int(p[len(prefix) :])
            for p, n in self.hdf5.items()
            if p.startswith(prefix) and p[len(prefix) :].isdigit() and n.get("kind") == "dataset"
        )
        if not indices:
            return {}
        shape = {i: list(self.hdf5[f"{prefix}{i}"].get("shape") or []) for i in indices}
        out: dict[str, str] = {}
        first_slot = 0
        for i in indices:
            if shape[i]:
                break
            out[f"{prefix}{i}"] = (
                OPTIMIZER_SCALARS["iterations"] if i == 0 else "the learning rate (a scalar)"
            )
            first_slot = i + 1
        slots = OPTIMIZER_SLOTS.get(self._optimizer_key())
        rest = [i for i in indices if i >= first_slot]
        fallback = "a slot variable of a trainable weight (not attributed: unknown optimizer)"
        if not slots or len(rest) % len(slots):
            out.update({f"{prefix}{i}": fallback for i in rest})
            return out
        weights = [(w, list(info.get("shape") or [])) for w, info in self.weights.items()]
        attributed: dict[str, str] = {}
        at = 0
        for g in range(0, len(rest), len(slots)):
            group = rest[g : g + len(slots)]
            wanted = shape[group[0]]
            if any(shape[i] != wanted for i in group):
                attributed = {}
                break
            while at < len(weights) and weights[at][1] != wanted:
                at += 1  # a non-trainable weight (moving mean) has no slot
            if at == len(weights):
                attributed = {}
                break
            for slot, i in zip(slots, group, strict=True):
                attributed[f"{prefix}{i}"] = (
                    f"optimizer slot {slot!r} of weight {weights[at][0]!r} (matched by creation "
                    "order and shape)"
                )
            at += 1
        if not attributed:
            attributed = {f"{prefix}{i}": fallback for i in rest}
        out.update(attributed)
        return out

    def _legacy_slots(self) -> dict[str, str]:
        """``optimizer_weights/...`` explained by name: Keras 3 writes
        ``<optimizer>/<variable path with _>_<slot>``, tf-keras ``<Optimizer>/<slot>/<variable
        path>:0`` (or ``.../<variable path>/<slot>:0``), Keras 1 ``param_<i>`` (position only)."""
        root = self.weights_root or ""
        variables: dict[str, str] = {}  # variable path inside the layer group -> weight
        for path, weight in self.by_path.items():
            inner = path[len(root) + 1 :] if root else path
            _layer, _, rest = inner.partition("/")
            variables[(rest or inner).removesuffix(":0")] = weight
        out: dict[str, str] = {}
        for path, node in self.hdf5.items():
            if not path.startswith("optimizer_weights/") or node.get("kind") != "dataset":
                continue
            parts = path.split("/")[1:]
            last = parts[-1].removesuffix(":0")
            if last in OPTIMIZER_SCALARS and len(parts) <= 2:
                out[path] = OPTIMIZER_SCALARS[last]
                continue
            if last.startswith("param_") and last[6:].isdigit():
                out[path] = self._keras1_param(int(last[6:]), node)
                continue
            out[path] = self._legacy_slot(parts, variables)
        return out

    def _legacy_slot(self, parts: list[str], variables: Mapping[str, str]) -> str:
        """The slot a legacy optimizer dataset is, found by looking its name's prefixes and
        suffixes up (linear in the name, whatever the model's size); the longest variable path
        that matches wins."""
        body = "/".join(parts[1:]).removesuffix(":0")  # without the optimizer's group
        flat = self._flat_variables(variables)
        pieces = body.split("/")
        found: list[tuple[int, str, str]] = []
        for k in range(1, len(pieces)):
            head, tail = "/".join(pieces[:k]), "/".join(pieces[k:])
            if head in variables:  # <variable path>/<slot>
                found.append((len(head), variables[head], tail))
            if tail in variables:  # <slot>/<variable path>
                found.append((len(tail), variables[tail], head))
        for i, char in enumerate(body):
            if char == "_" and body[:i] in flat:  # <variable path with _>_<slot>
                found.append((i, flat[body[:i]], body[i + 1 :]))
        found = [f for f in found if f[2]]
        if not found:
            return NOT_INTERPRETED
        _length, weight, slot = max(found, key=lambda f: f[0])
        return f"optimizer slot {slot!r} of weight {weight!r}"

    def _flat_variables(self, variables: Mapping[str, str]) -> dict[str, str]:
        if self._flat is None:
            self._flat = {var.replace("/", "_"): weight for var, weight in variables.items()}
        return self._flat

    def _keras1_param(self, index: int, node: Mapping[str, Any]) -> str:
        shape = list(node.get("shape") or [])
        same = [w for w, info in self.weights.items() if list(info.get("shape") or []) == shape]
        text = (
            f"optimizer variable {index}: Keras 1 names its optimizer's variables by position "
            "only (param_<i>), with nothing linking them to a weight"
        )
        if len(same) == 1:
            text += f"; the one weight of its shape {shape} is {same[0]!r}"
        return text


def render_tree(nodes: list[dict[str, Any]], *, title: str = "") -> str:
    """The tree as indented text: ``kernel  dataset [6, 4] float32  variable 'hidden/kernel' ...``,
    attributes as ``@name = value``; a line per node, the meaning after ``--``."""
    if not nodes:
        return f"{title}: no HDF5 tree" if title else "no HDF5 tree"
    lines = [title] if title else []
    for node in nodes:
        pad = "  " * node["depth"]
        if node["kind"] == "attribute":
            value = _short(node["value"])
            head = f"{pad}{node['name']} = {value}"
        elif node["kind"] == "dataset":
            head = f"{pad}{node['name']}  dataset {node['shape']} {node['dtype']}"
        elif node["kind"] == "group":
            head = f"{pad}{node['name']}/" if node["path"] else "/"
        else:
            head = f"{pad}{node['name']}  {node['kind']} {node.get('value') or ''}".rstrip()
        lines.append(f"{head}  -- {node['meaning']}")
    return "\n".join(lines)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."
