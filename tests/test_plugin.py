"""The plugin as pytest loads it: registration, options, and no heavy imports at start-up."""

from __future__ import annotations

import pytest

HEAVY = ("tensorflow", "keras", "h5py", "tf_keras")
#: the export runtimes and exporters (the [export] extra): never imported at start-up either
EXPORT_RUNTIMES = ("onnxruntime", "ai_edge_litert", "openvino", "tf2onnx", "onnx")


def test_loading_pytest_imports_no_heavy_module(pytester: pytest.Pytester) -> None:
    # A subprocess: this test process has Keras loaded already.
    pytester.makeconftest(
        f"""
        import sys
        import pytest_kerasmodel.frameworks, pytest_kerasmodel.frameworks.base  # import no Keras,
        import pytest_kerasmodel.frameworks.tfkeras  # nor does the tf-keras adapter,
        import pytest_kerasmodel.gate.workers.forkserver  # these
        import pytest_kerasmodel.gate.workers.pool
        import pytest_kerasmodel.gate.protocol, pytest_kerasmodel.safety.rules  # or these
        def pytest_sessionfinish(session):
            heavy = sorted(m for m in {HEAVY + EXPORT_RUNTIMES!r} if m in sys.modules)
            print("HEAVY_MODULES=" + ",".join(heavy) + ";")
        """
    )
    pytester.makepyfile("def test_plain():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest_subprocess("-s", "-p", "kerasmodel")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*HEAVY_MODULES=;*"])


def test_plugin_is_registered_as_kerasmodel(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        ["*Keras model artifacts (pytest-kerasmodel)*", "*--keras-rtol=RTOL*"]
    )
    disabled = pytester.runpytest_subprocess("-p", "no:kerasmodel", "--help")
    assert "--keras-rtol" not in disabled.stdout.str()


def test_every_flag_has_an_ini_key_of_the_same_name(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    out = result.stdout.str()
    flags = {
        line.split()[0].split("=")[0]
        for line in out.splitlines()
        if line.strip().startswith("--keras-")
    }
    assert flags, out
    # a negative flag's ini key says the positive: --keras-no-cache / keras_cache = false
    negated = {
        "--keras-no-isolation": "keras_isolate",
        "--keras-no-cache": "keras_cache",
        "--keras-no-fork": "keras_fork_workers",
        # a repeatable flag whose ini key is the list of its values
        "--keras-import": "keras_imports",
    }
    # updating goldens or the lock is an explicit act on one run, never configured
    for flag in flags - {"--keras-update-golden", "--keras-update-lock"}:
        ini = negated.get(flag) or flag.lstrip("-").replace("-", "_")
        assert f"  {ini} " in out or f"  {ini}(" in out, f"{flag} has no ini key {ini}"


def test_bad_tolerance_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--keras-rtol=abc")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*keras_rtol: expected a number, got 'abc'*"])


def test_unknown_roundtrip_format_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--keras-roundtrip-formats=keras,onnx")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown format(s)*onnx*choose from*"])


def test_asking_for_backends_imports_none_of_them(pytester: pytest.Pytester) -> None:
    # --keras-backends is checked with importlib.util.find_spec: nothing is imported until a
    # roundtrip runs (pytest_kerasmodel.frameworks imports none of them itself).
    pytest.importorskip("jax")
    pytester.makeconftest(
        """
        import sys
        def pytest_sessionfinish(session):
            names = ("tensorflow", "keras", "h5py", "jax", "torch", "tf_keras")
            heavy = sorted(m for m in names if m in sys.modules)
            print("HEAVY_MODULES=" + ",".join(heavy) + ";")
        """
    )
    pytester.makepyfile("def test_plain():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest_subprocess(
        "-s", "-p", "kerasmodel", "--keras-backends=jax,tf_keras"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*HEAVY_MODULES=;*"])
