"""Every ``--keras-*`` flag and ``keras_*`` ini key, declared and resolved in one place.

:func:`add_options` declares them (``plugin.pytest_addoption`` calls it); :func:`get_settings`
resolves them. Every setting has a flag ``--keras-*`` and an ini key ``keras_*`` that mean the
same thing; the flag wins when both are given. The resolved :class:`Settings` lives in
``config.stash``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

DEFAULT_RTOL = 1e-5
DEFAULT_ATOL = 1e-6
DEFAULT_FORMATS = ("keras",)
KNOWN_FORMATS = ("keras", "h5", "weights", "savedmodel")  # savedmodel: tf-keras models only
DEFAULT_EXPORT_FORMATS = ("tf_saved_model",)
KNOWN_EXPORT_FORMATS = ("tf_saved_model", "onnx", "litert", "openvino")
DEFAULT_TIMEOUT = 120.0
# The worker's data-memory limit per artifact when keras_memory_limit is not set:
# max(MEMORY_FLOOR_MB, MEMORY_BASE_MB + MEMORY_PER_BYTE x artifact size), capped at
# MEMORY_CAP_FRACTION of physical memory. Loading a Dense model of 512 MiB / 1 GiB of float32
# (.h5 and .keras) was measured to need 255 MiB + about 6.2 x its size (RLIMIT_DATA), with
# Keras imported; 7 x leaves room for the checks before load and what a worker keeps.
DEFAULT_MEMORY_LIMIT_MB = MEMORY_FLOOR_MB = 4096
MEMORY_BASE_MB = 1536
MEMORY_PER_BYTE = 7
MEMORY_CAP_FRACTION = 0.8
#: the ini type of the list-valued keys: a TOML list or a string of words (``a b``, ``a,b``)
LIST = "args"


def add_options(parser: pytest.Parser) -> None:
    """Declare every ``--keras-*`` flag and its ``keras_*`` ini key (the same ``dest``), in the
    ``kerasmodel`` group; :func:`get_settings` resolves them."""
    group = parser.getgroup("kerasmodel", "Keras model artifacts (pytest-kerasmodel)")

    def option(
        flag: str,
        dest: str,
        help: str,
        ini_type: str | None = "string",
        ini_default: object = None,
        **kwargs: object,
    ) -> None:
        group.addoption(flag, dest=dest, help=help, **kwargs)
        if ini_type is not None:
            parser.addini(dest, help=help, type=ini_type, default=ini_default)  # type: ignore[arg-type]

    # roundtrip and prediction comparison
    option(
        "--keras-rtol",
        "keras_rtol",
        "Relative tolerance for prediction and weight comparisons (default 1e-5).",
        metavar="RTOL",
    )
    option(
        "--keras-atol",
        "keras_atol",
        "Absolute tolerance for prediction and weight comparisons (default 1e-6).",
        metavar="ATOL",
    )
    option(
        "--keras-roundtrip-formats",
        "keras_roundtrip_formats",
        "Formats keras_roundtrip saves and reloads: any of keras, h5, weights (default: keras).",
        metavar="FORMATS",
        ini_type=LIST,
        ini_default=[],
    )
    option(
        "--keras-backends",
        "keras_backends",
        "Keras backends keras_roundtrip also reloads each saved file under, each in a child "
        "process kept for the session, and the gate runs load and predictions under, each in "
        "an isolated worker: any of tensorflow, jax, torch, or all (default: none).",
        metavar="BACKENDS",
        ini_type=LIST,
        ini_default=[],
    )
    # goldens
    option(
        "--keras-update-golden",
        "keras_update_golden",
        "Record missing goldens and overwrite changed ones instead of failing.",
        ini_type=None,
        action="store_true",
        default=False,
    )
    option(
        "--keras-golden-dir",
        "keras_golden_dir",
        "Folder for the gate's goldens (default: beside each artifact).",
        metavar="DIR",
    )
    # the artifact gate
    option(
        "--keras-model-dir",
        "keras_model_dir",
        "Collect every Keras artifact under DIR as test items (repeatable).",
        ini_type="paths",
        ini_default=[],
        action="append",
        default=[],
        metavar="DIR",
    )
    option(
        "--keras-strict",
        "keras_strict",
        "Fail every file under a model folder that no Keras artifact holds (default: list "
        "them as not checked under the summary), and fail the integrity check of an artifact "
        "holding HDF5 datasets or attributes that no reader interpreted (default: a note).",
        ini_type="bool",
        ini_default=False,
        action="store_true",
        default=None,
    )
    option(
        "--keras-checks",
        "keras_checks",
        "Gate: the checks to collect, comma-separated (default every check but compile: "
        "integrity, safety, load, finite, structure, predictions, budgets). The checks a "
        "selected one needs still run (the safety scan always precedes a load) but get no item.",
        metavar="CHECKS",
        ini_type=LIST,
        ini_default=[],
    )
    option(
        "--keras-load-compile",
        "keras_load_compile",
        "Gate: also reload each artifact compiled (it can resume training), under each backend "
        "of --keras-backends too (a compile check per artifact).",
        ini_type="bool",
        ini_default=False,
        action="store_true",
        default=None,
    )
    option(
        "--keras-report",
        "keras_report",
        "Write the gate's results as JSON to PATH.",
        metavar="PATH",
    )
    option(
        "--keras-timeout",
        "keras_timeout",
        "Seconds one artifact's checks may take in the isolated worker (default 120).",
        metavar="SECONDS",
    )
    option(
        "--keras-memory-limit",
        "keras_memory_limit",
        "Data-memory limit (RLIMIT_DATA) in MB of the isolated worker, for every artifact "
        "(default: per artifact, max(4096, 1536 + 7 x its size in MiB), at most 80 percent of "
        "physical memory).",
        metavar="MB",
    )
    group.addoption(
        "--keras-no-isolation",
        dest="keras_no_isolation",
        action="store_true",
        default=False,
        help="Check artifacts in the pytest process itself (trusted "
        "artifacts only: a crash in the HDF5 library then ends the session).",
    )
    parser.addini(
        "keras_isolate",
        type="bool",
        default=True,
        help="Check artifacts in an isolated worker process (default true).",
    )
    option(
        "--keras-allowed-modules",
        "keras_allowed_modules",
        "Module prefixes, besides Keras's own, that artifact configs may reference.",
        metavar="MODULES",
        ini_type=LIST,
        ini_default=[],
    )
    option(
        "--keras-import",
        "keras_imports",
        "Gate: import MODULE (your project's code, which registers its custom layers and models "
        "with keras.saving.register_keras_serializable) in every checking worker before "
        "anything is loaded; what it registers counts as allowed by the safety scan "
        "(repeatable).",
        ini_type=LIST,
        ini_default=[],
        action="append",
        default=[],
        metavar="MODULE",
    )
    option(
        "--keras-custom-objects",
        "keras_custom_objects",
        "Gate: MODULE:NAME of a dict of your custom objects (name -> class or function) handed "
        "to load_model as custom_objects; their modules count as allowed by the safety scan "
        "(repeatable).",
        ini_type=LIST,
        ini_default=[],
        action="append",
        default=[],
        metavar="MODULE:NAME",
    )
    option(
        "--keras-allowed-classes",
        "keras_allowed_classes",
        "Class or function names, besides those Keras, tf-keras and KerasHub define, that "
        "artifact configs may name (the bare names legacy HDF5 stores, e.g. 'MyDense', or "
        "registered names such as 'mypkg>MyDense').",
        metavar="NAMES",
    )
    option(
        "--keras-max-file-size",
        "keras_max_file_size",
        "Budget: largest artifact size, e.g. 500MB.",
        metavar="SIZE",
    )
    option(
        "--keras-max-params", "keras_max_params", "Budget: most parameters per model.", metavar="N"
    )
    option(
        "--keras-allowed-versions",
        "keras_allowed_versions",
        "Budget: Keras versions (fnmatch patterns, e.g. '3.*') allowed to have written an "
        "artifact.",
        metavar="PATTERNS",
        ini_type=LIST,
        ini_default=[],
    )
    option(
        "--keras-sarif",
        "keras_sarif",
        "Write the gate's failing checks as SARIF 2.1.0 to PATH (for GitHub code scanning).",
        metavar="PATH",
    )
    option(
        "--keras-workers",
        "keras_workers",
        "Isolated checking workers the gate runs at once (default: the usable cores, one fewer "
        "when no check loads with Keras, at most one per artifact; one per xdist worker).",
        metavar="N",
    )
    # verdict cache
    option(
        "--keras-no-cache",
        "keras_no_cache",
        "Check every artifact again: do not serve verdicts from the gate's authenticated "
        "verdict cache (ini: keras_cache = false).",
        ini_type=None,
        action="store_true",
        default=None,
    )
    parser.addini(
        "keras_cache",
        help="Serve unchanged artifacts' verdicts from the gate's verdict cache (default true).",
        type="bool",
        default=True,
    )
    option(
        "--keras-no-fork",
        "keras_no_fork",
        "Spawn each checking worker as a fresh Python process instead of forking it from the "
        "gate's fork server, which imports Keras once (ini: keras_fork_workers = false).",
        ini_type=None,
        action="store_true",
        default=None,
    )
    parser.addini(
        "keras_fork_workers",
        help="Fork the gate's checking workers from one process that imported Keras once "
        "(default true; Linux only, elsewhere they are spawned).",
        type="bool",
        default=True,
    )
    # provenance: signatures and the lock of approved artifacts
    option(
        "--keras-signature",
        "keras_signature",
        "Gate: where each artifact's OMS signature is, a pattern with {name}, {stem}, {path} "
        "(default: model.sig inside a folder artifact, <file>.sig beside a file).",
        metavar="PATTERN",
    )
    option(
        "--keras-signature-key",
        "keras_signature_key",
        "Gate: verify signatures with this public key (PEM); collects the signature check.",
        metavar="PEM",
    )
    option(
        "--keras-signature-certificate",
        "keras_signature_certificate",
        "Gate: verify signatures against these CA certificates (PEM files, comma-separated); "
        "collects the signature check.",
        metavar="PEMS",
    )
    option(
        "--keras-sigstore-identity",
        "keras_sigstore_identity",
        "Gate: verify Sigstore signatures made by this identity (with --keras-sigstore-issuer); "
        "needs the network unless --keras-sigstore-trust-config is given.",
        metavar="IDENTITY",
    )
    option(
        "--keras-sigstore-issuer",
        "keras_sigstore_issuer",
        "Gate: the OIDC issuer of --keras-sigstore-identity.",
        metavar="URL",
    )
    option(
        "--keras-sigstore-trust-config",
        "keras_sigstore_trust_config",
        "Gate: a Sigstore ClientTrustConfig JSON to verify against offline.",
        metavar="JSON",
    )
    group.addoption(
        "--keras-require-signature",
        dest="keras_require_signature",
        action="append",
        nargs="?",
        const="*",
        default=None,
        metavar="PATTERN",
        help="Gate: fail an artifact without a signature (default: its signature check is "
        "skipped); PATTERN (repeatable, fnmatch) limits it to artifacts whose path relative to "
        "the rootdir or to their model folder matches.",
    )
    parser.addini(
        "keras_require_signature",
        type="linelist",
        default=[],
        help="Gate: fnmatch patterns of artifacts (relative to the rootdir or their model "
        "folder) that must be signed; '*' or 'true' for all.",
    )
    option(
        "--keras-lock",
        "keras_lock",
        "Gate: fail artifacts not in this lock file or whose parts changed since (kerasmodel "
        "lock writes it); lists entries whose artifact is gone.",
        metavar="FILE",
    )
    option(
        "--keras-update-lock",
        "keras_update_lock",
        "Gate: record every checked artifact in --keras-lock instead of failing (atomically).",
        ini_type=None,
        action="store_true",
        default=False,
    )
    # export parity
    option(
        "--keras-export-formats",
        "keras_export_formats",
        "Formats keras_export exports and runs: any of tf_saved_model, onnx, litert, openvino "
        "(default: tf_saved_model).",
        metavar="FORMATS",
        ini_type=LIST,
        ini_default=[],
    )


def _value(config: pytest.Config, dest: str) -> Any:
    """The flag's value when given on the command line, else the ini key's."""
    value = config.getoption(dest, default=None)
    if value is None or value == []:
        value = config.getini(dest)
    return value


def _float(config: pytest.Config, dest: str, default: float) -> float:
    value = _value(config, dest)
    if value in (None, ""):
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise pytest.UsageError(f"{dest}: expected a number, got {value!r}") from None


def _words(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = [value]
    words: list[str] = []
    for item in value:
        words.extend(w for w in str(item).replace(",", " ").split() if w)
    return words


def parse_formats(value: Any) -> tuple[str, ...]:
    """Parse a list of roundtrip formats ("keras h5" or "keras,h5"), rejecting unknown ones."""
    formats = tuple(_words(value)) or DEFAULT_FORMATS
    unknown = [f for f in formats if f not in KNOWN_FORMATS]
    if unknown:
        raise pytest.UsageError(
            f"keras_roundtrip_formats: unknown format(s) {unknown}; "
            f"choose from {list(KNOWN_FORMATS)}"
        )
    return formats


def parse_export_formats(value: Any) -> tuple[str, ...]:
    """Parse a list of export formats ("onnx litert" or "onnx,litert"), rejecting unknown ones."""
    formats = tuple(dict.fromkeys(_words(value))) or DEFAULT_EXPORT_FORMATS
    unknown = [f for f in formats if f not in KNOWN_EXPORT_FORMATS]
    if unknown:
        raise pytest.UsageError(
            f"keras_export_formats: unknown format(s) {unknown}; "
            f"choose from {list(KNOWN_EXPORT_FORMATS)}"
        )
    return formats


def parse_backends(value: Any) -> tuple[str, ...]:
    """Parse ``keras_backends`` ("jax,torch", "all"); an unknown or missing backend is a usage
    error naming the package to install."""
    words = _words(value)
    if not words:
        return ()
    from pytest_kerasmodel.frameworks import BackendError
    from pytest_kerasmodel.frameworks import parse_backends as parse

    try:
        return tuple(parse(words, source="keras_backends"))
    except BackendError as exc:
        raise pytest.UsageError(str(exc)) from None


@dataclass(frozen=True)
class Settings:
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL
    roundtrip_formats: tuple[str, ...] = DEFAULT_FORMATS
    update_golden: bool = False
    model_dirs: tuple[Path, ...] = ()
    golden_dir: Path | None = None
    report: Path | None = None
    timeout: float = DEFAULT_TIMEOUT
    memory_limit_mb: int | None = None  # None: derived per artifact (memory_limit_for)
    isolate: bool = True
    allowed_modules: tuple[str, ...] = ()
    allowed_classes: tuple[str, ...] = ()
    max_file_size: int | None = None
    max_params: int | None = None
    allowed_versions: tuple[str, ...] = ()
    strict: bool = False
    cache: bool = True
    workers: int | None = None  # None: the usable cores (at most one per artifact)
    sarif: Path | None = None  # --keras-sarif: the gate's failing checks as SARIF 2.1.0
    export_formats: tuple[str, ...] = DEFAULT_EXPORT_FORMATS
    backends: tuple[str, ...] = ()
    load_compile: bool = False
    # --keras-checks as given (validated by the gate: gate.session.gate_checks); () = default
    checks: tuple[str, ...] = ()
    # the pool's workers forked from a zygote that imported Keras once (--keras-no-fork: spawned)
    fork_workers: bool = True
    # provenance (gate.provenance): the signature pattern, who is trusted, where a signature is
    # required, the lock and whether to update it
    signature_pattern: str = ""
    signature_key: Path | None = None
    signature_certificates: tuple[Path, ...] = ()
    sigstore_identity: str = ""
    sigstore_issuer: str = ""
    sigstore_trust_config: Path | None = None
    require_signature: tuple[str, ...] = ()
    lock: Path | None = None
    update_lock: bool = False

    @property
    def signature_configured(self) -> bool:
        """Whether the signature check is collected without being named: a way to verify
        it, or signatures required."""
        return bool(
            self.signature_key
            or self.signature_certificates
            or self.sigstore_identity
            or self.require_signature
        )

    # the team's code (see gate.usercode): modules the workers import, MODULE:NAME dicts
    imports: tuple[str, ...] = ()
    custom_objects: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        root = config.rootpath

        def path(value: Any) -> Path | None:
            if value in (None, ""):
                return None
            p = Path(str(value))
            return p if p.is_absolute() else (Path.cwd() / p)

        dirs: list[Path] = []
        cli_dirs = config.getoption("keras_model_dir", default=None) or []
        for d in cli_dirs:
            dirs += _expand(Path(d) if Path(d).is_absolute() else Path.cwd() / d)
        if not cli_dirs:
            for d in _words(config.getini("keras_model_dir")):
                dirs += _expand(Path(d) if Path(d).is_absolute() else root / d)

        max_size = _value(config, "keras_max_file_size")
        max_params = _value(config, "keras_max_params")
        no_isolation = bool(config.getoption("keras_no_isolation", default=False))
        return cls(
            rtol=_float(config, "keras_rtol", DEFAULT_RTOL),
            atol=_float(config, "keras_atol", DEFAULT_ATOL),
            roundtrip_formats=parse_formats(_value(config, "keras_roundtrip_formats")),
            update_golden=bool(config.getoption("keras_update_golden", default=False)),
            # absolute, links kept: a folder of links (or a link to a folder) is gated under
            # the names the user gave, not where the links lead
            model_dirs=tuple(dict.fromkeys(Path(os.path.abspath(p)) for p in dirs)),
            strict=bool(
                config.getoption("keras_strict", default=None) or config.getini("keras_strict")
            ),
            golden_dir=path(_value(config, "keras_golden_dir")),
            report=path(_value(config, "keras_report")),
            timeout=_float(config, "keras_timeout", DEFAULT_TIMEOUT),
            memory_limit_mb=_memory_limit(config),
            isolate=not no_isolation and config.getini("keras_isolate") is not False,
            allowed_modules=tuple(_words(_value(config, "keras_allowed_modules"))),
            allowed_classes=tuple(_words(_value(config, "keras_allowed_classes"))),
            max_file_size=parse_size(max_size) if max_size not in (None, "") else None,
            max_params=int(max_params) if max_params not in (None, "") else None,
            allowed_versions=tuple(_words(_value(config, "keras_allowed_versions"))),
            cache=not config.getoption("keras_no_cache", default=None)
            and config.getini("keras_cache") is not False,
            workers=_workers(config),
            sarif=path(_value(config, "keras_sarif")),
            export_formats=parse_export_formats(_value(config, "keras_export_formats")),
            backends=parse_backends(_value(config, "keras_backends")),
            load_compile=bool(
                config.getoption("keras_load_compile", default=None)
                or config.getini("keras_load_compile")
            ),
            checks=tuple(dict.fromkeys(_words(_value(config, "keras_checks")))),
            fork_workers=not config.getoption("keras_no_fork", default=None)
            and config.getini("keras_fork_workers") is not False,
            signature_pattern=str(_value(config, "keras_signature") or ""),
            signature_key=path(_value(config, "keras_signature_key")),
            signature_certificates=tuple(
                p for w in _words(_value(config, "keras_signature_certificate")) if (p := path(w))
            ),
            sigstore_identity=str(_value(config, "keras_sigstore_identity") or ""),
            sigstore_issuer=str(_value(config, "keras_sigstore_issuer") or ""),
            sigstore_trust_config=path(_value(config, "keras_sigstore_trust_config")),
            require_signature=_require_signature(config),
            lock=path(_value(config, "keras_lock")),
            update_lock=bool(config.getoption("keras_update_lock", default=False)),
            imports=tuple(dict.fromkeys(_words(_value(config, "keras_imports")))),
            custom_objects=tuple(dict.fromkeys(_words(_value(config, "keras_custom_objects")))),
        )


def _require_signature(config: pytest.Config) -> tuple[str, ...]:
    """The patterns of artifacts that must be signed (the flag's, else the ini key's); a
    boolean-looking ini value means every artifact or none."""
    given = config.getoption("keras_require_signature", default=None)
    patterns = list(given) if given else [str(w) for w in config.getini("keras_require_signature")]
    out: list[str] = []
    for word in patterns:
        if word.strip().lower() in ("true", "yes", "1", "on"):
            out.append("*")
        elif word.strip().lower() not in ("false", "no", "0", "off", ""):
            out.append(word.strip())
    return tuple(dict.fromkeys(out))


def _expand(path: Path) -> list[Path]:
    """A model folder as given, or the folders a glob in it matches (``models/*``, quoted so
    that the shell leaves it), sorted; a glob matching nothing stays as given (then the gate
    says no such folder)."""
    import glob

    text = str(path)
    if path.exists() or not glob.has_magic(text):
        return [path]
    matches = sorted(Path(m) for m in glob.glob(text))
    return matches or [path]


def _workers(config: pytest.Config) -> int | None:
    value = _value(config, "keras_workers")
    if value in (None, "", "auto"):
        return None
    try:
        workers = int(value)
    except (TypeError, ValueError):
        workers = 0
    if workers < 1:
        raise pytest.UsageError(f"keras_workers: expected a number of workers >= 1, got {value!r}")
    return workers


def _memory_limit(config: pytest.Config) -> int | None:
    value = _value(config, "keras_memory_limit")
    if value in (None, ""):
        return None
    return int(_float(config, "keras_memory_limit", DEFAULT_MEMORY_LIMIT_MB))


def physical_memory_mb() -> int | None:
    """This machine's physical memory in MiB, None where the OS does not say."""
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return pages * page_size // 1024**2 if pages > 0 and page_size > 0 else None


def memory_cap_mb() -> int | None:
    """The most memory a derived limit gives one artifact: a share of physical memory."""
    physical = physical_memory_mb()
    return int(physical * MEMORY_CAP_FRACTION) if physical else None


def expected_memory_mb(artifact_bytes: int) -> int:
    """What checking an artifact of this size is expected to need (MB): 1536 + 7 x its size in
    MiB, the derived limit's formula without its floor."""
    return MEMORY_BASE_MB + -(-MEMORY_PER_BYTE * artifact_bytes // 1024**2)


def memory_limit_for(artifact_bytes: int, explicit_mb: int | None = None) -> int:
    """The worker's data-memory limit in MB while it checks an artifact of this size.

    An explicit keras_memory_limit wins. Otherwise max(4096, 1536 + 7 x the artifact's size
    in MiB), capped at 80% of physical memory: a model's load takes several times its size
    (Keras builds and initialises every variable, then reads and assigns the saved values).
    """
    if explicit_mb is not None:
        return explicit_mb
    derived = max(MEMORY_FLOOR_MB, expected_memory_mb(artifact_bytes))
    cap = memory_cap_mb()
    return min(derived, cap) if cap else derived


_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "gib": 1024**3,
}


def parse_size(value: Any) -> int:
    """Parse a size such as ``500MB``, ``2GiB`` or ``1048576`` into bytes."""
    text = str(value).strip().lower().replace(" ", "")
    number = text.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = text[len(number) :]
    if unit not in _UNITS or not number:
        raise pytest.UsageError(f"expected a size such as 500MB or 2GiB, got {value!r}")
    return int(float(number) * _UNITS[unit])


settings_key = pytest.StashKey[Settings]()


def get_settings(config: pytest.Config) -> Settings:
    """The session's settings, parsed once and kept in ``config.stash``."""
    settings = config.stash.get(settings_key, None)
    if settings is None:
        settings = Settings.from_config(config)
        config.stash[settings_key] = settings
    return settings


# -- every input checked before any work ---------------------------------------------------------

#: the least data memory (MB) a checking worker is given: measured on this project's 2-core
#: Linux machine (Python 3.11, numpy, h5py), a worker starts and answers the file-only checks of a
#: small .keras file with 90 MB of RLIMIT_DATA (80 fails before its first answer); loading that
#: file with Keras 3.15 on TensorFlow 2.21 needs 372 MB (300 fails, and the load check says the
#: limit was too small). Below the minimum a worker cannot start at all.
MIN_WORKER_MB, MEASURED_WORKER_MB, MEASURED_KERAS_MB = 128, 90, 372


def flag_of(config: pytest.Config, dest: str, flag: str) -> str:
    """How the user gave setting ``dest``: its flag when the command line has it, else its ini
    key (``keras_timeout``), for messages that name what the user typed."""
    value = config.getoption(dest, default=None)
    return flag if value not in (None, [], False) else dest


def timeout_problem(timeout: float, flag: str) -> str | None:
    if not timeout > 0 or timeout != timeout or timeout == float("inf"):
        return f"{flag}: expected a number of seconds > 0, got {timeout:g}"
    return None


def memory_problem(megabytes: int | None, flag: str) -> str | None:
    """A data-memory limit below what a checking worker needs to start (see MIN_WORKER_MB)."""
    if megabytes is None or megabytes >= MIN_WORKER_MB:
        return None
    return (
        f"{flag}: {megabytes} MB is below what a checking worker needs to start: at least "
        f"{MIN_WORKER_MB} MB (measured: {MEASURED_WORKER_MB} MB for a worker to start and run the "
        f"file-only checks, {MEASURED_KERAS_MB} MB to load a small model with Keras, on a 2-core "
        f"Linux machine); pass {MIN_WORKER_MB} or more, or leave it unset for the default (per "
        f"artifact, max({MEMORY_FLOOR_MB}, {MEMORY_BASE_MB} + {MEMORY_PER_BYTE} x its size in MiB))"
    )


def writable_file_problem(path: Path | None, flag: str) -> str | None:
    """Why a report cannot be written to ``path`` (the path a folder or a read-only file, its
    folder neither writable nor creatable: the writers create missing folders, as pytest's
    ``--junitxml`` does), checked without creating or truncating anything."""
    if path is None:
        return None
    if path.is_dir():
        return f"{flag}: {path} is a folder; pass the path of a file to write"
    folder = existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{flag}: cannot write {path}: {existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        where = f"its folder {folder}" if existing == folder else f"{folder} in {existing}"
        return f"{flag}: cannot write {path}: {where} is not writable"
    if path.exists() and not os.access(path, os.W_OK):
        return f"{flag}: cannot write {path}: the file is not writable"
    return None


def golden_dir_problem(path: Path | None, flag: str, update: bool) -> str | None:
    """Why ``path`` cannot hold goldens: a file, or (when recording) not writable nor creatable
    because its nearest existing parent is not a writable folder."""
    if path is None:
        return None
    if path.exists() and not path.is_dir():
        return f"{flag}: {path} is a file, not a folder of goldens"
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{flag}: {path} cannot be created: {existing} is a file, not a folder"
    if update and not os.access(existing, os.W_OK | os.X_OK):
        what = "is not writable" if existing == path else f"cannot be created in {existing}"
        return f"{flag}: {path} {what} (recording goldens writes there)"
    return None


def input_problems(config: pytest.Config, settings: Settings) -> list[str]:
    """What is wrong with the gate's settings, each naming the flag or ini key the user gave,
    found before anything runs."""
    found = [
        timeout_problem(settings.timeout, flag_of(config, "keras_timeout", "--keras-timeout")),
        memory_problem(
            settings.memory_limit_mb,
            flag_of(config, "keras_memory_limit", "--keras-memory-limit"),
        ),
        writable_file_problem(settings.report, flag_of(config, "keras_report", "--keras-report")),
        writable_file_problem(settings.sarif, flag_of(config, "keras_sarif", "--keras-sarif")),
        golden_dir_problem(
            settings.golden_dir,
            flag_of(config, "keras_golden_dir", "--keras-golden-dir"),
            settings.update_golden,
        ),
    ]
    return [p for p in found if p]
