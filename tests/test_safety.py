"""The safety scan: every crafted attack is found and named, healthy files give no finding,
and no code from an artifact ever runs."""

from __future__ import annotations

import base64
import json
import marshal
import os
import subprocess
import sys
import types
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pytest
from builders import attacks
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_kerasmodel.safety import Finding, scan_artifact, scan_config, scan_hdf5, scan_zip

# ../shared/realworld beside the repository; KERASMODEL_REALWORLD overrides (e.g. in a worktree).
REALWORLD = Path(
    os.environ.get(
        "KERASMODEL_REALWORLD", Path(__file__).resolve().parents[2] / "shared" / "realworld"
    )
)


@pytest.fixture(scope="session")
def attack_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return attacks.build_all(tmp_path_factory.mktemp("attacks"))


@pytest.fixture(scope="session")
def healthy_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Keras 3 files of a few tiny models in every format, plus tf-keras (Keras 2) files."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    folder = tmp_path_factory.mktemp("healthy")
    files = attacks.healthy(folder)
    keras.utils.set_random_seed(0)

    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(2, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    conv = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x), name="conv")
    conv.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])

    seq_in = keras.Input((5, 3))
    inner_in = keras.Input((5, 3))
    inner = keras.Model(inner_in, keras.layers.TimeDistributed(keras.layers.Dense(4))(inner_in))
    y = keras.layers.Bidirectional(keras.layers.LSTM(2))(inner(seq_in))
    rnn = keras.Model(seq_in, y, name="rnn")
    rnn.compile(optimizer=keras.optimizers.SGD(0.1), loss=keras.losses.mean_squared_error)

    sequential = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(2, activation="gelu"), keras.layers.Dropout(0.1)]
    )
    for name, model in (("conv", conv), ("rnn", rnn), ("sequential", sequential)):
        model.save(folder / f"{name}.keras")
        model.save(folder / f"{name}.h5")
        model.save_weights(folder / f"{name}.weights.h5")
        files[f"{name}.keras"] = folder / f"{name}.keras"
        files[f"{name}.h5"] = folder / f"{name}.h5"
        files[f"{name}.weights.h5"] = folder / f"{name}.weights.h5"

    import tf_keras

    k2_in = tf_keras.Input((4,))
    k2_hidden = tf_keras.layers.Dense(3, activation="relu")(k2_in)
    k2 = tf_keras.Model(k2_in, tf_keras.layers.Dense(1)(k2_hidden))
    k2.compile(optimizer="adam", loss="mse")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "HDF5 is legacy"
        k2.save(folder / "tfkeras.h5")
    k2.save(folder / "tfkeras.keras")
    k2.save_weights(folder / "tfkeras_weights.h5")
    files["tfkeras.h5"] = folder / "tfkeras.h5"
    files["tfkeras.keras"] = folder / "tfkeras.keras"
    files["tfkeras_weights.h5"] = folder / "tfkeras_weights.h5"
    return files


# ---------------------------------------------------------------------------------------------
# Attacks
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("attack", sorted(attacks.ATTACKS))
def test_attack_is_found_and_located(attack: str, attack_files: dict[str, Path]) -> None:
    _, check, where = attacks.ATTACKS[attack]
    findings = scan_artifact(attack_files[attack])
    matching = [f for f in findings if f.check == check and where in f.where]
    assert matching, f"expected [{check}] at {where!r}, got:\n" + "\n".join(map(str, findings))
    assert where in str(matching[0])


def test_nested_lambda_names_every_level(attack_files: dict[str, Path]) -> None:
    for attack in ("lambda_nested_keras", "lambda_nested_h5"):
        findings = scan_artifact(attack_files[attack])
        assert [f.where.split(": ", 1)[-1] for f in findings] == [
            "layer 'outer/inner/td/shift' > function"
        ]


def test_payload_would_run_if_deserialised(tmp_path: Path) -> None:
    """The crafted bytecode is live: unmarshalled and called, it writes the marker. This is what
    makes the "marker never appears" tests meaningful."""
    code = marshal.loads(base64.b64decode(attacks.marker_code(tmp_path)))
    fn = types.FunctionType(code, {"__builtins__": __builtins__})
    assert fn(3) == 3
    assert (tmp_path / attacks.MARKER).read_text() == "ran"


def test_scanning_runs_no_code_and_imports_no_keras(attack_files: dict[str, Path]) -> None:
    """Scan every attack in a fresh interpreter: no marker appears and neither Keras nor
    TensorFlow gets imported."""
    paths = [str(p) for p in attack_files.values()]
    script = (
        "import json, sys\n"
        "from pytest_kerasmodel.safety import scan_artifact\n"
        "counts = [len(scan_artifact(p)) for p in sys.argv[1:]]\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('keras', 'tensorflow', 'tf_keras', 'torch', 'jax'))\n"
        "print(json.dumps({'counts': counts, 'imported': bad}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *paths], capture_output=True, text=True, check=True
    )
    report = json.loads(result.stdout)
    assert report["imported"] == []
    assert all(count > 0 for count in report["counts"])
    for path in attack_files.values():
        assert not (path.parent / attacks.MARKER).exists(), path


def test_findings_are_frozen_and_readable() -> None:
    finding = Finding("lambda", "layer 'clf/double' > function", "bytecode")
    assert str(finding) == "[lambda] layer 'clf/double' > function: bytecode"
    with pytest.raises(AttributeError):
        finding.check = "x"  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# No false positives
# ---------------------------------------------------------------------------------------------


def test_healthy_files_give_no_finding(healthy_files: dict[str, Path]) -> None:
    report = {name: [str(f) for f in scan_artifact(path)] for name, path in healthy_files.items()}
    assert report == {name: [] for name in healthy_files}
    assert len(report) >= 14


def test_scan_of_an_opened_artifact_equals_the_scan_by_path(
    attack_files: dict[str, Path], healthy_files: dict[str, Path]
) -> None:
    """The gate scans the artifact it already opened: same findings as a scan by path, for every
    attack that open_artifact lets through and every healthy file (the others it refuses, and the
    gate then scans them by path)."""
    from pytest_kerasmodel.artifacts import open_artifact
    from pytest_kerasmodel.errors import ArtifactError

    compared = []
    for name, path in sorted({**attack_files, **healthy_files}.items()):
        try:
            with open_artifact(path) as opened:
                shared = [str(f) for f in scan_artifact(opened)]
        except ArtifactError:
            continue
        assert shared == [str(f) for f in scan_artifact(path)], name
        compared.append((name, bool(shared)))
    assert sum(found for _, found in compared) >= 10  # attacks that open and are found
    assert sum(not found for _, found in compared) >= 14  # healthy files


def test_attribute_findings_come_in_h5py_order_in_both_scans(tmp_path: Path) -> None:
    """Creation order where the object tracks it: the scan of an opened artifact takes what the
    walk saw, the scan by path reads the file, and both list the same findings in that order."""
    import h5py
    import numpy as np

    from pytest_kerasmodel.artifacts import open_artifact

    path = tmp_path / "ordered.weights.h5"
    with h5py.File(path, "w") as f:
        group = f.create_group("layers/dense/vars", track_order=True)
        group.create_dataset("0", data=np.ones(2, "float32"))
        group.attrs["z_opaque"] = np.void(b"\x80\x04ab")
        group.attrs["a_reference"] = f.ref
        group.attrs["name"] = "dense"
    with open_artifact(path) as opened:
        shared = [str(f) for f in scan_artifact(opened)]
    assert shared == [str(f) for f in scan_artifact(path)]
    assert [f.split(":")[0] for f in shared] == [
        "[h5-object-data] HDF5 '/layers/dense/vars@z_opaque'",
        "[h5-object-data] HDF5 '/layers/dense/vars@a_reference'",
    ]


def test_keras_own_npz_weights_are_pickles(tmp_path: Path) -> None:
    """Keras 3 can store weights as model.weights.npz; numpy stores those dicts as object arrays,
    i.e. pickles. The installed Keras refuses to load them (allow_pickle=False): flagged."""
    import keras
    from keras.src.saving import saving_lib  # the public save_model hides weights_format

    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    saving_lib.save_model(model, tmp_path / "npz.keras", weights_format="npz")
    findings = scan_artifact(tmp_path / "npz.keras")
    assert findings
    assert {f.check for f in findings} == {"npz-pickle"}
    assert all(f.where.startswith("model.weights.npz: array '") for f in findings)


def test_scan_zip_and_scan_hdf5_on_healthy_files(healthy_files: dict[str, Path]) -> None:
    import h5py

    assert scan_zip(healthy_files["rnn.keras"]) == []
    with zipfile.ZipFile(healthy_files["rnn.keras"]) as zf:
        assert scan_zip(zf) == []
    with h5py.File(healthy_files["rnn.h5"], "r") as f:
        assert scan_hdf5(f) == []


def _realworld(name: str) -> Path:
    path = REALWORLD / name
    if not path.is_file():
        pytest.skip(f"real-world file {name} not available (../shared/realworld)")
    return path


@pytest.mark.parametrize(
    "name",
    [
        "k1.2.2_dl4j_simple_lstm_theano_full.h5",
        "k2.2.5_fdeep_lstm_bidir_multiinput_full.h5",
        "k2.2.4tf_dl4j_tensorflowoplayer_full.h5",
        "k2.3.1_dventimiglia_carnd_bn_weights_only.h5",
        "k3.11_hongong_fashion_mlp.weights.h5",
        "k3.8_vasuki_simplernn_legacy_full.h5",
        "tfk2.12_07sada_sound_mlp_full.h5",
    ],
)
def test_realworld_healthy_files_give_no_finding(name: str) -> None:
    """Includes the tf.keras 2.2.4 TensorFlowOpLayer: its op (Reshape) is plain tensor maths, so
    it is safe to read; whether Keras 3 can rebuild it is the load check's business."""
    assert [str(f) for f in scan_artifact(_realworld(name))] == []


def test_realworld_keras_2_lambda_is_flagged() -> None:
    findings = scan_artifact(_realworld("k2.0.9_dl4j_functional_lambda_full.h5"))
    assert [(f.check, f.where) for f in findings] == [
        ("lambda", "model_config: layer 'model_1/lambda_3' > function"),
        ("lambda", "model_config: layer 'model_1/lambda_4' > function"),
    ]


def test_realworld_custom_layers_are_flagged_until_allowed() -> None:
    """beliefppg's .keras names classes from its own package: flagged as foreign code, each layer
    named, until the user allows the package. Its TFOpLambda layers call tf.__operators__.add
    and tf.math.multiply, plain tensor maths: not flagged."""
    path = _realworld("tfk2.14_beliefppg_custom_layers_v3zip.keras")
    findings = scan_artifact(path)
    assert {f.check for f in findings} == {"foreign-module"}
    assert len(findings) == 6
    assert all("beliefppg" in f.reason for f in findings)
    assert "config.json: layer 'model_1/prior_layer'" in {f.where for f in findings}
    assert scan_artifact(path, allowed_modules=["beliefppg"]) == []


# ---------------------------------------------------------------------------------------------
# scan_config on hand-written configs of every era
# ---------------------------------------------------------------------------------------------


def _lambda(name: str) -> dict[str, Any]:
    return {
        "class_name": "Lambda",
        "config": {"name": name, "function": ["YQ==", None, None], "function_type": "lambda"},
    }


def test_keras1_sequential_list_and_merge_lambda_mode() -> None:
    config = {
        "class_name": "Sequential",
        "config": [
            _lambda("l1"),
            {
                "class_name": "Merge",
                "config": {"name": "merge_1", "mode": "YQ==", "mode_type": "lambda"},
            },
            {
                "class_name": "Lambda",
                "config": {
                    "name": "l2",
                    "function": "f",
                    "function_type": "raw",
                    "output_shape": "YQ==",
                    "output_shape_type": "lambda",
                },
            },
        ],
    }
    findings = scan_config(config)
    assert [(f.check, f.where) for f in findings] == [
        ("lambda", "layer 'Sequential/l1' > function"),
        ("lambda", "layer 'Sequential/merge_1' > mode"),
        ("lambda", "layer 'Sequential/l2' > function"),
        ("lambda", "layer 'Sequential/l2' > output_shape"),
    ]
    raw = findings[2].reason
    assert "a Lambda layer, its function 'f' (function_type 'raw')" in raw, raw


def test_allowed_modules_match_whole_components() -> None:
    def layer(module: str, name: str = "Thing") -> dict[str, Any]:
        return {"module": module, "class_name": name, "config": {"name": "t"}}

    assert scan_config(layer("keras.layers", "Dense")) == []
    assert scan_config(layer("tf_keras.src.engine.functional", "Functional")) == []
    assert [f.check for f in scan_config(layer("keras.layers"))] == ["unknown-class"]
    assert [f.check for f in scan_config(layer("kerasx.layers"))] == ["foreign-module"]
    assert [f.check for f in scan_config(layer("keras_hubx.models"))] == ["foreign-module"]
    assert [f.check for f in scan_config(layer("keras_cv.models"))] == ["foreign-module"]
    assert scan_config(layer("mypkg.layers"), allowed_modules=["mypkg"]) == []
    assert scan_config(layer("mypkg"), allowed_modules=["mypkg"]) == []
    assert len(scan_config(layer("mypkgevil.layers"), allowed_modules=["mypkg"])) == 1


def test_keras_hub_modules_count_as_keras() -> None:
    backbone = {
        "module": "keras_hub.src.models.bert.bert_backbone",
        "class_name": "BertBackbone",
        "config": {"name": "bert", "vocabulary_size": 10},
        "registered_name": "keras_hub>BertBackbone",
    }
    legacy = {
        "module": "keras_nlp.src.models.gpt2.gpt2_backbone",
        "class_name": "GPT2Backbone",
        "config": {"name": "gpt2"},
        "registered_name": "keras_nlp>GPT2Backbone",
    }
    activation = {
        "module": "builtins",
        "class_name": "function",
        "config": "keras_hub>gelu_approximate",
    }
    gelu = {
        "module": "keras_hub.src.utils.keras_utils",
        "class_name": "function",
        "config": "gelu_approximate",
        "registered_name": "keras_hub>gelu_approximate",
    }
    layer = {"class_name": "Dense", "config": {"name": "d", "activation": activation, "x": gelu}}
    assert scan_config({"layers": [backbone, legacy, layer]}) == []
    assert scan_config(backbone, allowed_modules=["keras_hub"]) == []


def test_keras_hub_follows_the_same_gadget_and_file_rules() -> None:
    gadget = {
        "module": "keras_hub.src.utils.preset_utils",
        "class_name": "function",
        "config": "load_json",
    }
    lam = {"class_name": "Lambda", "config": {"name": "lam", "function": gadget}}
    assert [(f.check, f.where) for f in scan_config(lam)] == [
        ("lambda", "layer 'lam' > function"),
        ("dangerous-function", "layer 'lam' > function"),
    ]
    tokenizer = {
        "module": "keras_hub.src.tokenizers.sentence_piece_tokenizer",
        "class_name": "SentencePieceTokenizer",
        "config": {"name": "tok", "proto": "/etc/passwd"},
    }
    [finding] = scan_config(tokenizer)
    assert (finding.check, finding.where) == ("file-reference", "layer 'tok' > proto")


def test_registered_custom_function_needs_its_package_allowed() -> None:
    fn = {"module": "builtins", "class_name": "function", "config": "mypkg>act"}
    config = {"class_name": "Dense", "config": {"name": "d", "activation": fn}}
    [finding] = scan_config(config)
    assert finding.check == "foreign-module"
    assert "keras_allowed_modules = mypkg" in finding.reason
    assert scan_config(config, allowed_modules=["mypkg"]) == []
    plain = {"module": "builtins", "class_name": "function", "config": "mean_squared_error"}
    assert scan_config({"compile_config": {"loss": plain}}) == []


@pytest.mark.parametrize(
    ("module", "name", "check"),
    [
        ("keras.utils", "get_file", "dangerous-function"),
        ("keras.src.utils.file_utils", "get_file", "dangerous-function"),
        ("keras.saving", "load_model", "dangerous-function"),
        ("keras.src.saving.saving_lib", "load_model", "dangerous-function"),
        ("keras.config", "enable_unsafe_deserialization", "unsafe-switch"),
        ("keras.src.backend.common.global_state", "set_global_attribute", "unsafe-switch"),
        ("os", "system", "foreign-module"),
        ("builtins", "eval", "foreign-module"),
        ("builtins", "__import__", "foreign-module"),
    ],
)
def test_function_references(module: str, name: str, check: str) -> None:
    fn = {"module": module, "class_name": "function", "config": name, "registered_name": "function"}
    config = {"class_name": "Lambda", "config": {"name": "lam", "function": fn}}
    lam, finding = scan_config(config)
    assert (finding.check, finding.where) == (check, "layer 'lam' > function")
    assert lam.check == "lambda"
    assert f"its function a reference to {module}.{name}" in lam.reason


def test_keras_classes_pass_except_from_saving_and_config_internals() -> None:
    def obj(module: str, name: str) -> dict[str, Any]:
        return {"module": module, "class_name": name, "config": {"name": "x"}}

    for module, name in (
        ("keras.mixed_precision", "DTypePolicy"),
        ("keras.utils", "FeatureSpace"),
        ("keras", "DTypePolicy"),
        ("keras.layers", "Dense"),
    ):
        assert scan_config(obj(module, name)) == [], module
    for module in ("keras.mixed_precision", "keras.utils", "keras.src.legacy.layers", "keras"):
        assert [f.check for f in scan_config(obj(module, "Thing"))] == ["unknown-class"], module
    for module in ("keras.src.saving.saving_lib", "keras.callbacks", "keras.config"):
        assert [f.check for f in scan_config(obj(module, "Thing"))] == ["dangerous-function"]


def test_safe_keras_functions_pass() -> None:
    for module, name in (("keras.activations", "relu"), ("keras.ops", "add"), ("builtins", "mse")):
        fn = {"module": module, "class_name": "function", "config": name}
        assert scan_config({"class_name": "Dense", "config": {"name": "d", "x": fn}}) == []


def test_unsafe_switches_anywhere() -> None:
    assert [f.check for f in scan_config({"a": [{"safe_mode": False}]})] == ["unsafe-switch"]
    prose = {"note": "call keras.config.enable_unsafe_deserialization() first"}
    assert scan_config(prose) == []
    for reference in (
        "keras.config.enable_unsafe_deserialization",
        "enable_unsafe_deserialization",
    ):
        [finding] = scan_config({"anything": {"fn": reference}})
        assert (finding.check, finding.where) == ("unsafe-switch", "anything.fn")


def test_file_references() -> None:
    lookup = {"class_name": "StringLookup", "config": {"name": "lk", "vocabulary": "/etc/passwd"}}
    [finding] = scan_config(lookup)
    assert (finding.check, finding.where) == ("file-reference", "layer 'lk' > vocabulary")
    inline = {"class_name": "StringLookup", "config": {"name": "lk", "vocabulary": ["a", "b"]}}
    assert scan_config(inline) == []
    tfsm = {"class_name": "TFSMLayer", "config": {"name": "sm", "filepath": "gs://bucket/m"}}
    assert [f.check for f in scan_config(tfsm)] == ["file-reference"]


def test_tf_op_layers() -> None:
    def op(function: str) -> dict[str, Any]:
        return {"class_name": "TFOpLambda", "config": {"name": "op", "function": function}}

    assert scan_config(op("math.multiply")) == []
    assert scan_config(op("__operators__.add")) == []
    assert scan_config(op("compat.v1.reshape")) == []
    assert [f.check for f in scan_config(op("io.write_file"))] == ["tf-op"]
    assert [f.check for f in scan_config(op("py_function"))] == ["tf-op"]
    raw = {
        "class_name": "TensorFlowOpLayer",
        "config": {"name": "w", "node_def": {"op": "ReadFile"}},
    }
    assert [f.check for f in scan_config(raw)] == ["tf-op"]


def test_very_deep_config_does_not_raise() -> None:
    config: Any = _lambda("deep")
    for _ in range(20_000):
        config = {"class_name": "TimeDistributed", "config": {"layer": config}}
    [finding] = scan_config(config)
    assert finding.check == "lambda"
    assert finding.where == "layer 'deep' > function"


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------

_keys = st.sampled_from(
    [
        "class_name",
        "config",
        "module",
        "name",
        "layers",
        "layer",
        "function",
        "registered_name",
        "function_type",
        "safe_mode",
        "inbound_nodes",
        "x",
        "activation",
    ]
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.sampled_from(
        ["keras.layers", "Dense", "function", "builtins", "os", "lambda", "relu", "a>b"]
    ),
    st.text(max_size=8),
)
_configs = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(_keys, children, max_size=5)
    ),
    max_leaves=40,
)


@settings(max_examples=150, deadline=None)
@given(config=_configs, allowed=st.lists(st.sampled_from(["os", "a", "keras", ""]), max_size=2))
def test_random_configs_never_raise_and_are_deterministic(config: Any, allowed: list[str]) -> None:
    first = scan_config(config, allowed_modules=allowed)
    assert all(isinstance(f, Finding) for f in first)
    assert scan_config(json.loads(json.dumps(config)), allowed_modules=allowed) == first


def _containers(node: Any) -> list[Any]:
    found = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, (dict, list)):
            found.append(item)
            stack.extend(item.values() if isinstance(item, dict) else item)
    return found


@settings(max_examples=150, deadline=None)
@given(
    config=st.one_of(st.lists(_configs, max_size=3), st.dictionaries(_keys, _configs)),
    data=st.data(),
)
def test_a_lambda_inserted_anywhere_is_found(config: Any, data: st.DataObject) -> None:
    target = data.draw(st.sampled_from(_containers(config)))
    lam = {"class_name": "__lambda__", "config": {"code": "YQ==", "defaults": None}}
    if isinstance(target, list):
        target.insert(data.draw(st.integers(0, len(target))), lam)
    else:
        target[data.draw(st.sampled_from(["hidden", "function", "x", "layer"]))] = lam
    assert any(f.check == "lambda" for f in scan_config(config))


_member_names = st.sampled_from(
    [
        "config.json",
        "metadata.json",
        "model.weights.h5",
        "assets/vocab.txt",
        "../evil",
        "a/../../evil",
        "/etc/passwd",
        "C:\\evil",
        "payload.py",
        "assets/../../x",
    ]
)


@settings(max_examples=60, deadline=None)
@given(
    members=st.lists(
        st.tuples(_member_names, st.binary(max_size=64), st.booleans()), min_size=1, max_size=6
    )
)
def test_random_zip_archives_never_raise_and_name_bad_members(
    members: list[tuple[str, bytes, bool]],
) -> None:
    import io

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # duplicate names
        with zipfile.ZipFile(buffer, "w") as zf:
            for name, data, deflate in members:
                method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
                zf.writestr(name, data, compress_type=method)
    with zipfile.ZipFile(buffer) as zf:
        findings = scan_zip(zf)
        assert scan_zip(zf) == findings
    flagged = {f.where for f in findings if f.check == "zip-path"}
    for name, _, _ in members:
        if ".." in name.replace("\\", "/").split("/") or name.startswith("/") or ":" in name:
            assert any(repr(name) in where for where in flagged), (name, findings)
    names = [name for name, _, _ in members]
    if len(set(names)) < len(names):
        assert any(f.check == "zip-duplicate" for f in findings)


def test_an_encrypted_member_is_a_finding_and_refused_not_vouched_unread(
    keras3_files: dict[str, Path], tmp_path: Path
) -> None:
    """zipfile lists an encrypted member but cannot read it: the scan must not pass it."""
    from pytest_kerasmodel import describe_artifact
    from pytest_kerasmodel.errors import ArtifactError
    from pytest_kerasmodel.safety import scan_artifact

    data = bytearray(keras3_files["keras"].read_bytes())
    for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature)
        while at >= 0:
            data[at + flag_at] |= 1  # general purpose bit 0: encrypted
            at = data.find(signature, at + 4)
    locked = tmp_path / "locked.keras"
    locked.write_bytes(bytes(data))
    with zipfile.ZipFile(locked) as zf:
        assert all(info.flag_bits & 1 for info in zf.infolist())
    findings = scan_artifact(locked)
    assert {f.check for f in findings} == {"zip-encrypted"}
    assert {f.where for f in findings} >= {"zip member 'config.json'"}
    with pytest.raises(ArtifactError, match=r"'metadata\.json' is encrypted"):
        describe_artifact(locked)
