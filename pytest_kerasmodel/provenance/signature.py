"""OpenSSF Model Signing (OMS) signatures of Keras artifacts: sign one, verify one.

The cryptography is the ``model-signing`` library's (the ``[signing]`` extra; imported here and
nowhere else, at first use). What this module adds is the verdict a gate needs: signed and
verified (by whom), missing, changed since signing (which parts), signed by a key or identity
that is not trusted, or a malformed bundle, and one read of the artifact's bytes
(:func:`~pytest_kerasmodel.provenance.digests.read_parts`) that the lock check can share.

Where the signature is: ``model.sig`` inside a folder artifact, ``<file>.sig`` beside a file
artifact, or a pattern (:func:`signature_path_for`).

How it is verified (:class:`Trust`): a public key (``key``), a certificate chain
(``certificates``: the signing certificate must chain to one of them), or a Sigstore identity
and OIDC issuer (``sigstore_identity`` / ``sigstore_issuer``). Sigstore verification is offline
only with a trust configuration the user supplies (``sigstore_trust_config``, a
ClientTrustConfig JSON); without one the library fetches the public-good instance's trust root
through TUF, which needs the network.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pytest_kerasmodel.errors import ArtifactError, KerasModelError
from pytest_kerasmodel.provenance import digests
from pytest_kerasmodel.provenance.digests import GIT_PATHS, LOCK_IGNORE, Parts, PartsDiff

CHECK = "signature"
#: the signature's name inside a folder artifact (model-signing's own default name)
FOLDER_SIGNATURE = "model.sig"
#: what is appended to a file artifact's name for the signature beside it
FILE_SUFFIX = ".sig"

VERIFIED, MISSING, CHANGED, UNTRUSTED, MALFORMED = (
    "verified",
    "missing",
    "changed",
    "untrusted",
    "malformed",
)

INSTALL_HINT = "pip install 'pytest-kerasmodel[signing]' (model-signing and pyopenssl)"


class SigningError(KerasModelError):
    """Signing could not be done: names the artifact and why."""


@dataclass
class Trust:
    """Who is trusted to have signed: one of a public key, a certificate chain or a Sigstore
    identity (with its OIDC issuer)."""

    key: str = ""
    certificates: list[str] = field(default_factory=list)
    sigstore_identity: str = ""
    sigstore_issuer: str = ""
    sigstore_trust_config: str = ""

    @property
    def method(self) -> str:
        """``key``, ``certificate``, ``sigstore``, or ``""`` when nothing is trusted."""
        if self.key:
            return "key"
        if self.certificates:
            return "certificate"
        if self.sigstore_identity or self.sigstore_issuer:
            return "sigstore"
        return ""

    def problem(self) -> str | None:
        """Why this trust cannot verify anything, else None."""
        chosen = [bool(self.key), bool(self.certificates), bool(self.sigstore_identity)]
        if sum(chosen) > 1:
            return (
                "more than one way to verify is configured (keras_signature_key, "
                "keras_signature_certificate, keras_sigstore_identity): choose one"
            )
        if not self.method:
            return (
                "nothing to verify it with: set keras_signature_key (a public key), "
                "keras_signature_certificate (a certificate chain) or keras_sigstore_identity "
                "and keras_sigstore_issuer"
            )
        if self.method == "sigstore" and not (self.sigstore_identity and self.sigstore_issuer):
            return (
                "a Sigstore identity needs both keras_sigstore_identity and keras_sigstore_issuer"
            )
        for path in [self.key, *self.certificates, self.sigstore_trust_config]:
            if path and not Path(path).is_file():
                return f"{path}: no such file (a key, certificate or trust configuration)"
        return None


@dataclass
class SignatureVerdict:
    """What verifying one artifact's signature found: plain data for reports and messages."""

    status: str
    artifact: str
    signature: str
    method: str = ""
    signer: str = ""
    reason: str = ""
    signed_name: str = ""
    diff: PartsDiff = field(default_factory=PartsDiff)
    parts: int = 0
    bytes_read: int = 0

    @property
    def ok(self) -> bool:
        return self.status == VERIFIED

    def message(self) -> str:
        """The line(s) a gate item or ``kerasmodel`` prints."""
        if self.status == VERIFIED:
            return (
                f"verified: {self.signature} signed by {self.signer} ({self.method}); "
                f"{self.parts} part(s) match"
            )
        if self.status == MISSING:
            return f"no signature at {self.signature}"
        if self.status == CHANGED:
            lines = "\n".join(f"  - {line}" for line in self.diff.lines())
            return (
                f"changed since signing ({self.signature}, signed by {self.signer}):\n{lines}\n"
                "  re-sign it (kerasmodel sign) if the change is approved, else restore it"
            )
        return f"{self.status}: {self.signature}: {self.reason}"

    def details(self) -> dict[str, Any]:
        """JSON details for the gate's reports (signer, method, changed files)."""
        data = asdict(self)
        data.pop("diff")
        data.update(
            changed=self.diff.changed,
            added=self.diff.added,
            removed=self.diff.removed,
            links=self.diff.links,
        )
        return data


def default_signature_path(artifact: Path) -> Path:
    """``model.sig`` inside a folder artifact, ``<file>.sig`` beside a file artifact."""
    if artifact.is_dir():
        return artifact / FOLDER_SIGNATURE
    return artifact.with_name(artifact.name + FILE_SUFFIX)


def signature_path_for(artifact: Path, pattern: str = "") -> Path:
    """Where ``artifact``'s signature is: :func:`default_signature_path`, or ``pattern`` with
    ``{name}`` (the artifact's file or folder name), ``{stem}`` (without its suffix) and
    ``{path}`` (its full path) filled in. A relative pattern is relative to a folder
    artifact itself and to a file artifact's folder."""
    if not pattern:
        return default_signature_path(artifact)
    text = pattern.format(name=artifact.name, stem=artifact.stem, path=str(artifact))
    path = Path(text)
    if path.is_absolute():
        return path
    return (artifact if artifact.is_dir() else artifact.parent) / path


def _inside(artifact: Path, signature: Path) -> str | None:
    """The signature's path inside a folder artifact (left out of the parts), else None."""
    if not artifact.is_dir():
        return None
    try:
        return Path(os.path.abspath(signature)).relative_to(os.path.abspath(artifact)).as_posix()
    except ValueError:
        return None


def _library() -> Any:
    try:
        import model_signing  # noqa: F401
        from model_signing._signing import signing as oms
    except ImportError as exc:
        raise SigningError(
            f"the model-signing library cannot be imported ({exc}); {INSTALL_HINT}"
        ) from None
    return oms


def sign_artifact(
    artifact: str | os.PathLike[str],
    *,
    key: str | os.PathLike[str],
    signature: str | os.PathLike[str] | None = None,
    certificate: str | os.PathLike[str] | None = None,
    chain: Sequence[str | os.PathLike[str]] = (),
    password: str | None = None,
) -> Path:
    """Sign ``artifact`` with the private elliptic-curve ``key`` (PEM) in the OMS format and
    return where the signature was written (``signature``, else :func:`default_signature_path`).

    With ``certificate`` (the key's signing certificate, PEM) and ``chain`` the bundle carries
    the certificate chain, to be verified against a CA instead of a key. The artifact is only
    read; the signature is written to a temporary file beside its place and moved there, so a
    crash never leaves half a signature. A signature inside a folder artifact is left out of
    what it signs.
    """
    path = Path(artifact)
    if not (path.is_file() or path.is_dir()):
        raise SigningError(f"{path}: sign: no such file or folder")
    target = Path(signature) if signature is not None else default_signature_path(path)
    oms = _library()
    from model_signing import hashing
    from model_signing._signing import sign_certificate, sign_ec_key

    ignore = list(GIT_PATHS)
    inside = _inside(path, target)
    if inside is not None:
        ignore.append(inside)
    try:
        listed = digests.members(path, ignore, check="sign")
    except ArtifactError as exc:
        raise SigningError(str(exc)) from None
    if listed.links:
        raise SigningError(
            f"{path}: sign: symbolic link(s) inside, never followed nor signed: "
            + ", ".join(listed.links)
        )
    config = hashing.Config().set_ignored_paths(paths=ignore, ignore_git_paths=True)
    try:
        if certificate is not None:
            signer: Any = sign_certificate.Signer(
                Path(key), Path(certificate), [Path(c) for c in chain]
            )
        else:
            signer = sign_ec_key.Signer(Path(key), password)
    except (ValueError, TypeError, OSError) as exc:
        raise SigningError(f"{path}: sign: the key or certificate cannot be used: {exc}") from None
    try:  # hashed before the temporary file exists: it is never among what is signed
        if path.is_file() and digests.SELF not in listed.digests:  # a manifest and its shards
            files = [Path(f) for f in listed.digests.values()]
            manifest = config.hash(path.parent, files_to_hash=files)
        else:
            manifest = config.hash(path)
    except (ValueError, OSError) as exc:
        raise SigningError(f"{path}: sign: {exc}") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        signer.sign(oms.Payload(manifest)).write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except ValueError as exc:  # an unreadable file, a key the library refuses
        raise SigningError(f"{path}: sign: {exc}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return target


def _fingerprint(der: bytes) -> str:
    return "SHA256:" + hashlib.sha256(der).hexdigest()


def _key_signer(key_path: str) -> str:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_public_key(Path(key_path).read_bytes())
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"key {Path(key_path).name} ({_fingerprint(der)})"


def _certificate_signer(bundle: Any) -> str:
    from cryptography import x509

    chain = bundle.verification_material.x509_certificate_chain
    certificate = x509.load_der_x509_certificate(chain.certificates[0].raw_bytes)
    subject = certificate.subject.rfc4514_string()
    return f"certificate {subject} (issuer {certificate.issuer.rfc4514_string()})"


def _verifier(trust: Trust) -> tuple[Any, Any]:
    """The library's verifier for ``trust`` and the class that reads its bundles."""
    from model_signing._signing import (
        sign_certificate,
        sign_ec_key,
        sign_sigstore,
        sign_sigstore_pb,
    )

    if trust.method == "key":
        return sign_ec_key.Verifier(Path(trust.key)), sign_sigstore_pb.Signature
    if trust.method == "certificate":
        return (
            sign_certificate.Verifier([Path(c) for c in trust.certificates]),
            sign_sigstore_pb.Signature,
        )
    config = Path(trust.sigstore_trust_config) if trust.sigstore_trust_config else None
    verifier = sign_sigstore.Verifier(
        identity=trust.sigstore_identity, oidc_issuer=trust.sigstore_issuer, trust_config=config
    )
    return verifier, sign_sigstore.Signature


def _library_parts(artifact: Path, serialization: dict[str, Any], ignore: list[str]) -> Parts:
    """The parts as the library hashes them, for signatures made another way than one
    SHA-256 per file (shards, BLAKE2, BLAKE3)."""
    from model_signing import hashing

    config = hashing.Config()
    if serialization.get("method") == "shards":
        config.use_shard_serialization(
            hashing_algorithm=serialization["hash_type"], shard_size=serialization["shard_size"]
        )
    else:
        config.use_file_serialization(hashing_algorithm=serialization["hash_type"])
    config.set_ignored_paths(paths=ignore, ignore_git_paths=True)
    parts = digests.read_parts(artifact, ignore)  # links and sizes, as for one SHA-256 each
    manifest = None
    if parts.links:
        pass
    elif artifact.is_file() and digests.SELF not in parts.digests:
        base = artifact.parent
        manifest = config.hash(base, files_to_hash=[base / n for n in parts.digests])
    else:
        manifest = config.hash(artifact)
    if manifest is not None:
        parts.digests = {r.identifier: r.digest.digest_hex for r in manifest.resource_descriptors()}
        parts.bytes_read *= 2
    return parts


def verify_signature(
    artifact: str | os.PathLike[str],
    trust: Trust,
    *,
    signature: str | os.PathLike[str] | None = None,
    parts: Parts | None = None,
) -> SignatureVerdict:
    """Verify ``artifact`` against its OMS signature under ``trust``.

    The bundle's signature is checked first (by the library: key, certificate chain or Sigstore
    identity); only a bundle whose signature holds has its manifest compared with the parts on
    disk, every byte read once (``parts``, when the caller has read them already, is used as
    is). Raises :class:`SigningError` when the library is not installed or ``trust`` cannot
    verify anything; every other outcome is a verdict.
    """
    path = Path(artifact)
    where = Path(signature) if signature is not None else default_signature_path(path)
    verdict = SignatureVerdict(
        status=MISSING, artifact=str(path), signature=str(where), method=trust.method
    )
    problem = trust.problem()
    if problem:
        raise SigningError(f"{path}: signature: {problem}")
    if not where.is_file():
        return verdict
    oms = _library()
    try:
        verifier, bundle_class = _verifier(trust)
    except Exception as exc:  # an unreadable key, certificate or trust configuration
        raise SigningError(f"{path}: signature: cannot verify with {trust.method}: {exc}") from None
    try:
        bundle = bundle_class.read(where)
    except Exception as exc:  # the library's readers raise what json and protobuf raise
        verdict.status, verdict.reason = (
            MALFORMED,
            f"not an OMS bundle: {type(exc).__name__}: {exc}",
        )
        return verdict
    if trust.method == "key":
        verdict.signer = _key_signer(trust.key)
    elif trust.method == "sigstore":
        verdict.signer = f"sigstore {trust.sigstore_identity} (issuer {trust.sigstore_issuer})"
    try:
        payload_type, payload = verifier._verify_signed_content(bundle)
        if trust.method == "certificate":
            verdict.signer = _certificate_signer(bundle.bundle)
    except Exception as exc:  # InvalidSignature, an X509 store error, a Sigstore policy error
        text = str(exc) or type(exc).__name__
        verdict.status, verdict.reason = (
            UNTRUSTED,
            (
                f"the signature does not verify with the trusted {trust.method} "
                f"({type(exc).__name__}: {text})"
            ),
        )
        verdict.signer = ""
        return verdict
    try:
        if payload_type != oms._IN_TOTO_JSON_PAYLOAD_TYPE:
            raise ValueError(f"payload type {payload_type!r}, not an in-toto statement")
        manifest = oms.dsse_payload_to_manifest(json.loads(payload))
        serialization = dict(manifest.serialization_type)
        signed = {r.identifier: r.digest.digest_hex for r in manifest.resource_descriptors()}
    except Exception as exc:
        verdict.status, verdict.reason = MALFORMED, f"its statement cannot be read: {exc}"
        return verdict
    verdict.signed_name = manifest.model_name
    ignore = [str(p) for p in serialization.get("ignore_paths", ())]
    inside = _inside(path, where)
    if inside is not None:
        ignore.append(inside)
    try:
        if serialization.get("method") == "files" and serialization.get("hash_type") == "sha256":
            # the caller's parts (the lock's reading) serve unless they left out a file that
            # this signature covers: then an added file of such a name would go unseen
            left_out = [
                g for g in LOCK_IGNORE if not digests.is_ignored(g, ignore) and path.is_dir()
            ]
            if parts is None or any(os.path.lexists(path / g) for g in left_out):
                parts = digests.read_parts(path, ignore)
            parts = _without(parts, ignore)
        else:
            parts = _library_parts(path, serialization, ignore)
    except ArtifactError as exc:
        verdict.status, verdict.reason = CHANGED, exc.reason
        return verdict
    verdict.diff = digests.compare(signed, parts)
    verdict.parts = len(parts.digests)
    verdict.bytes_read = parts.bytes_read
    verdict.status = CHANGED if verdict.diff else VERIFIED
    return verdict


def _without(parts: Parts, ignore: Iterable[str]) -> Parts:
    """``parts`` without those a signature leaves out (read by a caller that did not know)."""
    ignore = tuple(ignore)
    return Parts(
        digests={n: d for n, d in parts.digests.items() if not digests.is_ignored(n, ignore)},
        links=[n for n in parts.links if not digests.is_ignored(n, ignore)],
        bytes_read=parts.bytes_read,
    )
