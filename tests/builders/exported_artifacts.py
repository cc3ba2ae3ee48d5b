"""Exported artifacts for the gate tests, written by Keras's own exporters and real writers.

Healthy ones: one softmax MLP saved as ``clf.keras`` and exported as a SavedModel, ONNX, LiteRT
and OpenVINO IR, each with a ``<exported>.source`` sidecar naming ``clf.keras``. Hostile ones: a
SavedModel whose serving function writes a file (``tf.io.write_file``), a LiteRT file with Flex
ops (an LSTM over a None time axis), ONNX files with a custom operator domain and with external
data outside their folder, and an OpenVINO IR with an extension layer and one whose ``.bin`` is
truncated.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from builders import export_models
from pytest_kerasmodel.frameworks import exporters

#: the healthy exported artifacts, by file name
EXPORTED = {
    "tf_saved_model": "saved_model",
    "onnx": "model.onnx",
    "litert": "model.tflite",
    "openvino": "model.xml",
}


def build_exported(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    model = export_models.dense()
    model.save(folder / "clf.keras")
    files["clf.keras"] = folder / "clf.keras"
    for fmt in EXPORTED:
        path = Path(exporters.export_model(model, fmt, str(folder)))
        files[path.name] = path
    files["model.bin"] = folder / "model.bin"
    files["writes_file"], files["written"] = _savedmodel_writing_a_file(folder / "hostile")
    files["flex.tflite"] = _flex_tflite(folder / "hostile")
    files["custom_domain.onnx"] = _onnx_custom_domain(folder / "hostile")
    files["escaping.onnx"] = _onnx_external_data_outside(folder / "hostile")
    return files


def stage_exported(target: Path, files: dict[str, Path], *, sources: bool = True) -> Path:
    """The healthy exports (and clf.keras) copied into ``target``, with .source sidecars."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(files["clf.keras"], target / "clf.keras")
    for name in EXPORTED.values():
        if files[name].is_dir():
            shutil.copytree(files[name], target / name)
        else:
            shutil.copyfile(files[name], target / name)
        if sources:
            (target / f"{name}.source").write_text("clf.keras\n")
    shutil.copyfile(files["model.bin"], target / "model.bin")
    return target


def _savedmodel_writing_a_file(folder: Path) -> tuple[Path, Path]:
    """A SavedModel whose serving function writes ``written.txt`` beside it when it runs."""
    import tensorflow as tf

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "written.txt"

    class Writer(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 6], tf.float32)])
        def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            tf.io.write_file(str(target), tf.strings.as_string(tf.reduce_sum(x)))
            return {"output_0": x * 2.0}

    module = Writer()
    path = folder / "writes_file"
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    assert not target.exists()
    return path, target


def _flex_tflite(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = Path(exporters.export_model(export_models.lstm(), "litert", str(folder)))
    return Path(shutil.move(path, folder / "flex.tflite"))


def _onnx_custom_domain(folder: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Mystery", ["x"], ["y"], domain="com.example.native")
    graph = helper.make_graph(
        [node],
        "custom",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 6])],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example.native", 1)],
    )
    path = folder / "custom_domain.onnx"
    onnx.save(model, str(path))
    return path


def _onnx_external_data_outside(folder: Path) -> Path:
    """A valid ONNX graph whose weight lives in external data named ``../../secret.bin``."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((6, 2), "float32"), name="w")
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../../secret.bin"), ("offset", "0"), ("length", "48")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    graph = helper.make_graph(
        [node],
        "escaping",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = folder / "escaping.onnx"
    with open(path, "wb") as fh:
        fh.write(model.SerializeToString())
    return path


def openvino_with_extension(xml: Path, target: Path) -> Path:
    """A copy of an OpenVINO IR whose ReLU layer claims an extension's operation set."""
    text = xml.read_text(encoding="utf-8")
    marker = 'type="ReLU" version="'
    start = text.index(marker) + len(marker)
    end = text.index('"', start)
    target.write_text(text[:start] + "my_extensions" + text[end:], encoding="utf-8")
    shutil.copyfile(xml.with_suffix(".bin"), target.with_suffix(".bin"))
    return target


def truncate(path: Path, keep: int) -> None:
    with open(path, "r+b") as fh:
        fh.truncate(keep)
