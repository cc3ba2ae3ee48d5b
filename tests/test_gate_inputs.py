"""Every input of the gate checked before any work: one usage error naming the flag or ini key
the user gave, before any worker starts and before any report is touched; and the inputs that
deserve a correct run (a glob of folders, TOML lists in ``pyproject.toml``) get one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from builders.gate_artifacts import stage

from pytest_kerasmodel.options import MIN_WORKER_MB


@pytest.fixture
def models(pytester: pytest.Pytester, keras3_files: dict[str, Path]) -> pytest.Pytester:
    stage(pytester.path / "models", {"clf.keras": keras3_files["keras"]}, ["clf.keras"])
    (pytester.path / "afile.txt").write_text("not a folder\n")
    (pytester.path / "out").mkdir()
    return pytester


BAD = [
    pytest.param(("--keras-timeout", "-1"), "--keras-timeout: expected a number of seconds > 0*"),
    pytest.param(("--keras-timeout", "0"), "--keras-timeout: expected a number of seconds > 0*"),
    pytest.param(("--keras-timeout", "nan"), "--keras-timeout: expected a number of seconds > 0*"),
    pytest.param(
        ("--keras-memory-limit", "10"),
        f"--keras-memory-limit: 10 MB is below what a checking worker needs to start: at least "
        f"{MIN_WORKER_MB} MB (measured: *",
    ),
    pytest.param(
        ("--keras-report", "afile.txt/report.json"),
        "--keras-report: cannot write */afile.txt/report.json: */afile.txt is a file, not a "
        "folder*",
    ),
    pytest.param(("--keras-report", "out"), "--keras-report: */out is a folder; pass the path*"),
    pytest.param(
        ("--keras-sarif", "afile.txt/sub/gate.sarif"),
        "--keras-sarif: cannot write */afile.txt/sub/gate.sarif: */afile.txt is a file, not a "
        "folder*",
    ),
    pytest.param(
        ("--keras-golden-dir", "afile.txt"),
        "--keras-golden-dir: */afile.txt is a file, not a folder of goldens",
    ),
    pytest.param(
        ("--keras-golden-dir", "afile.txt/goldens", "--keras-update-golden"),
        "--keras-golden-dir: */afile.txt/goldens cannot be created: */afile.txt is a file*",
    ),
    pytest.param(
        ("--keras-model-dir", "models/clf.keras"),
        "--keras-model-dir: */models/clf.keras is a file; the option takes a folder of "
        "artifacts: pass --keras-model-dir */models and, to check only this file, also the "
        "test path */models/clf.keras (or run: kerasmodel gate *)",
    ),
    pytest.param(
        ("--keras-model-dir", "nomodels*"),
        "--keras-model-dir: no such folder: */nomodels* (pass a folder of artifacts, or a glob*",
    ),
]


@pytest.mark.parametrize(("args", "expected"), BAD)
def test_a_bad_input_is_one_usage_error_naming_its_flag_before_any_work(
    models: pytest.Pytester, args: tuple[str, ...], expected: str
) -> None:
    previous = models.path / "out" / "report.json"
    previous.write_text('{"previous": true}\n')
    given = ("--keras-model-dir", "models") if "--keras-model-dir" not in args else ()
    if "--keras-report" not in args:  # a report from an earlier run, which must be kept
        given += ("--keras-report", str(previous))
    result = models.runpytest(*given, *args, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    result.stderr.fnmatch_lines([f"ERROR: {expected}"])
    assert "keras artifacts" not in result.stdout.str()  # nothing was checked
    assert previous.read_text() == '{"previous": true}\n'  # the last report is kept


def test_the_ini_key_is_named_when_the_value_came_from_the_ini(models: pytest.Pytester) -> None:
    models.makeini("[pytest]\nkeras_timeout = 0\nkeras_memory_limit = 64\n")
    result = models.runpytest("--keras-model-dir", "models", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    # every bad input at once, each under the name the user gave it
    result.stderr.fnmatch_lines(
        [
            "ERROR: keras_timeout: expected a number of seconds > 0, got 0",
            "keras_memory_limit: 64 MB is below *",
        ]
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_report_folder_is_a_usage_error(models: pytest.Pytester) -> None:
    locked = models.path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = models.runpytest(
            "--keras-model-dir",
            "models",
            "--keras-report",
            "locked/r.json",
            "-p",
            "no:cacheprovider",
        )
    finally:
        locked.chmod(0o700)
    result.stderr.fnmatch_lines(["ERROR: --keras-report: cannot write * is not writable"])


def test_a_glob_of_folders_is_gated_folder_by_folder(models: pytest.Pytester) -> None:
    (models.path / "models2").mkdir()
    (models.path / "models2" / "clf.keras").write_bytes(
        (models.path / "models/clf.keras").read_bytes()
    )
    result = models.runpytest(
        "--keras-model-dir", "model*", "--keras-checks", "integrity", "-p", "no:cacheprovider"
    )
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=2)


def test_toml_lists_for_list_valued_keys_work_without_a_deprecation_warning(
    models: pytest.Pytester,
) -> None:
    models.makepyprojecttoml(
        """
        [tool.pytest.ini_options]
        keras_model_dir = ["models"]
        keras_checks = ["integrity", "safety", "budgets"]
        keras_allowed_modules = ["mymodels", "other"]
        keras_allowed_versions = ["3.*"]
        keras_imports = []
        """
    )
    result = models.runpytest(
        "-p", "no:cacheprovider", "-W", "error::pytest.PytestRemovedIn10Warning", "-v"
    )
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["*models/clf.keras::integrity PASSED*"])
    result.assert_outcomes(passed=3)  # integrity, safety, budgets (keras_allowed_versions)
    assert "PytestRemovedIn10Warning" not in result.stdout.str()


def test_kerasmodel_gate_checks_its_inputs_before_any_work(models: pytest.Pytester) -> None:
    kerasmodel = Path(sys.executable).with_name("kerasmodel")
    previous = models.path / "out" / "report.json"
    previous.write_text("kept\n")
    run = subprocess.run(
        [
            str(kerasmodel),
            "gate",
            "models",
            "--timeout",
            "0",
            "--memory-limit",
            "10",
            "--json",
            "afile.txt/r.json",
            "--junitxml",
            str(previous.parent),
            "--golden-dir",
            "afile.txt",
        ],
        cwd=models.path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2
    lines = run.stderr.splitlines()
    assert lines[0] == "error: --timeout: expected a number of seconds > 0, got 0"
    assert lines[1].startswith("--memory-limit: 10 MB is below what a checking worker needs")
    assert lines[2].startswith("--json: cannot write afile.txt/r.json: afile.txt is a file")
    assert lines[3].startswith("--junitxml: ") and "is a folder" in lines[3]
    assert lines[4].startswith("--golden-dir: ") and "is a file" in lines[4]
    assert "keras artifacts" not in run.stdout
    assert previous.read_text() == "kept\n"
