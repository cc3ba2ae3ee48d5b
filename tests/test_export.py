"""assert_export on real tiny models, every format exported by Keras and run by its own runtime.

What each format does with each model was measured (Keras 3.15.1, tensorflow-cpu 2.21, tf2onnx
1.17, onnxruntime 1.32, ai-edge-litert 2.3, openvino 2026.4, this machine's CPU): SavedModel,
ONNX and LiteRT agree with Keras within the default tolerances on every model except the LSTM
over a ``None`` time axis, which LiteRT cannot run (the converter keeps Flex TensorList ops,
which ai-edge-litert's interpreter has no delegate for) and OpenVINO cannot export (no
conversion for TensorList). OpenVINO's CPU plugin computes in bfloat16 by default where the
CPU has it: its numbers differ from Keras by up to about 1e-2, which the default tolerances
catch and report with figures. Where the CPU has no bfloat16, the OpenVINO tests say so and
expect agreement.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from builders import export_models

from pytest_kerasmodel import ExportError, assert_export
from pytest_kerasmodel.export import ExportDiff, FormatExportDiff

ALL = ("tf_saved_model", "onnx", "litert", "openvino")
RUNTIMES = {
    "tf_saved_model": "tensorflow",
    "onnx": "onnxruntime",
    "litert": "ai_edge_litert",
    "openvino": "openvino",
}


def _require_all() -> None:
    for module in ("tf2onnx", "onnxruntime", "ai_edge_litert", "openvino"):
        pytest.importorskip(module, reason="the [export] extra is not installed")


def _openvino_in_bf16() -> bool:
    import openvino as ov

    hint = ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT")
    return str(getattr(hint, "get_type_name", lambda: hint)()) not in ("f32", "float32")


def _outcome(name: str, formats: tuple[str, ...] = ALL) -> ExportDiff:
    """Every format's diff for one model: one assert_export call exports it in each format."""
    try:
        return assert_export(export_models.MODELS[name](), formats=formats).diff
    except ExportError as error:
        assert isinstance(error.diff, ExportDiff)
        return error.diff


def _by_format(diff: ExportDiff) -> dict[str, FormatExportDiff]:
    return {f.format: f for f in diff.formats}


def _assert_agrees(result: FormatExportDiff, runs: int) -> None:
    assert result.is_empty(), result.render()
    assert len(result.cases) == runs
    assert result.max_abs_diff <= 1e-6


def _assert_openvino(result: FormatExportDiff, runs: int) -> None:
    """OpenVINO in bfloat16: a real numeric difference, reported with its figures."""
    if not _openvino_in_bf16():
        _assert_agrees(result, runs)
        return
    assert result.failure is None
    assert result.outputs, "OpenVINO in bfloat16 agreed with Keras within 1e-5: re-measure"
    assert len(result.cases) == runs
    assert 1e-5 < result.max_abs_diff < 5e-2
    text = result.render()
    assert "elements differ" in text and "max abs diff" in text and "mean abs diff" in text
    assert "INFERENCE_PRECISION_HINT" in text


@pytest.mark.parametrize("name", ["dense", "conv", "multi_input", "embedding"])
def test_models_that_every_exporter_handles(name: str) -> None:
    _require_all()
    formats = _by_format(_outcome(name))
    assert list(formats) == list(ALL)
    for fmt in ("tf_saved_model", "onnx", "litert"):
        _assert_agrees(formats[fmt], runs=2)  # batch 1 and batch 4
    _assert_openvino(formats["openvino"], runs=2)
    if name == "dense":  # softmax scores: the share of samples whose class changed is shown
        bad = formats["openvino"].outputs
        if bad:
            assert all(o.argmax_changed is not None and o.samples for o in bad)
            assert "argmax changed for" in formats["openvino"].render()
        # the diff is data: JSON with every figure
        data = json.loads(ExportDiff(list(formats.values())).to_json())
        openvino = data["formats"][3]
        assert set(openvino) >= {"failure", "outputs", "cases", "max_abs_diff", "rtol", "atol"}


def test_lstm_over_a_none_time_axis() -> None:
    """SavedModel and ONNX run it at both lengths; LiteRT fails when run, OpenVINO at export,
    each with its own message and a hint."""
    _require_all()
    formats = _by_format(_outcome("lstm"))
    for fmt in ("tf_saved_model", "onnx"):
        _assert_agrees(formats[fmt], runs=4)
        assert formats[fmt].cases == [
            "batch 1",
            "batch 1, length 5",
            "batch 4",
            "batch 4, length 5",
        ]
    litert = formats["litert"].failure
    assert litert is not None and litert.stage == "call" and litert.case == "batch 1"
    assert "Flex delegate" in litert.message and "FlexTensorList" in litert.message
    assert litert.hint and "input_signature" in litert.hint
    openvino = formats["openvino"].failure
    assert openvino is not None and openvino.stage == "export"
    assert openvino.error_type == "OpConversionFailure" and "TensorList" in openvino.message
    text = ExportDiff(list(formats.values())).render()
    assert "[litert] model.tflite (rtol=1e-05, atol=1e-06): call failed" in text
    assert "[openvino] model.xml (rtol=1e-05, atol=1e-06): export failed" in text
    assert "No conversion rule found for operations: TensorList" in text


def test_layers_in_float16_are_named_in_the_report() -> None:
    """ONNX computes the float16 layers with other rounding (a difference around 1e-3) and
    LiteRT keeps them as Flex ops it cannot run: both reports name the float16 layers."""
    for module in ("tf2onnx", "onnxruntime", "ai_edge_litert"):
        pytest.importorskip(module)
    formats = _by_format(_outcome("float16", ("onnx", "litert")))
    onnx = formats["onnx"]
    assert onnx.failure is None and onnx.outputs and 1e-5 < onnx.max_abs_diff < 1e-2
    assert any("dtype policy other than float32: dense" in n for n in onnx.notes), onnx.notes
    assert "(float16)" in onnx.render()
    litert = formats["litert"].failure
    assert litert is not None and litert.stage == "call" and "FlexMatMul" in litert.message
    assert litert.hint is not None and "float16" in litert.hint


def test_a_tolerance_per_format_is_used_for_that_format_only() -> None:
    pytest.importorskip("openvino")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    model = export_models.dense()
    result = assert_export(
        model, formats=["onnx", "openvino"], rtol={"openvino": 5e-2}, atol={"openvino": 1e-2}
    )
    figures = _by_format(result.diff)
    assert (figures["onnx"].rtol, figures["onnx"].atol) == (1e-5, 1e-6)
    assert (figures["openvino"].rtol, figures["openvino"].atol) == (5e-2, 1e-2)
    # the runtime outputs of the first run (batch 1), in the model's output order
    assert result.formats == ("onnx", "openvino")
    assert result["onnx"][0].shape == (1, 4)
    np.testing.assert_allclose(result["onnx"][0], result.expected[0], rtol=1e-5, atol=1e-6)


def test_given_inputs_are_tiled_to_every_batch_size_and_cut_on_the_time_axis() -> None:
    model = export_models.lstm()
    samples = np.random.default_rng(3).standard_normal((3, 6, 3)).astype("float32")
    result = assert_export(model, samples, batch_sizes=(2, 5))
    sm = result.diff.formats[0]
    assert sm.cases == ["batch 2", "batch 2, length 3", "batch 5", "batch 5, length 3"]
    np.testing.assert_array_equal(result.inputs, samples[:2])


def test_a_baked_in_time_length_fails_at_the_second_length() -> None:
    """An input_signature with a fixed length: the first run passes, the second fails, named."""
    import keras

    model = export_models.lstm()
    with pytest.raises(ExportError) as info:
        assert_export(model, input_signature=[keras.InputSpec(shape=(None, 8, 3), dtype="float32")])
    failure = info.value.diff.formats[0].failure
    assert failure is not None and failure.stage == "call"
    assert failure.case == "batch 1, length 5"
    assert info.value.diff.formats[0].cases == ["batch 1"]


def test_bad_arguments_are_refused_before_exporting() -> None:
    model = export_models.dense()
    with pytest.raises(ValueError, match="unknown export format"):
        assert_export(model, formats=["tflite"])
    with pytest.raises(ValueError, match="unknown format"):
        assert_export(model, rtol={"onxx": 1e-3})
    with pytest.raises(ValueError, match="batch_sizes"):
        assert_export(model, batch_sizes=(0,))


def _environment_without(module: str, tmp_path: Path) -> Path:
    """A folder of links to this environment's installed packages except ``module``'s: a real
    environment in which ``module`` is not installed (no import is blocked or faked)."""
    import sysconfig

    site = Path(sysconfig.get_paths()["purelib"])
    folder = tmp_path / "site-packages"
    folder.mkdir()
    for entry in site.iterdir():
        if entry.name.lower().startswith(module.lower()) or entry.suffix == ".pth":
            continue
        (folder / entry.name).symlink_to(entry)
    return folder


def test_a_missing_runtime_is_named(tmp_path: Path) -> None:
    pytest.importorskip("tf2onnx")
    site = _environment_without("onnxruntime", tmp_path)
    project = Path(__file__).resolve().parents[1]
    script = textwrap.dedent(
        f"""
        import sys
        sys.path[:0] = [{str(site)!r}, {str(project)!r}, {str(project / "tests")!r}]
        from builders import export_models
        from pytest_kerasmodel import ExportError, assert_export
        try:
            assert_export(export_models.dense(), formats="onnx")
        except ExportError as error:
            print(error)
        """
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    # -S: no site-packages but the folder of links (this venv's, less onnxruntime)
    done = subprocess.run(
        [sys.executable, "-S", "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "[onnx] model.onnx (rtol=1e-05, atol=1e-06): load failed" in out, out
    assert "No module named 'onnxruntime'" in out
    assert "missing package: onnxruntime" in out
    assert "pip install onnxruntime" in out


def test_keras_export_fixture_uses_the_session_settings(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nkeras_export_formats = tf_saved_model\nkeras_atol = 0.5\n")
    pytester.makepyfile(
        """
        import keras

        def test_fixture(keras_export):
            model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
            result = keras_export(model)
            assert result.formats == ("tf_saved_model",)
            assert result.diff.formats[0].atol == 0.5
            assert result.diff.formats[0].rtol == 1e-5
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1)


def test_unknown_export_format_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_inprocess("--keras-export-formats", "onnx,tflite")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*keras_export_formats: unknown format(s)*'tflite'*choose from*"])
