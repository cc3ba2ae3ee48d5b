"""``kerasmodel sign`` and ``kerasmodel lock``, and the provenance arguments of
``kerasmodel gate``: declared and run here so that :mod:`pytest_kerasmodel.cli` only dispatches.

- ``kerasmodel sign PATH --key KEY [--certificate CERT --chain PEM...] [--signature SIG]``:
  an OMS signature of the artifact, written atomically (exit 0 signed, 2 error);
- ``kerasmodel lock PATH... [--lock FILE]``: every artifact under the paths (folders walked
  as the gate walks a model folder) recorded in the lock (exit 0, 2 error).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_LOCK = "kerasmodel.lock.json"
EXIT_OK, EXIT_ERROR = 0, 2


def add_commands(commands: Any) -> None:
    """Add ``sign`` and ``lock`` to ``kerasmodel``'s subcommands."""
    sign = commands.add_parser(
        "sign",
        help="sign an artifact (OpenSSF Model Signing) for the gate's signature check",
        description="Write an OMS signature (a Sigstore bundle of a DSSE envelope over every "
        "part's SHA-256) of a Keras artifact, with a private elliptic-curve key. The artifact "
        "is only read; the signature is written atomically. Exit 0 signed, 2 error.",
    )
    sign.add_argument("path", type=Path, help="the artifact: a file, a model folder or preset")
    sign.add_argument("--key", type=Path, required=True, help="the private key (PEM)")
    sign.add_argument(
        "--certificate", type=Path, help="the key's signing certificate (PEM): sign with it"
    )
    sign.add_argument(
        "--chain", type=Path, nargs="*", default=[], help="the certificates up to the root CA"
    )
    sign.add_argument(
        "--signature",
        type=Path,
        help="where to write it (default: model.sig inside a folder, <file>.sig beside a file)",
    )
    sign.add_argument(
        "--password-env", metavar="VAR", help="the environment variable holding the key's password"
    )
    lock = commands.add_parser(
        "lock",
        help="record artifacts' parts and digests in a lock file for --keras-lock",
        description="Record every artifact under the paths (folders are walked like a model "
        "folder) in the lock: an unsigned in-toto Statement v1 of every part's SHA-256. "
        "Entries for other artifacts are kept, those whose artifact is gone dropped. Written "
        "atomically. Exit 0 written, 2 error.",
    )
    lock.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="artifacts or folders")
    lock.add_argument(
        "--lock", type=Path, default=Path(DEFAULT_LOCK), help=f"the lock file ({DEFAULT_LOCK})"
    )


def add_gate_arguments(gate: argparse.ArgumentParser) -> None:
    """The provenance arguments of ``kerasmodel gate`` (the pytest flags without ``--keras-``)."""
    gate.add_argument("--signature", metavar="PATTERN", help="where each signature is")
    gate.add_argument("--signature-key", type=Path, metavar="PEM", help="verify with this key")
    gate.add_argument(
        "--signature-certificate", type=Path, nargs="+", metavar="PEM", help="trusted CA(s)"
    )
    gate.add_argument("--sigstore-identity", metavar="IDENTITY", help="the Sigstore signer")
    gate.add_argument("--sigstore-issuer", metavar="URL", help="its OIDC issuer")
    gate.add_argument("--sigstore-trust-config", type=Path, metavar="JSON", help="offline trust")
    gate.add_argument(
        "--require-signature",
        nargs="?",
        const="*",
        action="append",
        metavar="PATTERN",
        help="fail artifacts (matching PATTERN) without a signature",
    )
    gate.add_argument("--lock", type=Path, metavar="FILE", help="fail artifacts not in the lock")
    gate.add_argument("--update-lock", action="store_true", help="record them in --lock instead")


def gate_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`~pytest_kerasmodel.options.Settings` fields of the provenance arguments."""

    def absolute(p: Path | None) -> Path | None:
        return Path(os.path.abspath(p)) if p is not None else None

    return {
        "signature_pattern": args.signature or "",
        "signature_key": absolute(args.signature_key),
        "signature_certificates": tuple(
            Path(os.path.abspath(c)) for c in args.signature_certificate or ()
        ),
        "sigstore_identity": args.sigstore_identity or "",
        "sigstore_issuer": args.sigstore_issuer or "",
        "sigstore_trust_config": absolute(args.sigstore_trust_config),
        "require_signature": tuple(args.require_signature or ()),
        "lock": absolute(args.lock),
        "update_lock": bool(args.update_lock),
    }


def run(args: argparse.Namespace, find: Callable[[list[str]], list[Path]]) -> int:
    """Run ``sign`` or ``lock``; errors are printed, naming the file, and exit 2. ``find`` gives
    the artifacts under the paths ``lock`` is given, walked as the gate walks them (the caller
    passes the gate's discovery, which this package, below the gate, does not import)."""
    from pytest_kerasmodel.errors import KerasModelError

    try:
        if args.command == "sign":
            return _sign(args)
        return _lock(args, find)
    except KerasModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _sign(args: argparse.Namespace) -> int:
    from pytest_kerasmodel.provenance.signature import sign_artifact

    password = os.environ.get(args.password_env) if args.password_env else None
    written = sign_artifact(
        args.path,
        key=args.key,
        signature=args.signature,
        certificate=args.certificate,
        chain=args.chain,
        password=password,
    )
    print(f"signed {args.path}: {written}")
    return EXIT_OK


def _lock(args: argparse.Namespace, find: Callable[[list[str]], list[Path]]) -> int:
    from pytest_kerasmodel.provenance.lock import LockError, lock_artifacts

    found = find([str(p) for p in args.paths])
    if not found:
        raise LockError(f"{', '.join(map(str, args.paths))}: lock: no Keras artifact found")
    print(lock_artifacts(args.lock, sorted(found)).line())
    return EXIT_OK
