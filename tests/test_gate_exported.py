"""Exported artifacts in the gate: SavedModel, ONNX, LiteRT and OpenVINO IR, read by their own
parsers, scanned before anything runs, and their predictions compared with goldens recorded
from the Keras model they were exported from (``<exported>.source``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from builders.exported_artifacts import openvino_with_extension, stage_exported, truncate
from builders.gate_artifacts import message, run_gate, status

# OpenVINO's CPU plugin computes in bfloat16 by default where the CPU has it (see test_export):
# these tolerances hold it, and the default ones catch it
LOOSE = ("--keras-rtol", "0.05", "--keras-atol", "0.01")
EXPORTED = ("saved_model", "model.onnx", "model.tflite", "model.xml")
FORMATS = {
    "saved_model": "savedmodel",
    "model.onnx": "onnx",
    "model.tflite": "tflite",
    "model.xml": "openvino-ir",
}
NOT_RUN_BY_KERAS = {"load": "skipped", "finite": "skipped"}


def _openvino_in_bf16() -> bool:
    import openvino as ov

    hint = ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT")
    return str(getattr(hint, "get_type_name", lambda: hint)()) not in ("f32", "float32")


def test_every_exported_format_is_gated_against_its_source_model(
    pytester: pytest.Pytester, exported_files: dict[str, Path]
) -> None:
    models = stage_exported(pytester.path / "models", exported_files)
    result, verdicts = run_gate(pytester, "--keras-update-golden", *LOOSE)
    assert sorted(verdicts) == sorted(["clf.keras", *EXPORTED])
    for name in EXPORTED:
        assert verdicts[name]["format"] == FORMATS[name]
        assert status(verdicts, name) == {
            "integrity": "passed",
            "safety": "passed",
            **NOT_RUN_BY_KERAS,
            "structure": "passed",
            "predictions": "passed",
        }, verdicts[name]
        text = message(verdicts, name, "predictions")
        assert "outputs of the source clf.keras" in text and "reproduces it" in text
        with np.load(models / f"{name}.golden.npz") as npz:
            assert [k for k in npz.files if k.startswith("output/")] != []
    # the signature, from each format's own reader
    assert "inputs features (None, 6) float32; outputs output_0 (None, 4) float32" in (
        message(verdicts, "model.tflite", "integrity")
    )
    assert "signature 'serving_default'" in message(verdicts, "saved_model", "integrity")
    result.stdout.fnmatch_lines(["*models/model.onnx*onnx*ok*ok*skip*skip*ok*ok*"])
    assert not (models / "model.bin.golden.npz").exists()  # the .bin is part of model.xml

    # a second run compares with the recorded goldens
    result, verdicts = run_gate(pytester, *LOOSE)
    for name in EXPORTED:
        assert status(verdicts, name)["predictions"] == "passed"
        assert "match" in message(verdicts, name, "predictions")

    # a changed golden fails every runtime, with the numbers
    for name in EXPORTED:
        golden = models / f"{name}.golden.npz"
        with np.load(golden) as npz:
            arrays = {k: npz[k] for k in npz.files}
        key = next(k for k in arrays if k.startswith("output/"))
        arrays[key] = arrays[key] + 0.5
        np.savez(golden, **arrays)
    result, verdicts = run_gate(pytester, *LOOSE)
    for name in EXPORTED:
        assert status(verdicts, name)["predictions"] == "failed"
        text = message(verdicts, name, "predictions")
        assert "predictions differ from the golden" in text and "elements differ" in text


def test_openvino_in_bfloat16_is_caught_against_the_source(
    pytester: pytest.Pytester, exported_files: dict[str, Path]
) -> None:
    stage_exported(pytester.path / "models", exported_files)
    _result, verdicts = run_gate(pytester, "--keras-update-golden", "-k", "predictions")
    for name in ("saved_model", "model.onnx", "model.tflite"):
        assert status(verdicts, name)["predictions"] == "passed"
    expected = "failed" if _openvino_in_bf16() else "passed"
    assert status(verdicts, "model.xml")["predictions"] == expected
    if expected == "failed":
        text = message(verdicts, "model.xml", "predictions")
        assert "the openvino runtime's predictions differ from the golden" in text
        assert "max abs diff" in text


def test_a_savedmodel_whose_graph_writes_a_file_is_refused_and_never_run(
    pytester: pytest.Pytester, exported_files: dict[str, Path]
) -> None:
    models = pytester.path / "models"
    models.mkdir()
    shutil.copytree(exported_files["writes_file"], models / "writes_file")
    written = exported_files["written"]
    _result, verdicts = run_gate(pytester, "--keras-update-golden")
    checks = status(verdicts, "writes_file")
    assert checks["integrity"] == "passed"
    assert checks["safety"] == "failed" and checks["predictions"] == "failed"
    text = message(verdicts, "writes_file", "safety")
    assert "operation WriteFile writes files when the graph runs" in text
    assert "refused: the safety scan" in message(verdicts, "writes_file", "predictions")
    assert not written.exists(), "the gate ran the graph that writes a file"
    assert not (models / "writes_file.golden.npz").exists()


def test_unsafe_exported_graphs_are_named(
    pytester: pytest.Pytester, exported_files: dict[str, Path]
) -> None:
    models = pytester.path / "models"
    models.mkdir()
    for name in ("flex.tflite", "custom_domain.onnx", "escaping.onnx"):
        shutil.copyfile(exported_files[name], models / name)
    openvino_with_extension(exported_files["model.xml"], models / "extended.xml")
    shutil.copyfile(exported_files["model.xml"], models / "truncated.xml")
    shutil.copyfile(exported_files["model.bin"], models / "truncated.bin")
    truncate(models / "truncated.bin", 100)
    _result, verdicts = run_gate(pytester, "-k", "integrity or safety")
    assert "Flex operator FlexTensorListReserve" in message(verdicts, "flex.tflite", "safety")
    assert "'com.example.native'" in message(verdicts, "custom_domain.onnx", "safety")
    assert "['Mystery']" in message(verdicts, "custom_domain.onnx", "safety")
    # the ONNX checker itself refuses external data outside the model's folder: the file
    # fails integrity naming the path, and safety cannot vouch for what it cannot read
    assert status(verdicts, "escaping.onnx") == {"integrity": "failed", "safety": "failed"}
    assert "'../../secret.bin' points outside the directory" in message(
        verdicts, "escaping.onnx", "integrity"
    )
    assert "of operation set 'my_extensions': an extension" in message(
        verdicts, "extended.xml", "safety"
    )
    assert status(verdicts, "truncated.xml")["integrity"] == "failed"
    assert "which has 100 bytes" in message(verdicts, "truncated.xml", "integrity")
    for name in ("flex.tflite", "custom_domain.onnx", "extended.xml"):
        assert status(verdicts, name) == {"integrity": "passed", "safety": "failed"}
