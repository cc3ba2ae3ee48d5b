"""The gate's state for one pytest process, kept in ``config.stash``.

It owns the runner (the isolated worker, or in-process checks) and caches each artifact's
results, so that the first item of an artifact runs all its selected checks in one worker request
and its other items read the cache. Without xdist, the next artifact's request is sent as soon as
this one's answer is in, so the worker checks it while pytest reports this artifact's items.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_kerasmodel.gate.checks import Request, size_on_disk
from pytest_kerasmodel.gate.discover import Discovery, discover
from pytest_kerasmodel.gate.goldens import budget_sidecar, golden_paths, inputs_sidecar
from pytest_kerasmodel.options import Settings, get_settings, memory_cap_mb, memory_limit_for

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
    # --keras-backends: one isolated worker per backend (KERAS_BACKEND set), and its results
    backend_runners: dict[str, WorkerRunner] = field(default_factory=dict)
    backend_results: dict[tuple[Path, str], dict[str, Any]] = field(default_factory=dict)
    # artifact -> (its model folder, its selected checks), in the order the items run
    selected: dict[Path, tuple[Path, list[str]]] | None = None
    following: dict[Path, Path] = field(default_factory=dict)  # artifact -> the next one
    # on the controller: artifact id -> {"info": ..., "checks": {check: (status, message)}}
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    # what the model folders hold besides artifacts (see discovery()), computed once
    _discovery: Discovery | None = None

    def discovery(self, config: pytest.Config) -> Discovery:
        """The artifacts and the files no artifact holds under the model folders, found the
        way the collectors find them (on the xdist controller too, which collects nothing)."""
        if self._discovery is None:
            patterns = [*config.getini("python_files"), "conftest.py"]
            self._discovery = discover(self.settings.model_dirs, patterns)
        return self._discovery

    def get_runner(self) -> InProcessRunner | WorkerRunner:
        if self.runner is None:
            from pytest_kerasmodel.gate.isolation import InProcessRunner, WorkerRunner

            if self.settings.isolate:
                # the hard limit: per-artifact limits (Request.memory_limit_mb) stay below it
                explicit = self.settings.memory_limit_mb
                hard = explicit if explicit is not None else memory_cap_mb()
                self.runner = WorkerRunner(self.settings.timeout, hard or 0)
            else:
                self.runner = InProcessRunner()
        return self.runner

    def start_worker(self) -> None:
        from pytest_kerasmodel.gate.isolation import WorkerRunner

        runner = self.get_runner()
        if isinstance(runner, WorkerRunner):
            runner.start()

    def request_for(self, artifact: Path, model_dir: Path, checks: list[str]) -> Request:
        s = self.settings
        structure, predictions = golden_paths(artifact, model_dir, s.golden_dir)
        try:
            size = size_on_disk(artifact)
        except OSError:  # gone or unreadable: the integrity check says so
            size = 0
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
            memory_limit_mb=memory_limit_for(size, s.memory_limit_mb),
        )

    def _plan(self, item: CheckItem) -> dict[Path, tuple[Path, list[str]]]:
        from pytest_kerasmodel.gate.collect import CheckItem

        if self.selected is None:
            self.selected = {}
            for other in item.session.items:
                if isinstance(other, CheckItem) and other.backend is None:
                    entry = self.selected.setdefault(other.artifact, (other.model_dir, []))
                    entry[1].append(other.check)
            order = list(self.selected)
            self.following = dict(itertools.pairwise(order))
        return self.selected

    def backend_runner(self, backend: str) -> WorkerRunner:
        """The isolated worker of ``backend`` (always isolated: Keras's backend is fixed when it
        is imported, so another backend cannot run in this process)."""
        from pytest_kerasmodel.gate.isolation import WorkerRunner

        runner = self.backend_runners.get(backend)
        if runner is None:
            explicit = self.settings.memory_limit_mb
            hard = explicit if explicit is not None else memory_cap_mb()
            runner = WorkerRunner(self.settings.timeout, hard or 0, backend=backend)
            self.backend_runners[backend] = runner
        return runner

    def backend_result_for(self, item: CheckItem) -> dict[str, Any]:
        """The checks of ``item``'s artifact under its backend, run once for all its items.

        Goldens are compared, never written, under the other backends: recorded (with
        --keras-update-golden) by the default backend only.
        """
        assert item.backend is not None
        key = (item.artifact, item.backend)
        cached = self.backend_results.get(key)
        if cached is None or item.check not in cached["checks"]:
            from pytest_kerasmodel.gate.collect import backend_checks

            checks = backend_checks(self.settings)
            request = self.request_for(item.artifact, item.model_dir, checks)
            request.update_golden = False
            cached = self.backend_runner(item.backend).run(asdict(request))
            self.backend_results[key] = cached
        return cached

    def result_for(self, item: CheckItem) -> dict[str, Any]:
        if item.backend is not None:
            return self.backend_result_for(item)
        selected = self._plan(item)
        cached = self.results.get(item.artifact)
        if cached is None or item.check not in cached["checks"]:
            checks = selected.get(item.artifact, (item.model_dir, [item.check]))[1]
            if item.check not in checks:
                checks.append(item.check)
            request = self.request_for(item.artifact, item.model_dir, checks)
            runner = self.get_runner()
            cached = runner.run(asdict(request))
            self.results[item.artifact] = cached
            self._prefetch(item.config, item.artifact)
        return cached

    def _prefetch(self, config: pytest.Config, artifact: Path) -> None:
        """Send the next artifact's request to the worker now.

        Not under xdist (a worker runs the items it is sent, not the next ones in its list) and
        not when recording goldens (nothing is written for an artifact before its items run).
        """
        from pytest_kerasmodel.gate.isolation import WorkerRunner

        following = self.following.get(artifact)
        if (
            following is None
            or following in self.results
            or self.selected is None
            or not isinstance(self.runner, WorkerRunner)
            or self.settings.update_golden
            or hasattr(config, "workerinput")
        ):
            return
        model_dir, checks = self.selected[following]
        self.runner.prefetch(asdict(self.request_for(following, model_dir, checks)))

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close()
            self.runner = None
        for runner in self.backend_runners.values():
            runner.close()
        self.backend_runners.clear()


state_key = pytest.StashKey[GateState]()


def gate_state(config: pytest.Config) -> GateState:
    state = config.stash.get(state_key, None)
    if state is None:
        state = GateState(get_settings(config))
        config.stash[state_key] = state
    return state
