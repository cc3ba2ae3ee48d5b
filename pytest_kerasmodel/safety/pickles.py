"""Static analysis of pickle bytes: what a pickle would import and call, read from its opcodes.

A pickle is a small program: ``GLOBAL`` / ``STACK_GLOBAL`` / ``INST`` / ``OBJ`` import a
callable by module and name, ``REDUCE`` / ``NEWOBJ`` / ``NEWOBJ_EX`` / ``INST`` / ``OBJ`` call
it, ``BUILD`` calls the object's ``__setstate__``. Unpickling runs that program, so
``pickle.dumps`` of an object whose ``__reduce__`` returns ``(os.system, ("...",))`` runs a shell
command when loaded. This module reads the opcodes with the standard library's
:func:`pickletools.genops` and follows the stack symbolically (strings, memo, marks) to name
what would be imported and called. It never unpickles and never imports what a pickle names.

Hostile input never raises: a malformed or truncated stream ends the analysis with a
``problem``, and the work is bounded (:data:`MAX_OPCODES` opcodes, :data:`MAX_BYTES` bytes).

:data:`DATA_GLOBALS` is the short list of globals that only rebuild data (containers, numpy
arrays, torch tensors and storages); everything else a pickle calls is code that runs when it is
loaded. Torch module classes (``torch.nn.modules.linear.Linear``) are reported as *rebuilt*: they
are what ``torch.save(module)`` writes, and loading them needs ``torch.load(weights_only=False)``.
"""

from __future__ import annotations

import io
import pickletools
import struct
import zipfile
import zlib
from dataclasses import asdict, dataclass, field, replace
from typing import Any

__all__ = [
    "DATA_GLOBALS",
    "MAX_BYTES",
    "MAX_OPCODES",
    "PickleReport",
    "TorchPayloadReport",
    "analyse_pickle",
    "analyse_torch_payload",
    "looks_like_pickle",
]

#: Opcodes read before the analysis stops (a pickle of a large torch model has a few thousand).
MAX_OPCODES = 10_000_000
#: Bytes of one pickle analysed; the rest of a longer stream is not read.
MAX_BYTES = 256 * 1024 * 1024
#: Pickle members of a torch.save zip analysed, and members listed.
TORCH_MAX_MEMBERS = 10_000

#: Globals that only rebuild data: containers, numpy arrays and dtypes, torch tensors, storages
#: and dtypes. Calling them runs no code of the pickle's choosing beyond building that data.
DATA_GLOBALS = frozenset(
    {
        "_codecs.encode",  # how protocol 0-2 pickles write Python 3 bytes
        "builtins.bytearray",
        "builtins.complex",
        "builtins.frozenset",
        "builtins.set",
        "builtins.slice",
        "collections.OrderedDict",
        "collections.defaultdict",
        "numpy.core.multiarray._reconstruct",
        "numpy.core.multiarray.scalar",
        "numpy._core.multiarray._reconstruct",
        "numpy._core.multiarray.scalar",
        "numpy.dtype",
        "numpy.ndarray",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v2",
        "torch.Size",
        "torch.device",
        "torch.storage.UntypedStorage",
        "torch.storage.TypedStorage",
        "torch.storage._load_from_bytes",
        *(
            f"torch.{kind}Storage"
            for kind in (
                *("BFloat16", "Bool", "Byte", "Char", "ComplexDouble", "ComplexFloat"),
                *("Double", "Float", "Half", "Int", "Long", "Short", "Untyped"),
            )
        ),
        *(
            f"torch.{dtype}"
            for dtype in (
                *("bfloat16", "bool", "complex64", "complex128", "float16", "float32"),
                *("float64", "int8", "int16", "int32", "int64", "uint8"),
            )
        ),
    }
)

#: How users search for what a pickle names: ``pickle.dumps(os.system)`` writes ``posix.system``
#: on Linux and macOS, ``nt.system`` on Windows.
ALIASES = {
    "posix.system": "os.system",
    "nt.system": "os.system",
    "posix.popen": "os.popen",
    "nt.popen": "os.popen",
    "posix.execv": "os.execv",
    "posix.execve": "os.execve",
    "posix.spawnv": "os.spawnv",
    "posix.remove": "os.remove",
    "posix.unlink": "os.unlink",
    "posix.rmdir": "os.rmdir",
    "nt.remove": "os.remove",
    "__builtin__.eval": "builtins.eval",
    "__builtin__.exec": "builtins.exec",
}

#: What the usual dangerous callables do when a pickle calls them (by canonical name).
DANGEROUS = {
    "os.system": "runs a shell command",
    "os.popen": "runs a shell command",
    "os.execv": "replaces the process with another program",
    "os.execve": "replaces the process with another program",
    "os.execl": "replaces the process with another program",
    "os.execlp": "replaces the process with another program",
    "os.execvp": "replaces the process with another program",
    "os.spawnv": "starts a program",
    "os.spawnl": "starts a program",
    "os.remove": "deletes a file",
    "os.unlink": "deletes a file",
    "os.rmdir": "deletes a folder",
    "shutil.rmtree": "deletes a folder tree",
    "subprocess.Popen": "starts a process",
    "subprocess.call": "starts a process",
    "subprocess.run": "starts a process",
    "subprocess.check_call": "starts a process",
    "subprocess.check_output": "starts a process",
    "subprocess.getoutput": "runs a shell command",
    "subprocess.getstatusoutput": "runs a shell command",
    "pty.spawn": "starts a program on a terminal",
    "builtins.exec": "runs Python code",
    "builtins.eval": "runs Python code",
    "builtins.compile": "compiles Python code",
    "builtins.__import__": "imports any module",
    "builtins.getattr": "reaches any attribute (a gadget that turns into any call)",
    "builtins.open": "opens a file",
    "builtins.breakpoint": "starts a debugger",
    "importlib.import_module": "imports any module",
    "runpy._run_code": "runs Python code",
    "runpy._run_module_code": "runs Python code",
    "runpy.run_path": "runs a Python file",
    "runpy.run_module": "runs a Python module",
    "code.InteractiveInterpreter": "runs Python code",
    "webbrowser.open": "opens a URL",
    "socket.socket": "opens a network connection",
    "socket.create_connection": "opens a network connection",
    "urllib.request.urlopen": "fetches a URL",
    "pickle.loads": "unpickles more data",
    "_pickle.loads": "unpickles more data",
    "marshal.loads": "loads Python bytecode",
    "torch.load": "loads another torch pickle",
    "numpy.load": "loads a file, possibly a pickle",
    "ctypes.CDLL": "loads a native library",
}

_PROTOCOL_HEADS = frozenset(bytes([0x80, p]) for p in (2, 3, 4, 5))
#: Opcodes that can open a protocol 0/1 pickle (GLOBAL, MARK, empty containers, scalars...).
_PROTO01_FIRST = frozenset(b"c(]})NIJKLFGSTUVXl.di" + b"\x88\x89")
_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C  # torch's legacy format starts with this long


@dataclass(frozen=True)
class _Global:
    name: str  # "module.qualname", Python 3 spelling


@dataclass(frozen=True)
class _Made:
    """An object built by calling ``by`` (a global), so BUILD on it calls ``by``'s code."""

    by: str | None


_MARK = object()
_ANY = object()


@dataclass(frozen=True)
class PickleReport:
    """What one pickle stream would import and call, read from its opcodes.

    ``imports``: every global it names, in order (``posix.system``, ``torch._utils...``);
    ``calls``: those it calls (REDUCE, NEWOBJ, NEWOBJ_EX, INST, OBJ) or whose ``__setstate__``
    BUILD runs; ``problem``: why the stream is not a whole pickle (malformed, truncated, too
    long), None when it parsed to STOP. ``end``: the offset just after its STOP.
    """

    protocol: int | None
    imports: tuple[str, ...] = ()
    calls: tuple[str, ...] = ()
    opcodes: int = 0
    size: int = 0
    end: int = 0
    persistent_ids: int = 0
    extensions: tuple[int, ...] = ()
    problem: str | None = None

    @property
    def complete(self) -> bool:
        return self.problem is None

    @property
    def unsafe_calls(self) -> tuple[str, ...]:
        """Called globals that are neither data rebuilders nor torch modules."""
        return tuple(c for c in self.calls if not _is_data(c) and not _is_torch_module(c))

    @property
    def torch_modules(self) -> tuple[str, ...]:
        """Torch module classes, called or named in a persistent id (legacy torch.save)."""
        return tuple(i for i in self.imports if _is_torch_module(i))

    @property
    def unsafe_imports(self) -> tuple[str, ...]:
        """Imported, not called, not data: a global passed as an argument (e.g. to a gadget)."""
        return tuple(
            i
            for i in self.imports
            if i not in self.calls and not _is_data(i) and not _is_torch_module(i)
        )

    @property
    def data_only(self) -> bool:
        """Nothing but data rebuilders (and no extension-registry lookups)."""
        return self.complete and not self.extensions and all(_is_data(i) for i in self.imports)

    def summary(self) -> str:
        """What loading it would do, in one phrase: ``imports and calls posix.system (os.system:
        runs a shell command)``, ``rebuilds torch.nn.modules.linear.Linear (...)``."""
        parts = []
        if self.unsafe_calls:
            parts.append("imports and calls " + _names(self.unsafe_calls))
        if self.unsafe_imports:
            parts.append("imports " + _names(self.unsafe_imports))
        if self.torch_modules:
            parts.append(
                f"rebuilds {_names(self.torch_modules, describe=False)} (a torch module pickle: "
                "loading it runs torch.load(weights_only=False))"
            )
        if self.extensions:
            parts.append(f"looks up copyreg extension code(s) {list(self.extensions)[:5]}")
        data = [i for i in self.imports if _is_data(i)]
        if not parts:
            parts.append(
                "only rebuilds data (" + ", ".join(data[:6]) + ")" if data else "imports nothing"
            )
        if self.problem:
            parts.append(f"the stream is malformed ({self.problem})")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "imports": list(self.imports),
            "calls": list(self.calls),
            "extensions": list(self.extensions),
            "unsafe_calls": list(self.unsafe_calls),
            "data_only": self.data_only,
        }


@dataclass(frozen=True)
class TorchPayloadReport:
    """Every pickle in ``torch.save`` bytes. ``layout``: ``"zip"`` (torch 1.6+:
    ``<name>/data.pkl`` and storages under ``<name>/data/``), ``"legacy"``
    (``_use_new_zipfile_serialization=False``: pickles back to back after a magic number),
    ``"pickle"`` (a bare pickle) or ``"unknown"``."""

    layout: str
    pickles: tuple[tuple[str, PickleReport], ...] = ()
    storages: int = 0
    notes: tuple[str, ...] = field(default=())
    problem: str | None = None

    @property
    def imports(self) -> tuple[str, ...]:
        return _unique(i for _, report in self.pickles for i in report.imports)

    @property
    def calls(self) -> tuple[str, ...]:
        return _unique(c for _, report in self.pickles for c in report.calls)

    def summary(self) -> str:
        if not self.pickles:
            return f"holds no pickle that can be read ({self.problem or 'unknown layout'})"
        texts = [
            f"{where}: {report.summary()}"
            for where, report in self.pickles
            if report.imports or report.extensions or report.problem
        ] or [f"{len(self.pickles)} pickle(s) of plain values"]
        if self.problem:
            texts.append(self.problem)
        return "; ".join(texts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "layout": self.layout,
            "pickles": [{"where": w, **r.to_dict()} for w, r in self.pickles],
            "storages": self.storages,
            "notes": list(self.notes),
            "problem": self.problem,
            "imports": list(self.imports),
            "calls": list(self.calls),
        }


def _unique(items: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _is_data(name: str) -> bool:
    return name in DATA_GLOBALS


def _is_torch_module(name: str) -> bool:
    return name.startswith("torch.nn.modules.") or name.startswith("torch.nn.parameter.")


def _names(names: tuple[str, ...], *, describe: bool = True, limit: int = 6) -> str:
    shown = []
    for name in names[:limit]:
        alias = ALIASES.get(name)
        what = DANGEROUS.get(alias or name) if describe else None
        extra = ": ".join(x for x in (alias, what) if x)
        shown.append(f"{name} ({extra})" if extra else name)
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(shown) + more


def _canonical(module: str, name: str, protocol: int | None) -> str:
    """``module.name`` as Python 3 would import it (protocol 0-2 pickles use Python 2 names)."""
    if protocol is None or protocol < 3:
        import _compat_pickle

        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
    return f"{module}.{name}"


def _text(value: Any, limit: int = 512) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + "..."
    return None


_STRING_OPS = frozenset(
    {
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
        "UNICODE",
        "BINUNICODE",
        "SHORT_BINUNICODE",
        "BINUNICODE8",
        "BINBYTES",
        "SHORT_BINBYTES",
        "BINBYTES8",
    }
)
_PUT_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_GET_OPS = frozenset({"GET", "BINGET", "LONG_BINGET"})


class _Analysis:
    def __init__(self, max_opcodes: int) -> None:
        self.max_opcodes = max_opcodes
        self.stack: list[Any] = []
        self.memo: dict[int, Any] = {}
        self.protocol: int | None = None
        self.highest = 0
        self.imports: list[str] = []
        self.calls: list[str] = []
        self.extensions: list[int] = []
        self.persistent = 0
        self.count = 0
        self.end = 0

    def pop(self) -> Any:
        if not self.stack or self.stack[-1] is _MARK:
            raise ValueError("stack underflow")
        return self.stack.pop()

    def pop_mark(self) -> list[Any]:
        items: list[Any] = []
        while self.stack:
            item = self.stack.pop()
            if item is _MARK:
                items.reverse()
                return items
            items.append(item)
        raise ValueError("no MARK on the stack")

    def imported(self, name: str) -> _Global:
        if name not in self.imports:
            self.imports.append(name)
        return _Global(name)

    def called(self, target: Any) -> _Made:
        name = target.name if isinstance(target, _Global) else None
        if name is not None and name not in self.calls:
            self.calls.append(name)
        return _Made(name)

    def step(self, op: pickletools.OpcodeInfo, arg: Any, pos: int) -> bool:
        """Apply one opcode; True at STOP."""
        name = op.name
        self.highest = max(self.highest, op.proto)
        if name == "PROTO":
            self.protocol = int(arg)
            return False
        if name == "STOP":
            self.pop()
            self.end = pos + 1
            return True
        if name == "GLOBAL":
            module, _, qualname = str(arg).partition(" ")
            self.stack.append(self.imported(_canonical(module, qualname, self.protocol)))
            return False
        if name == "STACK_GLOBAL":
            attribute, owner = _text(self.pop()), _text(self.pop())
            if owner is None or attribute is None:
                self.stack.append(self.imported("<a global named by computed strings>"))
            else:
                self.stack.append(self.imported(_canonical(owner, attribute, self.protocol)))
            return False
        if name == "INST":
            module, _, qualname = str(arg).partition(" ")
            self.pop_mark()
            target = self.imported(_canonical(module, qualname, self.protocol))
            self.stack.append(self.called(target))
            return False
        if name == "OBJ":
            items = self.pop_mark()
            if not items:
                raise ValueError("OBJ without a class")
            self.stack.append(self.called(items[0]))
            return False
        if name == "REDUCE":
            self.pop()  # arguments
            self.stack.append(self.called(self.pop()))
            return False
        if name in ("NEWOBJ", "NEWOBJ_EX"):
            self.pop()
            if name == "NEWOBJ_EX":
                self.pop()
            self.stack.append(self.called(self.pop()))
            return False
        if name == "BUILD":
            self.pop()  # state
            obj = self.pop()
            if isinstance(obj, _Made) and obj.by is not None:
                self.called(_Global(obj.by))  # __setstate__ of the class it made
            self.stack.append(obj)
            return False
        if name in ("EXT1", "EXT2", "EXT4"):
            self.extensions.append(int(arg))
            self.stack.append(_ANY)
            return False
        if name in ("PERSID", "BINPERSID"):
            if name == "BINPERSID":
                self.pop()
            self.persistent += 1
            self.stack.append(_ANY)
            return False
        if name in _STRING_OPS:
            self.stack.append(_text(arg) if isinstance(arg, (str, bytes)) else _ANY)
            return False
        if name in _PUT_OPS:
            if not self.stack or self.stack[-1] is _MARK:
                raise ValueError("PUT with nothing to memoise")
            self.memo[int(arg)] = self.stack[-1]
            return False
        if name == "MEMOIZE":
            if not self.stack or self.stack[-1] is _MARK:
                raise ValueError("MEMOIZE with nothing to memoise")
            self.memo[len(self.memo)] = self.stack[-1]
            return False
        if name in _GET_OPS:
            if int(arg) not in self.memo:
                raise ValueError(f"memo key {arg} read before it was written")
            self.stack.append(self.memo[int(arg)])
            return False
        if name == "DUP":
            self.stack.append(self.stack[-1] if self.stack else self.pop())
            return False
        # everything else, from pickletools' stack effects: marks, containers, scalars
        before = op.stack_before
        if pickletools.markobject in before:
            at = before.index(pickletools.markobject)
            self.pop_mark()
            for _ in range(at):
                self.pop()
        else:
            for _ in before:
                self.pop()
        for kind in op.stack_after:
            self.stack.append(_MARK if kind is pickletools.markobject else _ANY)
        return False

    def run(self, data: bytes, start: int) -> str | None:
        """Follow the opcodes from ``start``; the problem that stopped it, or None at STOP."""
        stream = io.BytesIO(data)
        stream.seek(start)
        try:
            for op, arg, pos in pickletools.genops(stream):
                self.count += 1
                if self.count > self.max_opcodes:
                    return f"more than {self.max_opcodes} opcodes: analysis stopped"
                if self.step(op, arg, pos or 0):
                    return None
        except (ValueError, IndexError, KeyError, OverflowError, TypeError, EOFError) as error:
            where = stream.tell()
            return f"malformed pickle stream near byte {where}: {error}"
        return "the stream ends before its STOP opcode"


def _analyse_at(data: bytes, start: int, max_opcodes: int) -> PickleReport:
    analysis = _Analysis(max_opcodes)
    problem = analysis.run(data, start)
    return PickleReport(
        protocol=analysis.protocol if analysis.protocol is not None else analysis.highest,
        imports=tuple(analysis.imports),
        calls=tuple(analysis.calls),
        opcodes=analysis.count,
        size=(analysis.end or len(data)) - start,
        end=analysis.end,
        persistent_ids=analysis.persistent,
        extensions=tuple(analysis.extensions),
        problem=problem,
    )


def analyse_pickle(data: bytes, *, max_opcodes: int = MAX_OPCODES) -> PickleReport:
    """What the pickle in ``data`` would import and call when loaded. Never raises on bad input:
    a malformed, truncated or over-long stream gives a report with ``problem`` set."""
    report = _analyse_at(bytes(data[:MAX_BYTES]), 0, max_opcodes)
    if len(data) > MAX_BYTES and report.problem is not None:
        problem = f"only its first {MAX_BYTES} bytes were analysed ({report.problem})"
        return replace(report, problem=problem)
    return report


def looks_like_pickle(data: bytes) -> bool:
    """True when ``data`` starts a pickle: a PROTO opcode for protocol 2-5, or a protocol 0/1
    stream that parses (with a consistent stack) to its STOP opcode."""
    head = bytes(data[:2])
    if head in _PROTOCOL_HEADS:
        return True
    if not head or head[0] not in _PROTO01_FIRST:
        return False
    return _analyse_at(bytes(data[:MAX_BYTES]), 0, MAX_OPCODES).complete


def analyse_torch_payload(data: bytes, *, max_opcodes: int = MAX_OPCODES) -> TorchPayloadReport:
    """Every pickle in ``torch.save`` output, in either layout torch writes (see
    :class:`TorchPayloadReport`). Reads the zip's directory and its ``.pkl`` members only."""
    data = bytes(data)
    if data[:4] == b"PK\x03\x04":
        return _torch_zip(data, max_opcodes)
    if looks_like_pickle(data):
        return _torch_legacy(data, max_opcodes)
    return TorchPayloadReport("unknown", problem="neither a torch.save zip nor a pickle")


def _torch_zip(data: bytes, max_opcodes: int) -> TorchPayloadReport:
    pickles: list[tuple[str, PickleReport]] = []
    notes: list[str] = []
    storages = 0
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            if len(infos) > TORCH_MAX_MEMBERS:
                return TorchPayloadReport(
                    "zip", problem=f"{len(infos)} members (limit {TORCH_MAX_MEMBERS})"
                )
            for info in infos:
                parts = info.filename.split("/")
                if len(parts) >= 3 and parts[-2] == "data" and parts[-3:-2] != [".data"]:
                    storages += 1
                elif ".data" in parts[:-1]:
                    notes.append(f"{info.filename} (torch's storage metadata)")
                if info.filename.endswith(".pkl"):
                    if info.file_size > MAX_BYTES:
                        pickles.append(
                            (
                                info.filename,
                                PickleReport(None, problem=f"{info.file_size} bytes: too large"),
                            )
                        )
                        continue
                    with zf.open(info) as member:
                        body = member.read(MAX_BYTES)
                    pickles.append((info.filename, analyse_pickle(body, max_opcodes=max_opcodes)))
    except _ZIP_ERRORS as error:
        return TorchPayloadReport(
            "zip", tuple(pickles), storages, tuple(notes), f"damaged zip: {error}"
        )
    problem = None if pickles else "a zip without a .pkl member"
    return TorchPayloadReport("zip", tuple(pickles), storages, tuple(notes), problem)


_ZIP_ERRORS = (
    zipfile.BadZipFile,
    RuntimeError,  # a member flagged encrypted: "password required for extraction"
    OSError,
    ValueError,
    EOFError,
    NotImplementedError,
    KeyError,
    OverflowError,
    struct.error,
    zlib.error,
)
_LEGACY_NAMES = ("magic number", "protocol version", "system info", "data", "storage keys")


def _torch_legacy(data: bytes, max_opcodes: int) -> TorchPayloadReport:
    """Legacy torch.save: magic number, protocol version, system info, the object, the storage
    keys (five pickles back to back), then the raw storage bytes. A bare pickle is "pickle"."""
    first = _analyse_at(data, 0, max_opcodes)
    if not first.complete or not _is_magic(data[: first.end]):
        return TorchPayloadReport("pickle", (("pickle", first),))
    pickles = [(_LEGACY_NAMES[0], first)]
    offset = first.end
    for name in _LEGACY_NAMES[1:]:
        if offset >= len(data) or not looks_like_pickle(data[offset : offset + 2]):
            return TorchPayloadReport(
                "legacy", tuple(pickles), problem=f"the {name} pickle is missing"
            )
        report = _analyse_at(data, offset, max_opcodes)
        pickles.append((name, report))
        if not report.complete:
            return TorchPayloadReport("legacy", tuple(pickles), problem=report.problem)
        offset = report.end
    keys_start = offset - pickles[-1][1].size
    ops = pickletools.genops(data[keys_start:offset])
    keys = sum(1 for op, _, _ in ops if op.name in _STRING_OPS)
    return TorchPayloadReport(
        "legacy",
        tuple(pickles),
        storages=keys,
        notes=(f"{len(data) - offset} bytes of raw storage data follow the pickles",),
    )


def _is_magic(prefix: bytes) -> bool:
    """The magic-number pickle torch writes first: ``PROTO 2, LONG1 <magic>, STOP``."""
    for op, arg, _ in pickletools.genops(prefix):
        if op.name == "LONG1":
            return bool(arg == _MAGIC_NUMBER)
    return False
