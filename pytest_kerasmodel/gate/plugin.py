"""The gate's hooks, registered by ``pytest_kerasmodel.plugin`` when model folders are given."""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path

import pytest

from pytest_kerasmodel.gate import collect
from pytest_kerasmodel.gate import report as gate_report
from pytest_kerasmodel.gate.gcfreeze import FrozenCollection
from pytest_kerasmodel.gate.session import gate_checks, gate_state
from pytest_kerasmodel.options import Settings, flag_of, input_problems


def check_inputs(config: pytest.Config, settings: Settings) -> None:
    """Every gate input checked before any work: one usage error listing each bad one, naming
    the flag or ini key the user gave (an unknown --keras-checks name stops the run first)."""
    import sys

    from pytest_kerasmodel.gate.usercode import problems

    gate_checks(settings)  # an unknown --keras-checks name is its own usage error
    found = collect.model_dir_problems(settings) + input_problems(config, settings)
    if settings.imports or settings.custom_objects:
        flags = (
            flag_of(config, "keras_imports", "--keras-import"),
            flag_of(config, "keras_custom_objects", "--keras-custom-objects"),
        )
        path = [os.getcwd(), *sys.path]
        found += problems(settings.imports, settings.custom_objects, path, flags)
    if found:
        raise pytest.UsageError("\n".join(found))


class GatePlugin:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.state = gate_state(config)
        check_inputs(config, self.state.settings)  # one usage error, before any worker starts
        collect.adjust_args(config)
        self.frozen = FrozenCollection()

    @pytest.hookimpl(tryfirst=True, optionalhook=True)
    def pytest_collect_directory(
        self, path: Path, parent: pytest.Collector
    ) -> pytest.Collector | None:
        return collect.collect_directory(path, parent)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> None:
        # The checking worker starts now: its start-up (Python, numpy, h5py) overlaps collection.
        # Not on an xdist controller (its workers check the artifacts) nor for --collect-only.
        if not (self.config.option.collectonly or self.config.pluginmanager.hasplugin("dsession")):
            self.state.start_worker()

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # what collection made lives until the session ends: the cyclic collector skips it
        if any(isinstance(item, collect.CheckItem) for item in session.items):
            self.frozen.freeze()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        collect.locate_skip(item, report)
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        gate_report.record(self.state, report)

    def pytest_report_teststatus(
        self, report: pytest.TestReport, config: pytest.Config
    ) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
        """``-v`` says which items the verdict cache served: ``PASSED (cached)``."""
        return gate_report.teststatus(report)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        gate_report.terminal_summary(self.state, terminalreporter)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.frozen.unfreeze()
        self.state.close()
        settings = self.state.settings
        if settings.lock is not None and not hasattr(self.config, "workerinput"):
            from pytest_kerasmodel.gate.provenance import finish_lock

            self.state.lock_lines = finish_lock(
                settings.lock, settings.update_lock, self.state.rows, self.config.rootpath
            )
        path = self.state.settings.report
        if path is not None and not hasattr(self.config, "workerinput"):
            gate_report.write_report(self.state, path, self.config)
        sarif = self.state.settings.sarif
        if sarif is not None and not hasattr(self.config, "workerinput"):
            from pytest_kerasmodel.gate.sarif import write_sarif

            write_sarif(sarif, self.state.rows, self.config.rootpath)


class HtmlSummary:
    """With pytest-html installed, the gate's summary table in its report (its hook)."""

    def __init__(self, config: pytest.Config) -> None:
        self.state = gate_state(config)

    def pytest_html_results_summary(
        self, prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session
    ) -> None:
        from pytest_kerasmodel.gate.html import summary_html

        if self.state.rows:
            prefix.append(summary_html(self.state.rows))
