"""SavedModels for the SavedModel safety tests, written by the real writers (TensorFlow, tf-keras,
Keras 3) and never run by the scan.

Healthy ones: tf-keras ``model.save(save_format="tf")`` of a Dense model, an LSTM (whose graph
holds the cuDNN branch and device dispatch) and a TextVectorization (lookup tables, a tf.data
iterator in its adapt step), Keras 3 ``model.export()`` of a Sequential and of a tiny KerasHub
BERT backbone and text classifier, and
``tf.saved_model.save`` of a ``tf.Module`` with variables. Hostile ones: a ``tf.Module`` whose
serving function uses one op family that reaches outside the graph (each aimed at a marker file
beside it, which must still be absent after the scan), a healthy twin of the same module, and a
tf-keras SavedModel whose ``keras_metadata.pb`` names ``__main__.exploit`` as a Lambda's function.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: attack name -> the op the scan must name
ATTACK_OPS = {
    "read_file": "ReadFile",
    "write_file": "WriteFile",
    "immutable_const": "ImmutableConst",
    "csv_dataset": "CSVDatasetV2",
    "matching_files": "MatchingFiles",
    "print_to_file": "PrintV2",
    "py_function": "EagerPyFunc",
    "numpy_function": "PyFunc",
    "save_outside_saver": "SaveV2",
}


def _attack(name: str, marker: Path) -> Callable[[Any], Any]:
    """The body of a serving function using one hostile op on ``marker``."""
    import tensorflow as tf

    path = str(marker)

    def read_file(x: Any) -> Any:
        return x + tf.cast(tf.strings.length(tf.io.read_file(path)), tf.float32)

    def write_file(x: Any) -> Any:
        tf.io.write_file(path, tf.strings.as_string(tf.reduce_sum(x)))
        return x * 2.0

    def immutable_const(x: Any) -> Any:
        mapped = tf.raw_ops.ImmutableConst(dtype=tf.float32, shape=[1], memory_region_name=path)
        return x + mapped

    def csv_dataset(x: Any) -> Any:
        rows = tf.data.experimental.CsvDataset(path, [tf.float32])
        return x + rows.reduce(0.0, lambda total, row: total + row)

    def matching_files(x: Any) -> Any:
        return x + tf.cast(tf.size(tf.io.matching_files(path)), tf.float32)

    def print_to_file(x: Any) -> Any:
        tf.print(x, output_stream=f"file://{path}")
        return x * 2.0

    def py_function(x: Any) -> Any:
        def touch(value: Any) -> Any:
            marker.write_text("ran")
            return value

        return tf.py_function(touch, [x], tf.float32)

    def numpy_function(x: Any) -> Any:
        def touch(value: Any) -> Any:
            marker.write_text("ran")
            return value

        return tf.numpy_function(touch, [x], tf.float32)

    def save_outside_saver(x: Any) -> Any:
        tf.raw_ops.SaveV2(prefix=path, tensor_names=["x"], shape_and_slices=[""], tensors=[x])
        return x * 2.0

    def healthy(x: Any) -> Any:
        return x * 2.0

    bodies = (read_file, write_file, immutable_const, csv_dataset, matching_files)
    bodies += (print_to_file, py_function, numpy_function, save_outside_saver, healthy)
    return {body.__name__: body for body in bodies}[name]


def _module(name: str, marker: Path, target: Path) -> Path:
    import tensorflow as tf

    body = _attack(name, marker)

    class Served(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = tf.Variable([1.0, 2.0])

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])
        def serve(self, x: Any) -> dict[str, Any]:
            return {"output_0": body(x * self.scale)}

    module = Served()
    tf.saved_model.save(module, str(target), signatures={"serving_default": module.serve})
    return target


def _lambda_exploit(folder: Path) -> Path:
    """A tf-keras Lambda SavedModel whose metadata names ``__main__.exploit`` as its function,
    as a crafted file does: written by tf-keras, its metadata rewritten with tf-keras's proto."""
    import tf_keras
    from tf_keras.protobuf import saved_metadata_pb2

    model = tf_keras.Sequential(
        [tf_keras.Input((3,)), tf_keras.layers.Lambda(lambda x: x * 2.0, name="lam")]
    )
    target = folder / "lambda_main_exploit"
    model.save(str(target), save_format="tf")
    metadata = saved_metadata_pb2.SavedMetadata()
    metadata.ParseFromString((target / "keras_metadata.pb").read_bytes())

    def rewrite(config: Any) -> Any:
        if isinstance(config, dict):
            if config.get("class_name") == "Lambda" and isinstance(config.get("config"), dict):
                config["config"]["function"] = "exploit"
                config["config"]["function_type"] = "function"
                config["config"]["module"] = "__main__"
            return {key: rewrite(value) for key, value in config.items()}
        if isinstance(config, list):
            return [rewrite(value) for value in config]
        return config

    for node in metadata.nodes:
        if node.metadata:
            node.metadata = json.dumps(rewrite(json.loads(node.metadata)))
    (target / "keras_metadata.pb").write_bytes(metadata.SerializeToString())
    return target


def build_savedmodels(folder: Path) -> dict[str, Path]:
    """Every SavedModel of the tests, by name; ``<attack>.marker`` is each attack's marker."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tf_keras

    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    tf_keras.utils.set_random_seed(0)
    dense = tf_keras.Sequential(
        [tf_keras.Input((3,)), tf_keras.layers.Dense(2), tf_keras.layers.Dense(1)]
    )
    paths["tfkeras_dense"] = folder / "tfkeras_dense"
    dense.save(str(paths["tfkeras_dense"]), save_format="tf")
    lstm = tf_keras.Sequential([tf_keras.Input((4, 2)), tf_keras.layers.LSTM(3)])
    paths["tfkeras_lstm"] = folder / "tfkeras_lstm"
    lstm.save(str(paths["tfkeras_lstm"]), save_format="tf")
    # TextVectorization: lookup tables, and an adapt_step function reading a tf.data iterator
    vectorize = tf_keras.layers.TextVectorization(max_tokens=8, output_sequence_length=3)
    vectorize.adapt(["a b c", "b c d"])
    text = tf_keras.Input((1,), dtype="string")
    paths["tfkeras_textvectorization"] = folder / "tfkeras_textvectorization"
    tf_keras.Model(text, vectorize(text)).save(
        str(paths["tfkeras_textvectorization"]), save_format="tf"
    )
    k3 = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.Dropout(0.1)])
    paths["keras3_export"] = folder / "keras3_export"
    k3.export(str(paths["keras3_export"]), verbose=False)
    try:
        import keras_hub
    except ImportError:  # the KerasHub exports' tests skip
        keras_hub = None
    if keras_hub is not None:
        from builders.layouts import _bert

        backbone, task = _bert(keras_hub)  # a tiny BERT backbone and text classifier task
        for name, model in (("keras_hub_backbone", backbone), ("keras_hub_task", task)):
            paths[name] = folder / name
            model.export(str(paths[name]), verbose=False)
    paths["tf_module"] = _module("healthy", folder / "healthy.marker", folder / "tf_module")
    for name in ATTACK_OPS:
        marker = folder / f"{name}.marker"
        paths[name] = _module(name, marker, folder / name)
        paths[f"{name}.marker"] = marker
    paths["lambda_main_exploit"] = _lambda_exploit(folder)
    return paths
