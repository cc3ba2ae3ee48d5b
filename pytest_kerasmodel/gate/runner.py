"""Runs the checks of one artifact in order: the ones asked for and the ones they depend on, each
skipped when one it depends on failed, and returns plain JSON data for the worker's pipe.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pytest_kerasmodel import artifacts
from pytest_kerasmodel.gate.checks import (
    check_budgets,
    check_compile,
    check_finite,
    check_integrity,
    check_load,
    check_predictions,
    check_safety,
    check_structure,
)
from pytest_kerasmodel.gate.protocol import (
    CHECKS,
    DEPENDS,
    FAILED,
    KERAS_CHECKS,
    NOT_READ_ORBAX,
    SHARED_OPEN,
    SKIPPED,
    CheckFailure,
    CheckResult,
    CheckSkipped,
    Request,
    not_applicable,
    nothing_to_compare,
)
from pytest_kerasmodel.gate.provenance import check_lock, check_signature
from pytest_kerasmodel.gate.subject import Subject, guess_format

RUNNERS = {
    "integrity": check_integrity,
    "safety": check_safety,
    "signature": check_signature,
    "lock": check_lock,
    "load": check_load,
    "compile": check_compile,
    "finite": check_finite,
    "structure": check_structure,
    "predictions": check_predictions,
    "budgets": check_budgets,
}


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
            f"refused: the safety scan has {len(subject.findings)} finding(s)"
            f"{_named(subject.findings)}, so the model is never deserialised, safe_mode or not"
            f"{_allow_hint(subject.findings)}"
        )
        if "safety" in subject.request.checks:
            text += " (see the safety check)"
        else:  # no safety item shows them (--keras-checks without it): said here
            said = "\n".join(f"  - {f}" for f in subject.findings) or results["safety"].message
            text += f"; the safety check is not collected (--keras-checks), it says:\n{said}"
        return CheckResult(FAILED, text, {"blocked_by": "safety"})
    return None


def _named(findings: list[str]) -> str:
    """`` ([lambda] config.json: layer 'x' > function, ...)``: which findings, by kind and place."""
    heads = [f.split(": ", 1)[0] for f in findings[:3]]
    more = f" and {len(findings) - 3} more" if findings[3:] else ""
    return f" ({'; '.join(heads)}{more})" if heads else ""


#: Finding kinds a user can lift by vouching for a name, and the option that does it.
_ALLOWED_BY = {
    "unknown-class": "keras_allowed_classes (--keras-allowed-classes)",
    "foreign-module": "keras_allowed_modules (--keras-allowed-modules)",
}


def _allow_hint(findings: list[str]) -> str:
    """What would let the load run: the allow options, when every finding is a name they allow."""
    kinds = {f[1:].split("]", 1)[0] for f in findings if f.startswith("[")}
    if kinds and kinds <= set(_ALLOWED_BY):
        options = " or ".join(_ALLOWED_BY[k] for k in sorted(kinds))
        return f"; if you trust the code those names need, allow them with {options}"
    return ""


def _run_one(name: str, subject: Subject) -> CheckResult:
    from pytest_kerasmodel.gate.goldens import GoldenVersionError

    if subject.format == "unknown" and artifacts.orbax.claims(subject.path):
        subject.format = artifacts.FORMAT_ORBAX
    if subject.format == artifacts.FORMAT_ORBAX and name not in ("signature", "lock"):
        return CheckResult(SKIPPED, NOT_READ_ORBAX)  # provenance reads bytes, any layout
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
