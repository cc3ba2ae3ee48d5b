"""The config scan: every class, module and function a Keras config would build, read as JSON."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pytest_kerasmodel.safety.base import Finding
from pytest_kerasmodel.safety.rules import (
    _DANGEROUS_CLASS_MODULES,
    _DANGEROUS_MODULES,
    _DANGEROUS_NAMES,
    _FILE_KEYS,
    _PY_BUILTINS,
    _TF_OP_NAMES,
    _TF_OP_PREFIXES,
    _TF_RAW_OPS,
    _UNSAFE_WORDS,
    TORCH_MAX_BASE64,
    _is_keras_module,
    _module_in,
)


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
        from pytest_kerasmodel.safety.pickles import analyse_torch_payload

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
