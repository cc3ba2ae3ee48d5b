"""Pickles anywhere in an artifact, and every finding rather than the first.

The published proof-of-concept shape (a Keras-written .keras with a duplicate model.weights.npz
member that is a raw pickle calling os.system), pickles hidden in other members, .npz object
arrays, HDF5 opaque data, and TorchModuleWrapper's torch.save payload
(CVE-2025-49655), through scan_artifact and through the gate. Every malicious pickle here would
touch ``attacks.MARKER`` if it were ever loaded: each test checks that it never appears.
"""

from __future__ import annotations

import base64
import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from builders import attacks, gate_artifacts

from pytest_kerasmodel.safety import scan_artifact, scan_config

POC_PICKLE = (
    "[pickle] zip member 'model.weights.npz' (copy 2 of 2): is not an .npz archive: numpy's "
    "np.load(allow_pickle=True) unpickles it, and it is a pickle that imports and calls "
    "posix.system (os.system: runs a shell command)"
)
POC_DUPLICATE = (
    "[zip-duplicate] zip member 'model.weights.npz': a second member with the name "
    "'model.weights.npz': readers disagree on which one counts, so what is scanned may not be "
    "what is loaded"
)
TORCH_WHAT = (
    "TorchModuleWrapper layer 'torch_linear' carries a torch.save pickle (loading it runs "
    "torch.load(weights_only=False); Keras 3.11.0-3.11.2 do so even under safe_mode, "
    "CVE-2025-49655)"
)


def _no_marker(folder: Path) -> None:
    assert not list(Path(folder).rglob(attacks.MARKER)), "code from an artifact ran"


def test_published_poc_reports_the_duplicate_and_the_pickle(tmp_path: Path) -> None:
    path = attacks.npz_duplicate_pickle_keras(tmp_path)
    findings = [str(f) for f in scan_artifact(path)]
    assert POC_DUPLICATE in findings
    assert POC_PICKLE in findings
    # the first copy (Keras's own npz writer stores object arrays) is scanned too
    assert any(
        f.startswith("[npz-pickle] model.weights.npz (copy 1 of 2): array '") for f in findings
    )
    _no_marker(tmp_path)


def test_duplicate_config_copies_are_each_scanned(tmp_path: Path) -> None:
    """The container finding no longer ends the scan: the second config.json's Lambda is named."""
    findings = scan_artifact(attacks.zip_duplicate_keras(tmp_path))
    assert [(f.check, f.where) for f in findings] == [
        ("zip-duplicate", "zip member 'config.json'"),
        ("lambda", "config.json (copy 2 of 2): layer 'clf/double' > function"),
    ]


def test_every_container_finding_and_the_content(tmp_path: Path) -> None:
    """Traversal, an unexpected member, a duplicate and a pickle in one archive: all reported."""
    members = [
        *attacks._zip_members(attacks._base("dense.keras")),
        ("../evil.pkl", attacks.marker_pickle(tmp_path)),
        ("config.json", b'{"class_name": "Sequential", "config": {"name": "x"}}'),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        path = attacks._write(tmp_path, "many.keras", attacks._zip_bytes(members))
    checks = [(f.check, f.where) for f in scan_artifact(path)]
    assert ("zip-path", "zip member '../evil.pkl'") in checks
    assert ("zip-duplicate", "zip member 'config.json'") in checks
    assert ("pickle", "zip member '../evil.pkl'") in checks
    _no_marker(tmp_path)


def test_pickle_hidden_under_any_name(tmp_path: Path) -> None:
    [finding] = [
        f for f in scan_artifact(attacks.pickle_member_keras(tmp_path)) if f.check == "pickle"
    ]
    assert finding.where == "zip member 'assets/tokenizer.json'"
    assert finding.reason == (
        "holds a pickle that imports and calls posix.system (os.system: runs a shell command)"
    )
    _no_marker(tmp_path)


def test_npz_object_array_pickle_is_analysed(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    evil = np.array([attacks._ShellOnLoad(attacks._touch(tmp_path))], dtype=object)
    np.savez(buffer, kernel=np.zeros((4, 2), "float32"), evil=evil)
    members = [
        (name, payload)
        for name, payload in attacks._zip_members(attacks._base("dense.keras"))
        if name != "model.weights.h5"
    ]
    path = attacks._write(
        tmp_path,
        "npz_evil.keras",
        attacks._zip_bytes([*members, ("model.weights.npz", buffer.getvalue())]),
    )
    [finding] = scan_artifact(path)
    assert (finding.check, finding.where) == ("npz-pickle", "model.weights.npz: array 'evil.npy'")
    assert finding.reason.endswith(
        "it is a pickle that imports and calls posix.system (os.system: runs a shell command)"
    )
    _no_marker(tmp_path)


def test_hdf5_pickle_bytes_are_analysed(tmp_path: Path) -> None:
    payload = attacks.marker_pickle(tmp_path)

    def edit(f: Any) -> None:
        f["layers/dense"].create_dataset("opaque", data=np.void(payload))
        f["layers/dense"].create_dataset("blob", data=np.frombuffer(payload, dtype=np.uint8))

    path = attacks._edited_weights(tmp_path, "evil.weights.h5", edit)
    reasons = {f.where: f.reason for f in scan_artifact(path)}
    called = "it is a pickle that imports and calls posix.system (os.system: runs a shell command)"
    assert reasons["HDF5 '/layers/dense/opaque'"].endswith(called)
    assert reasons["HDF5 '/layers/dense/blob'"].endswith(called)
    _no_marker(tmp_path)


def test_torch_zip_member_named_pt(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    members = [
        *attacks._zip_members(attacks._base("dense.keras")),
        ("assets/module.pt", attacks.torch_save_bytes(torch.nn.Linear(2, 2))),
    ]
    path = attacks._write(tmp_path, "pt.keras", attacks._zip_bytes(members))
    [finding] = [f for f in scan_artifact(path) if f.check == "pickle"]
    assert finding.where == "zip member 'assets/module.pt'"
    assert "a torch.save archive" in finding.reason
    assert "rebuilds torch.nn.modules.linear.Linear" in finding.reason


# ---------------------------------------------------------------------------------------------
# TorchModuleWrapper
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def torch_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("torch")
    folder = tmp_path_factory.mktemp("torch_wrapper")
    return {
        "real": attacks.torch_wrapper_keras(folder / "real"),
        "poisoned": attacks.torch_wrapper_poisoned_keras(folder / "poisoned"),
    }


def test_real_torch_module_wrapper_file_names_the_module(torch_files: dict[str, Path]) -> None:
    [finding] = scan_artifact(torch_files["real"])
    assert finding.check == "torch-module"
    assert finding.where == "config.json: layer 'wrapped/torch_linear' > module"
    assert finding.reason.startswith(TORCH_WHAT + "; it imports torch.nn.modules.linear.Linear, ")
    assert finding.reason.endswith(
        "archive/data.pkl: rebuilds torch.nn.modules.linear.Linear (a torch module pickle: "
        "loading it runs torch.load(weights_only=False))"
    )


def test_poisoned_torch_module_wrapper_names_the_call(torch_files: dict[str, Path]) -> None:
    [finding] = scan_artifact(torch_files["poisoned"])
    assert finding.check == "torch-module"
    assert finding.reason == (
        f"{TORCH_WHAT}; it imports posix.system; archive/data.pkl: imports and calls posix.system "
        "(os.system: runs a shell command)"
    )
    _no_marker(torch_files["poisoned"].parent)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("not base64 at all!", "its payload cannot be decoded as base64"),
        (base64.b64encode(b"garbage").decode(), "its payload holds no readable pickle"),
        (12, "its payload is not a base64 string"),
    ],
)
def test_undecodable_torch_payload_is_still_a_finding(payload: Any, expected: str) -> None:
    layer = {
        "module": "keras.layers",
        "class_name": "TorchModuleWrapper",
        "config": {"name": "torch_linear", "module": payload},
    }
    [finding] = scan_config(layer)
    assert (finding.check, finding.where) == ("torch-module", "layer 'torch_linear' > module")
    assert finding.reason.startswith(f"{TORCH_WHAT}; {expected}")


# ---------------------------------------------------------------------------------------------
# Through the gate
# ---------------------------------------------------------------------------------------------


def test_gate_refuses_pickles_and_names_them(
    pytester: pytest.Pytester, torch_files: dict[str, Path]
) -> None:
    models = pytester.path / "models"
    models.mkdir()
    poc = attacks.npz_duplicate_pickle_keras(models)
    for path in torch_files.values():
        (models / path.name).write_bytes(path.read_bytes())
    result, verdicts = gate_artifacts.run_gate(pytester)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    safety = gate_artifacts.message(verdicts, poc.name, "safety")
    assert POC_PICKLE in safety and POC_DUPLICATE in safety
    wrapper = gate_artifacts.message(verdicts, "torch_wrapper.keras", "safety")
    assert "[torch-module] config.json: layer 'wrapped/torch_linear' > module" in wrapper
    assert "rebuilds torch.nn.modules.linear.Linear" in wrapper
    poisoned = gate_artifacts.message(verdicts, "torch_wrapper_poisoned.keras", "safety")
    assert "imports and calls posix.system (os.system: runs a shell command)" in poisoned
    for name in (poc.name, "torch_wrapper.keras", "torch_wrapper_poisoned.keras"):
        checks = gate_artifacts.status(verdicts, name)
        assert checks["safety"] == "failed", name
        assert checks["load"] == "failed", name
        load = gate_artifacts.message(verdicts, name, "load")
        # the PoC's duplicate member already fails integrity; the wrappers pass it
        assert load.startswith("refused" if "torch" in name else "cannot be verified"), (name, load)
    result.stdout.fnmatch_lines(
        [
            "FAILED models/torch_wrapper.keras::safety - *",
            "FAILED models/torch_wrapper.keras::load - *",
        ]
    )
    _no_marker(pytester.path)
    _no_marker(torch_files["poisoned"].parent)
