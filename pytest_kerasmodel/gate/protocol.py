"""What both ends of the gate's worker pipe share: the check names and what they depend on, the
statuses, the request a worker is sent and the result it answers with, and the exceptions a check
raises to fail or skip.

Plain data only: the pytest side (collect, session, report, verdicts) and the worker side (checks,
runner) both import this module, and it imports neither.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pytest_kerasmodel import artifacts
from pytest_kerasmodel.errors import ArtifactError
from pytest_kerasmodel.frameworks import LOADER_ENV, TF_KERAS

CHECKS = (
    "integrity",
    "safety",
    "signature",
    "lock",
    "load",
    "compile",
    "finite",
    "structure",
    "predictions",
    "budgets",
)


#: checks collected only when asked for (``compile``: --keras-load-compile; ``signature``:
#: named, or a way to verify or a requirement configured; ``lock``: --keras-lock)
OPTIONAL_CHECKS = ("compile", "signature", "lock")


def select_checks(
    names: Iterable[str] = (), *, with_optional: bool = False, also: Iterable[str] = ()
) -> list[str]:
    """The checks to run, in :data:`CHECKS` order: ``names`` (``--keras-checks``,
    ``kerasmodel gate --checks``), or when none are named every check but the optional ones;
    ``with_optional`` adds ``compile`` (``--keras-load-compile``), ``also`` the optional checks
    configured (``signature``, ``lock``). Raises ValueError naming an unknown check."""
    named = list(names)
    unknown = [n for n in named if n not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; known: {', '.join(CHECKS)}")
    chosen = set(named) or {c for c in CHECKS if c not in OPTIONAL_CHECKS}
    if with_optional:
        chosen.add("compile")
    chosen.update(also)
    return [c for c in CHECKS if c in chosen]


# check -> checks whose failure means it cannot run
DEPENDS = {
    "integrity": (),
    "safety": (),
    "signature": (),
    "lock": (),
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
    allowed_classes: list[str] = field(default_factory=list)
    max_file_size: int | None = None
    max_params: int | None = None
    allowed_versions: list[str] = field(default_factory=list)
    golden_structure: str = ""
    golden_predictions: str = ""
    inputs_file: str = ""
    budget_file: str = ""
    update_golden: bool = False
    # --keras-strict: the integrity check fails a file holding datasets or attributes that no
    # reader interpreted (else it passes with a note listing them)
    strict: bool = False
    # the worker's data-memory limit while it checks this artifact (0: leave it as it is)
    memory_limit_mb: int = 0
    # provenance (the signature and lock checks): where the signature is, who is trusted,
    # whether one is required here, the lock file and whether to record in it
    signature_file: str = ""
    signature_key: str = ""
    signature_certificates: list[str] = field(default_factory=list)
    sigstore_identity: str = ""
    sigstore_issuer: str = ""
    sigstore_trust_config: str = ""
    require_signature: bool = False
    lock_file: str = ""
    update_lock: bool = False
    # the team's code (see gate.usercode): modules imported before anything is loaded, MODULE:NAME
    # dicts handed to load_model, the pytest process's sys.path to import them on, and a digest
    # of their source files (so that the verdict cache's key changes with them)
    imports: list[str] = field(default_factory=list)
    custom_objects: list[str] = field(default_factory=list)
    import_path: list[str] = field(default_factory=list)
    user_code_digest: str = ""


class CheckFailure(Exception):
    """Raised inside a check: the artifact fails it, for the reason given."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.details = details


class CheckSkipped(Exception):
    """Raised inside a check: the check does not apply to this artifact, for the reason given."""


#: the short reason of a skip, by how its message begins (first match wins): the summary
#: table's ``skip (no golden)``, the verbose ``SKIPPED (no golden)`` and the JSON report's
#: ``reason``; the message itself stays the full reason (``-rs``, the report's ``message``)
SKIP_LABELS: tuple[tuple[str, str], ...] = (
    ("no golden structure asked for", "no golden asked"),
    ("no golden predictions asked for", "no golden asked"),
    ("no golden", "no golden"),
    ("no budget set", "no budget"),
    ("not applicable: a weights-only", "weights only"),
    ("not applicable: a KerasHub preset", "preset"),
    ("not applicable: Keras 3 load_model", "SavedModel"),
    ("not applicable: a SavedModel without", "not tf-keras"),
    ("not applicable: SavedModel", "SavedModel"),
    ("not applicable: an exported", "exported graph"),
    ("not applicable: the weights of an exported", "exported graph"),
    ("not applicable: a ", "not a model"),
    ("not applicable", "not applicable"),
    ("not checked: an Orbax", "Orbax not read"),
    ("not checked", "not read"),
    ("saved without a compile config", "not compiled"),
)


def skip_label(message: str) -> str:
    """The short reason of a skip whose full reason is ``message`` (never empty: a message no
    entry of :data:`SKIP_LABELS` knows gives its first words)."""
    for prefix, label in SKIP_LABELS:
        if message.startswith(prefix):
            return label
    words = message.replace(":", " ").replace("(", " ").split()
    return " ".join(words[:3]) or "no reason given"


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
    elif name == "lock" and not request.lock_file:
        return "no lock asked for (--keras-lock FILE)"
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
