"""Real signing material generated in the test: elliptic-curve key pairs and a certificate
chain (root CA -> signing certificate), written as PEM files with the ``cryptography`` package,
and a Sigstore client trust configuration built from the trust roots that ship with the
``sigstore`` package (for offline verification)."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path


def _pem_private(key: Any) -> bytes:
    """A private key as PEM, PKCS#8, unencrypted (what model-signing reads)."""
    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def key_pair(folder: Path, name: str) -> KeyPair:
    """A P-256 key pair as ``<name>.pem`` (PKCS#8) and ``<name>.pub`` (SubjectPublicKeyInfo)."""
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    private = folder / f"{name}.pem"
    public = folder / f"{name}.pub"
    private.write_bytes(_pem_private(key))
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return KeyPair(private, public)


@dataclass(frozen=True)
class Chain:
    """A root CA and a signing certificate it issued, with the signing key."""

    root: Path
    certificate: Path
    key: Path
    subject: str


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pytest-kerasmodel tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def _certificate(
    subject: x509.Name, issuer: x509.Name, public_key: Any, issuer_key: Any, *, ca: bool
) -> x509.Certificate:
    """A certificate valid from yesterday for 30 days: a CA's (signs certificates) or a code
    signer's (signs, and says so in its extended key usage)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def certificate_chain(folder: Path, name: str) -> Chain:
    """A self-signed root CA ``<name>-root.crt`` and a code-signing certificate
    ``<name>-signer.crt`` it issued for the key ``<name>-signer.pem``."""
    folder.mkdir(parents=True, exist_ok=True)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name(f"{name} root CA")
    root = _certificate(root_name, root_name, root_key.public_key(), root_key, ca=True)
    signer_key = ec.generate_private_key(ec.SECP256R1())
    subject = f"{name} model signer"
    signer = _certificate(_name(subject), root_name, signer_key.public_key(), root_key, ca=False)
    paths = Chain(
        root=folder / f"{name}-root.crt",
        certificate=folder / f"{name}-signer.crt",
        key=folder / f"{name}-signer.pem",
        subject=subject,
    )
    paths.root.write_bytes(root.public_bytes(serialization.Encoding.PEM))
    paths.certificate.write_bytes(signer.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(_pem_private(signer_key))
    return paths


def sigstore_trust_config(folder: Path) -> Path:
    """A ClientTrustConfig JSON for the public-good instance, built from the trusted root and
    signing configuration the ``sigstore`` package ships: verification against it needs no
    network."""
    import sigstore

    store = Path(sigstore.__file__).parent / "_store" / "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"
    config = {
        "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
        "trustedRoot": json.loads((store / "trusted_root.json").read_text()),
        "signingConfig": json.loads((store / "signing_config.v0.2.json").read_text()),
    }
    path = folder / "trust_config.json"
    path.write_text(json.dumps(config))
    return path
