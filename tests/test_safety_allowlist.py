"""The config scan on an allowlist (issue 26, items 1-3 and 6).

- the committed table (``keras_names.json``) holds everything the installed Keras, tf-keras and
  KerasHub define, regenerated here from the real packages;
- every Lambda encoding, unknown class shape and suspicious reference key is a finding, in real
  ``.keras`` archives, unzipped folders and legacy HDF5 files, and the gate never loads them;
- what Keras writes passes: every loss, metric, optimizer, initializer, activation, regularizer,
  constraint, schedule and layer of the installed Keras, taken from its registry and serialised by
  its own serializers, and real files saved with them.
"""

from __future__ import annotations

import base64
import inspect
import json
import marshal
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from builders import attacks

from pytest_kerasmodel.safety import scan_artifact, scan_config
from pytest_kerasmodel.safety.generate_allowlist import TABLE_PATH, missing

ROOT = Path(__file__).resolve().parents[1]
REALWORLD = Path(
    os.environ.get(
        "KERASMODEL_REALWORLD", Path(__file__).resolve().parents[2] / "shared" / "realworld"
    )
)


# ---------------------------------------------------------------------------------------------
# The table is generated from the real packages, and holds all they define
# ---------------------------------------------------------------------------------------------


def test_committed_table_holds_everything_the_installed_packages_define(tmp_path: Path) -> None:
    """Regenerate in a child (it imports Keras, tf-keras and KerasHub) and compare: a release that
    adds a layer fails here, with the names to add and the command that adds them."""
    out = tmp_path / "fresh.json"
    script = (
        "import json, sys\n"
        "from pytest_kerasmodel.safety.generate_allowlist import collect\n"
        f"open({str(out)!r}, 'w').write(json.dumps(collect()))\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=300)
    fresh = json.loads(out.read_text())
    committed = json.loads(TABLE_PATH.read_text())
    assert set(fresh["generated_from"]) == {"keras", "tf_keras", "keras_hub"}
    absent = missing(committed, fresh)
    assert absent == [], (
        f"{len(absent)} name(s) the installed packages define are not in {TABLE_PATH.name}: "
        f"{absent[:20]}; run python -m pytest_kerasmodel.safety.generate_allowlist"
    )
    assert len(committed["names"]) > 1000 and "Dense" in committed["names"]
    assert "keras_hub>BertBackbone" in committed["registered"]


def test_table_is_package_data() -> None:
    setup = (ROOT / "setup.cfg").read_text()
    assert "keras_names.json" in setup


# ---------------------------------------------------------------------------------------------
# Lambda: every encoding is a finding that says what the function is
# ---------------------------------------------------------------------------------------------


def _code(text: str) -> str:
    return base64.b64encode(marshal.dumps(compile(text, "<x>", "eval"))).decode("ascii")


_OS_SYSTEM = base64.b64encode(marshal.dumps((lambda x: __import__("os").system(x)).__code__))

#: id -> (the Lambda layer's config, text its finding must hold)
LAMBDA_ENCODINGS: dict[str, tuple[dict[str, Any], str]] = {
    "keras3_lambda_dict": (
        {
            "function": {
                "class_name": "__lambda__",
                "config": {"code": _OS_SYSTEM.decode(), "defaults": None, "closure": None},
            }
        },
        "bytecode of <lambda> naming",
    ),
    "keras2_bytecode_list": (
        {"function": [_OS_SYSTEM.decode(), None, None], "function_type": "lambda"},
        "bytecode of <lambda>",
    ),
    "keras2_base64_string": (
        {"function": _OS_SYSTEM.decode(), "function_type": "lambda"},
        "bytecode of <lambda>",
    ),
    "keras1_raw_bytes": (
        {
            "function": marshal.dumps((lambda x: x).__code__).decode("raw_unicode_escape"),
            "function_type": "lambda",
        },
        "bytecode of <lambda>",
    ),
    "list_without_type": ({"function": [_OS_SYSTEM.decode(), None, None]}, "bytecode of <lambda>"),
    "source_string": ({"function": "lambda x: __import__('os').system('id')"}, "Python source"),
    "reference_with_type": (
        {"function": "system", "function_type": "function", "module": "os"},
        "a reference to os.system",
    ),
    "reference_without_type": ({"function": "exploit", "module": "__main__"}, "exploit"),
    "reference_dict": (
        {"function": {"module": "os", "class_name": "function", "config": "system"}},
        "a reference to os.system",
    ),
    "keras_reference": (
        {"function": {"module": "keras.ops", "class_name": "function", "config": "add"}},
        "a reference to keras.ops.add",
    ),
    "no_function": ({}, "missing"),
}


def _lambda_layer(name: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"class_name": "Lambda", "config": {"name": name, "trainable": True, **body}}


@pytest.mark.parametrize("encoding", sorted(LAMBDA_ENCODINGS))
def test_every_lambda_encoding_is_a_finding(encoding: str) -> None:
    body, said = LAMBDA_ENCODINGS[encoding]
    findings = scan_config(_lambda_layer("lam", body))
    lambdas = [f for f in findings if f.check == "lambda"]
    assert lambdas, findings
    assert lambdas[0].where.startswith("layer 'lam'")
    assert said in lambdas[0].reason, lambdas[0].reason
    # Keras 1 stored the layer's fields beside class_name, without a config dict
    flat = scan_config({"class_name": "Lambda", "name": "lam", **body})
    assert any(f.check == "lambda" for f in flat), flat


def _edit_lambda(config: Any, body: dict[str, Any]) -> None:
    layer = attacks._find_layer(config, "double")
    layer["config"] = {"name": "double", **body}


@pytest.fixture(scope="module")
def lambda_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each encoding written into a real ``.keras`` archive, the same unzipped into a folder, and
    a real legacy HDF5 file (healthy Keras-saved files, only the Lambda's config changed)."""
    folder = tmp_path_factory.mktemp("lambdas")
    files: dict[str, Path] = {}
    for encoding, (body, _) in LAMBDA_ENCODINGS.items():
        data = attacks.edit_keras_config(
            attacks._base("lambda.keras"), lambda c, b=body: _edit_lambda(c, b)
        )
        keras_file = attacks._write(folder / encoding, "model.keras", data)
        unzipped = folder / encoding / "unzipped"
        with zipfile.ZipFile(keras_file) as zf:
            zf.extractall(unzipped)
        h5 = attacks._write(folder / encoding, "model.h5", attacks._base("lambda.h5"))
        attacks.edit_h5_config(h5, lambda c, b=body: _edit_lambda(c, b))
        files[f"{encoding}.keras"] = keras_file
        files[f"{encoding}.folder"] = unzipped
        files[f"{encoding}.h5"] = h5
    return files


@pytest.mark.parametrize("layout", ["keras", "folder", "h5"])
def test_lambda_encodings_in_every_layout(lambda_files: dict[str, Path], layout: str) -> None:
    for encoding in LAMBDA_ENCODINGS:
        findings = scan_artifact(lambda_files[f"{encoding}.{layout}"])
        assert any(f.check == "lambda" and "layer 'clf/double'" in f.where for f in findings), (
            encoding,
            findings,
        )


# ---------------------------------------------------------------------------------------------
# Unknown classes, foreign packages, torch modules
# ---------------------------------------------------------------------------------------------

#: id -> (a config, the finding check, text of the reason), each with a healthy twin below
UNKNOWN: dict[str, tuple[Any, str, str]] = {
    "legacy_bare_class": (
        {"class_name": "MaliciousModel", "config": {}},
        "unknown-class",
        "'MaliciousModel'",
    ),
    "nested_bare_class": (
        {
            "class_name": "Sequential",
            "config": {"layers": [{"class_name": "EvilDense", "config": {"name": "e"}}]},
        },
        "unknown-class",
        "'EvilDense'",
    ),
    "keras_module_unknown_class": (
        {"module": "keras.layers", "class_name": "Backdoor", "config": {"name": "b"}},
        "unknown-class",
        "'Backdoor'",
    ),
    "registered_dotted": (
        {
            "module": "keras.layers",
            "class_name": "Dense",
            "registered_name": "custom_package.CustomDense",
            "config": {"name": "d"},
        },
        "foreign-module",
        "'custom_package'",
    ),
    "registered_arrow": (
        {
            "class_name": "CustomDense",
            "registered_name": "custom_package>CustomDense",
            "config": {"name": "d"},
        },
        "foreign-module",
        "'custom_package'",
    ),
    "foreign_module": (
        {"module": "custom_package.layers", "class_name": "Dense", "config": {"name": "d"}},
        "foreign-module",
        "custom_package",
    ),
    "torch_without_module_key": (
        {"module": "keras.layers", "class_name": "TorchModuleWrapper", "config": {"name": "t"}},
        "torch-module",
        "does not carry",
    ),
    "unknown_activation": (
        {"class_name": "Dense", "config": {"name": "d", "activation": "my_act"}},
        "unknown-class",
        "'my_act'",
    ),
    "unknown_function_ref": (
        {"module": "keras.activations", "class_name": "function", "config": "not_an_activation"},
        "unknown-class",
        "not_an_activation",
    ),
}

HEALTHY_TWINS: dict[str, Any] = {
    "legacy_bare_class": {"class_name": "Sequential", "config": {"name": "s", "layers": []}},
    "nested_bare_class": {
        "class_name": "Sequential",
        "config": {"layers": [{"class_name": "Dense", "config": {"name": "e"}}]},
    },
    "keras_module_unknown_class": {
        "module": "keras.layers",
        "class_name": "Dense",
        "config": {"name": "b"},
    },
    "registered_dotted": {
        "module": "keras.layers",
        "class_name": "Dense",
        "registered_name": None,
        "config": {"name": "d"},
    },
    "registered_arrow": {
        "module": "keras_hub.src.models.bert.bert_backbone",
        "class_name": "BertBackbone",
        "registered_name": "keras_hub>BertBackbone",
        "config": {"name": "d"},
    },
    "foreign_module": {
        "module": "keras.src.layers.core.dense",
        "class_name": "Dense",
        "config": {"name": "d"},
    },
    "torch_without_module_key": {
        "module": "keras.layers",
        "class_name": "TFSMLayer",
        "config": {"name": "t"},
    },
    "unknown_activation": {"class_name": "Dense", "config": {"name": "d", "activation": "gelu"}},
    "unknown_function_ref": {
        "module": "keras.activations",
        "class_name": "function",
        "config": "relu",
    },
}


@pytest.mark.parametrize("shape", sorted(UNKNOWN))
def test_unknown_names_are_findings_and_twins_pass(shape: str) -> None:
    config, check, said = UNKNOWN[shape]
    findings = scan_config(config)
    assert [f.check for f in findings] == [check], findings
    assert said in findings[0].reason
    assert scan_config(HEALTHY_TWINS[shape]) == []


def test_allowed_classes_and_modules_lift_unknown_names() -> None:
    bare = {
        "class_name": "Sequential",
        "config": {"layers": [{"class_name": "MyDense", "config": {"name": "m"}}]},
    }
    [finding] = scan_config(bare)
    assert "keras_allowed_classes = MyDense" in finding.reason
    assert scan_config(bare, allowed_classes=["MyDense"]) == []
    assert len(scan_config(bare, allowed_classes=["MyDens"])) == 1
    registered = UNKNOWN["registered_arrow"][0]
    assert scan_config(registered, allowed_modules=["custom_package"]) == []
    assert scan_config(registered, allowed_classes=["custom_package>CustomDense"]) == []
    fn = {"class_name": "Dense", "config": {"name": "d", "activation": "my_act"}}
    assert scan_config(fn, allowed_classes=["my_act"]) == []


# ---------------------------------------------------------------------------------------------
# Suspicious references in any key; unsafe-switch only as a reference, never in prose
# ---------------------------------------------------------------------------------------------

REFERENCES: dict[str, tuple[Any, str]] = {
    "fn_module_subprocess": ({"fn_module": "subprocess", "fn": "run"}, "suspicious-reference"),
    "get_file_with_url": (
        {"fn": "get_file", "url": "https://evil.example/x.py"},
        "dangerous-function",
    ),
    "builtins_exec": ({"callback": "builtins.exec"}, "suspicious-reference"),
    "os_bare": ({"anything": "os"}, "suspicious-reference"),
    "os_system_in_list": ({"hooks": ["os.system"]}, "suspicious-reference"),
    "keras_get_file": ({"loader": "keras.utils.get_file"}, "dangerous-function"),
    "eval_bare": ({"post": "eval"}, "suspicious-reference"),
    "switch_reference": (
        {"on_load": "keras.config.enable_unsafe_deserialization"},
        "unsafe-switch",
    ),
    "switch_registered": ({"x": "keras>enable_unsafe_deserialization"}, "unsafe-switch"),
    "url_value": ({"weights_url": "https://evil.example/w.h5"}, "file-reference"),
}

PROSE = (
    "Do not call keras.config.enable_unsafe_deserialization() on untrusted files.",
    "trained with os and subprocess calls in the data pipeline",
    "see https://keras.io for details",
    "eval loss",
)


@pytest.mark.parametrize("reference", sorted(REFERENCES))
def test_suspicious_references_in_any_key(reference: str) -> None:
    value, check = REFERENCES[reference]
    nested = {"class_name": "Dense", "config": {"name": "d", "units": 2, "meta": value}}
    checks = {f.check for f in scan_config(nested)}
    assert check in checks, (reference, checks)


@pytest.mark.parametrize("text", PROSE)
def test_prose_is_no_finding(text: str) -> None:
    config = {"class_name": "Dense", "config": {"name": "d", "note": text, "description": text}}
    assert scan_config(config) == []


# ---------------------------------------------------------------------------------------------
# No false alarms: everything the installed Keras defines, serialised by Keras itself
# ---------------------------------------------------------------------------------------------

#: Values for constructor parameters without defaults, by name: enough to build most objects
#: of the registry generically.
_ARGUMENTS: dict[str, Any] = {
    "units": 2,
    "filters": 2,
    "kernel_size": 1,
    "pool_size": 1,
    "rate": 0.5,
    "size": 1,
    "cropping": 1,
    "padding": 1,
    "input_dim": 4,
    "output_dim": 2,
    "num_heads": 1,
    "key_dim": 2,
    "target_shape": (2,),
    "dims": (1,),
    "n": 2,
    "layer": None,  # filled with a Dense below
    "cell": None,
    "axis": -1,
    "num_tokens": 4,
    "num_bins": 2,
    "max_tokens": 4,
    "height": 2,
    "width": 2,
    "factor": 0.1,
    "height_factor": 0.1,
    "width_factor": 0.1,
    "scale": 1.0,
    "value": 0.5,
    "mean": 0.0,
    "stddev": 1.0,
    "num_classes": 2,
    "thresholds": 0.5,
    "recall": 0.5,
    "precision": 0.5,
    "specificity": 0.5,
    "sensitivity": 0.5,
    "class_id": 0,
    "initial_learning_rate": 0.1,
    "decay_steps": 10,
    "decay_rate": 0.5,
    "first_decay_steps": 10,
    "boundaries": [1],
    "values": [0.1, 0.01],
    "warmup_target": 0.1,
    "warmup_steps": 1,
    "fn": None,
    "layers": None,
    "output_mode": "int",
    "sparse": False,
    "data_format": "channels_last",
    "name": None,
    "activation": "relu",
    "output_size": 1,
    "axes": 1,
    "equation": "ab,bc->ac",
    "output_shape": 2,
    "head_dim": 2,
    "num_query_heads": 2,
    "num_key_value_heads": 1,
    "max_number": 2,
    "target_class_ids": [0],
    "mode": "int8",
}


def _build(cls: Any) -> Any:
    """An instance of ``cls`` built from :data:`_ARGUMENTS` for its required parameters."""
    import keras

    kwargs: dict[str, Any] = {}
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if parameter.default is not parameter.empty:
            continue
        if name in ("inner_optimizer", "default_optimizer"):
            kwargs[name] = keras.optimizers.SGD()
        elif name == "cells":
            kwargs[name] = [keras.layers.SimpleRNNCell(2)]
        elif name in ("layer", "cell"):
            kwargs[name] = (
                keras.layers.SimpleRNNCell(2) if name == "cell" else keras.layers.Dense(2)
            )
        elif name == "layers":
            kwargs[name] = [keras.layers.Dense(2)]
        elif name in _ARGUMENTS:
            kwargs[name] = _ARGUMENTS[name]
        else:
            raise TypeError(f"required parameter {name!r}")
    return cls(**kwargs)


#: Objects of the registry that cannot be built generically, and why (a new one fails the test).
SKIPS = {
    "Layer": "the abstract base class",
    "InputLayer": "built by keras.Input, serialised with every model below",
    "Wrapper": "abstract: TimeDistributed and Bidirectional cover it",
    "RNN": "needs a cell (SimpleRNN, LSTM, GRU cover it)",
    "Bidirectional": "needs a recurrent layer (built by hand in the saved files below)",
    "TFSMLayer": "loads a SavedModel from disk when built",
    "TorchModuleWrapper": "wraps a torch module: a finding by design (torch-module)",
    "Lambda": "runs Python code: a finding by design (lambda)",
    "JaxLayer": "wraps JAX functions: code outside the file",
    "FlaxLayer": "wraps a Flax module: code outside the file",
    "MultiHeadAttention": "built with num_heads and key_dim (covered by the generic path)",
    "Pipeline": "needs preprocessing layers",
    "FeatureSpace": "needs feature definitions",
    "Optimizer": "the base class (its subclasses are each checked)",
    "MultiOptimizer": "needs a map of layers to optimizers",
    "OptimizerMap": "needs a map of layers to optimizers",
    "CategoryEncoding": "refuses num_tokens without output_mode (covered in saved files)",
    "Discretization": "needs bin_boundaries or num_bins with data",
    "RandomPosterization": "factor must lie in [1, 8] where the other layers take [0, 1]",
    "AWQDTypePolicy": "a quantized policy needs a quantization mode of its own",
    "GPTQDTypePolicy": "a quantized policy needs a quantization mode of its own",
    "Int4DTypePolicy": "a quantized policy needs a quantization mode of its own",
}


def _registry(kind: str) -> list[tuple[str, Any]]:
    import keras

    module = getattr(keras, kind)
    return [
        (name, getattr(module, name))
        for name in sorted(dir(module))
        if not name.startswith("_")
        and (inspect.isclass(getattr(module, name)) or inspect.isfunction(getattr(module, name)))
    ]


KINDS = (
    "layers",
    "losses",
    "metrics",
    "optimizers",
    "initializers",
    "activations",
    "regularizers",
    "constraints",
    "optimizers.schedules",
    "dtype_policies",
)


@pytest.mark.parametrize("kind", KINDS)
def test_every_registry_object_serialised_by_keras_passes(kind: str) -> None:
    """Each class and function ``keras.<kind>`` exports, serialised by Keras 3's serializer (what
    ``.keras`` stores) and by its legacy one (what ``.h5`` stores): no finding on any."""
    import keras
    from keras.src.legacy.saving import legacy_h5_format  # noqa: F401 - registers legacy names
    from keras.src.legacy.saving import serialization as legacy

    module: Any = keras
    for part in kind.split("."):
        module = getattr(module, part)
    checked, skipped, alarms = 0, {}, {}
    for name in sorted(dir(module)):
        obj = getattr(module, name)
        if name.startswith("_") or not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        if name in SKIPS:
            skipped[name] = SKIPS[name]
            continue
        if inspect.isclass(obj):
            if inspect.isabstract(obj) or not hasattr(obj, "get_config"):
                continue
            try:
                instance = _build(obj)
            except (TypeError, ValueError, NotImplementedError) as error:
                skipped[name] = f"not buildable generically: {error}"
                continue
        else:
            instance = obj
        for writer in (keras.saving.serialize_keras_object, legacy.serialize_keras_object):
            try:
                config = json.loads(json.dumps(writer(instance), default=str))
            except (TypeError, ValueError, NotImplementedError, AttributeError) as error:
                skipped[name] = f"{writer.__module__} cannot serialise it: {error}"
                continue
            findings = scan_config({"class_name": "Dense", "config": {"name": "d", "x": config}})
            if findings:
                alarms[name] = [str(f) for f in findings]
        checked += 1
    assert alarms == {}, alarms
    assert checked >= 3, (kind, skipped)
    unexplained = {n: r for n, r in skipped.items() if n not in SKIPS and "generically" in r}
    # a handful of classes need arguments no generic table gives; they must stay a handful
    assert len(unexplained) <= max(3, checked // 10), unexplained


@pytest.fixture(scope="module")
def saved_healthy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real files saved by Keras: a model using every activation and every initializer, compiled
    with every loss (one per output), every metric and each optimizer, in .keras and .h5."""
    import keras

    folder = tmp_path_factory.mktemp("healthy_registry")
    activations = [
        n
        for n, f in _registry("activations")
        if inspect.isfunction(f) and n not in ("deserialize", "get", "serialize")
    ]
    initializers = [
        n
        for n, c in _registry("initializers")
        if inspect.isclass(c)
        and n
        not in (
            "Initializer",
            "Constant",
            "Identity",
            "IdentityInitializer",
            "STFT",
            "STFTInitializer",
        )
    ]
    inputs = keras.Input((4,), name="x")
    outputs = []
    for i, name in enumerate(activations):
        outputs.append(keras.layers.Dense(2, activation=name, name=f"act_{i}")(inputs))
    for i, name in enumerate(initializers):
        try:  # STFT needs a 3-D kernel, Identity a square one: not a Dense kernel
            init = _build(getattr(keras.initializers, name))
            outputs.append(keras.layers.Dense(2, kernel_initializer=init, name=f"init_{i}")(inputs))
        except (TypeError, ValueError):
            continue
    model = keras.Model(inputs, outputs, name="registry")
    files: dict[str, Path] = {}
    losses = ["mse", "mae", "binary_crossentropy", "categorical_crossentropy", "huber", "log_cosh"]
    metric_names = ["accuracy", "mae", "mse", keras.metrics.AUC(), keras.metrics.Precision()]
    optimizers = [
        n
        for n, c in _registry("optimizers")
        if inspect.isclass(c) and n not in ("Optimizer", "LossScaleOptimizer")
    ]
    for index, optimizer in enumerate(optimizers):
        try:  # MultiOptimizer needs a map of layers: checked serialised above
            built = getattr(keras.optimizers, optimizer)()
        except TypeError:
            continue
        model.compile(
            optimizer=built,
            loss=[losses[i % len(losses)] for i in range(len(outputs))],
            metrics=[metric_names for _ in outputs] if index == 0 else None,
        )
        for suffix in (".keras", ".h5") if index < 3 else (".keras",):
            path = folder / f"{optimizer}{suffix}"
            model.save(path)
            files[path.name] = path
    schedule = keras.optimizers.schedules.CosineDecay(0.1, 10)
    model.compile(optimizer=keras.optimizers.SGD(schedule), loss="mse")
    for suffix in (".keras", ".h5"):
        path = folder / f"schedule{suffix}"
        model.save(path)
        files[path.name] = path
    return files


def test_files_keras_saves_with_every_registry_object_pass(saved_healthy: dict[str, Path]) -> None:
    assert len(saved_healthy) > 10
    alarms = {name: [str(f) for f in scan_artifact(path)] for name, path in saved_healthy.items()}
    assert {n: f for n, f in alarms.items() if f} == {}


def _realworld_and_examples() -> list[Path]:
    found = sorted(p for p in REALWORLD.glob("*") if p.suffix in (".h5", ".keras"))
    found += sorted(p for p in (ROOT / "examples").rglob("*") if p.suffix in (".h5", ".keras"))
    return found


@pytest.mark.skipif(not _realworld_and_examples(), reason="no real-world files on this machine")
def test_realworld_and_example_files_have_no_allowlist_finding() -> None:
    """Files others wrote (Keras 1.2 to 3.13, tf-keras, DL4J and frugally-deep test files): the
    allowlist raises nothing on what Keras defines; their Lambda and TensorFlowOpLayer, and the
    custom classes of a file whose config names its authors' own modules, are the only
    findings (a foreign module is named, and it is none of Keras's)."""
    expected = {"lambda", "tf-op", "file-reference"}
    keras_family = ("keras", "tf_keras", "tensorflow", "keras_hub", "keras_nlp")
    for path in _realworld_and_examples():
        findings = scan_artifact(path)
        new = []
        for f in findings:
            named = re.search(r"comes from module '([^']+)'", f.reason)
            if f.check == "foreign-module" and named:
                assert named.group(1).split(".")[0] not in keras_family, (path.name, str(f))
                continue
            if f.check not in expected:
                new.append(f)
        assert new == [], (path.name, [str(f) for f in new])
        if "lambda" in path.name:
            assert any(f.check == "lambda" for f in findings), path.name


# ---------------------------------------------------------------------------------------------
# The gate never loads what safety did not vouch for (item 6); nothing ran
# ---------------------------------------------------------------------------------------------


def _malicious_model_h5(folder: Path) -> Path:
    path = attacks._write(folder, "malicious.h5", attacks._base("dense.h5"))
    attacks.edit_h5_config(path, lambda c: c.update({"class_name": "MaliciousModel"}))
    return path


def _reference_lambda_keras(folder: Path) -> Path:
    code = attacks.marker_code(folder)
    body = {
        "function": {
            "class_name": "__lambda__",
            "config": {"code": code, "defaults": None, "closure": None},
        }
    }
    data = attacks.edit_keras_config(attacks._base("lambda.keras"), lambda c: _edit_lambda(c, body))
    return attacks._write(folder, "marker_lambda.keras", data)


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "malicious.h5": _malicious_model_h5,
    "marker_lambda.keras": _reference_lambda_keras,
}


def test_gate_refuses_to_load_names_outside_the_allowlist(pytester: pytest.Pytester) -> None:
    models = pytester.path / "models"
    for build in BUILDERS.values():
        build(models)
    result = pytester.runpytest(
        "--keras-model-dir",
        "models",
        "--keras-checks",
        "safety,load,predictions",
        "-p",
        "no:cacheprovider",
    )
    # predictions have no inputs to compare (skipped); load is refused
    result.assert_outcomes(failed=4, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*unknown-class*'MaliciousModel'*",
            "models/malicious.h5: load: refused: the safety scan has 1 finding(s) "
            "([[]unknown-class] model_config*), so the model is never deserialised, "
            "safe_mode or not; *keras_allowed_classes*",
            "models/marker_lambda.keras: load: refused: *([[]lambda] config.json)*",
        ]
    )
    assert not (models / attacks.MARKER).exists()
    # allowing the name lets safety pass; the load then fails on its own (the class is nowhere)
    allowed = pytester.runpytest(
        "--keras-model-dir",
        "models",
        "--keras-checks",
        "safety",
        "--keras-allowed-classes",
        "MaliciousModel",
        "-p",
        "no:cacheprovider",
    )
    allowed.assert_outcomes(passed=1, failed=1)  # the Lambda stays a finding
    allowed.stdout.fnmatch_lines(["FAILED models/marker_lambda.keras::safety*"])
    assert not (models / attacks.MARKER).exists()


def test_cli_gate_takes_allowed_classes(tmp_path: Path) -> None:
    models = tmp_path / "models"
    _malicious_model_h5(models)
    base = [sys.executable, "-m", "pytest_kerasmodel", "gate", str(models), "--checks", "safety"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    refused = subprocess.run(
        base, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    assert refused.returncode != 0
    assert "unknown-class" in refused.stdout + refused.stderr
    passed = subprocess.run(
        [*base, "--allowed-classes", "MaliciousModel"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert passed.returncode == 0, passed.stdout + passed.stderr


@pytest.fixture(scope="module")
def tfkeras_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files tf-keras (Keras 2) saved itself, as legacy .h5 and as its .keras archive."""
    from builders import tfkeras_models as tfk

    folder = tmp_path_factory.mktemp("tfkeras")
    files: dict[str, Path] = {}
    for name, build in (
        ("sequential", tfk.sequential),
        ("functional", tfk.functional),
        ("embedding", tfk.embedding),
        ("legacy_adam", tfk.trained_with_legacy_adam),
        ("subclassed", tfk.subclassed),
        ("unregistered", tfk.unregistered),
    ):
        model = build()
        # tf-keras saves a subclassed model only as .keras (HDF5 needs Functional/Sequential)
        for suffix in (".keras",) if name == "subclassed" else (".h5", ".keras"):
            path = folder / f"{name}{suffix}"
            model.save(path)
            files[path.name] = path
    return files


def test_tfkeras_files_pass_and_their_custom_classes_are_named(
    tfkeras_files: dict[str, Path],
) -> None:
    for name in ("sequential", "functional", "embedding", "legacy_adam"):
        for suffix in (".h5", ".keras"):
            assert scan_artifact(tfkeras_files[name + suffix]) == [], name + suffix
    custom = scan_artifact(tfkeras_files["subclassed.keras"])
    assert [f.check for f in custom] == ["foreign-module"], custom
    assert "'TwoDense'" in custom[0].reason
    allowed = ["kerasmodel_tfk_tests", "builders"]
    assert scan_artifact(tfkeras_files["subclassed.keras"], allowed_modules=allowed) == []
    [bare] = scan_artifact(tfkeras_files["unregistered.h5"])
    assert (bare.check, "'Unregistered'" in bare.reason) == ("unknown-class", True)
    assert scan_artifact(tfkeras_files["unregistered.h5"], allowed_classes=["Unregistered"]) == []


#: Small constructor arguments shared by KerasHub's text backbones.
_HUB_ARGUMENTS: dict[str, Any] = {
    "vocabulary_size": 16,
    "num_layers": 1,
    "num_heads": 2,
    "num_query_heads": 2,
    "num_key_value_heads": 1,
    "hidden_dim": 8,
    "intermediate_dim": 8,
    "max_sequence_length": 8,
    "head_dim": 4,
}


def test_tiny_keras_hub_backbones_saved_as_presets_pass(tmp_path: Path) -> None:
    """Every KerasHub text backbone that builds from :data:`_HUB_ARGUMENTS` alone (no
    downloads), saved with its own ``save_to_preset``: no finding. The others need arguments of
    their own (image sizes, patch sizes, ...) and are counted, not hidden."""
    keras_hub = pytest.importorskip("keras_hub")
    built, unbuilt = [], []
    for name in sorted(dir(keras_hub.models)):
        cls = getattr(keras_hub.models, name)
        if not (inspect.isclass(cls) and name.endswith("Backbone") and name != "Backbone"):
            continue
        parameters = inspect.signature(cls.__init__).parameters
        required = [
            p
            for p, spec in parameters.items()
            if p != "self"
            and spec.default is spec.empty
            and spec.kind is spec.POSITIONAL_OR_KEYWORD
        ]
        if any(p not in _HUB_ARGUMENTS for p in required):
            unbuilt.append(name)
            continue
        try:
            backbone = cls(**{p: _HUB_ARGUMENTS[p] for p in required})
        except (TypeError, ValueError):
            unbuilt.append(name)
            continue
        preset = tmp_path / name
        backbone.save_to_preset(str(preset))
        findings = scan_artifact(preset)
        assert findings == [], (name, [str(f) for f in findings])
        built.append(name)
        if len(built) >= 8:  # each costs seconds; eight families keep the test fast
            break
    assert len(built) >= 3, (built, unbuilt)


def test_every_keras_hub_registered_class_passes_by_its_serialised_names() -> None:
    """Each class KerasHub registers, named the way ``serialize_keras_object`` names it (its
    module, class name and ``keras_hub>Name``): no finding, without building any."""
    pytest.importorskip("keras_hub")
    from keras.saving import get_custom_objects

    registered = {k: v for k, v in get_custom_objects().items() if k.startswith("keras_hub>")}
    assert len(registered) > 100
    alarms = {}
    for key, obj in registered.items():
        config = {
            "module": obj.__module__,
            "class_name": "function" if inspect.isfunction(obj) else obj.__name__,
            "config": obj.__name__ if inspect.isfunction(obj) else {"name": "x"},
            "registered_name": key,
        }
        findings = scan_config(config)
        if findings:
            alarms[key] = [str(f) for f in findings]
    assert alarms == {}
