"""Pickles anywhere in an artifact, and every finding rather than the first.

The published proof-of-concept shape (a Keras-written .keras with a duplicate model.weights.npz
member that is a raw pickle calling os.system), pickles hidden in other members, .npz object
arrays and HDF5 opaque data, through scan_artifact. Every malicious pickle here would
touch ``attacks.MARKER`` if it were ever loaded: each test checks that it never appears.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import attacks
import numpy as np
import pytest

from pytest_kerasmodel.safety import scan_artifact

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
        ("lambda-bytecode", "config.json (copy 2 of 2): layer 'clf/double' > function"),
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
