"""The verdict cache: unchanged artifacts are not checked twice, and nothing forged is trusted.

Every run here is a real gate run (pytester, in process; the checks in the isolated worker) over
real files; the cache is pytest's own, in the pytester folder.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from builders.gate_artifacts import stage

from pytest_kerasmodel.gate import verdicts

KEY = "a-ci-secret"


@pytest.fixture(autouse=True)
def _cache_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(verdicts.KEY_ENV, KEY)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))


#: the file-only checks (no Keras in the worker): what most tests here need, and fast
FILE_ONLY = ("-k", "integrity or safety or structure")


def _gate(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    report = pytester.path / "gate-report.json"
    result = pytester.runpytest("--keras-model-dir", "models", "--keras-report", str(report), *args)
    data = json.loads(report.read_text())
    return result, {Path(a["artifact"]).name: a for a in data["artifacts"]}


def _cached(rows: dict[str, Any], name: str) -> set[bool]:
    return {c["cached"] for c in rows[name]["checks"].values()}


def _entries(pytester: pytest.Pytester) -> list[Path]:
    folder = pytester.path / ".pytest_cache" / "d" / verdicts.CACHE_FOLDER
    return sorted(folder.glob("*.json"))


def test_second_run_serves_every_unchanged_verdict_passing_and_failing(
    pytester: pytest.Pytester, gate_files: dict[str, Path]
) -> None:
    stage(pytester.path / "models", gate_files, ["clf.keras", "nan.keras"])
    first, rows = _gate(pytester, "-v")
    assert first.ret == 1  # nan.keras fails finite
    assert "(cached)" not in first.stdout.str()
    assert _cached(rows, "clf.keras") == _cached(rows, "nan.keras") == {False}
    assert len(_entries(pytester)) == 2

    second, rows = _gate(pytester, "-v")
    assert second.ret == 1  # the broken artifact still fails, served from the cache
    second.stdout.fnmatch_lines(
        [
            "*models/clf.keras::load PASSED (cached)*",
            "*models/nan.keras::finite FAILED (cached)*",
            "*2 unchanged artifact(s) not read again*",
        ]
    )
    assert _cached(rows, "clf.keras") == _cached(rows, "nan.keras") == {True}
    assert rows["nan.keras"]["checks"]["finite"]["status"] == "failed"
    assert "NaN" in rows["nan.keras"]["checks"]["finite"]["message"]
    assert first.parseoutcomes() == second.parseoutcomes()


def _change_bytes(pytester: pytest.Pytester, files: dict[str, Path]) -> tuple[str, ...]:
    shutil.copyfile(files["wider.keras"], pytester.path / "models" / "clf.keras")
    return ()


def _change_golden(pytester: pytest.Pytester, files: dict[str, Path]) -> tuple[str, ...]:
    golden = pytester.path / "models" / "clf.keras.golden.json"
    data = json.loads(golden.read_text())
    data["entries"]["clf.keras"]["weights"]["hidden/kernel"]["shape"] = [3, 5]
    golden.write_text(json.dumps(data))
    return ()


def _change_option(pytester: pytest.Pytester, files: dict[str, Path]) -> tuple[str, ...]:
    return ("--keras-rtol", "1e-3")


@pytest.mark.parametrize(
    "change", [_change_bytes, _change_golden, _change_option], ids=["bytes", "golden", "option"]
)
def test_a_change_the_verdict_depends_on_checks_the_artifact_again(
    pytester: pytest.Pytester, gate_files: dict[str, Path], change: Any
) -> None:
    stage(pytester.path / "models", gate_files, ["clf.keras", "clf.h5"])
    recorded = pytester.runpytest(
        "--keras-model-dir", "models", "--keras-update-golden", *FILE_ONLY
    )
    assert recorded.ret == 0
    _gate(pytester, *FILE_ONLY)  # fills the cache (recording goldens does not)
    _, rows = _gate(pytester, *FILE_ONLY)
    assert _cached(rows, "clf.keras") == _cached(rows, "clf.h5") == {True}

    args = change(pytester, gate_files)
    result, rows = _gate(pytester, *FILE_ONLY, *args)
    assert _cached(rows, "clf.keras") == {False}
    # an option is part of every artifact's key; a file only of its own artifact's
    assert _cached(rows, "clf.h5") == ({False} if args else {True})
    if change is not _change_option:  # another architecture, or another recorded one
        assert rows["clf.keras"]["checks"]["structure"]["status"] == "failed"
        assert result.ret == 1


def test_a_version_change_makes_another_key(tmp_path: Path) -> None:
    artifact = tmp_path / "m.keras"
    artifact.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    request = {"path": str(artifact), "checks": ["integrity"], "rtol": 1e-5}
    env = verdicts.environment()
    newer = {**env, "versions": {**env["versions"], "keras": "99.0.0"}}
    key = verdicts.verdict_key(request, tmp_path, env)
    assert key == verdicts.verdict_key(request, tmp_path, dict(env))
    assert key != verdicts.verdict_key(request, tmp_path, newer)
    other_backend = {**env, "backend": "jax"}
    assert key != verdicts.verdict_key(request, tmp_path, other_backend)

    cache = verdicts.VerdictCache(tmp_path, b"k", tmp_path)
    response = {"checks": {"integrity": {"status": "passed", "message": "", "details": {}}}}
    assert key is not None
    cache.put(request, key, response)
    assert cache.get(request, key) is not None
    newer_key = verdicts.verdict_key(request, tmp_path, newer)
    assert newer_key is not None and cache.get(request, newer_key) is None


def test_paths_under_the_rootdir_do_not_change_the_key(tmp_path: Path) -> None:
    """Another checkout of the same repository (a CI workspace elsewhere) shares the entries."""
    keys = []
    for checkout in ("a", "b"):
        root = tmp_path / checkout
        (root / "models").mkdir(parents=True)
        artifact = root / "models" / "m.h5"
        artifact.write_bytes(b"same bytes")
        request = {"path": str(artifact), "checks": ["integrity"], "golden_structure": ""}
        keys.append(verdicts.verdict_key(request, root))
    assert keys[0] is not None and keys[0] == keys[1]


def _forge_passing(entry_path: Path, secret: bytes) -> None:
    entry = json.loads(entry_path.read_text())
    response = json.loads(entry["response"])
    for result in response["checks"].values():
        result.update(status="passed", message="", details={})
    text = json.dumps(response, sort_keys=True)
    entry["response"] = text
    entry["tag"] = verdicts._tag(secret, entry["key"], text)
    entry_path.write_text(json.dumps(entry))


def test_a_forged_passing_entry_never_vouches_for_a_lambda_artifact(
    pytester: pytest.Pytester, gate_files: dict[str, Path]
) -> None:
    """A pull request commits .pytest_cache with an entry saying lambda.keras passed: tagged
    with the attacker's own key, or with none, it is ignored and the checks run."""
    stage(pytester.path / "models", gate_files, ["lambda.keras"])
    first, rows = _gate(pytester, *FILE_ONLY)
    assert first.ret == 1 and rows["lambda.keras"]["checks"]["safety"]["status"] == "failed"
    [entry] = _entries(pytester)

    # the forger's check: a correctly tagged entry would be served (so the test can fail)
    _forge_passing(entry, KEY.encode())
    trusted, rows = _gate(pytester, *FILE_ONLY)
    assert trusted.ret == 0 and _cached(rows, "lambda.keras") == {True}

    for forged_with in (b"the-attackers-own-key", b""):
        _forge_passing(entry, forged_with)
        result, rows = _gate(pytester, "-v", *FILE_ONLY)
        assert result.ret == 1
        safety = rows["lambda.keras"]["checks"]["safety"]
        assert safety["status"] == "failed" and not safety["cached"]
        assert "[lambda]" in safety["message"]
        assert "(cached)" not in result.stdout.str()
        # the honest verdict replaced the forged one
        _forge_passing(entry, forged_with)
    assert not (pytester.path / "LAMBDA_RAN").exists()


@pytest.mark.parametrize(
    "damage",
    [
        b"",
        b"{not json",
        b'{"cache_format": 1}',
        b'{"cache_format": 999, "key": "x", "response": "{}", "tag": "0"}',
        b"[]",
    ],
    ids=["empty", "not-json", "fields-missing", "other-format", "not-an-object"],
)
def test_a_damaged_cache_entry_is_ignored_and_rewritten(
    pytester: pytest.Pytester, gate_files: dict[str, Path], damage: bytes
) -> None:
    stage(pytester.path / "models", gate_files, ["clf.keras"])
    _gate(pytester, *FILE_ONLY)
    [entry] = _entries(pytester)
    entry.write_bytes(damage)
    result, rows = _gate(pytester, *FILE_ONLY)
    assert result.ret == 0 and _cached(rows, "clf.keras") == {False}
    _, rows = _gate(pytester, *FILE_ONLY)
    assert _cached(rows, "clf.keras") == {True}


@pytest.mark.parametrize(
    "off",
    [("-p", "no:cacheprovider"), ("--keras-no-cache",), ("-o", "keras_cache=false")],
    ids=["no-cacheprovider", "flag", "ini"],
)
def test_the_cache_can_be_turned_off(
    pytester: pytest.Pytester, gate_files: dict[str, Path], off: tuple[str, ...]
) -> None:
    stage(pytester.path / "models", gate_files, ["clf.keras"])
    _gate(pytester, *FILE_ONLY)
    _, rows = _gate(pytester, *FILE_ONLY, *off)
    assert _cached(rows, "clf.keras") == {False}


def test_cache_clear_empties_it(pytester: pytest.Pytester, gate_files: dict[str, Path]) -> None:
    stage(pytester.path / "models", gate_files, ["clf.keras"])
    _gate(pytester, *FILE_ONLY)
    _, rows = _gate(pytester, *FILE_ONLY, "--cache-clear")
    assert _cached(rows, "clf.keras") == {False}


def test_a_machine_key_is_made_once_outside_the_working_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(verdicts.KEY_ENV)
    root = tmp_path / "repo"
    root.mkdir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))
    first = verdicts.secret_key(root)
    assert first is not None and len(first) == 64
    assert verdicts.secret_key(root) == first
    key_file = verdicts.user_key_file()
    assert key_file.read_bytes() == first
    assert (key_file.stat().st_mode & 0o777) == 0o600
    assert [p.name for p in key_file.parent.iterdir()] == [key_file.name]  # no temp left

    # a key that would live inside the working tree is no key: no cache at all
    monkeypatch.setenv("XDG_CACHE_HOME", str(root / ".cache"))
    assert verdicts.secret_key(root) is None
    assert not (root / ".cache").exists()


def test_a_timed_out_check_is_not_a_verdict() -> None:
    timed_out = {
        "checks": {
            "load": {
                "status": "failed",
                "message": "timed out in the load check: checking this artifact took longer "
                "than 1 s (keras_timeout); the worker was stopped",
                "details": {},
            },
            "finite": {
                "status": "failed",
                "message": "cannot be verified: the load check timed out",
                "details": {"blocked_by": "load"},
            },
        }
    }
    assert not verdicts.cacheable(timed_out)
    failed = {"checks": {"finite": {"status": "failed", "message": "1 NaN", "details": {}}}}
    assert verdicts.cacheable(failed)


def test_an_unreadable_artifact_has_no_key(tmp_path: Path) -> None:
    missing = {"path": str(tmp_path / "gone.keras"), "checks": ["integrity"]}
    assert verdicts.verdict_key(missing, tmp_path) is None
    assert os.path.exists(tmp_path)


def test_a_link_to_a_fifo_gets_no_key_and_nothing_blocks(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "model.keras"
    link.symlink_to(fifo)
    assert verdicts.verdict_key({"path": str(link), "checks": ["integrity"]}, tmp_path) is None
    folder = tmp_path / "preset"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.weights.h5").symlink_to("/dev/zero")
    assert verdicts.verdict_key({"path": str(folder), "checks": ["integrity"]}, tmp_path) is None


def test_an_exported_artifacts_key_covers_its_source_sidecar_and_the_source(tmp_path: Path) -> None:
    exported, source = tmp_path / "clf.onnx", tmp_path / "clf.keras"
    exported.write_bytes(b"onnx bytes")
    source.write_bytes(b"keras bytes")
    request = {"path": str(exported), "checks": ["predictions"]}
    alone = verdicts.verdict_key(request, tmp_path)
    (tmp_path / "clf.onnx.source").write_text("clf.keras\n")
    named = verdicts.verdict_key(request, tmp_path)
    source.write_bytes(b"retrained keras bytes")
    retrained = verdicts.verdict_key(request, tmp_path)
    assert len({alone, named, retrained}) == 3
    source.write_text("")  # a source naming itself back does not loop
    (tmp_path / "clf.keras.source").write_text("clf.onnx")
    assert verdicts.verdict_key(request, tmp_path) is not None
