"""The benchmark harness runs end to end (timings are not asserted: benchmarks are not tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


def test_startup_section_writes_results_with_machine_and_targets(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    argv = [
        sys.executable,
        str(RUN),
        "--quick",
        "--only",
        "startup",
        "--startup-tests",
        "10",
        "--repeats",
        "1",
        "--out",
        str(out),
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    # Exit code 1 means a target was not met (timing noise on a busy machine); 2+ is a crash.
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    text = out.read_text()
    assert "## Machine" in text and "| CPU |" in text and "| h5py |" in text
    assert "| startup | start-up, plugin enabled / `-p no:kerasmodel` |" in text
    # Deterministic: the plugin was loaded and pulled in no heavy module.
    assert "| startup | start-up imports none of tensorflow, keras, h5py | imported: none |" in text
    assert "| plugin enabled | yes | no | no | no |" in text


def test_sizes_benchmark_measures_both_checks_at_the_smallest_size() -> None:
    script = RUN.parent / "bench_sizes.py"
    argv = [sys.executable, str(script), "--sizes", "1", "--backends", ""]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    # Exit code 1 means the ratio target was not met (timing noise); 2+ is a crash.
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    (row,) = [line for line in proc.stdout.splitlines() if line.startswith("| 1M |")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "1,002,000" and cells[2] == "-"
    assert cells[3].endswith(" s") and cells[4].endswith(" s") and "(<= 1," in cells[5]
