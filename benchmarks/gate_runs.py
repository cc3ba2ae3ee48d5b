"""Running the gate (`pytest --keras-model-dir`) from the benchmarks, and reading its timings.

The gate is the `gate` helper's module (issue 4); until it is on main these helpers say so instead
of measuring something else.
"""

from __future__ import annotations

import importlib.util
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from harness import Run, bench_env, python, run_process

# Which checks the gate runs, chosen with pytest's own -k on the item ids (`path::check`).
FILE_ONLY = "not load and not predictions"
WITH_LOAD = "not predictions"


def available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def gate_available() -> bool:
    return available("pytest_kerasmodel.gate")


def scratch_root(workdir: Path) -> Path:
    """A rootdir of its own, so no project's pytest configuration applies to the gate runs."""
    root = workdir / "gate-root"
    root.mkdir(parents=True, exist_ok=True)
    (root / "pytest.ini").write_text("[pytest]\n")
    return root


def run_gate(
    workdir: Path,
    model_dir: Path,
    *extra: str,
    golden_dir: Path | None = None,
    junit: Path | None = None,
    what: str = "gate",
    pythonpath: Path | None = None,
) -> Run:
    """One gate run from a scratch rootdir; ``pythonpath``: a tree whose ``pytest_kerasmodel``
    is imported instead of the installed one (by pytest and by the gate's worker alike)."""
    argv = [
        python(),
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        # hypothesis is a test dependency of this repository, not of a gate user: its plugin
        # imports hypothesis at the end of every session (0.3-0.7 s here)
        "-p",
        "no:hypothesispytest",
        "--keras-model-dir",
        str(model_dir),
    ]
    if golden_dir is not None:
        argv += ["--keras-golden-dir", str(golden_dir)]
    if junit is not None:
        argv += ["--junitxml", str(junit)]
    argv += list(extra)
    env = bench_env(PYTHONPATH=str(pythonpath)) if pythonpath is not None else bench_env()
    run = run_process(argv, cwd=scratch_root(workdir), env=env)
    # 0: all passed; 5: nothing collected is an error for a benchmark too.
    return run.check(f"{what}: {' '.join(argv[3:])}")


def record_goldens(workdir: Path, model_dir: Path, golden_dir: Path, *extra: str) -> Run:
    golden_dir.mkdir(parents=True, exist_ok=True)
    return run_gate(
        workdir,
        model_dir,
        "--keras-update-golden",
        *extra,
        golden_dir=golden_dir,
        what="recording goldens",
    )


def item_seconds(
    junit: Path, checks: Sequence[str] = (), *, artifact: str | None = None
) -> dict[str, float]:
    """Duration per check (item ids `path::check`) and in all (`"total"`) from a JUnit XML report.

    The gate runs all selected checks of an artifact when its first item runs and the other
    items read the result, so only the total over an artifact's items is a meaningful cost.
    With `artifact`, only the items whose id contains that file name count.
    """
    totals = {c: 0.0 for c in checks}
    totals["total"] = 0.0
    for case in ET.parse(junit).iter("testcase"):
        name, seconds = case.get("name", ""), float(case.get("time", "0"))
        if artifact is not None and artifact not in f"{case.get('classname', '')}::{name}":
            continue
        totals["total"] += seconds
        for check in checks:
            if name == check or name.endswith((f"::{check}", f"[{check}]")):
                totals[check] += seconds
    return totals
