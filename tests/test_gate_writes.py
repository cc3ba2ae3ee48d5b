"""What the gate wrote is listed: every golden, report and verdict-cache write named in the
summary, under pytest (``-n 0`` and ``-n 2``: the records travel from xdist's workers) and
under ``kerasmodel gate``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from builders.gate_artifacts import stage

KERASMODEL = Path(sys.executable).with_name("kerasmodel")
CHECKS = "integrity,structure"


@pytest.fixture
def models(pytester: pytest.Pytester, keras3_files: dict[str, Path]) -> pytest.Pytester:
    files = {"clf.keras": keras3_files["keras"], "clf.h5": keras3_files["h5"]}
    stage(pytester.path / "models", files, ["clf.keras", "clf.h5"])
    return pytester


@pytest.mark.parametrize("workers", ["0", "2"])
def test_update_golden_lists_every_golden_report_and_cache_write(
    models: pytest.Pytester, workers: str
) -> None:
    args = ("--keras-model-dir", "models", "--keras-checks", CHECKS, "-n", workers)
    reports = ("--keras-report", "gate.json", "--keras-sarif", "gate.sarif")
    recorded = models.runpytest(*args, *reports, "--keras-update-golden")
    assert recorded.ret == 0, recorded.stdout.str()
    recorded.stdout.fnmatch_lines(
        [
            "*keras goldens written: 2*",
            "*models/clf.h5.golden.json (structure of models/clf.h5)",
            "*models/clf.keras.golden.json (structure of models/clf.keras)",
        ],
        consecutive=False,
    )
    recorded.stdout.fnmatch_lines(
        ["report written to */gate.json", "SARIF written to */gate.sarif"]
    )
    assert (models.path / "models" / "clf.keras.golden.json").is_file()
    # recording writes no verdict (the goldens it writes change them); the next run stores two
    first = models.runpytest(*args)
    assert first.ret == 0, first.stdout.str()
    first.stdout.fnmatch_lines(
        ["verdicts of 2 artifact(s) written to the verdict cache (.pytest_cache/d/*)"]
    )
    assert "goldens written" not in first.stdout.str()
    again = models.runpytest(*args)
    assert "written to the verdict cache" not in again.stdout.str()  # served, nothing written
    again.stdout.fnmatch_lines(["2 unchanged artifact(s) not read again*"])


def test_kerasmodel_gate_lists_its_writes(models: pytest.Pytester) -> None:
    def gate(*extra: str) -> str:
        run = subprocess.run(
            [str(KERASMODEL), "gate", "models", "--checks", CHECKS, *extra],
            cwd=models.path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        return run.stdout

    out = gate("--update-golden", "--json", "g.json", "--junitxml", "g.xml", "--sarif", "g.sarif")
    lines = out.splitlines()
    assert "report written to g.json" in lines
    assert "JUnit XML written to g.xml" in lines
    assert "SARIF written to g.sarif" in lines
    assert "keras goldens written: 2" in lines
    assert any(
        line.endswith("clf.keras.golden.json (structure of models/clf.keras)") for line in lines
    )
    first = gate()
    assert "verdicts of 2 artifact(s) written to the verdict cache (.pytest_cache/d/" in first
    second = gate()
    assert "written to the verdict cache" not in second
    # its own flag, not pytest's
    assert "(--no-cache checks them again)" in second and "--keras-no-cache" not in second
