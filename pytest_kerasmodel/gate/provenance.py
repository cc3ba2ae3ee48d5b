"""The gate's provenance checks, ``signature`` and ``lock``: whether the artifact is the one that
was approved (signed, or recorded in the lock), not only a healthy one.

Both read every byte of the artifact once between them: the parts read by the first are kept
on the subject (:func:`parts_of`) for the second. The cryptography and the lock format live in
:mod:`pytest_kerasmodel.provenance`; this module turns their verdicts into check results whose
``details["provenance"]`` carries the verdict, the signer and the changed files to the reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_kerasmodel.errors import ArtifactError
from pytest_kerasmodel.gate.protocol import PASSED, CheckFailure, CheckResult, CheckSkipped
from pytest_kerasmodel.gate.subject import Subject
from pytest_kerasmodel.provenance import lock as locks
from pytest_kerasmodel.provenance import signature as signatures
from pytest_kerasmodel.provenance.digests import Parts

_PARTS = "provenance_parts"


def parts_of(subject: Subject) -> Parts:
    """The artifact's parts and digests, read once for both checks (the lock's reading: every
    file but git's and a folder's own ``model.sig``, which the signature leaves out too)."""
    parts = subject.shared.get(_PARTS)
    if parts is None:
        parts = locks.read_parts(subject.path)
        subject.shared[_PARTS] = parts
    assert isinstance(parts, Parts)
    return parts


def check_signature(subject: Subject) -> CheckResult:
    """The artifact verifies against its OMS signature under the configured trust. A missing
    signature is a skip, unless one is required here; never a pass."""
    request = subject.request
    trust = signatures.Trust(
        key=request.signature_key,
        certificates=list(request.signature_certificates),
        sigstore_identity=request.sigstore_identity,
        sigstore_issuer=request.sigstore_issuer,
        sigstore_trust_config=request.sigstore_trust_config,
    )
    where = Path(request.signature_file) if request.signature_file else None
    problem = trust.problem()
    if problem:
        raise CheckFailure(f"cannot be verified: {problem}")
    try:
        parts = parts_of(subject)
    except ArtifactError as exc:
        raise CheckFailure(f"cannot be read: {exc.reason}") from None
    try:
        verdict = signatures.verify_signature(subject.path, trust, signature=where, parts=parts)
    except signatures.SigningError as exc:
        raise CheckFailure(str(exc)) from None
    details = {"provenance": verdict.details()}
    if verdict.status == signatures.MISSING:
        if request.require_signature:
            raise CheckFailure(
                f"{verdict.message()}, and a signature is required here (keras_require_signature)",
                **details,
            )
        raise CheckSkipped(f"{verdict.message()} (not required: keras_require_signature)")
    if not verdict.ok:
        raise CheckFailure(verdict.message(), **details)
    return CheckResult(PASSED, verdict.message(), details)


def check_lock(subject: Subject) -> CheckResult:
    """The artifact is in the lock (``--keras-lock``) and none of its parts changed; with
    ``--keras-update-lock`` its parts are handed back to be recorded instead."""
    request = subject.request
    try:
        parts = parts_of(subject)
    except ArtifactError as exc:
        raise CheckFailure(f"cannot be read: {exc.reason}") from None
    if request.update_lock:
        if parts.links:
            raise CheckFailure(
                "not recorded in the lock: symbolic link(s) inside, never followed: "
                + ", ".join(parts.links)
            )
        return CheckResult(
            PASSED,
            f"{len(parts.digests)} part(s) read, to be recorded in {request.lock_file}",
            {
                "provenance": {"status": "recorded", "lock": request.lock_file},
                "parts": parts.digests,
            },
        )
    try:
        lock = locks.read_lock(request.lock_file)
    except locks.LockError as exc:
        raise CheckFailure(str(exc)) from None
    verdict = locks.compare_to_lock(lock, subject.path, parts)
    details = {"provenance": verdict.details()}
    if not verdict.ok:
        raise CheckFailure(verdict.message(), **details)
    return CheckResult(PASSED, verdict.message(), details)


def finish_lock(
    lock_file: Path | None, update: bool, rows: dict[str, dict[str, Any]], root: Path
) -> list[str]:
    """At the end of a gate run with a lock: under ``update``, record the parts each artifact's
    lock check read (``rows``, by artifact id relative to ``root``) in the lock, atomically;
    otherwise name the lock's entries whose artifact is gone. The summary's lines."""
    if lock_file is None:
        return []
    try:
        if update:
            fresh = {
                root / artifact: row["checks"]["lock"]["parts"]
                for artifact, row in sorted(rows.items())
                if "parts" in row["checks"].get("lock", {})
            }
            return [locks.update_lock(lock_file, fresh).line()]
        gone = locks.read_lock(lock_file).gone()
    except locks.LockError as exc:
        return [str(exc)]
    if not gone:
        return []
    shown = ", ".join(gone[:10]) + (f", ... ({len(gone) - 10} more)" if len(gone) > 10 else "")
    return [
        f"lock {lock_file}: {len(gone)} entr{'y' if len(gone) == 1 else 'ies'} whose artifact "
        f"is gone: {shown} (--keras-update-lock drops them)"
    ]
