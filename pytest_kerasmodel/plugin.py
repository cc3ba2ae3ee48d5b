"""pytest hooks, options and fixtures: thin, each handing over to the module that does the work.

Nothing here imports TensorFlow, Keras or h5py: they load when a fixture or helper first needs them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_kerasmodel.fixtures import Export, Roundtrip
from pytest_kerasmodel.options import get_settings

if TYPE_CHECKING:  # pragma: no cover
    from pytest_kerasmodel.gate.fixture import KerasArtifact
    from pytest_kerasmodel.goldenstructure import StructureGolden


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kerasmodel", "Keras model artifacts (pytest-kerasmodel)")

    def option(
        flag: str,
        dest: str,
        help: str,
        ini_type: str | None = "string",
        ini_default: object = None,
        **kwargs: object,
    ) -> None:
        group.addoption(flag, dest=dest, help=help, **kwargs)
        if ini_type is not None:
            parser.addini(dest, help=help, type=ini_type, default=ini_default)  # type: ignore[arg-type]

    # roundtrip and prediction comparison
    option(
        "--keras-rtol",
        "keras_rtol",
        "Relative tolerance for prediction and weight comparisons (default 1e-5).",
        metavar="RTOL",
    )
    option(
        "--keras-atol",
        "keras_atol",
        "Absolute tolerance for prediction and weight comparisons (default 1e-6).",
        metavar="ATOL",
    )
    option(
        "--keras-roundtrip-formats",
        "keras_roundtrip_formats",
        "Formats keras_roundtrip saves and reloads: any of keras, h5, weights (default: keras).",
        metavar="FORMATS",
    )
    option(
        "--keras-backends",
        "keras_backends",
        "Keras backends keras_roundtrip also reloads each saved file under, each in a child "
        "process kept for the session, and the gate runs load and predictions under, each in "
        "an isolated worker: any of tensorflow, jax, torch, or all (default: none).",
        metavar="BACKENDS",
    )
    # goldens
    option(
        "--keras-update-golden",
        "keras_update_golden",
        "Record missing goldens and overwrite changed ones instead of failing.",
        ini_type=None,
        action="store_true",
        default=False,
    )
    option(
        "--keras-golden-dir",
        "keras_golden_dir",
        "Folder for the gate's goldens (default: beside each artifact).",
        metavar="DIR",
    )
    # the artifact gate
    option(
        "--keras-model-dir",
        "keras_model_dir",
        "Collect every Keras artifact under DIR as test items (repeatable).",
        ini_type="paths",
        ini_default=[],
        action="append",
        default=[],
        metavar="DIR",
    )
    option(
        "--keras-strict",
        "keras_strict",
        "Fail every file under a model folder that no Keras artifact holds (default: list "
        "them as not checked under the summary).",
        ini_type="bool",
        ini_default=False,
        action="store_true",
        default=None,
    )
    option(
        "--keras-checks",
        "keras_checks",
        "Gate: the checks to collect, comma-separated (default every check but compile: "
        "integrity, safety, load, finite, structure, predictions, budgets). The checks a "
        "selected one needs still run (the safety scan always precedes a load) but get no item.",
        metavar="CHECKS",
    )
    option(
        "--keras-load-compile",
        "keras_load_compile",
        "Gate: also reload each artifact compiled (it can resume training), under each backend "
        "of --keras-backends too (a compile check per artifact).",
        ini_type="bool",
        ini_default=False,
        action="store_true",
        default=None,
    )
    option(
        "--keras-report",
        "keras_report",
        "Write the gate's results as JSON to PATH.",
        metavar="PATH",
    )
    option(
        "--keras-timeout",
        "keras_timeout",
        "Seconds one artifact's checks may take in the isolated worker (default 120).",
        metavar="SECONDS",
    )
    option(
        "--keras-memory-limit",
        "keras_memory_limit",
        "Data-memory limit (RLIMIT_DATA) in MB of the isolated worker, for every artifact "
        "(default: per artifact, max(4096, 1536 + 7 x its size in MiB), at most 80 percent of "
        "physical memory).",
        metavar="MB",
    )
    group.addoption(
        "--keras-no-isolation",
        dest="keras_no_isolation",
        action="store_true",
        default=False,
        help="Check artifacts in the pytest process itself (trusted "
        "artifacts only: a crash in the HDF5 library then ends the session).",
    )
    parser.addini(
        "keras_isolate",
        type="bool",
        default=True,
        help="Check artifacts in an isolated worker process (default true).",
    )
    option(
        "--keras-allowed-modules",
        "keras_allowed_modules",
        "Module prefixes, besides Keras's own, that artifact configs may reference.",
        metavar="MODULES",
    )
    option(
        "--keras-max-file-size",
        "keras_max_file_size",
        "Budget: largest artifact size, e.g. 500MB.",
        metavar="SIZE",
    )
    option(
        "--keras-max-params", "keras_max_params", "Budget: most parameters per model.", metavar="N"
    )
    option(
        "--keras-allowed-versions",
        "keras_allowed_versions",
        "Budget: Keras versions (fnmatch patterns, e.g. '3.*') allowed to have written an "
        "artifact.",
        metavar="PATTERNS",
    )
    option(
        "--keras-sarif",
        "keras_sarif",
        "Write the gate's failing checks as SARIF 2.1.0 to PATH (for GitHub code scanning).",
        metavar="PATH",
    )
    option(
        "--keras-workers",
        "keras_workers",
        "Isolated checking workers the gate runs at once (default: the usable cores, one fewer "
        "when no check loads with Keras, at most one per artifact; one per xdist worker).",
        metavar="N",
    )
    # verdict cache
    option(
        "--keras-no-cache",
        "keras_no_cache",
        "Check every artifact again: do not serve verdicts from the gate's authenticated "
        "verdict cache (ini: keras_cache = false).",
        ini_type=None,
        action="store_true",
        default=None,
    )
    parser.addini(
        "keras_cache",
        help="Serve unchanged artifacts' verdicts from the gate's verdict cache (default true).",
        type="bool",
        default=True,
    )
    option(
        "--keras-no-fork",
        "keras_no_fork",
        "Spawn each checking worker as a fresh Python process instead of forking it from the "
        "gate's fork server, which imports Keras once (ini: keras_fork_workers = false).",
        ini_type=None,
        action="store_true",
        default=None,
    )
    parser.addini(
        "keras_fork_workers",
        help="Fork the gate's checking workers from one process that imported Keras once "
        "(default true; Linux only, elsewhere they are spawned).",
        type="bool",
        default=True,
    )
    # export parity
    option(
        "--keras-export-formats",
        "keras_export_formats",
        "Formats keras_export exports and runs: any of tf_saved_model, onnx, litert, openvino "
        "(default: tf_saved_model).",
        metavar="FORMATS",
    )


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
        from pytest_kerasmodel.backends import prestart

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
    from pytest_kerasmodel.goldenstructure import StructureGolden

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
        lines = list(dict.fromkeys(self.lines))
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
