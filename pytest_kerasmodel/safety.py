"""Safety scan of Keras artifacts: read the bytes, execute nothing.

The scan looks at what Keras would deserialise before anything is deserialised: the model config
(``config.json`` inside a ``.keras`` zip, or the ``model_config`` / ``training_config`` attributes
of a legacy HDF5 file), the zip container itself, and the HDF5 object tree. It uses only ``json``,
``zipfile``, ``struct`` and ``h5py`` (imported lazily); it never imports Keras or TensorFlow, never
unpickles, unmarshals or evaluates anything, and never extracts a member to disk.

Each problem is a :class:`Finding` naming the check, where it is (layer path, zip member or HDF5
path) and why it matters. An empty list means the scan found nothing, not that the model is good.
The scan reports every finding, not the first: a bad container (duplicate members, overlaps)
does not end it, and each member is scanned by its own entry, duplicates included. Pickles are
analysed with :mod:`pytest_kerasmodel.pickles` (opcodes only) so a finding names what they call.

Check names:

- config: ``lambda-bytecode`` (marshalled Python code), ``foreign-module`` (a class or function
  outside Keras and KerasHub, not allowed by the user), ``dangerous-function`` (Keras functions
  that are not modelling code), ``unsafe-switch`` (safe_mode off), ``file-reference`` (a path read
  while building), ``tf-op`` (a tf.keras op layer running more than tensor maths),
  ``torch-pickle`` (a ``TorchModuleWrapper`` carrying ``torch.save`` bytes, CVE-2025-49655);
- zip: ``zip-path``, ``zip-duplicate``, ``zip-unexpected-member``, ``zip-compressed``,
  ``zip-bomb``, ``zip-overlap``, ``zip-header-mismatch``, ``zip-member-count``; ``pickle`` (a
  member that is a pickle or a torch.save archive, whatever its name, or is named like one);
  ``npz-pickle`` (an object array, i.e. a pickle, in ``model.weights.npz``);
- HDF5: ``h5-external-link``, ``h5-soft-link``, ``h5-external-storage``, ``h5-virtual-dataset``,
  ``h5-shape-bomb``, ``h5-too-many-objects``, ``h5-hygiene``, ``h5-filter``, ``h5-object-data``
  (object, opaque or reference data, pickle bytes: analysed when they are a pickle),
  ``h5-unreadable``;
- ``unreadable``, ``unreadable-config``: what cannot be read cannot be vouched for.
"""

from __future__ import annotations

import base64
import builtins
import collections
import functools
import io
import itertools
import json
import math
import os
import posixpath
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pytest_kerasmodel.errors import ArtifactError

if TYPE_CHECKING:  # pragma: no cover
    import h5py

    from pytest_kerasmodel.artifacts import Artifact
    from pytest_kerasmodel.artifacts.hdf5 import H5Node

__all__ = [
    "Finding",
    "scan_artifact",
    "scan_config",
    "scan_hdf5",
    "scan_zip",
]


@dataclass(frozen=True)
class Finding:
    """One reason not to deserialise an artifact: which check, where, and why."""

    check: str
    where: str
    reason: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.where}: {self.reason}"


# --------------------------------------------------------------------------------------------
# Config scan
# --------------------------------------------------------------------------------------------

#: Module prefixes that belong to Keras itself: Keras 3 (``keras``, ``keras.src...``), Keras 2
#: and tf.keras names found in legacy files, and KerasHub (``keras_hub``, formerly
#: ``keras_nlp``), the Keras team's model library whose presets name its classes. Matched on
#: whole dotted components; the same gadget and file-reference rules apply to all of them.
KERAS_MODULES = (
    "keras",
    "tf_keras",
    "tensorflow.keras",
    "tensorflow.python.keras",
    "keras_hub",
    "keras_nlp",
)

#: Keras functions and modules that are not modelling code: they download or read files, load
#: other models, write files or flip global switches. Keras 3.9+ refuses most of them in
#: ``_retrieve_class_or_fn`` (``NON_MODELING_APIS``); older Keras and tf.keras do not.
_DANGEROUS_NAMES = frozenset(
    {
        "clear_session",
        "deserialize_keras_object",
        "enable_unsafe_deserialization",
        "func_load",
        "get_file",
        "get_registered_object",
        "load_img",
        "load_model",
        "load_weights",
        "model_from_config",
        "model_from_json",
        "model_from_yaml",
        "plot_model",
        "register_keras_serializable",
        "save_img",
        "save_model",
        "save_weights",
        "serialize_keras_object",
        "set_global_attribute",
        "audio_dataset_from_directory",
        "image_dataset_from_directory",
        "text_dataset_from_directory",
        "timeseries_dataset_from_array",
    }
)
_DANGEROUS_MODULES = (
    "keras.applications",
    "keras.backend",
    "keras.callbacks",
    "keras.config",
    "keras.datasets",
    "keras.distribution",
    "keras.export",
    "keras.legacy",
    "keras.mixed_precision",
    "keras.models",
    "keras.preprocessing",
    "keras.saving",
    "keras.utils",
    "keras.visualization",
    "keras.src.applications",
    "keras.src.backend.common.global_state",
    "keras.src.backend.config",
    "keras.src.callbacks",
    "keras.src.datasets",
    "keras.src.distribution",
    "keras.src.export",
    "keras.src.legacy",
    "keras.src.models",
    "keras.src.saving",
    "keras.src.utils",
    "keras.src.visualization",
    # KerasHub's preset, download and checkpoint-conversion helpers (keras_utils, which holds
    # activations such as gelu_approximate, is modelling code)
    "keras_hub.utils",
    "keras_hub.src.utils.preset_utils",
    "keras_hub.src.utils.transformers",
    "keras_hub.src.utils.timm",
    "keras_nlp.utils",
    "keras_nlp.src.utils.preset_utils",
    "keras_nlp.src.utils.transformers",
)
#: Classes, unlike functions, are refused only from the modules that hold no modelling object at
#: all (legacy layers, dtype policies, FeatureSpace... live in the other modules above).
_DANGEROUS_CLASS_MODULES = (
    "keras.callbacks",
    "keras.config",
    "keras.datasets",
    "keras.saving",
    "keras.src.backend.common.global_state",
    "keras.src.backend.config",
    "keras.src.callbacks",
    "keras.src.datasets",
    "keras.src.legacy.saving",
    "keras.src.saving",
    "keras.src.utils.file_utils",
    "keras_hub.src.utils.preset_utils",
    "keras_nlp.src.utils.preset_utils",
)
_UNSAFE_WORDS = ("enable_unsafe_deserialization", "safe_mode_saving", "unsafe_deserialization")
#: Config keys whose string value is a path that a layer reads (or loads) while being built:
#: lookup/vectorization vocabularies, KerasHub tokenizer files, TFSMLayer's SavedModel.
_FILE_KEYS = frozenset(
    {"vocabulary", "vocabulary_file", "filepath", "proto", "merges", "spm_model_file"}
)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: TensorFlow functions a ``TFOpLambda`` (tf.keras 2.4+) may name and still be pure tensor maths.
#: tf.keras resolves the name against the whole TensorFlow API, ``tf.io.write_file`` included.
_TF_OP_PREFIXES = (
    "__operators__.",
    "math.",
    "nn.",
    "linalg.",
    "signal.",
    "bitwise.",
    "image.",
    "random.",
    "sparse.",
    "ragged.",
)
_TF_OP_NAMES = _words(
    """abs add argmax argmin argsort boolean_mask broadcast_to cast clip_by_norm clip_by_value
    concat cos cumsum divide einsum equal exp expand_dims eye fill floor gather gather_nd greater
    greater_equal identity less less_equal linspace log matmul maximum meshgrid minimum multiply
    norm not_equal one_hot ones ones_like pad pow range rank reduce_all reduce_any reduce_max
    reduce_mean reduce_min reduce_prod reduce_std reduce_sum repeat reshape reverse roll round
    rsqrt scatter_nd shape sigmoid sign sin size slice sort split sqrt square squeeze stack
    stop_gradient strided_slice subtract tanh tensordot tile transpose truediv unstack where
    zeros zeros_like"""
)
#: Raw graph ops a ``TensorFlowOpLayer`` (tf.keras 2.2-2.3) may run and still be pure maths.
_TF_RAW_OPS = _words(
    """Abs Add AddN AddV2 All Any ArgMax ArgMin AvgPool BatchMatMul BatchMatMulV2 BiasAdd
    BroadcastTo Cast Ceil ConcatV2 Const Conv2D Cos Cumsum DepthwiseConv2dNative Div DivNoNan
    Einsum Elu Equal Erf Exp ExpandDims Fill Floor FloorDiv FloorMod GatherNd GatherV2 Greater
    GreaterEqual Identity IdentityN L2Loss LeakyRelu Less LessEqual Log Log1p LogSoftmax
    LogicalAnd LogicalNot LogicalOr MatMul Max MaxPool Maximum Mean Min Minimum Mod Mul Neg
    NotEqual OneHot OnesLike Pack Pad PadV2 Pow Prod Range Rank RealDiv Reciprocal Relu Relu6
    Reshape ResizeBilinear ResizeNearestNeighbor ReverseV2 Round Rsqrt Select SelectV2 Selu Shape
    Sigmoid Sign Sin Size Slice Softmax Softplus Softsign Split SplitV Sqrt Square
    SquaredDifference Squeeze StopGradient StridedSlice Sub Sum Tan Tanh Tile TopKV2 Transpose
    Unpack Where ZerosLike"""
)
_PY_BUILTINS = frozenset(dir(builtins))


def _module_in(module: str, prefixes: Iterable[str]) -> bool:
    """Whether ``module`` is one of ``prefixes`` or inside one of them."""
    exact, dotted = _prefix_sets(tuple(prefixes))
    return module in exact or module.startswith(dotted)


@functools.lru_cache(maxsize=64)
def _prefix_sets(prefixes: tuple[str, ...]) -> tuple[frozenset[str], tuple[str, ...]]:
    """The names and the ``name.`` prefixes of a module list (asked ~20 times an artifact)."""
    kept = [p for p in prefixes if p]
    return frozenset(kept), tuple(p + "." for p in kept)


def _is_keras_module(module: str) -> bool:
    return _module_in(module, KERAS_MODULES)


def _fmt_path(keys: list[str | int]) -> str:
    text = ""
    for key in keys:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else str(key))
    return text


@dataclass
class _Node:
    value: Any
    keys: list[str | int]  # JSON keys from the innermost enclosing layer
    layers: tuple[str, ...]  # names of the enclosing layers, outermost first


def _layer_name(node: dict[str, Any]) -> str | None:
    """The name of a serialised layer/model dict, or None when the dict is not a layer."""
    if not isinstance(node.get("class_name"), str):
        return None
    config = node.get("config")
    if isinstance(config, dict) and isinstance(config.get("name"), str):
        return str(config["name"])
    if isinstance(node.get("name"), str):
        return str(node["name"])
    if isinstance(config, (dict, list)) and node["class_name"] in ("Sequential", "Model"):
        return str(node["class_name"])
    return None


class _ConfigScanner:
    def __init__(self, allowed_modules: Iterable[str]) -> None:
        self.allowed = tuple(m.strip() for m in allowed_modules if m and m.strip())
        self.findings: list[Finding] = []

    # -- helpers ------------------------------------------------------------------------------
    def where(self, node: _Node, extra: list[str | int] | None = None) -> str:
        keys = node.keys + (extra or [])
        if node.layers:
            text = f"layer '{'/'.join(node.layers)}'"
            return f"{text} > {_fmt_path(keys)}" if keys else text
        return _fmt_path(keys) or "config"

    def add(
        self, check: str, node: _Node, reason: str, extra: list[str | int] | None = None
    ) -> None:
        self.findings.append(Finding(check, self.where(node, extra), reason))

    def allowed_by_user(self, module: str) -> bool:
        return _module_in(module, self.allowed)

    def hint(self, module: str) -> str:
        top = module.split(">")[0].split(".")[0]
        return f"if you trust it, allow it with keras_allowed_modules = {top}"

    # -- walk ---------------------------------------------------------------------------------
    def scan(self, config: Any) -> list[Finding]:
        stack: list[_Node] = [_Node(config, [], ())]
        while stack:
            node = stack.pop()
            value = node.value
            if isinstance(value, dict):
                handled = self.visit_dict(node)
                name = _layer_name(value)
                for key, child in reversed(list(value.items())):
                    if isinstance(child, str):
                        if key not in handled:
                            self.visit_string(node, str(key), child)
                    elif isinstance(child, (dict, list)):
                        if name is None:
                            stack.append(_Node(child, [*node.keys, str(key)], node.layers))
                        else:
                            keys: list[str | int] = [] if key == "config" else [str(key)]
                            stack.append(_Node(child, keys, (*node.layers, name)))
            elif isinstance(value, list):
                for index in range(len(value) - 1, -1, -1):
                    child = value[index]
                    if isinstance(child, (dict, list)):
                        stack.append(_Node(child, [*node.keys, index], node.layers))
                    elif isinstance(child, str):
                        self.visit_string(node, index, child)
            elif isinstance(value, str):
                self.visit_string(node, None, value)
        return self.findings

    def visit_string(self, node: _Node, key: str | int | None, text: str) -> None:
        lowered = text.lower()
        if any(word in lowered for word in _UNSAFE_WORDS):
            extra = [key] if key is not None else []
            self.add(
                "unsafe-switch",
                node,
                f"mentions {text[:80]!r}: a config that turns unsafe deserialization on "
                "disables safe_mode for everything loaded after it (CVE-2025-9906)",
                extra,
            )

    def visit_dict(self, node: _Node) -> set[str]:
        """Check one dict; return the keys whose string values need no generic string check."""
        value: dict[str, Any] = node.value
        handled: set[str] = set()
        class_name = value.get("class_name")
        name = _layer_name(value)
        me = _Node(value, [], (*node.layers, name)) if name else node

        for key in sorted(_FILE_KEYS.intersection(value)):
            target = value[key]
            if isinstance(target, str) and target:
                handled.add(key)
                self.add(
                    "file-reference",
                    node,
                    f"{key}={target[:120]!r} is a path read while the layer is built: loading "
                    "would read (or fetch) that file from the loading machine instead of the "
                    "archive (Keras 3.12+ refuses it in safe mode, older Keras reads it)",
                    [key],
                )
        if "safe_mode" in value and value["safe_mode"] in (False, 0, "false", "False"):
            self.add(
                "unsafe-switch",
                node,
                "sets safe_mode to false: whatever calls it would deserialise Python code "
                "(CVE-2025-9906 used load_model(..., safe_mode=False) from a Lambda)",
                ["safe_mode"],
            )

        if class_name == "__lambda__":
            self.add(
                "lambda-bytecode",
                node,
                "serialised Python lambda (marshalled bytecode): loading it with safe_mode off "
                "runs arbitrary code",
            )
            return set(value)
        if "__python_function__" in value or value.get("class_name") == "__python_function__":
            self.add("lambda-bytecode", node, "serialised Python function (bytecode)")
            return set(value)

        # Legacy serialised functions: Lambda's function/output_shape/mask, Keras 1 Merge's mode.
        for key, kind in value.items():
            if not (isinstance(key, str) and key.endswith("_type") and isinstance(kind, str)):
                continue
            base = key[: -len("_type")]
            if kind == "lambda":
                self.add(
                    "lambda-bytecode",
                    node,
                    f"{base!r} is marshalled Python bytecode ({key}='lambda'): Keras unmarshals "
                    "and runs it when the layer is built; a Lambda layer cannot be loaded safely",
                    [base],
                )
                handled.update({base, key, f"{base}_module", "module"})
            elif kind == "function":
                module_key = "module" if base == "function" else f"{base}_module"
                module = value.get(module_key)
                fn = value.get(base)
                if (
                    isinstance(module, str)
                    and module
                    and not _is_keras_module(module)
                    and not self.allowed_by_user(module)
                ):
                    self.add(
                        "foreign-module",
                        node,
                        f"{base!r} calls function {fn!r} looked up in module {module!r}, "
                        f"outside Keras; {self.hint(module)}",
                        [base],
                    )
                    handled.update({base, module_key})

        if not isinstance(class_name, str):
            return handled

        module = value.get("module")
        registered = value.get("registered_name")
        inner = value.get("config")

        if class_name in ("TFOpLambda", "SlicingOpLambda") and isinstance(inner, dict):
            self.check_tf_op(me, str(inner.get("function", "")))
        if class_name == "TensorFlowOpLayer" and isinstance(inner, dict):
            node_def = inner.get("node_def")
            op = node_def.get("op") if isinstance(node_def, dict) else None
            if op not in _TF_RAW_OPS:
                self.add(
                    "tf-op",
                    me,
                    f"TensorFlowOpLayer runs the raw TensorFlow op {op!r}, which is not a plain "
                    "tensor operation (raw ops include file reads and writes); it cannot be "
                    "loaded safely; Keras 3 cannot load TensorFlowOpLayer at all",
                )

        if class_name == "TorchModuleWrapper" and isinstance(inner, dict) and "module" in inner:
            self.check_torch_module(me, inner["module"])

        if class_name == "function":
            handled.update({"config", "registered_name", "module"})
            self.check_function(node, module, inner, registered)
            return handled

        if isinstance(module, str) and module:
            handled.add("module")
            if module == "builtins" or not _is_keras_module(module):
                if not self.allowed_by_user(module):
                    self.add(
                        "foreign-module",
                        me,
                        f"class {class_name!r} comes from module {module!r}, outside Keras: "
                        f"loading it imports and runs that module's code; {self.hint(module)}",
                    )
                # An allowed module vouches for its classes' registered names too.
                return handled
            elif _module_in(module, _DANGEROUS_CLASS_MODULES):
                self.add(
                    "dangerous-function",
                    me,
                    f"class {class_name!r} from {module!r} is not a modelling object "
                    "(Keras's saving, file and configuration internals)",
                )
                return handled
        if isinstance(registered, str) and ">" in registered:
            package = registered.split(">", 1)[0]
            if not self.allowed_by_user(package) and not _is_keras_module(package):
                self.add(
                    "foreign-module",
                    me,
                    f"class {class_name!r} is a custom object registered as {registered!r} by "
                    f"package {package!r}, outside Keras; {self.hint(package)}",
                )
        if class_name in _DANGEROUS_NAMES:
            self.add(
                "dangerous-function",
                me,
                f"{class_name!r} is not a modelling object: Keras refuses it when loading",
            )
        return handled

    def check_function(self, node: _Node, module: Any, name: Any, registered: Any) -> None:
        fn = name if isinstance(name, str) else str(registered)
        if not isinstance(module, str) or not module:
            if fn in _DANGEROUS_NAMES:
                self.add("dangerous-function", node, f"function {fn!r} is not modelling code")
            return
        if ">" in fn:
            package = fn.split(">", 1)[0]
            if not self.allowed_by_user(package) and not _is_keras_module(package):
                self.add(
                    "foreign-module",
                    node,
                    f"function {fn!r} is a custom function registered by package {package!r}, "
                    f"outside Keras; {self.hint(package)}",
                )
            return
        if module == "builtins":
            if fn in _PY_BUILTINS or fn.startswith("__"):
                self.add(
                    "foreign-module",
                    node,
                    f"names the Python builtin {fn!r}: Keras resolves 'builtins' functions "
                    "among its own activations, losses and metrics; this is not one of them",
                )
            return
        if not _is_keras_module(module):
            if not self.allowed_by_user(module):
                self.add(
                    "foreign-module",
                    node,
                    f"function {module}.{fn} is outside Keras: loading it imports and can call "
                    f"that module's code (CVE-2025-1550); {self.hint(module)}",
                )
            return
        full = f"{module}.{fn}"
        if any(word in fn for word in _UNSAFE_WORDS) or fn == "set_global_attribute":
            self.add(
                "unsafe-switch",
                node,
                f"calls {full}, which turns safe_mode off for the rest of the load (CVE-2025-9906)",
            )
        elif fn in _DANGEROUS_NAMES or _module_in(module, _DANGEROUS_MODULES):
            what = _gadget_reason(fn)
            self.add(
                "dangerous-function",
                node,
                f"calls {full}, which is not modelling code ({what}); Keras 3.9+ refuses "
                "such functions, older Keras runs them",
            )

    def check_torch_module(self, node: _Node, payload: Any) -> None:
        """``TorchModuleWrapper``'s ``module``: base64 of ``torch.save(module)`` bytes, which its
        ``from_config`` hands to ``torch.load(weights_only=False)``: decoded and analysed."""
        from pytest_kerasmodel.pickles import analyse_torch_payload

        name = node.layers[-1] if node.layers else "?"
        what = (
            f"TorchModuleWrapper layer {name!r} carries a torch.save pickle (loading it runs "
            "torch.load(weights_only=False); Keras 3.11.0-3.11.2 do so even under safe_mode, "
            "CVE-2025-49655)"
        )
        if not isinstance(payload, str):
            self.add(
                "torch-pickle", node, f"{what}; its payload is not a base64 string", ["module"]
            )
            return
        if len(payload) > TORCH_MAX_BASE64:
            reason = f"{what}; its payload ({len(payload)} characters) is too large to analyse"
            self.add("torch-pickle", node, reason, ["module"])
            return
        try:
            data = base64.b64decode(payload.encode("ascii"), validate=True)
        except (ValueError, UnicodeEncodeError) as error:
            reason = f"{what}; its payload cannot be decoded as base64 ({error})"
            self.add("torch-pickle", node, reason, ["module"])
            return
        report = analyse_torch_payload(data)
        if not report.pickles:
            detail = f"its payload holds no readable pickle ({report.problem})"
        else:
            imports = report.imports
            shown = ", ".join(imports[:8]) + (
                f" and {len(imports) - 8} more" if imports[8:] else ""
            )
            detail = f"it imports {shown or 'nothing'}; {report.summary()}"
        self.add("torch-pickle", node, f"{what}; {detail}", ["module"])

    def check_tf_op(self, node: _Node, function: str) -> None:
        name = function.removeprefix("compat.v1.").removeprefix("compat.v2.")
        if name.startswith(_TF_OP_PREFIXES) and not name.startswith(
            ("image.encode", "image.decode")
        ):
            return
        if name in _TF_OP_NAMES:
            return
        self.add(
            "tf-op",
            node,
            f"TFOpLambda calls tf.{function}, which is not a plain tensor operation: tf.keras "
            "resolves this name against the whole TensorFlow API (file reads and writes "
            "included), so it cannot be loaded safely; Keras 3 cannot load TFOpLambda at all",
        )


def _gadget_reason(fn: str) -> str:
    if fn == "get_file":
        return "downloads a file from a URL and can write it anywhere"
    if fn in ("load_model", "load_weights", "model_from_json", "model_from_config"):
        return "loads another model, possibly with safe_mode off"
    if fn in ("save_model", "save_weights", "save_img", "plot_model"):
        return "writes files"
    if "from_directory" in fn or fn == "load_img":
        return "reads files from disk"
    return "file, saving or configuration internals of Keras"


def scan_config(config: Any, *, allowed_modules: Iterable[str] = ()) -> list[Finding]:
    """Walk a whole model config and return what must not be deserialised.

    ``config`` is the parsed JSON of a ``.keras`` archive's ``config.json`` or of a legacy HDF5
    file's ``model_config``/``training_config`` (Keras 1 and 2, tf.keras, Keras 3; Sequential
    stored as a list included). Every dict and list is visited, so nested models, wrappers
    (Bidirectional, TimeDistributed), compile configs and unknown keys are all covered.
    ``allowed_modules`` are module prefixes (``"mypkg"`` allows ``mypkg.layers``) the user trusts.
    """
    return _ConfigScanner(allowed_modules).scan(config)


def _parse_config(text: str | bytes, source: str) -> tuple[Any, list[Finding]]:
    try:
        return json.loads(text), []
    except RecursionError:
        return None, [Finding("unreadable-config", source, "JSON nested too deeply to scan")]
    except (ValueError, UnicodeDecodeError) as error:
        return None, [Finding("unreadable-config", source, f"not valid JSON: {error}")]


def _prefixed(findings: list[Finding], source: str) -> list[Finding]:
    return [Finding(f.check, f"{source} {f.where}", f.reason) for f in findings]


# --------------------------------------------------------------------------------------------
# Zip scan
# --------------------------------------------------------------------------------------------

ZIP_MAX_MEMBERS = 10_000
#: A member declaring more than this many bytes and more than ``ZIP_MAX_RATIO`` times what it
#: stores is a decompression bomb (Keras 3.13+ uses 4 GiB and 100x when loading; a gate can be
#: stricter because Keras never compresses).
ZIP_BOMB_FLOOR = 64 * 1024 * 1024
ZIP_MAX_RATIO = 100
CONFIG_MAX_BYTES = 64 * 1024 * 1024
#: A TorchModuleWrapper payload (base64) longer than this is reported without being decoded.
TORCH_MAX_BASE64 = CONFIG_MAX_BYTES
_KERAS_MEMBERS = frozenset(
    {"config.json", "metadata.json", "model.weights.h5", "model.weights.npz"}
)
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")


def _bad_name(name: str) -> str | None:
    if not name:
        return "empty member name"
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if "\\" in name:
        return "backslash in member name (a Windows path separator)"
    if "\x00" in name:
        return "NUL byte in member name"
    if ".." in name.split("/"):
        return "'..' component: extracting it would write outside the target folder"
    return None


def _zip_findings(zf: zipfile.ZipFile, raw: IO[bytes], label: str) -> list[Finding]:
    findings: list[Finding] = []
    infos = zf.infolist()

    def add(check: str, member: str, reason: str) -> None:
        findings.append(Finding(check, f"{label}zip member {member!r}", reason))

    if len(infos) > ZIP_MAX_MEMBERS:
        findings.append(
            Finding(
                "zip-member-count",
                f"{label}zip",
                f"{len(infos)} members; a Keras archive holds a handful (limit {ZIP_MAX_MEMBERS})",
            )
        )
        return findings

    seen: dict[str, str] = {}
    for info in infos:
        name = info.filename
        problem = _bad_name(info.orig_filename if hasattr(info, "orig_filename") else name)
        if problem:
            add("zip-path", name, problem)
        normal = posixpath.normpath(name).lower()
        if normal in seen:
            add(
                "zip-duplicate",
                name,
                f"a second member with the name {seen[normal]!r}: readers disagree on which "
                "one counts, so what is scanned may not be what is loaded",
            )
        else:
            seen[normal] = name
        if info.flag_bits & 0x1:
            add(
                "zip-encrypted",
                name,
                "encrypted: its content cannot be read without a password, so nothing in it was "
                "scanned (Keras never writes encrypted archives)",
            )
        is_asset = name.startswith("assets/")
        if name not in _KERAS_MEMBERS and not is_asset and not problem:
            add(
                "zip-unexpected-member",
                name,
                "not a member Keras writes (config.json, metadata.json, model.weights.h5 or "
                "assets/...)",
            )
        if info.compress_type != zipfile.ZIP_STORED and not info.is_dir():
            add(
                "zip-compressed",
                name,
                f"compressed (method {info.compress_type}) while Keras stores members "
                "uncompressed: the archive was rewritten by another tool",
            )
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            add(
                "zip-bomb",
                name,
                f"stored member declares {info.file_size} bytes but stores {info.compress_size}",
            )
        elif info.file_size > ZIP_BOMB_FLOOR and info.file_size > ZIP_MAX_RATIO * max(
            info.compress_size, 1
        ):
            add(
                "zip-bomb",
                name,
                f"declares {info.file_size} bytes uncompressed from {info.compress_size} "
                f"stored (more than {ZIP_MAX_RATIO}x): a decompression bomb",
            )

    # Local headers: each member's bytes must be where the central directory says, and no two
    # members may share bytes (the "quoted overlap" zip bomb reuses one stream many times).
    ranges: list[tuple[int, int, str]] = []
    end_of_data = getattr(zf, "start_dir", None)
    for info in infos:
        raw.seek(info.header_offset)
        header = raw.read(_LOCAL_HEADER.size)
        if len(header) < _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
            add("zip-header-mismatch", info.filename, "no local file header at its offset")
            continue
        fields = _LOCAL_HEADER.unpack(header)
        method, name_len, extra_len = fields[3], fields[9], fields[10]
        local_name = raw.read(name_len)
        if method != info.compress_type:
            add(
                "zip-header-mismatch",
                info.filename,
                f"local header says compression method {method}, central directory says "
                f"{info.compress_type}",
            )
        if local_name.decode("utf-8", "replace") != info.orig_filename:
            add(
                "zip-header-mismatch",
                info.filename,
                f"local header names it {local_name.decode('utf-8', 'replace')!r}: two readers "
                "would see two different archives",
            )
        start = info.header_offset
        end = start + _LOCAL_HEADER.size + name_len + extra_len + info.compress_size
        ranges.append((start, end, info.filename))
    ranges.sort()
    for (_, end, name), (next_start, _, next_name) in itertools.pairwise(ranges):
        if next_start < end:
            add(
                "zip-overlap",
                next_name,
                f"its bytes start inside member {name!r} (overlapping members: the "
                "quoted-overlap zip bomb)",
            )
    if ranges and isinstance(end_of_data, int) and ranges[-1][1] > end_of_data:
        add(
            "zip-overlap",
            ranges[-1][2],
            "its data runs into the central directory",
        )
    return findings


def scan_zip(path_or_zipfile: str | os.PathLike[str] | zipfile.ZipFile) -> list[Finding]:
    """Scan a ``.keras`` zip container (not its contents) without extracting anything."""
    if isinstance(path_or_zipfile, zipfile.ZipFile):
        fp = path_or_zipfile.fp
        if fp is None:
            raise ValueError("the ZipFile is closed")
        return _zip_findings(path_or_zipfile, fp, "")
    with open(path_or_zipfile, "rb") as raw:
        try:
            zf = zipfile.ZipFile(raw)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
            return [Finding("unreadable", "zip", f"not a readable zip archive: {error}")]
        with zf:
            return _zip_findings(zf, raw, "")


# --------------------------------------------------------------------------------------------
# HDF5 scan
# --------------------------------------------------------------------------------------------

H5_MAX_ATTR_BYTES = 64 * 1024 * 1024
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

        from pytest_kerasmodel.pickles import analyse_pickle, looks_like_pickle

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


# --------------------------------------------------------------------------------------------
# Whole artifact
# --------------------------------------------------------------------------------------------


def _scan_h5_artifact(source: Any, label: str, allowed: tuple[str, ...]) -> list[Finding]:
    try:
        h5file = _open_h5(source)
    except (OSError, ValueError, RuntimeError) as error:
        return [Finding("unreadable", f"{label}HDF5", f"HDF5 library cannot open it: {error}")]
    with h5file:
        return _scan_h5_file(h5file, label, allowed)


def _scan_h5_file(
    h5file: h5py.File, label: str, allowed: tuple[str, ...], nodes: list[H5Node] | None = None
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
            findings += _prefixed(scan_config(config, allowed_modules=allowed), f"{label}{attr}:")
    return findings


def _scan_keras_zip(path: Path, allowed: tuple[str, ...]) -> list[Finding]:
    with open(path, "rb") as raw:
        try:
            zf = zipfile.ZipFile(raw)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
            return [Finding("unreadable", "zip", f"not a readable zip archive: {error}")]
        with zf:
            return _scan_open_zip(zf, raw, path, allowed)


def _scan_open_zip(
    zf: zipfile.ZipFile,
    raw: IO[bytes],
    path: Path,
    allowed: tuple[str, ...],
    opened: Artifact | None = None,
) -> list[Finding]:
    """The container, then every member by its own entry (duplicates included: readers disagree
    on which copy counts, so each is scanned): each config.json, model.weights.h5 and
    model.weights.npz, and any member holding a pickle. With ``opened`` (the same archive
    opened by :func:`~pytest_kerasmodel.artifacts.open_artifact`, which refuses duplicates), its
    inner HDF5 file and checked tree are scanned instead of opening the member a second time."""
    findings = _zip_findings(zf, raw, "")
    if any(f.check == "zip-member-count" for f in findings):
        return findings  # too many members to read each: the count is the finding
    infos = zf.infolist()
    copies = collections.Counter(info.filename for info in infos)
    mismatched = {f.where for f in findings if f.check == "zip-header-mismatch"}
    members = _Members(zf, raw, path, mismatched)
    seen: collections.Counter[str] = collections.Counter()
    order = sorted(range(len(infos)), key=lambda i: (_MEMBER_RANK.get(infos[i].filename, 3), i))
    for info in (infos[i] for i in order):
        name = info.filename
        seen[name] += 1
        label = name if copies[name] == 1 else f"{name} (copy {seen[name]} of {copies[name]})"
        if info.is_dir():
            continue
        if name == "config.json":
            findings += _scan_config_member(members, info, label, allowed)
        elif name == "model.weights.h5":
            only = opened if copies[name] == 1 else None
            findings += _scan_weights_member(members, info, label, allowed, only)
        elif name == "model.weights.npz":
            findings += _scan_npz_member(members, info, label)
        else:
            findings += _scan_other_member(members, info, label)
    return findings


#: config.json first, then the weights, then every other member (each group in zip order).
_MEMBER_RANK = {"config.json": 0, "model.weights.h5": 1, "model.weights.npz": 2}
#: Bytes of one member read to analyse a pickle or scan compressed weights in memory.
MEMBER_MAX_BYTES = 256 * 1024 * 1024
#: Other members up to this size are read whole to recognise protocol 0/1 pickles (which have
#: no header); larger ones are recognised by their first bytes only.
_SNIFF_WHOLE_BYTES = 1024 * 1024
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".pt", ".pth")
_ZIP_READ_ERRORS = (
    zipfile.BadZipFile,
    OSError,
    ValueError,
    EOFError,
    NotImplementedError,
    struct.error,
    zlib.error,
)


def _member_where(info: zipfile.ZipInfo, label: str) -> str:
    copy = label[len(info.filename) :]
    return f"zip member {info.filename!r}{copy}"


class _Members:
    """Reads a member's bytes from its own local entry (not by name, so each duplicate is read),
    bounded, without extracting anything."""

    def __init__(
        self, zf: zipfile.ZipFile, raw: IO[bytes], path: Path, mismatched: set[str]
    ) -> None:
        self.zf, self.raw, self.path, self.mismatched = zf, raw, path, mismatched

    def skipped(self, info: zipfile.ZipInfo) -> bool:
        """A member whose local header disagrees with the directory: already a finding, and
        its bytes are not where the directory says."""
        return f"zip member {info.filename!r}" in self.mismatched

    def read(self, info: zipfile.ZipInfo, limit: int) -> bytes:
        """Up to ``limit`` bytes of the member's content; raises what reading raised."""
        if info.compress_type == zipfile.ZIP_STORED:
            self.raw.seek(info.header_offset)
            header = self.raw.read(_LOCAL_HEADER.size)
            if len(header) < _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
                raise ValueError("no local file header at its offset")
            fields = _LOCAL_HEADER.unpack(header)
            self.raw.seek(info.header_offset + _LOCAL_HEADER.size + fields[9] + fields[10])
            return self.raw.read(min(info.compress_size, limit))
        with self.zf.open(info) as member:
            return member.read(limit)


def _scan_config_member(
    members: _Members, info: zipfile.ZipInfo, label: str, allowed: tuple[str, ...]
) -> list[Finding]:
    if members.skipped(info):
        return []
    if info.file_size > CONFIG_MAX_BYTES or info.compress_size > CONFIG_MAX_BYTES:
        size = max(info.file_size, info.compress_size)
        reason = f"{size} bytes: too large to be a model config"
        return [Finding("unreadable-config", label, reason)]
    try:
        text = members.read(info, CONFIG_MAX_BYTES)
    except _ZIP_READ_ERRORS as error:
        return [Finding("unreadable-config", label, f"cannot be read: {error}")]
    config, findings = _parse_config(text, label)
    if config is not None:
        findings += _prefixed(scan_config(config, allowed_modules=allowed), f"{label}:")
    return findings


def _scan_weights_member(
    members: _Members,
    info: zipfile.ZipInfo,
    label: str,
    allowed: tuple[str, ...],
    opened: Artifact | None,
) -> list[Finding]:
    prefix = f"{label}: "
    if opened is not None and opened.h5 is not None:
        return _scan_h5_file(opened.h5, prefix, allowed, opened.nodes)
    if members.skipped(info):
        return []
    if info.compress_type == zipfile.ZIP_STORED:
        from pytest_kerasmodel.artifacts import HygieneError
        from pytest_kerasmodel.artifacts.kerasfile import stored_member_window

        try:
            window = stored_member_window(members.raw, info, members.path)
        except HygieneError as error:
            return [Finding("zip-header-mismatch", _member_where(info, label), error.reason)]
        return _scan_h5_artifact(window, prefix, allowed)
    if info.file_size > MEMBER_MAX_BYTES:
        return [
            Finding(
                "unreadable",
                _member_where(info, label),
                f"compressed, {info.file_size} bytes: too large to scan in memory "
                f"(limit {MEMBER_MAX_BYTES})",
            )
        ]
    try:
        data = members.read(info, MEMBER_MAX_BYTES)
    except _ZIP_READ_ERRORS as error:
        return [Finding("unreadable", _member_where(info, label), f"cannot be read: {error}")]
    return _scan_h5_artifact(io.BytesIO(data), prefix, allowed)


def _pickle_finding(check: str, where: str, what: str, data: bytes) -> Finding:
    from pytest_kerasmodel.pickles import analyse_pickle

    report = analyse_pickle(data)
    return Finding(check, where, f"{what} a pickle that {report.summary()}")


def _torch_or_pickle(where: str, data: bytes, what: str) -> Finding | None:
    """A finding when ``data`` is a pickle or a torch.save zip holding pickles, else None."""
    from pytest_kerasmodel.pickles import analyse_torch_payload, looks_like_pickle

    if data[:4] == b"PK\x03\x04":
        payload = analyse_torch_payload(data)
        if not payload.pickles:
            return None
        return Finding(
            "pickle",
            where,
            f"{what} a torch.save archive (loading it runs torch.load(weights_only=False)): "
            f"{payload.summary()}",
        )
    if looks_like_pickle(data):
        return _pickle_finding("pickle", where, what, data)
    return None


def _scan_other_member(members: _Members, info: zipfile.ZipInfo, label: str) -> list[Finding]:
    """Any other member: a pickle (whatever its name), a torch.save zip, a pickle-named file,
    an ``.npy`` object array. Reads two bytes of large members that start like neither."""
    from pytest_kerasmodel.pickles import looks_like_pickle

    if members.skipped(info):
        return []
    where = _member_where(info, label)
    pickled_name = info.filename.lower().endswith(_PICKLE_SUFFIXES)
    try:
        head = members.read(info, 6)
        small = info.file_size <= _SNIFF_WHOLE_BYTES
        if not (pickled_name or small or looks_like_pickle(head[:2]) or head[:4] == b"PK\x03\x04"):
            return []
        if head.startswith(b"\x93NUMPY"):
            return _npy_findings(io.BytesIO(members.read(info, MEMBER_MAX_BYTES)), where, "pickle")
        data = members.read(info, MEMBER_MAX_BYTES)
    except _ZIP_READ_ERRORS as error:
        if pickled_name:
            return [Finding("pickle", where, f"named like pickled data; cannot be read: {error}")]
        return [Finding("unreadable", where, f"cannot be read: {error}")]
    return _content_findings(where, data, pickled_name)


def _content_findings(where: str, data: bytes, pickled_name: bool) -> list[Finding]:
    """What a member or file that is neither config nor weights holds: a pickle or a
    torch.save archive, analysed; a pickle-named file that does not parse is still one."""
    found = _torch_or_pickle(where, data, "holds")
    if found is not None:
        return [found]
    if pickled_name:
        return [
            Finding(
                "pickle",
                where,
                "named like pickled data (.pkl, .pt, .joblib...), which a Keras artifact never "
                "holds, though its bytes do not parse as a pickle",
            )
        ]
    return []


def _npy_findings(fh: IO[bytes], where: str, check: str) -> list[Finding]:
    """An ``.npy`` file's header (numpy's literal parser); only an object array's data is read:
    it is a pickle after the header, analysed."""
    from numpy.lib import format as npy

    version = npy.read_magic(fh)
    if version == (1, 0):
        _, _, dtype = npy.read_array_header_1_0(fh)
    else:
        _, _, dtype = npy.read_array_header_2_0(fh)
    if not dtype.hasobject:
        return []
    return [
        _pickle_finding(
            check,
            where,
            f"object array (dtype {dtype}): reading it needs numpy's allow_pickle=True, which "
            "runs any code the pickle holds (Keras 3.15 refuses it); it is",
            fh.read(MEMBER_MAX_BYTES),
        )
    ]


def _scan_npz_member(members: _Members, info: zipfile.ZipInfo, label: str) -> list[Finding]:
    """Weights saved as ``.npz`` (a zip of ``.npy`` files): object arrays are pickles, analysed.
    A member of that name that is not a zip but a pickle is one too: ``np.load(...,
    allow_pickle=True)`` unpickles any file that is not a zip or an ``.npy``."""
    if members.skipped(info):
        return []
    where = _member_where(info, label)
    try:
        head = members.read(info, 4)
        if head != b"PK\x03\x04":
            if info.file_size > MEMBER_MAX_BYTES:
                return [Finding("unreadable", label, f"{info.file_size} bytes: not an .npz")]
            data = members.read(info, MEMBER_MAX_BYTES)
            if head.startswith(b"\x93NUMPY"):
                return _npy_findings(io.BytesIO(data), f"{label}: array", "npz-pickle")
            found = _torch_or_pickle(
                where,
                data,
                "is not an .npz archive: numpy's np.load(allow_pickle=True) unpickles it, and it "
                "is",
            )
            if found is not None:
                return [found]
            return [Finding("unreadable", label, "cannot be read as .npz: not a zip archive")]
        with members.zf.open(info) as member, zipfile.ZipFile(member) as inner:
            return _npz_arrays(inner, label)
    except (*_ZIP_READ_ERRORS, SyntaxError) as error:
        return [Finding("unreadable", label, f"cannot be read as .npz: {error}")]


def _npz_arrays(inner: zipfile.ZipFile, label: str) -> list[Finding]:
    """The arrays of an open ``.npz``: object arrays are pickles, analysed."""
    infos = inner.infolist()
    if len(infos) > ZIP_MAX_MEMBERS:
        return [Finding("zip-member-count", label, f"{len(infos)} arrays")]
    findings: list[Finding] = []
    for array in infos:
        array_where = f"{label}: array {array.filename!r}"
        if _bad_name(array.filename):
            findings.append(Finding("zip-path", array_where, _bad_name(array.filename) or ""))
        with inner.open(array) as fh:
            findings += _npy_findings(fh, array_where, "npz-pickle")
    return findings


def scan_artifact(
    path: str | os.PathLike[str] | Artifact, *, allowed_modules: Iterable[str] = ()
) -> list[Finding]:
    """Scan a Keras artifact without loading it: the kind comes from the bytes, not the name.

    A ``.keras`` zip gets the container checks, its ``config.json`` and its inner
    ``model.weights.h5``; an HDF5 file (legacy model, ``.weights.h5``) gets the HDF5 hygiene and
    its ``model_config``/``training_config``. A file that is neither, or cannot be parsed, gives
    an ``unreadable`` finding: what cannot be read cannot be vouched for.

    ``path`` may also be an :class:`~pytest_kerasmodel.artifacts.Artifact` already opened by
    :func:`~pytest_kerasmodel.artifacts.open_artifact`: the same scan, on the open file (the gate
    shares one open between its checks). A file that ``open_artifact`` refuses can only be
    scanned by path, which reports why as findings.
    """
    from pytest_kerasmodel import artifacts

    allowed = tuple(allowed_modules)
    if not isinstance(path, (str, os.PathLike)):  # an opened Artifact
        opened = path
        if opened.format in artifacts.EXPORTED_FORMATS:
            return _scan_exported(opened)
        if opened.format == artifacts.FORMAT_KERAS:
            assert opened.zip is not None and opened.zip_file is not None
            return _scan_open_zip(opened.zip, opened.zip_file, opened.path, allowed, opened)
        if opened.format in _FILE_FORMATS:
            assert opened.h5 is not None
            return _scan_h5_file(opened.h5, "", allowed, opened.nodes)
        return _scan_opened_parts(opened, allowed)
    artifact = Path(path)
    try:
        kind = artifacts.sniff(artifact)
    except ArtifactError as error:
        return [Finding("unreadable", artifact.name, error.reason)]
    if kind in artifacts.EXPORTED_FORMATS:
        try:
            with artifacts.open_artifact(artifact) as exported:
                return _scan_exported(exported)
        except ArtifactError as error:
            found = [Finding("unreadable", artifact.name, error.reason)]
            return (_scan_saved_model(artifact) if kind == "savedmodel" else []) + found
    if kind == "zip":
        return _scan_keras_zip(artifact, allowed)
    if kind == "hdf5":
        return _scan_h5_artifact(artifact, "", allowed)
    return _scan_parts_by_path(artifact, allowed)


_FILE_FORMATS = ("h5", "h5-weights", "weights.h5")


def _scan_opened_parts(opened: Artifact, allowed: tuple[str, ...]) -> list[Finding]:
    """A layout of several files, opened (references already checked by its reader): every
    JSON document a loader deserialises, and every HDF5 file, under the file's name."""
    findings: list[Finding] = []
    for name, config in opened.configs:
        findings += _prefixed(scan_config(config, allowed_modules=allowed), f"{name}:")
    for store in opened.stores:
        findings += _scan_h5_file(store.h5, f"{store.label}: ", allowed, store.nodes)
    folder = opened.path if opened.path.is_dir() else opened.path.parent
    for part in opened.parts:
        if not part.name.lower().endswith((".json", ".h5", ".hdf5")):
            findings += _scan_plain_file(folder / part.name, part.name)
    return findings


def _scan_plain_file(file: Path, label: str) -> list[Finding]:
    """A file of a folder layout that is neither JSON nor HDF5 (``model.weights.npz``, an
    asset): read for pickles, whatever its name, as an archive's members are."""
    from pytest_kerasmodel.pickles import looks_like_pickle

    npz = file.name == "model.weights.npz"
    pickled_name = file.name.lower().endswith(_PICKLE_SUFFIXES)
    try:
        with open(file, "rb") as fh:
            head = fh.read(6)
            fh.seek(0)
            if npz and head[:4] == b"PK\x03\x04":
                with zipfile.ZipFile(fh) as inner:
                    return _npz_arrays(inner, label)
            small = os.fstat(fh.fileno()).st_size <= _SNIFF_WHOLE_BYTES
            if not (npz or pickled_name or small or looks_like_pickle(head[:2])):
                return []
            data = fh.read(MEMBER_MAX_BYTES)
    except (*_ZIP_READ_ERRORS, SyntaxError) as error:
        return [Finding("unreadable", label, f"cannot be read: {error}")]
    if head.startswith(b"\x93NUMPY"):
        return _npy_findings(io.BytesIO(data), label, "pickle")
    if npz:
        what = "is not an .npz archive: np.load(allow_pickle=True) unpickles it, and it is"
        found = _torch_or_pickle(label, data, what)
        return [found] if found is not None else []
    return _content_findings(label, data, pickled_name)


def _scan_parts_by_path(path: Path, allowed: tuple[str, ...]) -> list[Finding]:
    """A folder layout or a manifest that its reader refused: scan each file it is made of on
    its own (JSON configs, HDF5 files, manifests' references), so every finding is named."""
    from pytest_kerasmodel import artifacts

    findings: list[Finding] = []
    folder = path if path.is_dir() else path.parent
    for file in artifacts.owned_files(path):
        label = file.relative_to(folder).as_posix()
        try:
            artifacts.check_path_kind(file)
        except ArtifactError as error:
            findings.append(Finding("unreadable", label, error.reason))
            continue
        if file.name.lower().endswith(".json"):
            try:
                if file.stat().st_size > CONFIG_MAX_BYTES:
                    findings.append(Finding("unreadable-config", label, "too large to be a config"))
                    continue
                text = file.read_bytes()
            except OSError as error:
                findings.append(Finding("unreadable-config", label, f"cannot be read: {error}"))
                continue
            config, problems = _parse_config(text, label)
            findings += problems
            weight_map = config.get("weight_map") if isinstance(config, dict) else None
            if isinstance(weight_map, dict):  # a sharded-weights manifest
                findings += _manifest_references(file, weight_map, label)
            elif config is not None:
                findings += _prefixed(scan_config(config, allowed_modules=allowed), f"{label}:")
        elif file.suffix.lower() in (".h5", ".hdf5"):
            findings += _scan_h5_artifact(file, f"{label}: ", allowed)
        else:
            findings += _scan_plain_file(file, label)
    return findings


def _manifest_references(file: Path, weight_map: dict[str, Any], label: str) -> list[Finding]:
    """Every shard a manifest names must be a plain file name beside it."""
    from pytest_kerasmodel.artifacts.base import inside
    from pytest_kerasmodel.artifacts.sharded import shard_names

    findings = []
    for name in shard_names({"weight_map": weight_map}):
        where = inside(file.parent, name)
        if where is None or where.parent != file.parent:
            findings.append(
                Finding(
                    "reference-outside",
                    f"{label}: weight_map",
                    f"names the shard {name!r}, which lies outside the artifact's folder: "
                    "loading it would read that file",
                )
            )
    return findings


def _scan_exported(opened: Artifact) -> list[Finding]:
    """An exported graph (SavedModel, ONNX, LiteRT, OpenVINO IR), parsed by its reader and never
    run: every operation or reference that reaches outside the graph (files, processes, Python,
    native code) is a finding."""
    from pytest_kerasmodel import artifacts

    findings = (
        _scan_saved_model(opened.path) if opened.format == artifacts.FORMAT_SAVEDMODEL else []
    )
    graph = opened.graph
    if graph is not None:
        findings += [Finding("graph", where, reason) for where, reason in graph.unsafe]
    return findings


def _scan_saved_model(folder: Path) -> list[Finding]:
    """A SavedModel folder: look for serialised Python functions in the Keras metadata."""
    findings: list[Finding] = []
    metadata = folder / "keras_metadata.pb"
    if metadata.is_file() and metadata.stat().st_size <= CONFIG_MAX_BYTES:
        data = metadata.read_bytes()
        if b'"function_type": "lambda"' in data or b'"__lambda__"' in data:
            findings.append(
                Finding(
                    "lambda-bytecode",
                    "keras_metadata.pb",
                    "a layer carries marshalled Python bytecode (Lambda)",
                )
            )
    return findings
