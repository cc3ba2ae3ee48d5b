"""What a finding means for which Keras: the CVE table, and the finding's ``cve`` as the scan, the
gate's JSON report and its SARIF carry it."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from builders import attacks

from pytest_kerasmodel.safety import Finding, scan_artifact
from pytest_kerasmodel.safety.cves import CVES, annotate, installed_keras

BY_ID = {cve.id: cve for cve in CVES}


def test_the_table_holds_each_cve_of_the_issue() -> None:
    assert set(BY_ID) == {
        "CVE-2024-3660", "CVE-2025-1550", "CVE-2025-8747", "CVE-2025-9905", "CVE-2025-9906",
        "CVE-2025-49655", "CVE-2026-0897", "CVE-2026-1669",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("cve", "version", "affected"),
    [
        ("CVE-2024-3660", "2.12.0", True),
        ("CVE-2024-3660", "2.13.1", False),
        ("CVE-2025-1550", "3.8.0", True),
        ("CVE-2025-1550", "3.9.0", False),
        ("CVE-2025-8747", "3.10.0", True),
        ("CVE-2025-8747", "3.11.0", False),
        ("CVE-2025-9906", "3.10.0", True),
        ("CVE-2025-9905", "3.11.2", True),
        ("CVE-2025-9905", "3.11.3", False),
        ("CVE-2025-49655", "3.10.0", False),
        ("CVE-2025-49655", "3.11.0", True),
        ("CVE-2025-49655", "3.11.3", False),
        ("CVE-2026-0897", "3.12.0", True),
        ("CVE-2026-0897", "3.12.1", False),
        ("CVE-2026-0897", "3.13.1", True),
        ("CVE-2026-0897", "3.13.2", False),
        ("CVE-2026-1669", "3.13.1", True),
        ("CVE-2026-1669", "3.13.2", False),
        ("CVE-2025-1550", "3.9.0rc1", False),
        ("CVE-2025-1550", "3.8.0.dev2025", True),
    ],
)
def test_affected_ranges(cve: str, version: str, affected: bool) -> None:
    assert BY_ID[cve].affects(version) is affected


def test_annotate_says_which_cve_and_whether_the_installed_keras_is_affected() -> None:
    found = Finding("foreign-module", "config.json: layer 'x'", "names module 'os'")
    (old,) = annotate([found], "keras", installed="3.8.0")
    assert old.cve == (
        "CVE-2025-1550: Keras 3.0.0 to before 3.9.0 is affected, "
        "the installed Keras 3.8.0 is affected"
    )
    (new,) = annotate([found], "keras", installed="3.15.0")
    assert new.cve.endswith("the installed Keras 3.15.0 is not affected")
    (none,) = annotate([found], "keras", installed=None)
    assert none.cve.endswith("Keras is not installed here")
    assert str(new).endswith(f"[{new.cve}]")
    plain = Finding("zip-path", "x", "y")
    assert annotate([plain], "keras") == [plain] and str(plain) == "[zip-path] x: y"


def test_a_lambda_in_legacy_hdf5_matches_cve_2025_9905_and_in_keras_not(tmp_path: Path) -> None:
    lam = Finding("lambda", "model_config", "bytecode")
    (h5,) = annotate([lam], "h5", installed="3.11.0")
    assert "CVE-2025-9905" in h5.cve and "CVE-2024-3660" in h5.cve
    (zipped,) = annotate([lam], "keras", installed="3.11.0")
    assert "CVE-2025-9905" not in zipped.cve


def test_installed_keras_is_read_from_the_distribution_without_importing_keras() -> None:
    assert installed_keras() == metadata.version("keras")
    script = (
        "import sys; from pytest_kerasmodel.safety.cves import installed_keras; "
        "v = installed_keras(); print(v, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.stdout.split() == [metadata.version("keras"), "False"]


def test_the_scan_of_a_crafted_keras_file_carries_the_cve(tmp_path: Path) -> None:
    path = attacks.foreign_module_keras(tmp_path)
    findings = [f for f in scan_artifact(path) if "CVE-2025-1550" in f.cve]
    assert findings, scan_artifact(path)
    assert findings[0].cve.endswith(
        f"the installed Keras {metadata.version('keras')} is not affected"
    )


def test_the_gate_json_report_and_sarif_show_the_cve(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    attacks.foreign_module_keras(models)
    report, sarif = tmp_path / "report.json", tmp_path / "gate.sarif"
    run = subprocess.run(
        [sys.executable, "-m", "pytest_kerasmodel", "gate", str(models), "--checks", "safety",
         "--json", str(report), "--sarif", str(sarif)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode != 0, run.stdout + run.stderr
    assert "CVE-2025-1550: Keras 3.0.0 to before 3.9.0 is affected" in report.read_text()
    log = json.loads(sarif.read_text())
    results = log["runs"][0]["results"]
    cves = [
        r["properties"].get("cves") for r in results if r["ruleId"].startswith("kerasmodel/safety/")
    ]
    assert ["CVE-2025-1550"] in cves
    rules = {r["id"]: r for r in log["runs"][0]["tool"]["driver"]["rules"]}
    assert any("published Keras vulnerability" in r["help"]["text"] for r in rules.values())
