"""The config scan: every class, module and function a Keras config would build, read as JSON."""

from __future__ import annotations

import base64
import binascii
import json
import re
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
    FUNCTION_ALIASES,
    FUNCTION_KEYS,
    SUSPICIOUS_CALLABLES,
    SUSPICIOUS_DOTTED_MODULES,
    SUSPICIOUS_MODULES,
    TORCH_MAX_BASE64,
    _is_keras_module,
    _module_in,
    keras_names,
)

#: A string that reads as a reference to code: dotted identifiers, maybe ``package>name``.
_REFERENCE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:[.>:][A-Za-z_][A-Za-z0-9_]*)*")
_URL = re.compile(r"(?:https?|ftp|file|gs|s3|hf|kaggle)://\S+", re.IGNORECASE)
_WORD = re.compile(rb"<lambda>|<listcomp>|[A-Za-z_][A-Za-z0-9_]{1,40}")


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
    def __init__(self, allowed_modules: Iterable[str], allowed_classes: Iterable[str] = ()) -> None:
        self.allowed = tuple(m.strip() for m in allowed_modules if m and m.strip())
        self.allowed_classes = frozenset(c.strip() for c in allowed_classes if c and c.strip())
        self.known = keras_names()
        self.findings: list[Finding] = []
        # TFOpLambda configs: their ``function`` is a TensorFlow API name, judged by check_tf_op
        self.tf_op_configs: set[int] = set()

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

    def class_hint(self, name: str) -> str:
        return (
            f"building it needs code from outside the file that defines {name!r} (a "
            "custom_objects entry or a registered class); if you trust that code, allow the name "
            f"with keras_allowed_classes = {name}"
        )

    def known_name(self, name: str) -> bool:
        """Whether a bare class or function name is one Keras defines or the user allowed."""
        return (
            name in self.known.names
            or name in self.known.registered
            or name in self.allowed_classes
            or name.lower() in self.known.lowered
            or name.lower() in FUNCTION_ALIASES
        )

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
        """Any string in any key: a reference to dangerous code, an unsafe switch or a URL is a
        finding wherever it sits, since a loader (or a later Keras) may read keys Keras ignores
        today; prose that merely mentions such a name is not (the whole value must be one)."""
        extra = [key] if key is not None else []
        stripped = text.strip()
        if _URL.fullmatch(stripped):
            self.add(
                "file-reference",
                node,
                f"{stripped[:120]!r} is a URL: a loader that follows it (keras.utils.get_file, a "
                "preset or vocabulary path) fetches code or data from the network at load time",
                extra,
            )
            return
        if len(stripped) > 200 or not _REFERENCE.fullmatch(stripped):
            return
        parts = re.split(r"[.>:]", stripped)
        last = parts[-1]
        if any(word in last.lower() for word in _UNSAFE_WORDS):
            self.add(
                "unsafe-switch",
                node,
                f"references {stripped!r}, the switch that turns unsafe deserialization on: "
                "whatever calls it disables safe_mode for everything loaded after it "
                "(CVE-2025-9906)",
                extra,
            )
        elif parts[0] in (SUSPICIOUS_DOTTED_MODULES if len(parts) > 1 else SUSPICIOUS_MODULES):
            self.add(
                "suspicious-reference",
                node,
                f"names {stripped!r}, in Python's {parts[0]!r} module (processes, files, network "
                "or the interpreter), never modelling code: a loader that resolves it runs it",
                extra,
            )
        elif last in SUSPICIOUS_CALLABLES and (len(parts) == 1 or not _is_keras_module(parts[0])):
            self.add(
                "suspicious-reference",
                node,
                f"names the Python callable {stripped!r}, which runs code it is given",
                extra,
            )
        elif last in _DANGEROUS_NAMES and (len(parts) == 1 or _is_keras_module(parts[0])):
            self.add(
                "dangerous-function",
                node,
                f"names {stripped!r}, which is not modelling code ({_gadget_reason(last)}): a "
                "loader that resolves it by name runs it",
                extra,
            )

    def check_function_names(self, node: _Node, key: str, value: Any) -> None:
        """A key Keras resolves by name (activation, loss, metrics, ...): each bare string must
        be a function or class Keras defines, or one the user allowed."""
        if isinstance(value, str):
            names = [value]
        elif isinstance(value, list):
            names = [v for v in value if isinstance(v, str)]
        elif isinstance(value, dict) and not isinstance(value.get("class_name"), str):
            names = [v for v in value.values() if isinstance(v, str)]
        else:
            return
        for name in names:
            if not name or self.known_name(name) or not _REFERENCE.fullmatch(name):
                continue
            self.add(
                "unknown-class",
                node,
                f"names the function {name!r}, which Keras, tf-keras and KerasHub do not define: "
                f"{self.class_hint(name)}",
                [key],
            )

    def visit_dict(self, node: _Node) -> set[str]:
        """Check one dict; return the keys whose string values need no generic string check."""
        value: dict[str, Any] = node.value
        handled: set[str] = {"function"} if id(value) in self.tf_op_configs else set()
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
        for key in FUNCTION_KEYS.intersection(value):
            self.check_function_names(node, key, value[key])

        if class_name == "__lambda__" or "__python_function__" in value:
            what = _describe_function(value, None)
            self.add("lambda", node, f"a serialised Python function: {what}; {_LAMBDA_RUNS}")
            return set(value)
        if class_name == "__python_function__":
            self.add("lambda", node, f"a serialised Python function; {_LAMBDA_RUNS}")
            return set(value)

        # Legacy serialised functions: Lambda's function/output_shape/mask, Keras 1 Merge's mode.
        lambda_keys: set[str] = set()
        for key, kind in value.items():
            if not (isinstance(key, str) and key.endswith("_type") and isinstance(kind, str)):
                continue
            base = key[: -len("_type")]
            if kind == "lambda":
                what = _describe_function(value.get(base), "lambda")
                self.add(
                    "lambda",
                    node,
                    f"{base!r} is {what} ({key}='lambda'): Keras unmarshals and runs it when the "
                    "layer is built; a Lambda layer cannot be loaded safely",
                    [base],
                )
                lambda_keys.add(base)
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
        if lambda_keys and "function" not in lambda_keys and "config" not in value:
            lambda_keys.add("function")  # a Keras 1 Merge: its mode was the code, said above

        if not isinstance(class_name, str):
            return handled
        if class_name in self.known.markers:
            return handled | {"class_name"}

        module = value.get("module")
        registered = value.get("registered_name")
        inner = value.get("config")
        handled.update({"class_name", "registered_name"})

        body = inner if isinstance(inner, dict) else value
        nested = body.get("function") if isinstance(body, dict) else None
        if (isinstance(nested, dict) and nested.get("class_name") == "__lambda__") or (
            body is inner and isinstance(body, dict) and body.get("function_type") == "lambda"
        ):
            lambda_keys.add("function")  # its own dict is the finding, at '> function'
        if class_name == "Lambda" and "function" not in lambda_keys:
            what = _describe_function(body.get("function"), body.get("function_type"), body)
            self.add(
                "lambda",
                me,
                f"a Lambda layer, its function {what}: building the layer runs that Python code "
                "(bytecode or source from the file, or a function it imports); a Lambda cannot "
                "be loaded safely, safe_mode or not; rebuild it as a registered layer class",
                ["function"],
            )
            if isinstance(body, dict):
                for key in ("function", "module", "function_type", "output_shape", "mask"):
                    if isinstance(body.get(key), str) and not _URL.fullmatch(body[key]):
                        handled.add(key)

        if class_name in ("TFOpLambda", "SlicingOpLambda") and isinstance(inner, dict):
            self.check_tf_op(me, str(inner.get("function", "")))
            self.tf_op_configs.add(id(inner))
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

        if class_name == "TorchModuleWrapper":
            payload = inner.get("module") if isinstance(inner, dict) else None
            self.check_torch_module(
                me, payload, present=isinstance(inner, dict) and "module" in inner
            )

        if class_name == "function":
            handled.update({"config", "module"})
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
            if not self.known.defines(module, class_name) and not self.registered_ok(registered):
                self.add(
                    "unknown-class",
                    me,
                    f"class {class_name!r} is not one module {module!r} (Keras) defines: "
                    f"{self.class_hint(class_name)}",
                )
                return handled
        elif not self.known_name(class_name) and not self.registered_ok(registered):
            if isinstance(registered, str) and re.search(r"[>.]", registered):
                self.check_registered(me, class_name, registered)  # names its package
                return handled
            self.add(
                "unknown-class",
                me,
                f"class {class_name!r} is not one Keras, tf-keras or KerasHub defines: "
                f"{self.class_hint(class_name)}",
            )
            return handled
        if isinstance(registered, str) and registered and registered != class_name:
            self.check_registered(me, class_name, registered)
        if class_name in _DANGEROUS_NAMES:
            self.add(
                "dangerous-function",
                me,
                f"{class_name!r} is not a modelling object: Keras refuses it when loading",
            )
        return handled

    def registered_ok(self, registered: Any) -> bool:
        """Whether a registered name is one Keras itself registers, or the user allowed."""
        if not isinstance(registered, str) or not registered:
            return False
        if registered in self.known.registered or registered in self.allowed_classes:
            return True
        package = re.split(r"[>.]", registered, maxsplit=1)[0]
        return self.allowed_by_user(package)

    def check_registered(self, node: _Node, class_name: str, registered: str) -> None:
        """A ``registered_name`` other than the class name: ``package>Name`` (or the dotted
        ``package.Name`` some writers use) names the package that registered it."""
        if self.registered_ok(registered):
            return
        separator = ">" if ">" in registered else "."
        if separator not in registered:
            if not self.known_name(registered):
                self.add(
                    "unknown-class",
                    node,
                    f"class {class_name!r} is registered as {registered!r}, a name Keras does "
                    f"not define: {self.class_hint(registered)}",
                )
            return
        package = registered.split(separator, 1)[0]
        if _is_keras_module(package) and self.known_name(registered.rsplit(separator, 1)[1]):
            return
        self.add(
            "foreign-module",
            node,
            f"class {class_name!r} is a custom object registered as {registered!r} by "
            f"package {package!r}, outside Keras; {self.hint(package)}",
        )

    def check_function(self, node: _Node, module: Any, name: Any, registered: Any) -> None:
        fn = name if isinstance(name, str) else str(registered)
        if not isinstance(module, str) or not module:
            if fn in _DANGEROUS_NAMES:
                self.add("dangerous-function", node, f"function {fn!r} is not modelling code")
            elif not self.known_name(fn) and not self.registered_ok(registered):
                self.add(
                    "unknown-class",
                    node,
                    f"function {fn!r} is not one Keras defines: {self.class_hint(fn)}",
                )
            return
        if ">" in fn or (isinstance(registered, str) and ">" in registered):
            full_name = fn if ">" in fn else str(registered)
            package = full_name.split(">", 1)[0]
            if self.registered_ok(full_name) or self.allowed_by_user(package):
                return
            if not _is_keras_module(package) or not self.known_name(full_name.split(">")[-1]):
                self.add(
                    "foreign-module",
                    node,
                    f"function {full_name!r} is a custom function registered by package "
                    f"{package!r}, outside Keras; {self.hint(package)}",
                )
                return
        if module == "builtins":
            if fn in _PY_BUILTINS or fn.startswith("__") or not self.known_name(fn):
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
        elif not self.known.defines(module, fn.split(">")[-1]):
            self.add(
                "unknown-class",
                node,
                f"function {full} is not one Keras defines: {self.class_hint(fn)}",
            )

    def check_torch_module(self, node: _Node, payload: Any, *, present: bool = True) -> None:
        """``TorchModuleWrapper``'s ``module``: base64 of ``torch.save(module)`` bytes, which its
        ``from_config`` hands to ``torch.load(weights_only=False)``: decoded and analysed. A
        wrapper without the key is a finding too: whatever builds it is torch code, not Keras."""
        from pytest_kerasmodel.safety.pickles import analyse_torch_payload

        name = node.layers[-1] if node.layers else "?"
        if not present:
            self.add(
                "torch-module",
                node,
                f"TorchModuleWrapper layer {name!r} wraps a torch module the file does not carry: "
                "building it needs a torch.nn.Module from code outside Keras (or, in the Keras "
                "versions that store it, torch.load of a pickle); it cannot be vouched for",
            )
            return
        what = (
            f"TorchModuleWrapper layer {name!r} carries a torch.save pickle (loading it runs "
            "torch.load(weights_only=False); Keras 3.11.0-3.11.2 do so even under safe_mode, "
            "CVE-2025-49655)"
        )
        if not isinstance(payload, str):
            self.add(
                "torch-module", node, f"{what}; its payload is not a base64 string", ["module"]
            )
            return
        if len(payload) > TORCH_MAX_BASE64:
            reason = f"{what}; its payload ({len(payload)} characters) is too large to analyse"
            self.add("torch-module", node, reason, ["module"])
            return
        try:
            data = base64.b64decode(payload.encode("ascii"), validate=True)
        except (ValueError, UnicodeEncodeError) as error:
            reason = f"{what}; its payload cannot be decoded as base64 ({error})"
            self.add("torch-module", node, reason, ["module"])
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
        self.add("torch-module", node, f"{what}; {detail}", ["module"])

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


_LAMBDA_RUNS = (
    "loading it runs that code (safe_mode refuses it; safe_mode=False or old Keras run it)"
)


def _describe_function(function: Any, kind: Any, body: dict[str, Any] | None = None) -> str:
    """What a serialised function is, in words: bytecode (of which code object, naming what),
    source, or a reference to a named function. Reads the bytes; never unmarshals them."""
    if isinstance(function, dict):
        if function.get("class_name") == "__lambda__":
            inner = function.get("config")
            code = inner.get("code") if isinstance(inner, dict) else None
            return f"marshalled bytecode{_bytecode_names(code)} (Keras 3 __lambda__)"
        if function.get("class_name") == "function" or "module" in function:
            module = function.get("module")
            fn = function.get("config") or function.get("registered_name")
            return f"a reference to {module}.{fn}"
        code = function.get("code") or (function.get("config") or {}).get("code")
        if isinstance(code, str):
            return f"marshalled bytecode{_bytecode_names(code)}"
        return "a serialised function of unknown shape"
    if isinstance(function, (list, tuple)):
        first = function[0] if function else None
        return f"marshalled bytecode{_bytecode_names(first)} (Keras 2 [code, defaults, closure])"
    if isinstance(function, str):
        text = function.strip()
        module = (body or {}).get("module") if isinstance(body, dict) else None
        if kind == "function" or (kind is None and _REFERENCE.fullmatch(text)):
            where = f"{module}." if isinstance(module, str) and module else ""
            return f"a reference to {where}{text}"
        if kind != "lambda" and ("lambda" in text or "def " in text or "\n" in text):
            return f"Python source {text[:80]!r}"
        if kind not in (None, "lambda"):
            return f"{text[:80]!r} (function_type {kind!r})"
        return f"marshalled bytecode{_bytecode_names(text)}"
    if function is None:
        return "missing (whatever Keras finds to build it is code outside the file)"
    return f"of type {type(function).__name__}"


def _bytecode_names(code: Any) -> str:
    """`` of <lambda> naming os, system``: the code object's name and the identifiers its
    marshalled bytes hold that reach outside tensor maths (found by reading, not unmarshalling).
    Keras 2 and 3 store base64 of the marshal bytes, Keras 1 the raw bytes as a string."""
    if not isinstance(code, str) or not code:
        return ""
    try:
        data = base64.b64decode(code.encode("ascii"), validate=False)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        data = b""
    if b"<" not in data and b"\xe3" not in data[:1]:
        data = code.encode("latin-1", "replace")
    words = [w.decode("ascii") for w in _WORD.findall(data[:1_000_000])]
    own = next((w for w in words if w.startswith("<")), None)
    if own is None and words:
        own = words[-1]  # marshal writes co_name last but for co_qualname / co_firstlineno
    risky = sorted(
        {w for w in words if w in SUSPICIOUS_MODULES or w in SUSPICIOUS_CALLABLES}
        | {w for w in words if w in ("system", "popen", "Popen", "open", "getattr", "loads")}
    )
    text = f" of {own}" if own else ""
    return text + (f" naming {', '.join(risky)}" if risky else "")


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


def scan_config(
    config: Any, *, allowed_modules: Iterable[str] = (), allowed_classes: Iterable[str] = ()
) -> list[Finding]:
    """Walk a whole model config and return what must not be deserialised.

    ``config`` is the parsed JSON of a ``.keras`` archive's ``config.json`` or of a legacy HDF5
    file's ``model_config``/``training_config`` (Keras 1 and 2, tf.keras, Keras 3; Sequential
    stored as a list included). Every dict and list is visited, so nested models, wrappers
    (Bidirectional, TimeDistributed), compile configs and unknown keys are all covered.
    ``allowed_modules`` are module prefixes (``"mypkg"`` allows ``mypkg.layers``) the user trusts;
    ``allowed_classes`` bare class or function names (``"MyDense"``, as legacy HDF5 stores them)
    or whole registered names (``"mypkg>MyDense"``). Every other class, module, registered name
    and function must be one Keras, tf-keras or KerasHub defines (:mod:`.generate_allowlist`).
    """
    return _ConfigScanner(allowed_modules, allowed_classes).scan(config)


def _parse_config(text: str | bytes, source: str) -> tuple[Any, list[Finding]]:
    try:
        return json.loads(text), []
    except RecursionError:
        return None, [Finding("unreadable-config", source, "JSON nested too deeply to scan")]
    except (ValueError, UnicodeDecodeError) as error:
        return None, [Finding("unreadable-config", source, f"not valid JSON: {error}")]
