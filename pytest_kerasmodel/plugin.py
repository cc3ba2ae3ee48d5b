"""pytest hooks, options and fixtures: thin, each handing over to the module that does the work.

Nothing here imports TensorFlow, Keras or h5py: they load when a fixture or helper first needs them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_kerasmodel.fixtures import Export, Roundtrip
from pytest_kerasmodel.options import add_options, get_settings

if TYPE_CHECKING:  # pragma: no cover
    from pytest_kerasmodel.gate.fixture import KerasArtifact
    from pytest_kerasmodel.structure.golden import StructureGolden


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    settings = get_settings(config)
    config.pluginmanager.register(_GoldenWrites(), "kerasmodel-golden-writes")
    if settings.model_dirs:
        from pytest_kerasmodel.gate.plugin import GatePlugin

        config.pluginmanager.register(GatePlugin(config), "kerasmodel-gate")
        if config.pluginmanager.hasplugin("html"):
            from pytest_kerasmodel.gate.plugin import HtmlSummary

            config.pluginmanager.register(HtmlSummary(config), "kerasmodel-gate-html")


def pytest_collection_finish(session: pytest.Session) -> None:
    # --keras-backends: the children start importing while the first tests build their models
    if get_settings(session.config).backends and any(
        "keras_roundtrip" in getattr(item, "fixturenames", ()) for item in session.items
    ):
        from pytest_kerasmodel.roundtrip.backends import prestart

        prestart(get_settings(session.config).backends)


@pytest.fixture
def keras_roundtrip(request: pytest.FixtureRequest, tmp_path: Path) -> Roundtrip:
    """``assert_roundtrip`` with the session's tolerances and formats, saving under tmp_path."""
    settings = get_settings(request.config)
    return Roundtrip(
        rtol=settings.rtol,
        atol=settings.atol,
        formats=settings.roundtrip_formats,
        folder=tmp_path / "roundtrip",
        backends=settings.backends,
    )


@pytest.fixture
def keras_golden_structure(request: pytest.FixtureRequest) -> StructureGolden:
    """Compare an artifact's structure with the golden stored beside the test module.

    ``keras_golden_structure(path)`` fails when no golden is recorded or the structure changed;
    ``--keras-update-golden`` records or updates it (listed in the terminal summary).
    """
    from pytest_kerasmodel.structure.golden import StructureGolden

    return StructureGolden(request.node, get_settings(request.config).update_golden)


class _GoldenWrites:
    """Collects the goldens that --keras-update-golden wrote and lists them in the summary.

    The writes travel in each report's ``user_properties``, so under xdist the controller
    sees the workers' writes too.
    """

    def __init__(self) -> None:
        self.lines: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.lines.extend(str(v) for k, v in report.user_properties if k == "keras_golden_written")

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        lines = sorted(dict.fromkeys(self.lines))  # in path order, however xdist ran them
        if lines:
            terminalreporter.write_sep("-", f"keras goldens written: {len(lines)}")
            for line in lines:
                terminalreporter.write_line(line)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "keras_artifact" in metafunc.fixturenames:
        from pytest_kerasmodel.gate import fixture

        fixture.parametrize(metafunc)


@pytest.fixture
def keras_artifact(request: pytest.FixtureRequest) -> KerasArtifact:
    """One artifact under ``--keras-model-dir`` (the test runs once per artifact): ``.path``,
    ``.description``, ``.format`` and ``.model`` (loaded safely, on first use)."""
    from pytest_kerasmodel.gate import fixture

    return fixture.make(request)


@pytest.fixture
def keras_export(request: pytest.FixtureRequest) -> Export:
    """``assert_export`` with the session's export formats and tolerances."""
    settings = get_settings(request.config)
    return Export(rtol=settings.rtol, atol=settings.atol, formats=settings.export_formats)
