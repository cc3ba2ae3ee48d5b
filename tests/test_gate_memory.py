"""The worker's memory limit: derived per artifact from its size and the machine's memory,
applied per request below the worker's hard limit, and an explicit limit wins."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from builders.gate_artifacts import message, run_gate, stage

from pytest_kerasmodel.gate.protocol import Request
from pytest_kerasmodel.gate.workers.isolation import WorkerRunner
from pytest_kerasmodel.options import memory_limit_for

MiB = 1024**2


def _physical_mb() -> int:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // MiB


def test_the_default_limit_grows_with_the_artifact_and_stops_at_80_percent_of_memory() -> None:
    cap = int(_physical_mb() * 0.8)
    assert memory_limit_for(30 * 1024) == min(4096, cap)  # small files: the 4096 MB floor
    assert memory_limit_for(512 * MiB) == min(1536 + 7 * 512, cap)
    assert memory_limit_for(2 * 1024 * MiB) == min(1536 + 7 * 2048, cap)  # 15872 MB, or less
    assert memory_limit_for(10**13) == cap
    assert memory_limit_for(2 * 1024 * MiB, 3000) == 3000  # an explicit limit wins


def _request(path: Path, checks: list[str], limit: int = 0) -> dict[str, Any]:
    return asdict(Request(path=str(path), checks=checks, memory_limit_mb=limit))


def test_one_worker_moves_its_limit_per_request_and_is_replaced_when_it_holds_too_much(
    gate_files: dict[str, Path],
) -> None:
    runner = WorkerRunner(timeout=120, memory_limit_mb=6000)  # the hard limit
    try:
        first = runner.run(_request(gate_files["clf.h5"], ["integrity"], 5000))
        lower = runner.run(_request(gate_files["clf.h5"], ["integrity"], 4500))
        above = runner.run(_request(gate_files["clf.h5"], ["integrity"], 9000))
        assert [r["worker"]["memory_limit_mb"] for r in (first, lower, above)] == [
            5000,
            4500,
            6000,  # never above the hard limit
        ]
        assert {r["worker"]["pid"] for r in (first, lower, above)} == {first["worker"]["pid"]}
        loaded = runner.run(_request(gate_files["clf.keras"], ["load"], 4096))
        assert loaded["checks"]["load"]["status"] == "passed"
        held = loaded["worker"]["data_mb"]  # Keras and TensorFlow imported, a model loaded
        assert held > 0
        # a request whose limit is less than twice what the worker holds gets a fresh worker
        tight = runner.run(_request(gate_files["clf.h5"], ["integrity"], 2 * held - 10))
        assert tight["checks"]["integrity"]["status"] == "passed"
        assert tight["worker"]["pid"] != loaded["worker"]["pid"] and runner.started == 2
        assert tight["worker"]["memory_limit_mb"] == 2 * held - 10
    finally:
        runner.close()


def test_an_explicit_limit_wins_and_a_failure_at_it_says_which_limit(
    pytester: pytest.Pytester, gate_files: dict[str, Path]
) -> None:
    """Keras and TensorFlow do not even import within 300 MB of data memory: load fails, and
    says it was the memory limit, naming the limit in force."""
    stage(pytester.path / "models", gate_files, ["clf.keras"])
    _, verdicts = run_gate(pytester, "--keras-memory-limit", "300", "-k", "load")
    text = message(verdicts, "clf.keras", "load")
    assert "300 MB" in text and "keras_memory_limit" in text, text
    _, verdicts = run_gate(pytester, "-k", "load")  # the derived default: 4096 MB or more
    assert verdicts["clf.keras"]["checks"]["load"]["status"] == "passed"
