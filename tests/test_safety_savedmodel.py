"""The SavedModel safety scan: keras_metadata.pb parsed and scanned as configs, every graph op on
the allowlist of pure computation, checkpoint ops only in the saver; nothing is run.

The SavedModels are written by the real writers (tests/builders/savedmodel_attacks.py): healthy
ones from tf-keras, Keras 3 and ``tf.saved_model.save``, and one ``tf.Module`` per hostile op
family aimed at a marker file that must still be absent after the scan.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from builders.savedmodel_attacks import ATTACK_OPS, build_savedmodels
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_kerasmodel.safety import Finding, scan_artifact, tfops
from pytest_kerasmodel.safety.savedmodel import scan_graph_ops, scan_keras_metadata

pytest.importorskip("tensorflow")
pytest.importorskip("tf_keras")

HEALTHY = (
    "tfkeras_dense",
    "tfkeras_lstm",
    "tfkeras_textvectorization",
    "keras3_export",
    "keras_hub_backbone",
    "keras_hub_task",
    "tf_module",
)


@pytest.fixture(scope="session")
def savedmodels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_savedmodels(tmp_path_factory.mktemp("savedmodels"))


def _ops(findings: list[Finding]) -> set[str]:
    return {f.reason.split()[1] for f in findings if f.check == "unreviewed-op"}


@pytest.mark.parametrize("name", HEALTHY)
def test_savedmodels_the_writers_produce_pass(savedmodels: dict[str, Path], name: str) -> None:
    if name not in savedmodels:
        pytest.skip("KerasHub is not installed")
    assert scan_artifact(savedmodels[name]) == []


@pytest.mark.parametrize("name", sorted(ATTACK_OPS))
def test_each_hostile_op_is_named_and_nothing_ran(savedmodels: dict[str, Path], name: str) -> None:
    findings = scan_artifact(savedmodels[name])
    op = ATTACK_OPS[name]
    assert op in _ops(findings), findings
    named = next(f for f in findings if f.reason.startswith(f"operation {op} "))
    assert named.where.startswith("saved_model.pb: function __inference_serve_")
    assert named.reason.endswith("when the graph runs")
    assert not savedmodels[f"{name}.marker"].exists()


def test_the_findings_say_what_each_op_can_do(savedmodels: dict[str, Path]) -> None:
    said = {
        op: next(f.reason for f in scan_artifact(savedmodels[name]) if f" {op} " in f.reason)
        for name, op in ATTACK_OPS.items()
    }
    assert "reads files" in said["ReadFile"] and "reads files" in said["CSVDatasetV2"]
    assert "writes files" in said["WriteFile"]
    assert "maps a file into memory" in said["ImmutableConst"]
    assert "prints to stderr or to a file" in said["PrintV2"]
    assert "runs Python code" in said["EagerPyFunc"] and "runs Python code" in said["PyFunc"]
    assert "checkpoint files outside the saver" in said["SaveV2"]


def test_a_lambda_naming_main_exploit_in_keras_metadata_is_a_finding(
    savedmodels: dict[str, Path],
) -> None:
    findings = scan_artifact(savedmodels["lambda_main_exploit"])
    assert findings, "a Lambda whose function is __main__.exploit passed"
    text = "\n".join(map(str, findings))
    assert "exploit" in text and "__main__" in text
    assert all(f.where.startswith("keras_metadata.pb: node ") for f in findings)
    # the layer is in its own node and in its model's config: named once
    assert len({(f.check, f.reason) for f in findings}) == len(findings)


def test_a_real_tf_keras_lambda_savedmodel_is_a_lambda_finding_with_its_cve(
    tmp_path: Path,
) -> None:
    import tf_keras

    model = tf_keras.Sequential([tf_keras.Input((3,)), tf_keras.layers.Lambda(lambda x: x + 1)])
    model.save(str(tmp_path / "lam"), save_format="tf")
    findings = scan_artifact(tmp_path / "lam")
    lambdas = [f for f in findings if f.check == "lambda"]
    assert lambdas, findings
    assert "CVE-2024-3660: Keras before 2.13.0 is affected" in lambdas[0].cve
    assert "CVE-2025-9905" not in lambdas[0].cve  # that one is legacy HDF5's


def test_keras_metadata_that_is_no_protobuf_or_no_json_cannot_be_vouched_for(
    savedmodels: dict[str, Path], tmp_path: Path
) -> None:
    from tf_keras.protobuf import saved_metadata_pb2

    broken = tmp_path / "keras_metadata.pb"
    broken.write_bytes(b"\xff\xff\xff\xff")
    assert [f.check for f in scan_keras_metadata(broken)] == ["unreadable-config"]
    metadata = saved_metadata_pb2.SavedMetadata()
    metadata.nodes.add(node_id=0, node_path="root", metadata="{not json")
    broken.write_bytes(metadata.SerializeToString())
    (found,) = scan_keras_metadata(broken)
    assert found.check == "unreadable-config" and "node 0 (root)" in found.where


def _rewrite_graph(source: Path, target: Path, edit: object) -> Path:
    """A copy of a SavedModel whose saved_model.pb is edited with TensorFlow's own proto."""
    from tensorflow.core.protobuf import saved_model_pb2

    shutil.copytree(source, target)
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((target / "saved_model.pb").read_bytes())
    edit(saved)  # type: ignore[operator]
    (target / "saved_model.pb").write_bytes(saved.SerializeToString())
    return target


def test_a_custom_op_is_named_as_no_op_of_the_registry(
    savedmodels: dict[str, Path], tmp_path: Path
) -> None:
    def rename(saved: object) -> None:
        for function in saved.meta_graphs[0].graph_def.library.function:  # type: ignore[attr-defined]
            for node in function.node_def:
                if node.op == "Mul":
                    node.op = "ZzCustomOpFromALibrary"

    folder = _rewrite_graph(savedmodels["tf_module"], tmp_path / "custom", rename)
    findings = scan_graph_ops(folder / "saved_model.pb")
    assert _ops(findings) == {"ZzCustomOpFromALibrary"}
    assert "is no op of TensorFlow" in findings[0].reason
    assert "native code" in findings[0].reason


def test_checkpoint_ops_pass_in_the_saver_only(
    savedmodels: dict[str, Path], tmp_path: Path
) -> None:
    saver_ops = scan_graph_ops(savedmodels["tf_module"] / "saved_model.pb")
    assert saver_ops == []  # SaveV2 / RestoreV2 / MergeV2Checkpoints in __inference__traced_*

    def rename_saver(saved: object) -> None:
        for function in saved.meta_graphs[0].graph_def.library.function:  # type: ignore[attr-defined]
            if function.signature.name.startswith("__inference__traced_save_"):
                function.signature.name = "__inference_not_the_saver_1"

    folder = _rewrite_graph(savedmodels["tf_module"], tmp_path / "moved", rename_saver)
    assert {"SaveV2", "MergeV2Checkpoints"} <= _ops(scan_graph_ops(folder / "saved_model.pb"))


def test_the_saver_reached_from_a_serving_function_or_signature_is_a_finding(
    savedmodels: dict[str, Path], tmp_path: Path
) -> None:
    """A function named like the saver may hold checkpoint ops; serving must not reach it."""

    def call_saver_from_serve(saved: object) -> None:
        functions = saved.meta_graphs[0].graph_def.library.function  # type: ignore[attr-defined]
        save = next(f for f in functions if f.signature.name.startswith("__inference__traced_s"))
        serve = next(f for f in functions if f.signature.name.startswith("__inference_serve_"))
        node = next(n for n in serve.node_def if n.op == "Identity")
        node.op = save.signature.name

    folder = _rewrite_graph(
        savedmodels["tf_module"], tmp_path / "serve_saves", call_saver_from_serve
    )
    (found,) = scan_graph_ops(folder / "saved_model.pb")
    assert "function __inference_serve_" in found.where
    assert found.reason.startswith("calls the saver function __inference__traced_save_")

    def serve_the_saver(saved: object) -> None:
        meta = saved.meta_graphs[0]  # type: ignore[attr-defined]
        caller = next(
            n.name for n in meta.graph_def.node
            if n.attr["f"].func.name.startswith("__inference__traced_save_")
        )  # fmt: skip
        for output in meta.signature_def["serving_default"].outputs.values():
            output.name = f"{caller}:0"

    folder = _rewrite_graph(savedmodels["tf_module"], tmp_path / "signature_saves", serve_the_saver)
    (found,) = scan_graph_ops(folder / "saved_model.pb")
    assert found.where == "saved_model.pb: signature 'serving_default'"
    assert "which runs the saver" in found.reason


def test_a_tf1_graph_passes_with_its_saver_scope_and_fails_outside_it(tmp_path: Path) -> None:
    import tensorflow as tf

    folder = tmp_path / "tf1"
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        x = tf.compat.v1.placeholder(tf.float32, [None, 2], name="x")
        weight = tf.compat.v1.Variable([[1.0], [2.0]], name="w")
        y = tf.matmul(x, weight, name="y")
        session.run(tf.compat.v1.global_variables_initializer())
        builder = tf.compat.v1.saved_model.Builder(str(folder))
        signature = tf.compat.v1.saved_model.predict_signature_def({"x": x}, {"y": y})
        builder.add_meta_graph_and_variables(
            session, ["serve"], signature_def_map={"serving_default": signature}
        )
        builder.save()
    assert scan_artifact(folder) == []

    def move_out_of_scope(saved: object) -> None:
        for node in saved.meta_graphs[0].graph_def.node:  # type: ignore[attr-defined]
            if node.op == "SaveV2":
                node.name = "elsewhere/SaveV2"

    moved = _rewrite_graph(folder, tmp_path / "tf1_moved", move_out_of_scope)
    findings = scan_graph_ops(moved / "saved_model.pb")
    assert _ops(findings) == {"SaveV2"} and "graph node 'elsewhere/SaveV2'" in findings[0].where


def test_the_scan_imports_no_tensorflow_keras_or_tf_keras(savedmodels: dict[str, Path]) -> None:
    paths = [str(savedmodels[n]) for n in ("tfkeras_dense", "read_file", "lambda_main_exploit")]
    script = textwrap.dedent(
        """
        import json, sys
        from pytest_kerasmodel.safety import scan_artifact
        found = [str(f) for p in sys.argv[1:] for f in scan_artifact(p)]
        heavy = [m for m in ("tensorflow", "keras", "tf_keras", "jax", "torch") if m in sys.modules]
        print(json.dumps({"found": found, "heavy": heavy}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script, *paths], capture_output=True, text=True, check=True
    ).stdout
    result = json.loads(out.splitlines()[-1])
    assert result["heavy"] == []
    assert any("ReadFile" in line for line in result["found"])
    assert any("exploit" in line for line in result["found"])


_NOT_PURE = sorted(set(tfops.OTHER_OPS) - tfops.SAVER_OPS)


@settings(max_examples=60, deadline=None)
@given(
    op=st.one_of(
        st.sampled_from(_NOT_PURE),
        st.from_regex(r"[A-Z][A-Za-z0-9_]{0,30}", fullmatch=True).filter(
            lambda name: name not in tfops.PURE_OPS and name not in tfops.SAVER_OPS
        ),
    ),
    where=st.sampled_from(["serve", "saver", "graph"]),
)
def test_fuzz_any_op_off_the_allowlist_is_named_wherever_it_is(
    savedmodels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory, op: str, where: str
) -> None:
    """One node of a healthy graph (its serving function, its saver, its main graph) turned into
    an op that is not pure computation: the scan names that op there, and only it."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((savedmodels["tf_module"] / "saved_model.pb").read_bytes())
    graph = saved.meta_graphs[0].graph_def
    if where == "graph":
        nodes = list(graph.node)
    else:
        prefix = "__inference_serve_" if where == "serve" else "__inference__traced_save_"
        nodes = next(
            f for f in graph.library.function if f.signature.name.startswith(prefix)
        ).node_def
    target = next(n for n in nodes if n.op in ("Identity", "Const", "Placeholder", "NoOp"))
    target.op = op
    pb = tmp_path_factory.mktemp("fuzz") / "saved_model.pb"
    pb.write_bytes(saved.SerializeToString())
    findings = scan_graph_ops(pb)
    assert _ops(findings) == {op}, findings
    assert f"node {target.name!r}" in findings[0].where
