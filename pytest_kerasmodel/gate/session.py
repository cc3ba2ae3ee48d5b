"""The gate's state for one pytest process, kept in ``config.stash``.

It owns the runner (the isolated worker, or in-process checks) and caches each artifact's
results, so that the first item of an artifact runs all its selected checks in one worker request
and its other items read the cache.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_kerasmodel.gate.checks import Request
from pytest_kerasmodel.gate.goldens import budget_sidecar, golden_paths, inputs_sidecar
from pytest_kerasmodel.options import Settings, get_settings

if TYPE_CHECKING:
    from pytest_kerasmodel.gate.collect import CheckItem
    from pytest_kerasmodel.gate.isolation import InProcessRunner, WorkerRunner

# user_properties key of the per-item record that the summary and report are built from
REPORT_PROPERTY = "kerasmodel_gate"


@dataclass
class GateState:
    settings: Settings
    runner: InProcessRunner | WorkerRunner | None = None
    results: dict[Path, dict[str, Any]] = field(default_factory=dict)
    selected: dict[Path, list[str]] | None = None
    # on the controller: artifact id -> {"info": ..., "checks": {check: (status, message)}}
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)

    def get_runner(self) -> InProcessRunner | WorkerRunner:
        if self.runner is None:
            from pytest_kerasmodel.gate.isolation import InProcessRunner, WorkerRunner

            if self.settings.isolate:
                self.runner = WorkerRunner(self.settings.timeout, self.settings.memory_limit_mb)
            else:
                self.runner = InProcessRunner()
        return self.runner

    def request_for(self, artifact: Path, model_dir: Path, checks: list[str]) -> Request:
        s = self.settings
        structure, predictions = golden_paths(artifact, model_dir, s.golden_dir)
        return Request(
            path=str(artifact),
            checks=checks,
            rtol=s.rtol,
            atol=s.atol,
            allowed_modules=list(s.allowed_modules),
            max_file_size=s.max_file_size,
            max_params=s.max_params,
            allowed_versions=list(s.allowed_versions),
            golden_structure=str(structure),
            golden_predictions=str(predictions),
            inputs_file=str(inputs_sidecar(artifact)),
            budget_file=str(budget_sidecar(artifact)),
            update_golden=s.update_golden,
        )

    def result_for(self, item: CheckItem) -> dict[str, Any]:
        from pytest_kerasmodel.gate.collect import CheckItem

        if self.selected is None:
            self.selected = {}
            for other in item.session.items:
                if isinstance(other, CheckItem):
                    self.selected.setdefault(other.artifact, []).append(other.check)
        cached = self.results.get(item.artifact)
        if cached is None or item.check not in cached["checks"]:
            checks = self.selected.get(item.artifact) or [item.check]
            if item.check not in checks:
                checks.append(item.check)
            request = self.request_for(item.artifact, item.model_dir, checks)
            cached = self.get_runner().run(asdict(request))
            self.results[item.artifact] = cached
        return cached

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close()
            self.runner = None


state_key = pytest.StashKey[GateState]()


def gate_state(config: pytest.Config) -> GateState:
    state = config.stash.get(state_key, None)
    if state is None:
        state = GateState(get_settings(config))
        config.stash[state_key] = state
    return state
