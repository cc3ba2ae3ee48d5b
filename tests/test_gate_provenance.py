"""The gate's provenance checks as a user meets them: ``pytest --keras-model-dir`` and
``kerasmodel gate`` with a signature key, a certificate chain, required signatures per folder,
and a lock (``--keras-lock``, ``--keras-update-lock``); each verdict in the JSON, JUnit and
SARIF reports. Real keys, real signatures by ``model-signing``, real tampering."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from builders.layouts import copy_artifact, gate_report
from builders.signing_keys import KeyPair, certificate_chain, key_pair

pytest.importorskip("model_signing")

from pytest_kerasmodel import cli
from pytest_kerasmodel.provenance.signature import sign_artifact

#: where isolation is not the point, checks run in the test process (Keras already imported)
IN_PROCESS = "--keras-no-isolation"
FILE_ONLY = ("--keras-checks", "integrity,safety")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KeyPair]:
    folder = tmp_path_factory.mktemp("keys")
    return {"team": key_pair(folder, "team"), "other": key_pair(folder, "other")}


def _models(pytester: pytest.Pytester, layout_files: dict[str, Path]) -> Path:
    """models/ with a .keras file, a model folder and sharded weights (in their own folder)."""
    pytester.makeini("[pytest]\n")  # the rootdir: artifacts are named models/...
    models = pytester.path / "models"
    copy_artifact(layout_files["mlp.keras"], models / "mlp.keras")
    copy_artifact(layout_files["mlp_dir"], models / "mlp_dir")
    shutil.copytree(layout_files["sharded"], models / "sharded")
    return models


def _checks(data: dict, artifact: str) -> dict[str, dict]:
    return data["by_id"][artifact]["checks"]


def test_signed_artifacts_pass_and_tampered_ones_fail_naming_the_part(
    pytester: pytest.Pytester, layout_files: dict[str, Path], keys: dict[str, KeyPair]
) -> None:
    models = _models(pytester, layout_files)
    for artifact in (models / "mlp.keras", models / "mlp_dir", models / "sharded/w.weights.json"):
        sign_artifact(artifact, key=keys["team"].private)
    key = ("--keras-signature-key", str(keys["team"].public))
    result, data = gate_report(pytester, IN_PROCESS, *FILE_ONLY, "--keras-checks",
                               "integrity,safety,signature", *key)  # fmt: skip
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    for name in ("models/mlp.keras", "models/mlp_dir", "models/sharded/w.weights.json"):
        entry = _checks(data, name)["signature"]
        assert entry["status"] == "passed", entry
        assert entry["provenance"]["status"] == "verified"
        assert "key team.pub (SHA256:" in entry["provenance"]["signer"]
    result.stdout.no_fnmatch_line("not checked:*")  # the .sig files are the gate's own

    shards = sorted((models / "sharded").glob("*.h5"))
    shards[-1].unlink()  # a removed shard
    (models / "mlp_dir" / "extra.txt").write_text("added")  # an added file
    data_file = models / "mlp.keras"
    blob = bytearray(data_file.read_bytes())
    blob[-100] ^= 1  # a changed byte (in the zip's central directory, past the members)
    data_file.write_bytes(bytes(blob))
    result, data = gate_report(pytester, IN_PROCESS, "--keras-checks", "signature", *key)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    keras_entry = _checks(data, "models/mlp.keras")["signature"]
    assert keras_entry["provenance"]["changed"] == ["."]
    assert _checks(data, "models/mlp_dir")["signature"]["provenance"]["added"] == ["extra.txt"]
    sharded = _checks(data, "models/sharded/w.weights.json")["signature"]["provenance"]
    assert sharded["removed"] == [shards[-1].name]
    result.stdout.fnmatch_lines(
        [
            "*models/mlp_dir: signature: changed since signing (*model.sig, signed by key team*",
            "*- added: extra.txt",
        ]
    )


def test_untrusted_missing_and_required_per_folder(
    pytester: pytest.Pytester, layout_files: dict[str, Path], keys: dict[str, KeyPair]
) -> None:
    """Signed by another key: failed. Not signed: skipped, never passed, unless a pattern of
    keras_require_signature names its folder."""
    models = pytester.path / "models"
    copy_artifact(layout_files["mlp.keras"], models / "prod" / "a.keras")
    copy_artifact(layout_files["mlp.keras"], models / "prod" / "b.keras")
    copy_artifact(layout_files["mlp.keras"], models / "scratch" / "c.keras")
    sign_artifact(models / "prod" / "a.keras", key=keys["other"].private)
    pytester.makeini(
        f"[pytest]\nkeras_signature_key = {keys['team'].public}\n"
        "keras_require_signature =\n    prod/*\n"
    )
    result, data = gate_report(pytester, IN_PROCESS, "--keras-checks", "signature")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    a = _checks(data, "models/prod/a.keras")["signature"]
    assert a["status"] == "failed" and a["provenance"]["status"] == "untrusted"
    b = _checks(data, "models/prod/b.keras")["signature"]
    assert b["status"] == "failed" and "a signature is required here" in b["message"]
    c = _checks(data, "models/scratch/c.keras")["signature"]
    assert c["status"] == "skipped" and "no signature at" in c["message"]
    result.stdout.fnmatch_lines(["*2 failed, 1 skipped*"])


def test_the_signature_check_is_collected_only_when_configured(
    pytester: pytest.Pytester, layout_files: dict[str, Path]
) -> None:
    pytester.makeini("[pytest]\n")
    copy_artifact(layout_files["mlp.keras"], pytester.path / "models" / "mlp.keras")
    _, data = gate_report(pytester, IN_PROCESS, *FILE_ONLY)
    assert "signature" not in _checks(data, "models/mlp.keras")
    _, data = gate_report(pytester, IN_PROCESS, "--keras-checks", "signature")
    entry = _checks(data, "models/mlp.keras")["signature"]
    assert entry["status"] == "failed" and "nothing to verify it with" in entry["message"]


def test_a_certificate_chain_in_the_gate_and_its_reports(
    pytester: pytest.Pytester, layout_files: dict[str, Path], tmp_path: Path
) -> None:
    """kerasmodel gate with a CA: the JSON, JUnit and SARIF reports carry verdict and signer."""
    team = certificate_chain(tmp_path, "team")
    models = pytester.path / "models"
    good = copy_artifact(layout_files["mlp.keras"], models / "good.keras")
    bad = copy_artifact(layout_files["mlp_dir"], models / "bad_dir")
    for artifact in (good, bad):
        sign_artifact(artifact, key=team.key, certificate=team.certificate, chain=[team.root])
    (bad / "config.json").write_text("{}")
    out = pytester.path / "out"
    status = cli.main(
        ["gate", str(models), "--no-isolation", "--checks", "signature", "--root",
         str(pytester.path), "--signature-certificate", str(team.root), "--json",
         str(out / "r.json"), "--junitxml", str(out / "r.xml"), "--sarif", str(out / "r.sarif")]
    )  # fmt: skip
    assert status == 1
    report = {a["artifact"]: a for a in json.loads((out / "r.json").read_text())["artifacts"]}
    signer = report["models/good.keras"]["checks"]["signature"]["provenance"]["signer"]
    assert "CN=team model signer" in signer
    assert report["models/bad_dir"]["checks"]["signature"]["provenance"]["changed"] == [
        "config.json"
    ]
    junit = ET.parse(out / "r.xml").getroot()
    props = {
        case.get("classname"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in junit.iter("testcase")
    }
    assert "CN=team model signer" in props["models.good.keras"]["signature.signer"]
    assert props["models.bad_dir"]["signature.changed"] == "config.json"
    assert props["models.bad_dir"]["signature.status"] == "changed"
    sarif = json.loads((out / "r.sarif").read_text())
    (result,) = sarif["runs"][0]["results"]
    assert result["ruleId"] == "kerasmodel/signature"
    assert result["properties"]["provenance"]["changed"] == ["config.json"]


def _lock_args(lock: Path, *more: str) -> tuple[str, ...]:
    return (*more, "--keras-checks", "integrity,lock", "--keras-lock", str(lock))


def test_the_lock_fails_changes_lists_the_gone_and_updates_explicitly(
    pytester: pytest.Pytester, layout_files: dict[str, Path]
) -> None:
    """Like goldens: no lock fails, --keras-update-lock records (atomically, said in the
    summary), then the same files pass; a changed part, a newcomer and an entry whose
    artifact is gone are each named."""
    models = _models(pytester, layout_files)
    lock = pytester.path / "kerasmodel.lock.json"
    args = _lock_args(lock, IN_PROCESS)
    result, _ = gate_report(pytester, *args)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*lock: no such file*"])

    result, _ = gate_report(pytester, *args, "--keras-update-lock")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(
        [f"lock {lock} updated: 3 added, 0 changed, 0 removed (gone), 0 unchanged: *"]
    )
    assert not [p for p in pytester.path.iterdir() if p.name.endswith(".tmp")]
    result, data = gate_report(pytester, *args)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert _checks(data, "models/mlp_dir")["lock"]["provenance"]["status"] == "locked"

    (models / "mlp_dir" / "config.json").write_text("{}")
    copy_artifact(layout_files["mlp.weights.h5"], models / "new.weights.h5")
    shutil.rmtree(models / "sharded")
    result, data = gate_report(pytester, *args)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert _checks(data, "models/mlp_dir")["lock"]["provenance"]["changed"] == ["config.json"]
    assert _checks(data, "models/new.weights.h5")["lock"]["provenance"]["status"] == "unlisted"
    assert _checks(data, "models/mlp.keras")["lock"]["status"] == "passed"
    result.stdout.fnmatch_lines(
        [f"lock {lock}: 1 entry whose artifact is gone: models/sharded/w.weights.json *"]
    )
    result, _ = gate_report(pytester, *args, "--keras-update-lock")
    result.stdout.fnmatch_lines(
        [f"lock {lock} updated: 1 added, 1 changed, 1 removed (gone), 1 unchanged: *"]
    )


def test_the_lock_is_updated_and_checked_under_xdist(
    pytester: pytest.Pytester, layout_files: dict[str, Path]
) -> None:
    """pytest -n 2: the workers read the parts, the controller writes the one lock."""
    models = _models(pytester, layout_files)
    lock = pytester.path / "kerasmodel.lock.json"
    args = _lock_args(lock, "-n", "2")
    result, _ = gate_report(pytester, *args, "--keras-update-lock")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines([f"lock {lock} updated: 3 added, *"])
    (models / "mlp.keras").write_bytes((models / "mlp.keras").read_bytes() + b"\0")
    result, data = gate_report(pytester, *args)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert _checks(data, "models/mlp.keras")["lock"]["provenance"]["changed"] == ["."]
    assert _checks(data, "models/mlp_dir")["lock"]["status"] == "passed"


def test_kerasmodel_sign_and_lock(
    pytester: pytest.Pytester,
    layout_files: dict[str, Path],
    keys: dict[str, KeyPair],
    capsys: pytest.CaptureFixture[str],
) -> None:
    models = _models(pytester, layout_files)
    assert cli.main(["sign", str(models / "mlp_dir"), "--key", str(keys["team"].private)]) == 0
    assert (models / "mlp_dir" / "model.sig").is_file()
    assert cli.main(["sign", str(models / "absent"), "--key", str(keys["team"].private)]) == 2
    assert "absent: sign: no such file or folder" in capsys.readouterr().err
    lock = pytester.path / "approved.lock.json"
    assert cli.main(["lock", str(models), "--lock", str(lock)]) == 0
    assert "3 added" in capsys.readouterr().out
    status = cli.main(
        ["gate", str(models), "--no-isolation", "--checks", "signature,lock", "--root",
         str(pytester.path), "--signature-key", str(keys["team"].public), "--lock", str(lock)]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0, out
    assert "3 artifact(s), 0 failing" in out
