"""Provenance without pytest's gate: OMS signatures of every layout the gate reads, signed and
verified with real keys and a certificate chain made here by ``model-signing``; real
tampering (a changed byte, an added file, a removed shard, a renamed file, a symlink swapped);
an untrusted key and CA; malformed bundles; a Sigstore identity refused offline; the lock."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from builders.signing_keys import (
    Chain,
    KeyPair,
    certificate_chain,
    key_pair,
    sigstore_trust_config,
)

pytest.importorskip("model_signing")

from pytest_kerasmodel.provenance import lock as locks
from pytest_kerasmodel.provenance import signature as sig
from pytest_kerasmodel.provenance.signature import Trust


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KeyPair]:
    folder = tmp_path_factory.mktemp("keys")
    return {"team": key_pair(folder, "team"), "other": key_pair(folder, "other")}


@pytest.fixture(scope="module")
def chains(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Chain]:
    folder = tmp_path_factory.mktemp("chains")
    return {"team": certificate_chain(folder, "team"), "other": certificate_chain(folder, "other")}


def _copy(src: Path, dst: Path) -> Path:
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    return dst


def _snapshot(path: Path) -> dict[str, tuple[str, int]]:
    """Every file's SHA-256 and mtime: what signing must not change."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {
        str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in files
    }


LAYOUTS = {
    # name -> (fixture, key): each layout the gate reads
    "keras": ("layout_files", "mlp.keras"),
    "h5": ("keras3_files", "h5"),
    "weights.h5": ("layout_files", "mlp.weights.h5"),
    "model folder": ("layout_files", "mlp_dir"),
    "sharded": ("layout_files", "sharded"),
    "preset": ("preset_files", "sharded_preset"),
    "savedmodel": ("exported_files", "saved_model"),
    "onnx": ("exported_files", "model.onnx"),
    "tflite": ("exported_files", "model.tflite"),
    "openvino": ("exported_files", "model.xml"),
}


def _artifact(request: pytest.FixtureRequest, layout: str, target: Path) -> Path:
    fixture, key = LAYOUTS[layout]
    src = request.getfixturevalue(fixture)[key]
    if layout == "sharded":  # the manifest is the artifact; its shards lie beside it
        _copy(src, target / "sharded")
        return target / "sharded" / "w.weights.json"
    if layout == "openvino":  # the graph is the artifact; its weights lie beside it
        _copy(src, target / "ov" / src.name)
        _copy(src.with_suffix(".bin"), target / "ov" / "model.bin")
        return target / "ov" / src.name
    return _copy(src, target / src.name)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_each_layout_signs_and_verifies_and_signing_changes_nothing(
    request: pytest.FixtureRequest, tmp_path: Path, keys: dict[str, KeyPair], layout: str
) -> None:
    artifact = _artifact(request, layout, tmp_path)
    before = _snapshot(artifact if layout not in ("sharded", "openvino") else artifact.parent)
    written = sig.sign_artifact(artifact, key=keys["team"].private)
    assert written == sig.default_signature_path(artifact)
    after = _snapshot(artifact if layout not in ("sharded", "openvino") else artifact.parent)
    after.pop(str(written), None)
    assert after == before  # the artifact was only read
    assert not [p for p in written.parent.iterdir() if p.name.endswith(".tmp")]
    verdict = sig.verify_signature(artifact, Trust(key=str(keys["team"].public)))
    assert verdict.status == sig.VERIFIED, verdict.message()
    fingerprint = hashlib.sha256(_der(keys["team"].public)).hexdigest()
    assert fingerprint in verdict.signer
    assert verdict.parts >= (2 if layout in ("sharded", "openvino", "model folder") else 1)
    untrusted = sig.verify_signature(artifact, Trust(key=str(keys["other"].public)))
    assert untrusted.status == sig.UNTRUSTED
    assert "does not verify with the trusted key" in untrusted.reason


def _der(public: Path) -> bytes:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_public_key(public.read_bytes())
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture
def signed_folder(layout_files: dict[str, Path], tmp_path: Path, keys: dict[str, KeyPair]) -> Path:
    folder = _copy(layout_files["mlp_dir"], tmp_path / "mlp_dir")
    sig.sign_artifact(folder, key=keys["team"].private)
    return folder


def _verify(path: Path, keys: dict[str, KeyPair]) -> sig.SignatureVerdict:
    return sig.verify_signature(path, Trust(key=str(keys["team"].public)))


def test_a_changed_byte_is_named(signed_folder: Path, keys: dict[str, KeyPair]) -> None:
    weights = signed_folder / "model.weights.h5"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    verdict = _verify(signed_folder, keys)
    assert verdict.status == sig.CHANGED
    assert verdict.diff.changed == ["model.weights.h5"]
    assert not verdict.diff.added and not verdict.diff.removed
    assert "changed: model.weights.h5" in verdict.message()


def test_an_added_and_a_renamed_file_are_named(
    signed_folder: Path, keys: dict[str, KeyPair]
) -> None:
    (signed_folder / "extra.py").write_text("print('hello')\n")
    (signed_folder / "metadata.json").rename(signed_folder / "meta.json")
    verdict = _verify(signed_folder, keys)
    assert verdict.status == sig.CHANGED
    assert verdict.diff.added == ["extra.py", "meta.json"]
    assert verdict.diff.removed == ["metadata.json"]


def test_a_symlink_swapped_in_fails_even_to_the_same_bytes(
    signed_folder: Path, keys: dict[str, KeyPair], tmp_path: Path
) -> None:
    """A file replaced by a link to a copy of itself: the bytes are the same, but a link is
    never followed, so it cannot be vouched for."""
    config = signed_folder / "config.json"
    elsewhere = tmp_path / "elsewhere.json"
    shutil.copyfile(config, elsewhere)
    config.unlink()
    os.symlink(elsewhere, config)
    verdict = _verify(signed_folder, keys)
    assert verdict.status == sig.CHANGED
    assert verdict.diff.links == ["config.json"]
    assert "a symbolic link (never followed): config.json" in verdict.message()


def test_a_removed_shard_is_named(
    layout_files: dict[str, Path], tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    folder = _copy(layout_files["sharded"], tmp_path / "sharded")
    manifest = folder / "w.weights.json"
    sig.sign_artifact(manifest, key=keys["team"].private)
    shards = sorted(p.name for p in folder.iterdir() if p.name.endswith(".h5"))
    assert len(shards) >= 2
    (folder / shards[-1]).unlink()
    verdict = _verify(manifest, keys)
    assert verdict.status == sig.CHANGED
    assert verdict.diff.removed == [shards[-1]]
    # a file beside the manifest that it does not name is no part of it
    (folder / shards[-1]).write_bytes(b"")
    (folder / "notes.txt").write_text("not a part")
    assert _verify(manifest, keys).diff.changed == [shards[-1]]


def test_a_certificate_chain_verifies_and_another_ca_does_not(
    keras3_files: dict[str, Path], tmp_path: Path, chains: dict[str, Chain]
) -> None:
    artifact = _copy(keras3_files["keras"], tmp_path / "tiny.keras")
    team = chains["team"]
    sig.sign_artifact(artifact, key=team.key, certificate=team.certificate, chain=[team.root])
    verdict = sig.verify_signature(artifact, Trust(certificates=[str(team.root)]))
    assert verdict.status == sig.VERIFIED, verdict.message()
    assert team.subject in verdict.signer and verdict.method == "certificate"
    other = sig.verify_signature(artifact, Trust(certificates=[str(chains["other"].root)]))
    assert other.status == sig.UNTRUSTED and other.signer == ""


def test_a_sigstore_identity_refuses_a_key_bundle_offline(
    keras3_files: dict[str, Path], tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """Against the public-good trust root shipped with sigstore (no network): a bundle signed
    by a bare key is no Sigstore bundle of that identity."""
    artifact = _copy(keras3_files["keras"], tmp_path / "tiny.keras")
    sig.sign_artifact(artifact, key=keys["team"].private)
    trust = Trust(
        sigstore_identity="release@example.com",
        sigstore_issuer="https://accounts.google.com",
        sigstore_trust_config=str(sigstore_trust_config(tmp_path)),
    )
    verdict = sig.verify_signature(artifact, trust)
    assert verdict.status in (sig.MALFORMED, sig.UNTRUSTED)
    assert not verdict.ok and "certificate" in verdict.reason


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"", json.dumps({"mediaType": "x"}).encode()],
    ids=["not-json", "empty", "no-envelope"],
)
def test_a_malformed_bundle_is_said(
    keras3_files: dict[str, Path], tmp_path: Path, keys: dict[str, KeyPair], content: bytes
) -> None:
    artifact = _copy(keras3_files["keras"], tmp_path / "tiny.keras")
    sig.default_signature_path(artifact).write_bytes(content)
    verdict = _verify(artifact, keys)
    assert verdict.status == sig.MALFORMED
    assert verdict.message().startswith(f"malformed: {artifact}.sig: not an OMS bundle")


def test_a_tampered_envelope_is_untrusted(
    keras3_files: dict[str, Path], tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """The statement re-written to claim other digests: its signature no longer holds."""
    import base64

    artifact = _copy(keras3_files["keras"], tmp_path / "tiny.keras")
    where = sig.sign_artifact(artifact, key=keys["team"].private)
    bundle = json.loads(where.read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["predicate"]["resources"][0]["digest"] = "0" * 64
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    where.write_text(json.dumps(bundle))
    assert _verify(artifact, keys).status == sig.UNTRUSTED


def test_missing_signature_and_bad_trust(
    keras3_files: dict[str, Path], tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    artifact = _copy(keras3_files["keras"], tmp_path / "tiny.keras")
    verdict = _verify(artifact, keys)
    assert verdict.status == sig.MISSING and not verdict.ok
    assert verdict.message() == f"no signature at {artifact}.sig"
    with pytest.raises(sig.SigningError, match="nothing to verify it with"):
        sig.verify_signature(artifact, Trust())
    with pytest.raises(sig.SigningError, match="no such file"):
        sig.verify_signature(artifact, Trust(key=str(tmp_path / "absent.pub")))


def test_signing_refuses_links_and_bad_keys(
    layout_files: dict[str, Path], tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    folder = _copy(layout_files["mlp_dir"], tmp_path / "mlp_dir")
    os.symlink(folder / "config.json", folder / "link.json")
    with pytest.raises(sig.SigningError, match=r"symbolic link.*link\.json"):
        sig.sign_artifact(folder, key=keys["team"].private)
    assert not (folder / "model.sig").exists()
    (folder / "link.json").unlink()
    with pytest.raises(sig.SigningError, match="mlp_dir: sign: the key"):
        sig.sign_artifact(folder, key=keys["team"].public)  # a public key cannot sign
    assert not (folder / "model.sig").exists()
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_a_signature_pattern_places_it(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    file = tmp_path / "a.keras"
    file.write_bytes(b"")
    assert sig.signature_path_for(folder) == folder / "model.sig"
    assert sig.signature_path_for(file) == tmp_path / "a.keras.sig"
    assert sig.signature_path_for(file, "sigs/{stem}.sig") == tmp_path / "sigs" / "a.sig"
    assert sig.signature_path_for(folder, "/abs/{name}.sig") == Path("/abs/m.sig")


def test_the_lock_lifecycle(
    layout_files: dict[str, Path], keras3_files: dict[str, Path], tmp_path: Path
) -> None:
    """Written, read back and compared; a changed part, an unlisted artifact, an artifact gone;
    updated explicitly (added, changed, removed counted)."""
    models = tmp_path / "models"
    folder = _copy(layout_files["mlp_dir"], models / "mlp_dir")
    file = _copy(keras3_files["keras"], models / "tiny.keras")
    lock_file = tmp_path / "kerasmodel.lock.json"
    first = locks.lock_artifacts(lock_file, [folder, file])
    assert first.added == ["models/mlp_dir", "models/tiny.keras"] and not first.changed
    data = json.loads(lock_file.read_text())
    assert data["_type"] == "https://in-toto.io/Statement/v1"
    names = {s["name"] for s in data["subject"]}
    assert names >= {"models/tiny.keras", "models/mlp_dir/config.json"}
    lock = locks.read_lock(lock_file)
    assert locks.compare_to_lock(lock, folder, locks.read_parts(folder)).ok
    (folder / "config.json").write_text("{}")
    changed = locks.compare_to_lock(lock, folder, locks.read_parts(folder))
    assert changed.status == "changed" and changed.diff.changed == ["config.json"]
    newcomer = _copy(keras3_files["h5"], models / "tiny.h5")
    unlisted = locks.compare_to_lock(lock, newcomer, locks.read_parts(newcomer))
    assert unlisted.status == "unlisted" and "not in the lock" in unlisted.message()
    file.unlink()
    assert lock.gone() == ["models/tiny.keras"]
    update = locks.lock_artifacts(lock_file, [folder, newcomer])
    assert (update.added, update.changed, update.removed) == (
        ["models/tiny.h5"],
        ["models/mlp_dir"],
        ["models/tiny.keras"],
    )
    assert "1 added, 1 changed, 1 removed (gone)" in update.line()
    assert set(locks.read_lock(lock_file).artifacts) == {"models/mlp_dir", "models/tiny.h5"}
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{", "cannot be read as JSON"),
        (json.dumps({"_type": "x"}), "not a pytest-kerasmodel lock"),
        (
            json.dumps(
                {
                    "_type": locks.STATEMENT_TYPE,
                    "predicateType": locks.PREDICATE_TYPE,
                    "predicate": {"lock_format": 99, "artifacts": {}},
                }
            ),
            "format 99",
        ),
    ],
)
def test_a_bad_lock_names_the_file(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "kerasmodel.lock.json"
    path.write_text(content)
    with pytest.raises(locks.LockError, match=f"kerasmodel.lock.json: lock: {reason}"):
        locks.read_lock(path)


def test_a_file_the_lock_leaves_out_is_seen_by_a_signature_that_does_not(
    layout_files: dict[str, Path], tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """The gate hands the lock's reading to the signature check; a folder signed with its
    signature elsewhere signs every file, so a planted ``model.sig`` is an added file."""
    folder = _copy(layout_files["mlp_dir"], tmp_path / "mlp_dir")
    elsewhere = tmp_path / "signatures" / "mlp_dir.sig"
    sig.sign_artifact(folder, key=keys["team"].private, signature=elsewhere)
    (folder / "model.sig").write_text("planted")
    trust = Trust(key=str(keys["team"].public))
    verdict = sig.verify_signature(
        folder, trust, signature=elsewhere, parts=locks.read_parts(folder)
    )
    assert verdict.status == sig.CHANGED and verdict.diff.added == ["model.sig"]
