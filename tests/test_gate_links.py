"""The gate over symbolic links, FIFOs and link stores: links are followed and keep their own
path, what cannot be read fails integrity naming it without hanging the run, and a folder of
links (a symlinked copy, a Hugging Face cache) gets the verdicts of the files it leads to."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from builders.gate_artifacts import message, run_gate, status
from builders.layouts import MARKER_NAME, copy_artifact, gate_report, hf_cache, link_tree

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "models"
#: where isolation is not the point, checks run in the test process (Keras already imported)
IN_PROCESS = "--keras-no-isolation"
ALL_OK = {"integrity": "passed", "safety": "passed", "load": "passed", "finite": "passed"}
NO_GOLDEN = {"structure": "skipped", "predictions": "skipped"}
UNREADABLE = {
    "pipe.keras": "a FIFO (named pipe): reading it would block",
    "broken.keras": "a broken symbolic link to 'nowhere.keras': nothing is there",
    "a": "a symbolic link loop: it never reaches a file",
    "b": "a symbolic link loop: it never reaches a file",
}


def _mixed_folder(models: Path, layout_files: dict[str, Path]) -> None:
    """Healthy artifacts beside a FIFO, a broken link, a link loop, and a model folder whose
    config.json is a link to a Lambda config kept elsewhere."""
    shutil.copyfile(layout_files["mlp.keras"], models / "mlp.keras")
    copy_artifact(layout_files["mlp_dir"], models / "mlp_dir")
    os.mkfifo(models / "pipe.keras")
    (models / "broken.keras").symlink_to("nowhere.keras")
    (models / "a").symlink_to("b")
    (models / "b").symlink_to("a")
    elsewhere = models.parent / "elsewhere"
    elsewhere.mkdir()
    shutil.copyfile(layout_files["lambda_dir"] / "config.json", elsewhere / "lambda.json")
    linked = models / "linked_lambda"
    linked.mkdir()
    for name in ("metadata.json", "model.weights.h5"):
        shutil.copyfile(layout_files["lambda_dir"] / name, linked / name)
    (linked / "config.json").symlink_to(Path("..", "..", "elsewhere", "lambda.json"))


def _verdicts(report: dict[str, Any]) -> dict[str, Any]:
    """{artifact id: (format, params, {check: status})}: what must not depend on the run."""
    return {
        artifact: (
            row["format"],
            row["params"],
            {check: v["status"] for check, v in row["checks"].items()},
        )
        for artifact, row in report["by_id"].items()
    }


@pytest.mark.parametrize("workers", ["0", "2"])
def test_fifos_and_bad_links_fail_integrity_and_others_are_unaffected(
    pytester: pytest.Pytester, layout_files: dict[str, Path], workers: str
) -> None:
    models = pytester.path / "models"
    models.mkdir()
    _mixed_folder(models, layout_files)
    report_file = pytester.path / "gate-report.json"
    args = ["--keras-model-dir", "models", "--keras-timeout", "20"]
    args += ["--keras-report", str(report_file), "-p", "no:cacheprovider", "-n", workers]
    # a subprocess with a timeout: a read that blocks on the FIFO fails this test, not hangs it
    result = pytester.runpytest_subprocess(*args, timeout=180)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert not (layout_files["lambda_dir"].parent / MARKER_NAME).exists()
    report = json.loads(report_file.read_text())
    report["by_id"] = {row["artifact"]: row for row in report["artifacts"]}
    verdicts = _verdicts(report)
    assert set(verdicts) == {
        *(f"models/{name}" for name in UNREADABLE),
        "models/mlp.keras",
        "models/mlp_dir",
        "models/linked_lambda",
    }
    assert verdicts["models/mlp.keras"] == ("keras", 24, {**ALL_OK, **NO_GOLDEN})
    assert verdicts["models/mlp_dir"] == ("keras-dir", 24, {**ALL_OK, **NO_GOLDEN})
    lam = verdicts["models/linked_lambda"]
    assert lam[0] == "keras-dir"
    assert (lam[2]["integrity"], lam[2]["safety"], lam[2]["load"]) == ("passed", "failed", "failed")
    assert (
        "[lambda] config.json: layer 'lam/touch'"
        in (report["by_id"]["models/linked_lambda"]["checks"]["safety"]["message"])
    )
    for name, reason in UNREADABLE.items():
        row = report["by_id"][f"models/{name}"]
        assert row["checks"]["integrity"]["status"] == "failed", name
        assert reason in row["checks"]["integrity"]["message"], name
        assert row["checks"]["load"]["message"] == "cannot be verified: the integrity check failed"
    result.stdout.fnmatch_lines_random(
        [
            "models/pipe.keras: integrity: a FIFO (named pipe): reading it would block*",
            "models/broken.keras: integrity: a broken symbolic link to 'nowhere.keras'*",
            "models/a: integrity: a symbolic link loop*",
            "7 artifact(s), 5 failing at least one check",
        ]
    )
    assert report["not_checked"] == []


def test_a_symlinked_copy_of_the_examples_gets_the_same_verdicts(
    pytester: pytest.Pytester,
) -> None:
    shutil.copytree(EXAMPLES, pytester.path / "models")
    link_tree(EXAMPLES, pytester.path / "linked")  # a folder of links, one per file
    (pytester.path / "whole").symlink_to(EXAMPLES, target_is_directory=True)
    original, originals = gate_report(pytester, IN_PROCESS)
    assert original.ret == pytest.ExitCode.OK
    expected = {a.removeprefix("models/"): v for a, v in _verdicts(originals).items()}
    assert set(expected) == {
        "iris_classifier.keras",
        "iris_classifier.weights.h5",
        "legacy/iris_classifier.h5",
    }
    assert expected["iris_classifier.keras"][2]["predictions"] == "passed"  # the goldens apply
    both = ("--keras-model-dir", "whole", IN_PROCESS)
    linked, report = gate_report(pytester, *both, folder="linked")
    assert linked.ret == pytest.ExitCode.OK
    verdicts = _verdicts(report)
    for root in ("linked", "whole"):
        assert {
            a.removeprefix(f"{root}/"): v for a, v in verdicts.items() if a.startswith(root)
        } == (expected), root
    assert report["not_checked"] == []
    linked.stdout.fnmatch_lines_random(
        [
            "linked/iris_classifier.keras *keras *ok *ok *ok *ok *ok *ok *ok",
            "whole/legacy/iris_classifier.h5 *h5 *ok *ok *ok *ok *ok *ok*",
            "6 artifact(s), 0 failing at least one check",
        ]
    )


def test_the_item_ids_keep_the_links_path(pytester: pytest.Pytester) -> None:
    link_tree(EXAMPLES, pytester.path / "linked")
    result = pytester.runpytest("--keras-model-dir", "linked", "--collect-only", "-q")
    ids = [line for line in result.stdout.lines if "::" in line]
    assert "linked/iris_classifier.keras::integrity" in ids
    assert "linked/legacy/iris_classifier.h5::load" in ids
    assert not [i for i in ids if "examples" in i], ids


def test_a_hugging_face_cache_snapshot_is_one_model_folder(
    pytester: pytest.Pytester, layout_files: dict[str, Path]
) -> None:
    hf_cache(layout_files["mlp_dir"], pytester.path / "hub" / "models--org--mlp")
    result, verdicts = run_gate(pytester, IN_PROCESS, folder="hub/models--org--mlp/snapshots")
    assert result.ret == pytest.ExitCode.OK
    assert set(verdicts) == {"abc"}
    assert status(verdicts, "abc") == {**ALL_OK, **NO_GOLDEN}
    assert verdicts["abc"]["format"] == "keras-dir"
    assert verdicts["abc"]["params"] == 24
    assert "not applicable" not in message(verdicts, "abc", "load")
    result.stdout.fnmatch_lines(
        [
            "hub/models--org--mlp/snapshots/abc *keras-dir *3.* *24 *ok *ok *ok *ok "
            "*skip (no golden) *skip (no golden)"
        ]
    )
    result.stdout.no_fnmatch_line("not checked:*")


def test_the_root_of_a_hugging_face_cache_gates_each_blob_once(
    pytester: pytest.Pytester, layout_files: dict[str, Path]
) -> None:
    """Gated from the cache's root, the blobs a snapshot links to are its parts: the weights
    blob is not a second artifact, and the JSON blobs are not listed as unchecked."""
    cache = pytester.path / "hub" / "models--org--mlp"
    hf_cache(layout_files["mlp_dir"], cache)
    (cache / "refs").mkdir()
    (cache / "refs" / "main").write_text("abc")
    result, report = gate_report(pytester, IN_PROCESS, folder="hub/models--org--mlp")
    assert result.ret == pytest.ExitCode.OK
    assert [a["artifact"] for a in report["artifacts"]] == ["hub/models--org--mlp/snapshots/abc"]
    assert report["not_checked"] == ["hub/models--org--mlp/refs/main"]


def test_a_model_folder_whose_config_is_a_broken_link_fails_integrity_as_one_artifact(
    pytester: pytest.Pytester, layout_files: dict[str, Path]
) -> None:
    folder = pytester.path / "models" / "mlp"
    copy_artifact(layout_files["mlp_dir"], folder)
    (folder / "config.json").unlink()
    (folder / "config.json").symlink_to("../gone/config.json")
    _, verdicts = run_gate(pytester)
    assert set(verdicts) == {"mlp"}
    assert verdicts["mlp"]["format"] == "keras-dir"
    assert status(verdicts, "mlp")["integrity"] == "failed"
    assert message(verdicts, "mlp", "integrity") == (
        "config.json: a broken symbolic link to '../gone/config.json': nothing is there"
    )
