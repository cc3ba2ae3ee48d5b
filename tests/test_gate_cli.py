"""``kerasmodel gate``, ``--keras-sarif`` and ``--tx``: one folder, every way of gating it.

One folder of healthy, broken and hostile artifacts (tests/builders/gate_artifacts.py,
tests/builders/attacks.py)
is gated by ``pytest --keras-model-dir``, by ``kerasmodel gate`` (no pytest), and by pytest over
two execnet gateways (``--tx 2*popen --dist loadfile``, the path ``--tx ssh=...`` takes). Their
verdicts, JSON reports, SARIF logs, JUnit outcomes and summary tables must agree. Each run is a
real process (the console script, ``python -m pytest``), made once for the module.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

TIMEOUT = "6"  # seconds per artifact: hang.h5 hangs the HDF5 library until then
STAGED = [
    "clf.keras",
    "clf.h5",
    "clf.weights.h5",
    "keras2.h5",
    "nan.keras",
    "truncated.keras",
    "crc.keras",
    "empty.h5",
    "lambda.keras",
    "foreign.keras",
    "segv.h5",
    "hang.h5",
]
KERASMODEL = Path(sys.executable).with_name("kerasmodel")


def _run(command: list[Any], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in command], cwd=cwd, capture_output=True, text=True, check=False
    )


def _pytest(folder: Path, name: str, *extra: str) -> dict[str, Any]:
    out = folder / name
    result = _run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--keras-model-dir",
            "models",
            "--keras-timeout",
            TIMEOUT,
            "--keras-report",
            out.with_suffix(".json"),
            "--keras-sarif",
            out.with_suffix(".sarif"),
            "--junitxml",
            out.with_suffix(".xml"),
            "-p",
            "no:cacheprovider",
            *extra,
        ],
        folder,
    )
    return {"result": result, "out": out}


@pytest.fixture(scope="module")
def runs(gate_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from builders.attacks import pickle_opaque_h5, zip_traversal_keras

    folder = tmp_path_factory.mktemp("gate_cli")
    (folder / "pytest.ini").write_text("[pytest]\n")  # the rootdir: ids are models/<file>
    models = folder / "models"
    models.mkdir()
    for name in STAGED:
        shutil.copyfile(gate_files[name], models / name)
    attacks = folder / "attacks"
    for builder in (pickle_opaque_h5, zip_traversal_keras):
        built = builder(attacks)
        shutil.copyfile(built, models / built.name)
    (models / "README.txt").write_text("not a model\n")
    out = folder / "cli"
    cli = _run(
        [
            KERASMODEL,
            "gate",
            "models",
            "--timeout",
            TIMEOUT,
            "--json",
            out.with_suffix(".json"),
            "--sarif",
            out.with_suffix(".sarif"),
            "--junitxml",
            out.with_suffix(".xml"),
        ],
        folder,
    )
    return {
        "folder": folder,
        "cli": {"result": cli, "out": out},
        "pytest": _pytest(folder, "plain"),
        "tx": _pytest(folder, "tx", "--tx", "2*popen", "--dist", "loadfile"),
    }


def _report(run: dict[str, Any]) -> dict[str, Any]:
    data = json.loads(run["out"].with_suffix(".json").read_text())
    for entry in data["artifacts"]:
        entry.pop("seconds")  # the only field that is not a verdict
    return data


def _summary(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if "keras artifacts" in line)
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("not checked: "))
    return lines[start + 1 : end]  # the "not checked" line names each tool's own flag


def _junit(run: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(classname, check) -> pass / failure / skipped; classname as pytest writes it."""
    root = ET.parse(run["out"].with_suffix(".xml")).getroot()
    outcomes = {}
    for case in root.iter("testcase"):
        outcome = next((c.tag for c in case if c.tag in ("failure", "skipped", "error")), "pass")
        outcomes[(str(case.get("classname")), str(case.get("name")))] = outcome
    return outcomes


def test_kerasmodel_gate_gives_the_verdicts_of_pytest(runs: dict[str, Any]) -> None:
    cli, plain = runs["cli"], runs["pytest"]
    assert cli["result"].returncode == 1, cli["result"].stderr
    assert plain["result"].returncode == 1, plain["result"].stdout[-2000:]
    cli_report, pytest_report = _report(cli), _report(plain)
    assert cli_report == pytest_report
    verdicts = {a["artifact"]: a for a in cli_report["artifacts"]}
    assert len(verdicts) == len(STAGED) + 2
    # healthy, broken and hostile, each with its own cause
    assert verdicts["models/clf.keras"]["result"] == "passed"
    assert verdicts["models/keras2.h5"]["result"] == "passed"
    causes = {name: (v["root_cause"] or {}).get("check") for name, v in verdicts.items()}
    assert causes["models/truncated.keras"] == "integrity"
    assert causes["models/segv.h5"] == "integrity"  # the worker crashed: said, not fatal
    assert causes["models/hang.h5"] == "integrity"  # timed out
    assert causes["models/lambda.keras"] == "safety"
    assert causes["models/nan.keras"] == "finite"
    assert cli_report["not_checked"] == ["models/README.txt"]
    # the same summary lines, whichever ran the checks
    assert _summary(cli["result"].stdout) == _summary(plain["result"].stdout)


def test_kerasmodel_gate_prints_what_each_failing_item_prints(runs: dict[str, Any]) -> None:
    out = runs["cli"]["result"].stdout
    assert (
        "FAILED models/lambda.keras::safety\n    models/lambda.keras: safety: 1 finding(s):" in out
    )
    assert "FAILED models/clf.keras::" not in out


def test_the_junit_reports_agree(runs: dict[str, Any]) -> None:
    cli, plain = _junit(runs["cli"]), _junit(runs["pytest"])
    assert cli == plain
    assert cli[("models.clf.keras", "load")] == "pass"
    assert cli[("models.lambda.keras", "safety")] == "failure"
    assert cli[("models.clf.keras", "structure")] == "skipped"


def test_sarif_is_identical_valid_and_read_back_by_sarif_tools(runs: dict[str, Any]) -> None:
    pytest.importorskip("sarif")
    pytest.importorskip("sarif_pydantic")
    from sarif import loader
    from sarif_pydantic import Sarif

    cli_path = runs["cli"]["out"].with_suffix(".sarif")
    pytest_path = runs["pytest"]["out"].with_suffix(".sarif")
    assert cli_path.read_bytes() == pytest_path.read_bytes()

    log = Sarif.model_validate(json.loads(cli_path.read_text()))  # a typed SARIF 2.1.0 model
    assert log.version == "2.1.0"
    (run,) = log.runs
    rules = {r.id: r for r in run.tool.driver.rules or []}
    assert all(r.help is not None and r.help.text for r in rules.values())

    sarif_file = loader.load_sarif_file(str(cli_path))
    assert sarif_file.get_distinct_tool_names() == ["pytest-kerasmodel"]
    records = sarif_file.get_records()
    report = _report(runs["cli"])
    failing = {
        (a["artifact"], c)
        for a in report["artifacts"]
        for c, v in a["checks"].items()
        if v["status"] == "failed"
    }
    by_location = {(r["Location"], r["Code"]) for r in records}
    # every failing check has a result at its artifact; safety's per kind of finding
    for artifact, check in failing:
        assert any(loc == artifact and code.startswith(f"kerasmodel/{check}")
                   for loc, code in by_location), (artifact, check)  # fmt: skip
    assert ("models/lambda.keras", "kerasmodel/safety/lambda") in by_location
    assert ("models/foreign.keras", "kerasmodel/safety/foreign-module") in by_location
    assert ("models/nan.keras", "kerasmodel/finite") in by_location
    assert not any(loc == "models/clf.keras" for loc, _ in by_location)
    assert {r["Severity"] for r in records} == {"error"}
    lambda_record = next(r for r in records if r["Code"] == "kerasmodel/safety/lambda")
    assert lambda_record["Description"].startswith("models/lambda.keras: safety: 1 finding(s):")
    assert "- [lambda] config.json: layer 'lam/touch'" in lambda_record["Description"]
    base = run.original_uri_base_ids or {}
    assert str(base["%SRCROOT%"].uri).startswith(runs["folder"].resolve().as_uri())


def test_tx_gateways_give_the_plain_runs_summary_report_and_sarif(runs: dict[str, Any]) -> None:
    tx, plain = runs["tx"], runs["pytest"]
    assert tx["result"].returncode == 1, tx["result"].stdout[-2000:]
    assert "2 workers [" in tx["result"].stdout  # two execnet gateways took part
    assert _report(tx) == _report(plain)
    assert tx["out"].with_suffix(".sarif").read_bytes() == (
        plain["out"].with_suffix(".sarif").read_bytes()
    )
    assert _summary(tx["result"].stdout) == _summary(plain["result"].stdout)


def test_exit_status_and_check_selection(gate_files: dict[str, Path], tmp_path: Path) -> None:
    shutil.copyfile(gate_files["clf.keras"], tmp_path / "clf.keras")
    shutil.copyfile(gate_files["nan.keras"], tmp_path / "nan.keras")
    passed = _run([KERASMODEL, "gate", "clf.keras", "--checks", "integrity,safety"], tmp_path)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    header = next(line for line in passed.stdout.splitlines() if line.startswith("artifact"))
    assert header.split()[-2:] == ["integrity", "safety"]
    failed = _run([KERASMODEL, "gate", ".", "--checks", "finite"], tmp_path)
    assert failed.returncode == 1
    assert "nan.keras: finite (1 of 4 numeric dataset(s) hold NaN or Inf" in failed.stdout
    unknown = _run([KERASMODEL, "gate", ".", "--checks", "integrity,speed"], tmp_path)
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("error: --checks: unknown check(s) ['speed']")
    missing = _run([KERASMODEL, "gate", "nowhere.keras"], tmp_path)
    assert missing.returncode == 2 and "no such file or folder: nowhere.keras" in missing.stderr
    bad_size = _run([KERASMODEL, "gate", ".", "--max-file-size", "huge"], tmp_path)
    assert bad_size.returncode == 2 and "expected a size such as 500MB" in bad_size.stderr


def test_pytest_html_report_holds_the_gate_summary(
    gate_files: dict[str, Path], pytester: pytest.Pytester
) -> None:
    pytest.importorskip("pytest_html")
    models = pytester.path / "models"
    models.mkdir()
    for name in ("clf.keras", "lambda.keras"):
        shutil.copyfile(gate_files[name], models / name)
    result = pytester.runpytest(
        "--keras-model-dir", "models", "--html", "report.html", "-p", "no:cacheprovider"
    )
    assert result.ret == 1
    html = (pytester.path / "report.html").read_text()
    assert '<div id="kerasmodel-gate">' in html
    assert "<p>2 artifact(s), 1 failing at least one check</p>" in html
    assert "<td>models/lambda.keras</td>" in html
    assert '<td class="failed">FAIL</td>' in html
    assert '<td class="skipped">skip (no golden)</td>' in html
    assert "<li>models/lambda.keras: safety (1 finding)</li>" in html


def test_the_file_only_gate_imports_no_keras(gate_files: dict[str, Path], tmp_path: Path) -> None:
    # the command's own process reads nothing itself: h5py and Keras stay in the worker
    shutil.copyfile(gate_files["clf.keras"], tmp_path / "clf.keras")
    code = (
        "import sys\n"
        "from pytest_kerasmodel.cli import main\n"
        "status = main(['gate', 'clf.keras', '--checks', 'integrity,safety,finite', "
        "'--json', 'r.json'])\n"
        "heavy = [m for m in ('keras', 'tensorflow', 'jax', 'torch', 'h5py') if m in sys.modules]\n"
        "print('STATUS', status, 'HEAVY', heavy)\n"
    )
    result = _run([sys.executable, "-c", code], tmp_path)
    assert "STATUS 0 HEAVY []" in result.stdout, result.stdout + result.stderr


def test_sarif_levels_and_locations_outside_the_root(
    gate_files: dict[str, Path], tmp_path: Path
) -> None:
    shutil.copyfile(gate_files["clf.keras"], tmp_path / "clf.keras")
    (tmp_path / "repo").mkdir()
    result = _run(
        [KERASMODEL, "gate", "clf.keras", "--checks", "integrity,budgets", "--max-file-size",
         "1KB", "--sarif", "s.sarif", "--root", "repo"],
        tmp_path,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    (entry,) = json.loads((tmp_path / "s.sarif").read_text())["runs"][0]["results"]
    assert entry["ruleId"] == "kerasmodel/budgets" and entry["level"] == "warning"
    location = entry["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location == {"uri": (tmp_path / "clf.keras").as_uri()}  # outside --root: no base
