"""The safety scan of the layouts of several files: every file of an unzipped model folder is
read for pickles (whatever its name), opened or by path, and nothing in it ever runs."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import pytest

from pytest_kerasmodel.artifacts import open_artifact
from pytest_kerasmodel.safety import scan_artifact


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def unzipped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import keras

    folder = tmp_path_factory.mktemp("unzipped") / "model"
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="out")])
    keras.saving.save_model(model, folder, zipped=False)
    return folder


def test_a_healthy_unzipped_folder_has_no_finding(unzipped: Path) -> None:
    assert scan_artifact(unzipped) == []
    with open_artifact(unzipped) as opened:
        assert scan_artifact(opened) == []


@pytest.mark.parametrize(
    ("name", "check"), [("assets/tokenizer.bin", "pickle"), ("model.weights.npz", "pickle")]
)
def test_a_pickle_among_a_folders_files_is_named_with_what_it_calls(
    unzipped: Path, tmp_path: Path, name: str, check: str
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(unzipped, folder)
    marker = tmp_path / "MARKER"
    target = folder / name
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(pickle.dumps(_Payload(marker)))
    if name == "model.weights.npz":  # the folder then holds the npz weights Keras would read
        (folder / "model.weights.h5").unlink()
    with open_artifact(folder) as opened:
        opened_findings = [str(f) for f in scan_artifact(opened)]
    by_path = [str(f) for f in scan_artifact(folder)]
    assert opened_findings == by_path
    assert len(by_path) == 1, by_path
    assert by_path[0].startswith(f"[{check}] {name}: ")
    assert "posix.system (os.system: runs a shell command)" in by_path[0]
    assert not marker.exists()
