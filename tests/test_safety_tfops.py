"""The TF-op allowlist: the shipped table is what the reviewed name families make of the
installed TensorFlow's op registry, and the families name what each op family can do."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from pytest_kerasmodel.safety import tfops

pytest.importorskip("tensorflow")

GENERATOR = (
    Path(__file__).resolve().parent.parent / "pytest_kerasmodel" / "safety" / "generate_tfops.py"
)


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_tf_ops", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def registry() -> tuple[str, list[tuple[str, bool]]]:
    """The registry as the generator reads it, in a fresh process: what this test process
    imported before (a LiteRT interpreter registers TFLite's own ops) must not change it."""
    code = (
        "import json, sys; from pytest_kerasmodel.safety import generate_tfops as g; "
        "json.dump(g.registry(), sys.stdout)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True
    )
    version, ops = json.loads(done.stdout.strip().splitlines()[-1])
    return version, [(str(name), bool(stateful)) for name, stateful in ops]


def test_the_shipped_table_matches_the_installed_tensorflow(
    generator: ModuleType, registry: tuple[str, list[tuple[str, bool]]]
) -> None:
    version, ops = registry
    pure, other = tfops.classify_registry(ops)
    new = sorted({name for name, _ in ops} - tfops.PURE_OPS - set(tfops.OTHER_OPS))
    assert not new, f"TensorFlow {version} registers ops the table lacks: {new[:20]}"
    assert set(pure) == tfops.PURE_OPS and other == tfops.OTHER_OPS, (
        "the table is stale: run python -m pytest_kerasmodel.safety.generate_tfops and review "
        "the diff"
    )
    assert generator.render(version, ops) == generator.TARGET.read_text()


def test_every_family_names_an_op_of_the_registry(
    registry: tuple[str, list[tuple[str, bool]]],
) -> None:
    names = [name for name, _ in registry[1]]
    for pattern, what in tfops.CAPABILITY_FAMILIES:
        assert what in tfops.CAPABILITIES
        assert any(re.fullmatch(pattern, n) for n in names), f"dead family {pattern!r}"
    for pattern in tfops.STATEFUL_PURE_FAMILIES:
        assert any(re.fullmatch(pattern, n) for n in names), f"dead family {pattern!r}"


@pytest.mark.parametrize(
    ("op", "what"),
    [
        ("ReadFile", "reads files"),
        ("MatchingFiles", "reads files"),
        ("ExperimentalMatchingFilesDataset", "reads files"),
        ("CSVDatasetV2", "reads files"),
        ("TFRecordDatasetV2", "reads files"),
        ("InitializeTableFromTextFileV2", "reads files"),
        ("WriteFile", "writes files"),
        ("DistributedSave", "writes files"),
        ("CreateSummaryFileWriter", "writes files"),
        ("DebugIdentityV3", "writes files"),
        ("ImmutableConst", "maps a file into memory"),
        ("DataServiceDatasetV4", "reaches the network"),
        ("RegisterDatasetV2", "reaches the network"),
        ("RpcCall", "reaches the network"),
        ("RpcClient", "reaches the network"),
        ("CollectiveReduceV2", "reaches the network"),
        ("PyFunc", "runs Python code"),
        ("EagerPyFunc", "runs Python code"),
        ("PyFuncStateless", "runs Python code"),
        ("PrintV2", "prints to stderr or to a file"),
        ("SaveV2", "checkpoint files"),
        ("XlaCustomCall", "native code"),
        ("CacheDatasetV2", "writes files"),
        ("DatasetFromGraph", "which the scan cannot see"),
        ("ZzNotARegisteredOp", "is no op of TensorFlow"),
    ],
)
def test_ops_outside_tensor_maths_say_what_they_can_do(op: str, what: str) -> None:
    capability = tfops.op_capability(op)
    assert capability is not None and what in capability


@pytest.mark.parametrize(
    "op",
    [
        "MatMul", "BiasAdd", "Conv2D", "Relu", "Softmax", "Const", "Identity", "Placeholder",
        "VarHandleOp", "ReadVariableOp", "AssignVariableOp", "ResourceApplyAdam",
        "StatefulPartitionedCall", "PartitionedCall", "While", "If", "StatelessWhile",
        "RandomUniform", "StatelessRandomUniformV2", "CudnnRNNV3", "HashTableV2",
        "LookupTableFindV2", "TensorListReserve", "StringJoin", "ShardedFilename",
        "StaticRegexFullMatch", "DisableCopyOnRead", "NoOp", "Snapshot", "IteratorGetNext",
        "MapDataset", "BatchDatasetV2", "AnonymousIteratorV3",
    ],
)  # fmt: skip
def test_pure_computation_is_on_the_allowlist(op: str) -> None:
    assert op in tfops.PURE_OPS and tfops.op_capability(op) is None
