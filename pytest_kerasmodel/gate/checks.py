"""The gate's checks on one artifact.

integrity, safety, load, finite, structure, predictions and budgets.

:func:`check_artifact` runs the requested checks (and the checks they depend on) on one artifact and
returns plain JSON data, so that it can run in the isolated worker and travel back over a pipe.
Nothing here imports Keras unless a load or predictions check needs the model; h5py is imported
inside the functions that read HDF5.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import struct
import sys
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, BinaryIO

from pytest_kerasmodel import artifacts
from pytest_kerasmodel.artifacts.base import KERAS_ZIP_WEIGHTS_NPZ
from pytest_kerasmodel.backends import LOADER_ENV, TF_KERAS
from pytest_kerasmodel.errors import ArtifactError

CHECKS = (
    "integrity",
    "safety",
    "load",
    "compile",
    "finite",
    "structure",
    "predictions",
    "budgets",
)
#: checks collected only when asked for (``compile``: --keras-load-compile)
OPTIONAL_CHECKS = ("compile",)


def select_checks(names: Iterable[str] = (), *, with_optional: bool = False) -> list[str]:
    """The checks to run, in :data:`CHECKS` order: ``names`` (``--keras-checks``,
    ``kerasmodel gate --checks``), or when none are named every check but the optional ones;
    ``with_optional`` adds those (``--keras-load-compile``). Raises ValueError naming an unknown
    check."""
    named = list(names)
    unknown = [n for n in named if n not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; known: {', '.join(CHECKS)}")
    chosen = set(named) or {c for c in CHECKS if c not in OPTIONAL_CHECKS}
    if with_optional:
        chosen.update(OPTIONAL_CHECKS)
    return [c for c in CHECKS if c in chosen]


# check -> checks whose failure means it cannot run
DEPENDS = {
    "integrity": (),
    "safety": (),
    "load": ("integrity", "safety"),
    "compile": ("integrity", "safety"),
    "finite": ("integrity",),  # the integrity check counts NaN and Inf in its single read
    "structure": ("integrity",),  # the integrity check's description holds the structure
    "predictions": ("integrity", "safety", "load"),
    "budgets": ("integrity",),
}
WEIGHTS_ONLY_FORMATS = artifacts.WEIGHTS_ONLY_FORMATS
# the checks that read the file through one shared open (see Subject.opened)
SHARED_OPEN = ("integrity", "safety")
#: the checks that import Keras in the worker (each costs tens of milliseconds an artifact; the
#: others a few)
KERAS_CHECKS = ("load", "compile", "predictions")

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
NOT_READ_ORBAX = (
    "not checked: an Orbax checkpoint is detected and named, but its arrays are not read by "
    "this version, so nothing in it is vouched for"
)


@dataclass
class CheckResult:
    status: str
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain data (``dataclasses.asdict``, whose deep copy only details need)."""
        if self.details:
            return asdict(self)
        return {"status": self.status, "message": self.message, "details": {}}


@dataclass
class Request:
    """What the pytest process asks about one artifact (plain data: it travels as JSON)."""

    path: str
    checks: list[str]
    rtol: float = 1e-5
    atol: float = 1e-6
    allowed_modules: list[str] = field(default_factory=list)
    max_file_size: int | None = None
    max_params: int | None = None
    allowed_versions: list[str] = field(default_factory=list)
    golden_structure: str = ""
    golden_predictions: str = ""
    inputs_file: str = ""
    budget_file: str = ""
    update_golden: bool = False
    # the worker's data-memory limit while it checks this artifact (0: leave it as it is)
    memory_limit_mb: int = 0


class CheckFailure(Exception):
    """Raised inside a check: the artifact fails it, for the reason given."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.details = details


class CheckSkipped(Exception):
    """Raised inside a check: the check does not apply to this artifact, for the reason given."""


@dataclass
class Subject:
    """The artifact under check and what the checks learn about it, shared between them.

    The file-only checks that read the file (integrity, safety) share one open
    (:meth:`opened`, read-only, hygiene checked), closed (:meth:`close`) before any other check
    runs: Keras opens the file itself, and HDF5 refuses a second open held with other flags.
    Later checks that need the file again open it themselves (:meth:`open`).
    """

    path: Path
    request: Request
    format: str = "unknown"
    writer: str = ""
    backend: str = ""
    size: int = 0
    params: int | None = None
    findings: list[str] = field(default_factory=list)
    description: dict[str, Any] | None = None  # describe_artifact's, read by the integrity check
    model: Any = None
    # told {"event": "import"} / {"event": "imported", "seconds": ...} around the first import of
    # Keras, so that the worker's client does not count Keras's start-up against this artifact's
    # time limit (even when it reads the events later than they were sent)
    notify: Callable[[dict[str, Any]], None] | None = None
    # set by iter_checks when checks that can run before the zip CRCs are known follow integrity:
    # then check_integrity leaves its CRC job running in pending_crc
    defer_crc: bool = False
    pending_crc: _ZipCrcJob | None = None
    # check -> why it has nothing to compare (see nothing_to_compare), decided before any runs
    skip_reasons: dict[str, str] = field(default_factory=dict)
    _files: ExitStack = field(default_factory=ExitStack)
    _opened: artifacts.Artifact | None = None
    _open_error: Exception | None = None

    def opened(self) -> artifacts.Artifact:
        """The artifact opened once for the file-only checks; raises what opening it raised."""
        if self._opened is None:
            if self._open_error is not None:
                raise self._open_error
            try:
                self._opened = self._files.enter_context(artifacts.open_artifact(self.path))
            except Exception as exc:
                self._open_error = exc
                raise
        return self._opened

    def already_opened(self) -> artifacts.Artifact | None:
        """The shared open when an earlier check made it, else None (nothing is opened here)."""
        return self._opened

    def close(self) -> None:
        self._opened = None
        self._files.close()

    @property
    def weights_only(self) -> bool:
        return self.format in WEIGHTS_ONLY_FORMATS

    def info(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "writer": self.writer,
            "backend": self.backend,
            "size": self.size,
            "params": self.params,
        }

    @contextmanager
    def open(self) -> Iterator[artifacts.Artifact]:
        with artifacts.open_artifact(self.path) as opened:
            yield opened


# -- format, cheaply ---------------------------------------------------------------------------


def _zip_member_names(path: Path, limit: int = 16) -> list[str]:
    """The archive's member names: from its central directory, or, when that is gone (a
    truncated archive), from the first local headers walked from the start of the file."""
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        pass
    names: list[str] = []
    with open(path, "rb") as fh:
        for _ in range(limit):
            header = fh.read(30)
            if len(header) != 30 or header[:4] != b"PK\x03\x04":
                break
            flags, size, name_length, extra_length = struct.unpack("<6xH10xI4xHH", header)
            names.append(fh.read(name_length).decode("utf-8" if flags & 0x800 else "cp437"))
            if flags & 0x8:  # sizes follow the data: the next header cannot be found cheaply
                break
            fh.seek(extra_length + size, 1)
    return names


def guess_format(path: Path) -> str:
    """The artifact's format from a cheap look that reads no data, for an artifact whose
    integrity check could not say (a damaged archive still shows as ``keras``).

    A zip naming a ``config.json`` member is ``keras``; an HDF5 file is told apart by its root
    attribute names and top-level groups when HDF5 can open it; a folder layout or a manifest is
    what the artifact registry says; anything else is ``unknown``.
    """
    guessed = artifacts.guess_format(path)
    if guessed not in (artifacts.FORMAT_KERAS, artifacts.FORMAT_H5, "unknown"):
        return guessed
    try:
        kind = artifacts.sniff(path)
    except ArtifactError:
        return "unknown"
    if kind == "savedmodel":
        return artifacts.FORMAT_SAVEDMODEL
    if kind in artifacts.EXPORTED_FORMATS:  # a file layout's name is its format's
        return kind
    if kind == "zip":
        try:
            names = _zip_member_names(path)
        except (OSError, UnicodeDecodeError):
            return "unknown"
        return artifacts.FORMAT_KERAS if artifacts.KERAS_ZIP_CONFIG in names else "unknown"
    import h5py

    try:
        with h5py.File(path, "r") as f:
            attrs, groups = set(f.attrs.keys()), set(f.keys())
    except Exception:  # HDF5 cannot open it (truncated, damaged superblock): no family to tell
        return "unknown"
    if "model_config" in attrs or "model_weights" in groups:
        return artifacts.FORMAT_H5
    if "layer_names" in attrs or "layer_names0" in attrs:
        return artifacts.FORMAT_H5_WEIGHTS
    if groups & {"layers", "vars", "optimizer", "_layer_checkpoint_dependencies"}:
        return artifacts.FORMAT_WEIGHTS_H5
    return "unknown"


# -- integrity -------------------------------------------------------------------------------------


def _test_zip_crcs(zf: zipfile.ZipFile, skip: Collection[str] = ()) -> None:
    """Read every member once (chunk by chunk): a damaged member fails its CRC check here.

    ``skip`` names the members a :class:`_ZipCrcJob` verifies instead.
    """
    for info in zf.infolist():
        if info.filename in skip:
            continue
        try:
            with zf.open(info) as member:
                while member.read(2**20):
                    pass
        except zipfile.BadZipFile:
            raise CheckFailure(
                f"a damaged zip archive: member {info.filename!r} fails its CRC check"
            ) from None
        except (OSError, EOFError, zlib.error) as exc:
            raise CheckFailure(f"a damaged zip archive: {exc}") from None


# A stored member larger than this has its CRC checked by a _ZipCrcJob: in a thread, on its own
# file handle, while the weights are described and scanned (and, when more checks follow, while
# they run); zlib.crc32 and file reads release the GIL, so the CRC pass (as costly as reading the
# bytes) overlaps the scan on another core. Smaller members are read through zipfile, inline.
CRC_IN_BACKGROUND_BYTES = 16 * 1024**2
# the job's unit of work (each unit's CRC is computed alone, then combined in order) and the size
# of each read into the reused buffer (small enough to stay in the CPU cache for zlib.crc32)
CRC_UNIT_BYTES = 8 * 1024**2
CRC_READ_BYTES = 1024**2

_CRC_POLY = 0xEDB88320  # zlib's CRC-32, bit-reflected: bit 31 holds the coefficient of x^0


def _multmodp(a: int, b: int) -> int:
    """a(x) * b(x) modulo the CRC-32 polynomial (zlib's multmodp)."""
    product = 0
    mask = 1 << 31
    while mask:
        if a & mask:
            product ^= b
        mask >>= 1
        b = (b >> 1) ^ _CRC_POLY if b & 1 else b >> 1
    return product


_X2N = [1 << 30]  # x^(2^k) modulo the polynomial, for k in 0..31
for _ in range(31):
    _X2N.append(_multmodp(_X2N[-1], _X2N[-1]))


def _x2nmodp(n: int, k: int) -> int:
    """x^(n * 2^k) modulo the CRC-32 polynomial (zlib's x2nmodp)."""
    power = 1 << 31
    while n:
        if n & 1:
            power = _multmodp(_X2N[k & 31], power)
        n >>= 1
        k += 1
    return power


def crc32_combine(crc1: int, crc2: int, length2: int) -> int:
    """The CRC-32 of A + B from crc32(A), crc32(B) and len(B) (zlib's crc32_combine)."""
    return _multmodp(_x2nmodp(length2, 3), crc1) ^ crc2


@dataclass
class _CrcUnit:
    member: str
    start: int  # in the file
    length: int
    crc: int = 0


class _ZipCrcJob:
    """Verifies the CRCs of an archive's large stored members, unit by unit.

    A background thread takes the units in turn; :meth:`finish` makes the caller take the units
    left too (two cores then share the end of the pass), waits for the thread, combines each
    member's unit CRCs in order and raises :class:`CheckFailure` on a damaged member. Memory: one
    reused read buffer per thread.
    """

    def __init__(self, path: Path, members: dict[str, tuple[int, int, int]]) -> None:
        # member -> (data start in the file, length, expected CRC)
        self.path = path
        self.members = members
        unit = max(1, CRC_UNIT_BYTES)
        self._units = [
            _CrcUnit(name, start + offset, min(unit, length - offset))
            for name, (start, length, _) in members.items()
            for offset in range(0, length, unit)
        ]
        self._next = 0
        self._lock = threading.Lock()
        self._error: Exception | None = None
        self._done = False
        self._thread = threading.Thread(target=self._work, name="kerasmodel-zip-crc", daemon=True)
        self._thread.start()

    @classmethod
    def start_for(cls, opened: artifacts.Artifact) -> _ZipCrcJob | None:
        """Start verifying the archive's large stored members; None when it has none."""
        assert opened.zip is not None
        large = [
            info
            for info in opened.zip.infolist()
            if info.compress_type == zipfile.ZIP_STORED
            and info.compress_size == info.file_size
            and not info.flag_bits & 0x1  # encrypted: zipfile refuses it, inline
            and info.file_size > CRC_IN_BACKGROUND_BYTES
        ]
        if not large:
            return None
        members: dict[str, tuple[int, int, int]] = {}
        with open(opened.path, "rb") as fh:
            for info in large:
                members[info.filename] = (_stored_data_start(fh, info), info.file_size, info.CRC)
        return cls(opened.path, members)

    def _take(self) -> _CrcUnit | None:
        with self._lock:
            if self._error is not None or self._next >= len(self._units):
                return None
            self._next += 1
            return self._units[self._next - 1]

    def _work(self) -> None:
        try:
            with open(self.path, "rb", buffering=0) as fh:
                buffer = memoryview(bytearray(max(1, min(CRC_READ_BYTES, CRC_UNIT_BYTES))))
                while (unit := self._take()) is not None:
                    fh.seek(unit.start)
                    crc, left = 0, unit.length
                    while left:
                        got = fh.readinto(buffer[: min(len(buffer), left)])
                        if not got:
                            raise EOFError(f"member {unit.member!r} is truncated")
                        crc = zlib.crc32(buffer[:got], crc)
                        left -= got
                    unit.crc = crc
        except Exception as exc:  # reported by finish(), in the check's own thread
            with self._lock:
                if self._error is None:
                    self._error = exc

    def cancel(self) -> None:
        """Stop taking units and wait for the thread (it ends its current unit)."""
        with self._lock:
            self._next = len(self._units)
        self._thread.join()

    def finish(self) -> None:
        """Help with the units left, wait, and raise CheckFailure when a member is damaged."""
        if not self._done:
            self._work()
            self._thread.join()
            self._done = True
        if self._error is not None:
            raise CheckFailure(f"a damaged zip archive: {self._error}")
        crcs: dict[str, int] = {}
        for unit in self._units:
            previous = crcs.get(unit.member)
            crcs[unit.member] = (
                unit.crc if previous is None else crc32_combine(previous, unit.crc, unit.length)
            )
        for name, (_, _, expected) in self.members.items():
            if crcs.get(name, 0) != expected:
                raise CheckFailure(f"a damaged zip archive: member {name!r} fails its CRC check")


def _stored_data_start(fh: BinaryIO, info: zipfile.ZipInfo) -> int:
    """Where a member's data starts, after its local header (checked as zipfile checks it)."""
    fh.seek(info.header_offset)
    header = fh.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise CheckFailure(
            f"a damaged zip archive: member {info.filename!r} has no valid local header"
        )
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    raw = fh.read(name_length)
    name = raw.decode("utf-8" if info.flag_bits & 0x800 else "cp437", errors="replace")
    if name != info.orig_filename:
        raise CheckFailure(
            f"a damaged zip archive: file name in directory {info.orig_filename!r} and header "
            f"{name!r} differ"
        )
    return info.header_offset + 30 + name_length + extra_length


def size_on_disk(path: Path) -> int:
    """The artifact's bytes (a folder's files summed); 0 for what cannot be read (a broken
    link, a FIFO: the integrity check says why)."""
    try:
        artifacts.check_path_kind(path)
        if path.is_dir():
            return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        return path.stat().st_size
    except (ArtifactError, OSError):
        return 0


def check_integrity(subject: Subject) -> CheckResult:
    """The file opens (read-only, hygiene first) and its content is a Keras artifact.

    Reads it once through :func:`~pytest_kerasmodel.describe.describe_artifact`, counting NaN and
    Inf values too when the finite check is asked for, so the finite, structure and budgets
    checks need no second pass over the file. A .keras archive's large members have their CRCs
    checked meanwhile in a thread (:class:`_ZipCrcJob`); when ``subject.defer_crc`` is set, the
    check returns before that ends and leaves it in ``subject.pending_crc`` (see
    :func:`iter_checks`).
    """
    from pytest_kerasmodel.describe import describe_artifact

    path = subject.path
    subject.size = size_on_disk(path)
    job: _ZipCrcJob | None = None
    try:
        try:
            opened = subject.opened()
            if opened.format == artifacts.FORMAT_KERAS:
                job = _ZipCrcJob.start_for(opened)
            description = describe_artifact(opened, scan_values="finite" in subject.request.checks)
        except artifacts.HygieneError as exc:
            raise CheckFailure(f"refused before reading any data: {exc.reason}") from None
        except ArtifactError as exc:
            raise CheckFailure(exc.reason + (f" ({exc.hint})" if exc.hint else "")) from None
        subject.description = description
        subject.format = description["format"]
        subject.writer = description["keras_version"] or ""
        subject.backend = description["backend"] or ""
        subject.size = description["file_size"]
        if subject.format in artifacts.EXPORTED_FORMATS:
            return _exported_integrity(subject, opened)
        if not _never_built(opened):
            subject.params = int(description["params"])
        if subject.format == artifacts.FORMAT_KERAS:
            assert opened.zip is not None
            _test_zip_crcs(opened.zip, skip=job.members if job else ())
            weights = (artifacts.KERAS_ZIP_WEIGHTS, KERAS_ZIP_WEIGHTS_NPZ)
            if not any(m["name"] in weights for m in description["zip"] or []):
                if job is not None:
                    job.finish()  # a damaged member is the first thing to say
                raise CheckFailure(
                    f"the archive has no {artifacts.KERAS_ZIP_WEIGHTS} (nor "
                    f"{KERAS_ZIP_WEIGHTS_NPZ})"
                )
            if job is not None and not subject.defer_crc:
                job.finish()
    except BaseException:
        if job is not None:
            job.cancel()
        raise
    subject.pending_crc = job if subject.defer_crc else None
    writer = f", written by Keras {subject.writer}" if subject.writer else ""
    notes = [n for n in description["notes"] if not n.startswith("weight ")]
    shown = "".join(f"; note: {n}" for n in notes)
    return CheckResult(PASSED, f"{description['format_title']}{writer}{shown}")


def _spec_text(spec: artifacts.TensorSpec) -> str:
    dims = (
        "?"
        if spec.shape is None
        else ", ".join("None" if d is None else str(d) for d in spec.shape)
    )
    return f"{spec.name} ({dims}) {spec.dtype}"


def _exported_integrity(subject: Subject, opened: artifacts.Artifact) -> CheckResult:
    """An exported graph parsed by its format's own reader: it must have a serving signature."""
    graph = opened.graph
    if graph is None or (not graph.inputs and not graph.outputs):
        raise CheckFailure(
            f"the {opened.title} has no serving signature: nothing a runtime could call"
        )
    inputs = ", ".join(_spec_text(t) for t in graph.inputs)
    outputs = ", ".join(_spec_text(t) for t in graph.outputs)
    return CheckResult(
        PASSED,
        f"{opened.title}; signature {graph.signature!r}: inputs {inputs}; outputs {outputs}; "
        f"{sum(graph.ops.values())} operation(s) of {len(graph.ops)} kind(s)",
        {"signature": graph.as_dict()},
    )


# -- safety --------------------------------------------------------------------------------------


def _never_built(opened: artifacts.Artifact) -> bool:
    """A Keras 3 model saved before it was ever built: its parameter count is unknown (its
    layers have no variables yet), not zero. Keras 3 writes a model's ``build_config`` once it is
    built (a Functional model always is); an unbuilt Sequential's config has none."""
    config = opened.config
    return (
        opened.format == artifacts.FORMAT_KERAS
        and str(opened.keras_version or "").startswith("3.")
        and isinstance(config, dict)
        and config.get("class_name") in ("Sequential", "Functional", "Model")
        and "build_config" not in config
    )


def check_safety(subject: Subject) -> CheckResult:
    """The safety scan of :mod:`pytest_kerasmodel.safety`: config, zip container, HDF5 hygiene."""
    from pytest_kerasmodel.safety import scan_artifact

    # Share the integrity check's open when it has one. Otherwise (integrity refused the file, or
    # crashed a worker and safety reruns alone in a fresh one) the scan goes by path: it checks the
    # HDF5 tree before reading the attributes that open_artifact reads, and says why as findings.
    source: Path | artifacts.Artifact = subject.already_opened() or subject.path
    findings = scan_artifact(source, allowed_modules=subject.request.allowed_modules)
    subject.findings = [str(f) for f in findings]
    if subject.findings:
        lines = "\n".join(f"  - {f}" for f in subject.findings)
        raise CheckFailure(f"{len(findings)} finding(s):\n{lines}", findings=subject.findings)
    return CheckResult(PASSED, "no findings")


# -- load ------------------------------------------------------------------------------------------


def _explain_load_error(subject: Subject, exc: BaseException) -> str:
    message = str(exc).strip() or type(exc).__name__
    if len(message) > 1500:
        message = message[:1500] + " ..."
    writer = f"Keras {subject.writer}" if subject.writer else "an unknown Keras version"
    _keras = loader()
    installed = _keras.keras_version()
    keras2 = _keras.IMPORTS == "tf_keras"
    name = "tf-keras" if keras2 else "Keras"
    lines = [f"load_model failed on a file written by {writer} (installed: {name} {installed})"]
    suffix = subject.path.name.lower()
    if keras2 and subject.writer.split(".")[0].isdigit() and int(subject.writer.split(".")[0]) >= 3:
        lines.append(
            "why: a Keras 3 file, loaded with tf-keras (Keras 2, --keras-backends tf_keras): "
            "tf-keras reads Keras 3 files only when every layer and argument in them exists in "
            "Keras 2; this one does not, so a Keras 2 runtime cannot serve it"
        )
    elif subject.format == "h5" and suffix.endswith(".keras"):
        lines.append(
            "why: this is a legacy HDF5 file named .keras; Keras 3 picks its loader from the file "
            "name and looks for a zip archive, hence its 'File not found'. Rename it to .h5."
        )
    elif subject.format == "keras" and not suffix.endswith(".keras"):
        lines.append(
            "why: this is a .keras zip archive under another name; Keras 3 picks its loader from "
            "the file name. Rename it to .keras."
        )
    elif _keras1_sequential(subject) or "pop expected at most 1 argument" in message:
        lines.append(
            "why: a Keras 1 Sequential model (its config is a plain list of layers), which Keras 3 "
            "cannot rebuild. Re-save it with Keras 2 or 3."
        )
    elif "OOM when allocating" in message or isinstance(exc, MemoryError):
        lines.append(
            "why: building the model needs more memory than the worker may use "
            "(keras_memory_limit): its config declares layers far larger than its weights"
        )
    elif unrecognized := re.search(
        r"Unrecognized keyword arguments passed to (\w+): (.*)", message
    ):
        lines.append(
            f"why: the saved config of a {unrecognized.group(1)} layer has argument(s) "
            f"{unrecognized.group(2)} that the installed Keras no longer accepts (written by an "
            "older Keras); re-save the model with the installed Keras"
        )
    else:
        match = re.search(
            r"(?:Could not locate (?:class|function)|Unknown (?:layer|object|class)(?: name)?:?)"
            r"\s*'?([\w.]+)'?",
            message,
        )
        if match:
            lines.append(_missing_class(subject, match.group(1).rsplit(".", 1)[-1], message))
    if len(lines) == 1 and not keras2 and subject.writer.startswith("2."):
        lines.append(
            f"why: written by Keras 2 ({subject.writer}); Keras 3 rebuilds it with its own layers, "
            "which fails where a saved argument has a form only Keras 2 accepts. If production "
            "runs Keras 2, gate it with tf-keras: --keras-backends tf_keras"
        )
    lines.append(f"Keras said: {type(exc).__name__}: {message}")
    return "\n".join(lines)


def _keras1_sequential(subject: Subject) -> bool:
    """A Keras 1 (or early Keras 2) Sequential: its config is a plain list of layers."""
    with subject.open() as opened:
        return isinstance(opened.config, list)


def _layer_configs(
    config: Any, class_name: str, parent: dict[str, Any] | None = None
) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
    """(entry, enclosing layer entry) for each layer of ``class_name`` in a model config."""
    if isinstance(config, dict):
        is_layer = "class_name" in config and isinstance(config.get("config"), dict)
        if is_layer and config["class_name"] == class_name:
            yield config, parent
        for value in config.values():
            yield from _layer_configs(value, class_name, config if is_layer else parent)
    elif isinstance(config, list):
        for value in config:
            yield from _layer_configs(value, class_name, parent)


def _missing_class(subject: Subject, class_name: str, message: str) -> str:
    """Why Keras said it cannot find ``class_name``: truly absent, or a built-in layer that it
    could not rebuild from what an older Keras saved (then Keras's message is misleading)."""
    cls = getattr(loader().keras().layers, class_name, None)
    if cls is None:
        return (
            f"why: the class {class_name!r} could not be built: it is not part of the installed "
            "Keras (a custom object from the writer's code, or removed from Keras)."
        )
    named = re.search(r"'name': '([^']+)'", message)
    with subject.open() as opened:  # the safety scan passed: the config holds only Keras objects
        entries = list(_layer_configs(opened.config, class_name))
    for entry, parent in entries:
        name = entry["config"].get("name", "?")
        if named and name != named.group(1):
            continue
        wrapper = parent.get("class_name") if parent else None
        if (
            wrapper
            and wrapper not in ("Functional", "Model", "Sequential")
            and ("module" not in entry)
        ):
            outer = parent["config"].get("name", "?") if parent else "?"
            return (
                f"why: {class_name} is a built-in Keras layer; layer {name!r} is wrapped in "
                f"{wrapper} layer {outer!r}, and Keras 3 rebuilds a wrapper's inner layer with "
                "its new deserializer, which needs the 'module' key that older Keras did not "
                "save. Keras's 'could not locate' is misleading: re-save the model with Keras 3."
            )
        try:
            cls.from_config(dict(entry["config"]))
        except Exception as exc:
            return (
                f"why: {class_name} is a built-in Keras layer, but layer {name!r} cannot be "
                f"rebuilt from its saved config: {type(exc).__name__}: {exc}"
            )
    return (
        f"why: {class_name} is a built-in Keras layer, so Keras's 'could not locate' is "
        "misleading: Keras 3 could not rebuild it from the config an older Keras saved."
    )


def loader() -> ModuleType:
    """The module this process loads artifacts with: :mod:`pytest_kerasmodel._tfkeras` in the
    worker of ``--keras-backends tf_keras`` (:data:`LOADER_ENV` set to ``tf_keras``), else
    :mod:`pytest_kerasmodel._keras` (Keras 3 on ``KERAS_BACKEND``)."""
    if os.environ.get(LOADER_ENV) == TF_KERAS:
        from pytest_kerasmodel import _tfkeras

        return _tfkeras
    from pytest_kerasmodel import _keras

    return _keras


def _import_keras(subject: Subject) -> None:
    _keras = loader()
    if _keras.IMPORTS in sys.modules or subject.notify is None:  # (backend() would import it)
        _keras.keras()
        return
    subject.notify({"event": "import"})
    start = time.perf_counter()
    _keras.keras()
    subject.notify({"event": "imported", "seconds": round(time.perf_counter() - start, 4)})


def _tf_keras_savedmodel(subject: Subject) -> None:
    """Skip unless the SavedModel was written by tf-keras's ``model.save`` (the only ones tf-keras
    reloads as a Keras model): it then holds ``keras_metadata.pb``."""
    if not (subject.path / "keras_metadata.pb").is_file():
        raise CheckSkipped(
            "not applicable: a SavedModel without tf-keras's keras_metadata.pb (written by "
            "model.export or tf.saved_model.save, not by tf-keras's model.save): tf-keras "
            "reloads only the SavedModels it wrote; the predictions check runs its serving "
            "signature"
        )


def load(subject: Subject) -> Any:
    if subject.model is None:
        _keras = loader()
        _import_keras(subject)
        try:
            if subject.format == artifacts.FORMAT_PRESET:
                subject.model = _keras.load_preset(subject.path)
            elif subject.format == artifacts.FORMAT_SAVEDMODEL:
                _tf_keras_savedmodel(subject)
                subject.model = _keras.load_model(subject.path, compile=False)
            else:
                subject.model = _keras.load_model(subject.path, safe_mode=True, compile=False)
        except _keras.MissingPackage as exc:
            raise CheckFailure(str(exc)) from None
        except CheckSkipped:
            raise
        except Exception as exc:
            raise CheckFailure(_explain_load_error(subject, exc)) from None
    return subject.model


def check_load(subject: Subject) -> CheckResult:
    if reason := not_applicable("load", subject.format):
        raise CheckSkipped(reason)
    model = load(subject)
    what = f"{type(model).__name__} {model.name!r}"
    if not model.built:  # Keras loads it; count_params() would raise
        subject.params = None
        return CheckResult(PASSED, f"{what}, never built: parameter count unknown")
    subject.params = int(model.count_params())
    return CheckResult(PASSED, f"{what}, {subject.params} parameters")


def check_compile(subject: Subject) -> CheckResult:
    """The artifact reloads compiled (it can resume training) under this worker's backend, with
    an optimizer of this backend: a file written under torch names torch's own optimizer class,
    which other backends import where torch is installed (then training fails) or cannot load
    at all."""
    if reason := not_applicable("load", subject.format):
        raise CheckSkipped(reason.replace("load_model", "load_model(compile=True)"))
    _keras = loader()
    _import_keras(subject)
    if subject.format == artifacts.FORMAT_PRESET:
        raise CheckSkipped("not applicable: a KerasHub preset is loaded by KerasHub, uncompiled")
    if subject.format == artifacts.FORMAT_SAVEDMODEL:
        _tf_keras_savedmodel(subject)
    try:
        model = _keras.load_model(subject.path, safe_mode=True, compile=True)
    except Exception as exc:
        from pytest_kerasmodel.roundtrip import failure_of

        failure = failure_of("load", exc, _keras)
        text = f"load_model(compile=True) failed under {_keras.backend()}: {failure.message}"
        if failure.hint:
            text += f"\nhint: {failure.hint}"
        raise CheckFailure(text) from None
    optimizer = getattr(model, "optimizer", None)
    compiled = getattr(model, "compiled", None) or getattr(model, "_is_compiled", False)  # tf-keras
    if not compiled or optimizer is None:
        raise CheckSkipped("saved without a compile config: there is no training to resume")
    module = type(optimizer).__module__
    here = _keras.backend()
    prefix = "keras.src.backend."
    if module.startswith(prefix) and module[len(prefix) :].split(".")[0] != here:
        owner = module[len(prefix) :].split(".")[0]
        raise CheckFailure(
            f"the reloaded optimizer is {module}.{type(optimizer).__name__}, the {owner} "
            f"backend's own class, under {here}: training it fails, and where {owner} is not "
            "installed the file does not load compiled at all (Keras saved the optimizer's "
            f"backend module into the file)\nhint: under {here}, reload with compile=False and "
            "compile again"
        )
    return CheckResult(
        PASSED, f"compiled under {here}: {type(optimizer).__name__}, loss {model.loss!r}"
    )


# -- finite ----------------------------------------------------------------------------------------


def check_finite(subject: Subject) -> CheckResult:
    """Every floating-point weight is finite: the counts the integrity check's single read took
    (:func:`~pytest_kerasmodel.describe.count_nonfinite`, block by block)."""
    if reason := not_applicable("finite", subject.format):
        raise CheckSkipped(reason)
    assert subject.description is not None and subject.description["values"] is not None
    if subject.description.get("weights_unread"):
        raise CheckSkipped(f"not checked: {subject.description['weights_unread']}")
    weights = subject.description["weights"]
    counts = subject.description["values"]
    bad = {name: c for name, c in counts.items() if c["nan"] or c["inf"]}
    total = sum(_values(w["shape"]) for w in weights.values())
    if bad:
        lines = [f"{len(bad)} of {len(counts)} weight variable(s) hold NaN or Inf:"]
        for name, c in bad.items():
            parts = [f"{c[k]} {label}" for k, label in (("nan", "NaN"), ("inf", "Inf")) if c[k]]
            lines.append(
                f"  - {name}: {', '.join(parts)} of {_values(weights[name]['shape'])} values"
            )
        raise CheckFailure("\n".join(lines), variables=bad)
    return CheckResult(PASSED, f"{len(counts)} weight variable(s), {total} values, all finite")


def _values(shape: list[int]) -> int:
    size = 1
    for n in shape:
        size *= int(n)
    return size


# -- goldens -------------------------------------------------------------------------------------


def check_structure(subject: Subject) -> CheckResult:
    from pytest_kerasmodel.diff import jsonable
    from pytest_kerasmodel.gate import goldens
    from pytest_kerasmodel.structure import StructureDiff, compare_descriptions, structure_view

    if not subject.request.golden_structure:
        raise CheckSkipped("no golden structure asked for")
    golden_path = Path(subject.request.golden_structure)
    key = subject.path.name
    assert subject.description is not None
    view = jsonable(structure_view(subject.description))
    if subject.request.update_golden:
        goldens.write_structure(golden_path, key, view)
        return CheckResult(PASSED, f"golden structure recorded in {golden_path}")
    expected = goldens.read_structure(golden_path, key)
    if expected is None:
        raise CheckSkipped(f"no golden structure ({golden_path}); {goldens.HOW_TO_RECORD}")
    changes = compare_descriptions(expected, view, exact=True)
    if changes:
        diff = StructureDiff(key, f"its golden {golden_path}", changes)
        raise CheckFailure(f"{diff.render()}\n{goldens.HOW_TO_UPDATE}", diff=diff.to_dict())
    return CheckResult(PASSED, f"matches {golden_path.name}")


def check_predictions(subject: Subject) -> CheckResult:
    from pytest_kerasmodel.compare import compare_named_arrays
    from pytest_kerasmodel.gate import goldens

    if reason := not_applicable("predictions", subject.format):
        raise CheckSkipped(reason)
    request = subject.request
    if not request.golden_predictions:
        raise CheckSkipped("no golden predictions asked for")
    golden_path = Path(request.golden_predictions)
    if subject.format in artifacts.EXPORTED_FORMATS:
        from pytest_kerasmodel.gate import exported

        try:
            message = exported.check_predictions(subject.path, subject.format, request, golden_path)
        except exported.CheckFailure as exc:
            raise CheckFailure(str(exc), **exc.details) from None
        return CheckResult(PASSED, message)
    _keras = loader()
    if request.update_golden:
        model = load(subject)
        sidecar = Path(request.inputs_file) if request.inputs_file else None
        if sidecar is not None and sidecar.is_file():
            inputs, source = goldens.sidecar_inputs(sidecar), f"from {sidecar.name}"
        else:
            from pytest_kerasmodel.inputs import make_inputs

            inputs, source = make_inputs(model), "generated"
        outputs = goldens.named_outputs(model, _keras.call_model(model, inputs))
        goldens.write_predictions(golden_path, inputs, outputs)
        return CheckResult(
            PASSED, f"golden predictions ({source} inputs) recorded in {golden_path}"
        )
    golden = goldens.read_predictions(golden_path)
    if golden is None:
        raise CheckSkipped(f"no golden predictions ({golden_path}); {goldens.HOW_TO_RECORD}")
    inputs, expected = golden
    model = load(subject)
    actual = goldens.named_outputs(model, _keras.call_model(model, inputs))
    diffs = compare_named_arrays(expected, actual, request.rtol, request.atol)
    if diffs:
        body = "\n".join("  " + d.render().replace("\n", "\n  ") for d in diffs)
        raise CheckFailure(
            f"the predictions differ from the golden {golden_path} "
            f"(rtol={request.rtol:g}, atol={request.atol:g}):\n{body}\n{goldens.HOW_TO_UPDATE}",
            diffs=[d.to_dict() for d in diffs],
        )
    return CheckResult(PASSED, f"{len(expected)} output(s) match {golden_path.name}")


# -- budgets ---------------------------------------------------------------------------------------


def _sidecar_budgets(request: Request) -> tuple[Request, str]:
    """``request`` with the budgets of ``<artifact>.budget.json`` (when present) applied on top."""
    path = Path(request.budget_file) if request.budget_file else None
    if path is None or not path.is_file():
        return request, ""
    from dataclasses import replace

    from pytest_kerasmodel.options import parse_size

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        unknown = set(data) - {"max_file_size", "max_params", "allowed_versions"}
        if unknown:
            raise ValueError(f"unknown key(s) {sorted(unknown)}")
        changes: dict[str, Any] = {}
        if "max_file_size" in data:
            changes["max_file_size"] = parse_size(data["max_file_size"])
        if "max_params" in data:
            changes["max_params"] = int(data["max_params"])
        if "allowed_versions" in data:
            versions = data["allowed_versions"]
            changes["allowed_versions"] = (
                [versions] if isinstance(versions, str) else list(versions)
            )
    except Exception as exc:  # a usage error in the user's sidecar: say which file and why
        raise CheckFailure(
            f"the budget file {path.name} cannot be used: {exc} (expected JSON with "
            'max_file_size ("500MB"), max_params (int), allowed_versions (["3.*"]))'
        ) from None
    return replace(request, **changes), f" (budgets from {path.name})"


NO_BUDGET = (
    "no budget set (keras_max_file_size, keras_max_params, keras_allowed_versions, "
    "or <artifact>.budget.json)"
)


def _no_budget(request: Request) -> bool:
    return (
        request.max_file_size is None
        and request.max_params is None
        and not request.allowed_versions
    )


def check_budgets(subject: Subject) -> CheckResult:
    request, source = _sidecar_budgets(subject.request)
    if _no_budget(request):
        raise CheckSkipped(NO_BUDGET)
    over: list[str] = []
    within: list[str] = []
    unknown: list[str] = []
    if request.max_file_size is not None:
        line = f"size {subject.size} bytes, budget {request.max_file_size}"
        (over if subject.size > request.max_file_size else within).append(line)
    if request.max_params is not None:
        if subject.params is None:
            why = (
                f"an exported {subject.format} graph's variables are not counted"
                if subject.format in artifacts.EXPORTED_FORMATS
                else "the model was never built, so its layers have no variables yet"
            )
            unknown.append(f"parameter count unknown ({why}), budget {request.max_params}")
        else:
            line = f"{subject.params} parameters, budget {request.max_params}"
            (over if subject.params > request.max_params else within).append(line)
    if request.allowed_versions:
        allowed = request.allowed_versions
        writer = subject.writer or "unknown"
        line = f"written by Keras {writer}, allowed {allowed}"
        ok = any(fnmatch.fnmatchcase(writer, pattern) for pattern in allowed)
        (within if ok else over).append(line)
    parts = []
    if over:
        parts.append(f"over budget{source}:\n" + "\n".join(f"  - {line}" for line in over))
    if unknown:
        parts.append(
            f"cannot be verified{source}:\n" + "\n".join(f"  - {line}" for line in unknown)
        )
    if parts:
        raise CheckFailure("\n".join(parts))
    return CheckResult(PASSED, "; ".join(within) + source)


# -- running ---------------------------------------------------------------------------------------

RUNNERS = {
    "integrity": check_integrity,
    "safety": check_safety,
    "load": check_load,
    "compile": check_compile,
    "finite": check_finite,
    "structure": check_structure,
    "predictions": check_predictions,
    "budgets": check_budgets,
}


def nothing_to_compare(name: str, request: Request) -> str | None:
    """Why check ``name`` has nothing to compare for this request (its skip reason), else None.

    Decided from the request alone (goldens recorded, budgets set), before anything runs, so
    that a check with nothing to compare is skipped whatever its prerequisites did, and only a
    check that had something to compare fails because a prerequisite failed.
    """
    from pytest_kerasmodel.gate import goldens

    if name == "structure":
        if not request.golden_structure:
            return "no golden structure asked for"
        path = Path(request.golden_structure)
        if not request.update_golden and not goldens.has_structure(path, Path(request.path).name):
            return f"no golden structure ({path}); {goldens.HOW_TO_RECORD}"
    elif name == "predictions":
        if not request.golden_predictions:
            return "no golden predictions asked for"
        path = Path(request.golden_predictions)
        if not request.update_golden and not path.is_file():
            return f"no golden predictions ({path}); {goldens.HOW_TO_RECORD}"
    elif name == "budgets":
        sidecar = Path(request.budget_file) if request.budget_file else None
        if _no_budget(request) and not (sidecar is not None and sidecar.is_file()):
            return NO_BUDGET
    return None


def not_applicable(name: str, fmt: str) -> str | None:
    """Why check ``name`` does not apply to an artifact of format ``fmt`` (a skip reason)."""
    tf_keras_worker = os.environ.get(LOADER_ENV) == TF_KERAS
    if name == "load" and fmt == artifacts.FORMAT_SAVEDMODEL and tf_keras_worker:
        return None  # tf-keras reloads the SavedModels it wrote (load checks keras_metadata.pb)
    if name == "load" and fmt == artifacts.FORMAT_SAVEDMODEL:
        return (
            "not applicable: Keras 3 load_model cannot load a TensorFlow SavedModel "
            "(wrap it with keras.layers.TFSMLayer for inference); the predictions check runs "
            "its serving signature"
        )
    if name == "load" and fmt in artifacts.EXPORTED_FORMATS:
        return (
            f"not applicable: an exported {fmt} graph is run by its runtime, not loaded by "
            "Keras; the predictions check runs it"
        )
    if name == "load" and fmt in WEIGHTS_ONLY_FORMATS:
        return (
            f"not applicable: a weights-only file ({fmt}) holds no model config; "
            "load it with model.load_weights() into a model built by your code"
        )
    if name == "predictions" and fmt in WEIGHTS_ONLY_FORMATS:
        return f"not applicable: a {fmt} artifact is not a loadable model"
    if name == "finite" and fmt == artifacts.FORMAT_SAVEDMODEL:
        return "not applicable: SavedModel variables are not read"
    if name == "finite" and fmt in artifacts.EXPORTED_FORMATS:
        return f"not applicable: the weights of an exported {fmt} graph are not read"
    return None


def _needed(requested: list[str]) -> list[str]:
    needed: set[str] = set()
    stack = list(requested)
    while stack:
        name = stack.pop()
        if name not in needed:
            needed.add(name)
            stack.extend(DEPENDS[name])
    return [c for c in CHECKS if c in needed]


def _needs_settled_crcs(name: str, request: Request) -> bool:
    """Whether ``name`` must wait for the zip CRC verification: it needs Keras (which reads the
    file itself) or writes a golden from what it read."""
    return name in KERAS_CHECKS or (request.update_golden and name == "structure")


def iter_checks(
    request: Request, notify: Callable[[dict[str, Any]], None] | None = None
) -> Iterator[tuple[str, CheckResult | None, dict[str, Any]]]:
    """Run the requested checks (and those they depend on) in order.

    Yields ``(check, None, info)`` when a check starts and ``(check, result, info)`` when it ends,
    so that the worker can tell which check was running if a library brings the process down.

    A large .keras archive's CRC verification (the integrity check's, see :class:`_ZipCrcJob`)
    may go on while the next checks run, up to the first that needs Keras or writes a golden, or
    the end. Until then the results of integrity and of the checks depending on it are held back;
    integrity "starts" again while its verification ends, and if a member is damaged, integrity
    fails and the held results become "cannot be verified", as if it had failed first.
    """
    unknown = [c for c in request.checks if c not in RUNNERS]
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; known: {list(CHECKS)}")
    subject = Subject(Path(request.path), request, notify=notify)
    results: dict[str, CheckResult] = {}
    needed = _needed(request.checks)
    from pytest_kerasmodel.gate import goldens

    goldens.forget()
    subject.skip_reasons = {
        name: reason for name in needed if (reason := nothing_to_compare(name, request))
    }
    after = needed[needed.index("integrity") + 1 :] if "integrity" in needed else []
    subject.defer_crc = bool(after) and not _needs_settled_crcs(after[0], request)
    held: list[str] = []  # checks whose results wait for subject.pending_crc

    def settle() -> Iterator[tuple[str, CheckResult | None, dict[str, Any]]]:
        job, subject.pending_crc = subject.pending_crc, None
        if job is not None:
            yield "integrity", None, subject.info()
            try:
                job.finish()
            except CheckFailure as exc:
                results["integrity"] = CheckResult(FAILED, str(exc), exc.details)
                for name in held:
                    results[name] = _precluded(name, subject, results) or results[name]
        for name in held:
            yield name, results[name], subject.info()
        held.clear()

    try:
        for name in needed:
            if _needs_settled_crcs(name, request):
                yield from settle()
            if name not in SHARED_OPEN:
                subject.close()
            results[name] = _precluded(name, subject, results) or CheckResult("")
            if not results[name].status:
                yield name, None, subject.info()
                results[name] = _run_one(name, subject)
            if name in SHARED_OPEN and subject.format == "unknown":
                subject.format = guess_format(subject.path)
            if subject.pending_crc is not None and "integrity" in _needed([name]):
                held.append(name)
            else:
                yield name, results[name], subject.info()
        yield from settle()
    finally:
        if subject.pending_crc is not None:
            subject.pending_crc.cancel()
        subject.close()
        subject.model = None


def _precluded(name: str, subject: Subject, results: dict[str, CheckResult]) -> CheckResult | None:
    """The result of a check decided without running it, else None.

    Skipped when it has nothing to compare (:func:`nothing_to_compare`) or does not apply to
    the artifact's format, whatever its prerequisites did: one cause is reported once. Failed
    when it has something to compare but a prerequisite failed; ``details["blocked_by"]`` names
    that prerequisite, so the summary can tell a root cause from its consequences.
    """
    reason = subject.skip_reasons.get(name) or not_applicable(name, subject.format)
    if reason:
        return CheckResult(SKIPPED, reason)
    broken = [d for d in DEPENDS[name] if results[d].status == FAILED]
    if broken and broken[0] != "safety":
        return CheckResult(
            FAILED, f"cannot be verified: the {broken[0]} check failed", {"blocked_by": broken[0]}
        )
    if broken or (subject.findings and name in ("load", "predictions")):
        text = (
            f"refused: the safety scan has {len(subject.findings)} finding(s), so the model "
            "is never deserialised"
        )
        if "safety" in subject.request.checks:
            text += " (see the safety check)"
        else:  # no safety item shows them (--keras-checks without it): said here
            said = "\n".join(f"  - {f}" for f in subject.findings) or results["safety"].message
            text += f"; the safety check is not collected (--keras-checks), it says:\n{said}"
        return CheckResult(FAILED, text, {"blocked_by": "safety"})
    return None


def _run_one(name: str, subject: Subject) -> CheckResult:
    from pytest_kerasmodel.gate.goldens import GoldenVersionError

    if subject.format == "unknown" and artifacts.orbax.claims(subject.path):
        subject.format = artifacts.FORMAT_ORBAX
    if subject.format == artifacts.FORMAT_ORBAX:
        return CheckResult(SKIPPED, NOT_READ_ORBAX)
    try:
        return RUNNERS[name](subject)
    except CheckFailure as exc:
        return CheckResult(FAILED, str(exc), exc.details)
    except CheckSkipped as exc:
        return CheckResult(SKIPPED, str(exc))
    except GoldenVersionError as exc:
        return CheckResult(FAILED, str(exc))
    except MemoryError:
        limit = subject.request.memory_limit_mb
        shown = f" of {limit} MB" if limit else ""
        return CheckResult(
            FAILED, f"ran out of memory (the worker's memory limit{shown}, keras_memory_limit)"
        )
    except Exception as exc:  # an unexpected library error: say which check met it
        raised = f"the {name} check raised {type(exc).__name__}: {exc}"
        limit = subject.request.memory_limit_mb
        if limit and isinstance(exc, SystemError) and "without exception set" in str(exc):
            # a C extension whose allocation failed under RLIMIT_DATA, returning NULL without
            # MemoryError (seen importing TensorFlow within 300 MB)
            return CheckResult(
                FAILED,
                f"ran out of memory (the worker's memory limit of {limit} MB, "
                f"keras_memory_limit): {raised}, what a library's failed allocation looks like",
            )
        return CheckResult(FAILED, raised)


def check_artifact(request: Request | dict[str, Any]) -> dict[str, Any]:
    """Run the requested checks on one artifact in this process: plain JSON data."""
    if isinstance(request, dict):
        request = Request(**request)
    start = time.perf_counter()
    checks: dict[str, Any] = {}
    info: dict[str, Any] = {}
    for name, result, last_info in iter_checks(request):
        info = last_info
        if result is not None:
            checks[name] = result.as_dict()
    return {
        "path": request.path,
        "info": info,
        "checks": checks,
        "elapsed": round(time.perf_counter() - start, 4),
    }
