"""The newer layouts read from their content: an unzipped model folder, sharded weights and
KerasHub presets are detected, name their weights as the .keras of the same model does, hand
over the values Keras loads, and are refused or flagged when hostile."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from builders.layouts import FOREIGN_MODULE, _mlp, hf_cache

from pytest_kerasmodel import describe_artifact
from pytest_kerasmodel.artifacts import open_artifact
from pytest_kerasmodel.artifacts.names import iter_weights
from pytest_kerasmodel.errors import ArtifactError
from pytest_kerasmodel.safety import scan_artifact

MLP_WEIGHTS = {
    "hidden/kernel": [3, 3],
    "hidden/bias": [3],
    "out/kernel": [3, 3],
    "out/bias": [3],
}


def _shapes(description: dict[str, Any]) -> dict[str, list[int]]:
    return {name: w["shape"] for name, w in description["weights"].items()}


def _values(path: Path) -> list[tuple[str, np.ndarray]]:
    with open_artifact(path) as artifact:
        return [(w.name, np.asarray(w.dataset)) for w in iter_weights(artifact)]


def _same_arrays(ours: list[np.ndarray], keras_: list[np.ndarray]) -> bool:
    """The same arrays in any order (a preset's file order is not the backbone's)."""

    def key(a: np.ndarray) -> tuple[Any, ...]:
        return (a.shape, str(a.dtype), a.tobytes())

    return sorted(map(key, ours)) == sorted(map(key, keras_))


def test_an_unzipped_folder_reads_as_its_keras_zip(layout_files: dict[str, Path]) -> None:
    folder = describe_artifact(layout_files["mlp_dir"])
    zipped = describe_artifact(layout_files["mlp.keras"])
    assert folder["format"] == "keras-dir"
    assert zipped["format"] == "keras"
    assert _shapes(folder) == MLP_WEIGHTS
    assert folder["weights"] == zipped["weights"]
    assert folder["params"] == zipped["params"] == 24
    assert folder["model"] == zipped["model"]


def test_a_sharded_manifest_reads_as_the_plain_weights_file(
    layout_files: dict[str, Path],
) -> None:
    manifest = layout_files["sharded"] / "w.weights.json"
    shards = sorted(p.name for p in layout_files["sharded"].glob("w_*.weights.h5"))
    assert len(shards) >= 2, shards
    sharded = describe_artifact(manifest)
    plain = describe_artifact(layout_files["mlp.weights.h5"])
    assert sharded["format"] == "weights.json"
    assert plain["format"] == "weights.h5"
    assert _shapes(sharded) == MLP_WEIGHTS
    assert sharded["weights"] == plain["weights"]
    with open_artifact(manifest) as artifact:
        assert [p.name for p in artifact.parts if p.role == "shard"] == shards
        assert [s.label for s in artifact.stores] == shards


def test_the_format_comes_from_content_not_the_name(
    layout_files: dict[str, Path], tmp_path: Path
) -> None:
    """A manifest renamed .json and a model folder with any name keep their formats."""
    renamed = shutil.copytree(layout_files["sharded"], tmp_path / "weights")
    (renamed / "w.weights.json").rename(renamed / "index.json")
    assert describe_artifact(renamed / "index.json")["format"] == "weights.json"
    folder = shutil.copytree(layout_files["mlp_dir"], tmp_path / "model.keras")
    assert describe_artifact(folder)["format"] == "keras-dir"


@pytest.mark.parametrize("layout", ["mlp_dir", "sharded"])
def test_weight_values_are_what_keras_loads(layout_files: dict[str, Path], layout: str) -> None:
    import keras

    if layout == "mlp_dir":
        path = layout_files["mlp_dir"]
        model = keras.saving.load_model(path)
    else:
        path = layout_files["sharded"] / "w.weights.json"
        model = _mlp(keras)
        model.load_weights(path)
    ours = _values(path)
    assert [name for name, _ in ours] == list(MLP_WEIGHTS)
    expected = model.get_weights()
    assert len(ours) == len(expected)
    for (name, value), loaded in zip(ours, expected, strict=True):
        np.testing.assert_array_equal(value, loaded, err_msg=name)
    # and the same as the .keras of the same model, so a wrong shard would show
    for (name, value), (_, zipped) in zip(ours, _values(layout_files["mlp.keras"]), strict=True):
        np.testing.assert_array_equal(value, zipped, err_msg=name)


def test_scan_finds_nothing_in_healthy_layouts(layout_files: dict[str, Path]) -> None:
    assert scan_artifact(layout_files["mlp_dir"]) == []
    assert scan_artifact(layout_files["sharded"] / "w.weights.json") == []


def test_scan_finds_the_lambda_in_a_folders_config(layout_files: dict[str, Path]) -> None:
    findings = scan_artifact(layout_files["lambda_dir"])
    assert [(f.check, f.where.split(":")[0]) for f in findings] == [("lambda", "config.json")]
    assert "touch" in findings[0].where


def test_a_manifest_naming_a_shard_outside_is_refused_and_flagged(
    layout_files: dict[str, Path],
) -> None:
    manifest = layout_files["outside"] / "w.weights.json"
    assert layout_files["outside.weights.h5"].is_file()  # the file it would read is there
    refused = r"'\.\./outside\.weights\.h5'.*outside the artifact"
    with pytest.raises(ArtifactError, match=refused), open_artifact(manifest):
        pass
    findings = scan_artifact(manifest)
    assert [f.check for f in findings] == ["reference-outside"]
    assert "../outside.weights.h5" in findings[0].reason


def test_links_are_followed_and_say_where_they_lead(
    layout_files: dict[str, Path], tmp_path: Path
) -> None:
    """The description (and the opened Artifact) say where a link leads; a plain path has none."""
    linked_file = tmp_path / "linked.keras"
    linked_file.symlink_to(layout_files["mlp.keras"])
    linked_dir = tmp_path / "linked_dir"
    linked_dir.symlink_to(layout_files["mlp_dir"], target_is_directory=True)
    for link, target in ((linked_file, "mlp.keras"), (linked_dir, "mlp_dir")):
        description = describe_artifact(link)
        plain = describe_artifact(layout_files[target])
        assert description["weights"] == plain["weights"]
        assert description["link"] == str(layout_files[target])
        assert plain["link"] is None
        with open_artifact(link) as artifact:
            assert artifact.link == str(layout_files[target])


def test_a_hugging_face_snapshot_of_links_is_one_model_folder(
    layout_files: dict[str, Path], tmp_path: Path
) -> None:
    snapshot = hf_cache(layout_files["mlp_dir"], tmp_path / "cache")
    description = describe_artifact(snapshot)
    assert description["format"] == "keras-dir"
    assert description["weights"] == describe_artifact(layout_files["mlp_dir"])["weights"]
    links = {p["name"]: p["link"] for p in description["parts"]}
    assert set(links) == {"config.json", "metadata.json", "model.weights.h5"}
    assert all(str(link).startswith("../../blobs/") for link in links.values()), links


@pytest.mark.parametrize("kind", ["fifo", "broken", "loop"])
@pytest.mark.parametrize("where", ["model.weights.h5", "assets/vocab.txt"])
def test_a_part_that_is_no_regular_file_is_refused_naming_it(
    layout_files: dict[str, Path], tmp_path: Path, kind: str, where: str
) -> None:
    """A FIFO inside a model folder would block the loader; a broken link is no weights."""
    folder = shutil.copytree(layout_files["mlp_dir"], tmp_path / "m")
    target = folder / where
    target.parent.mkdir(exist_ok=True)
    target.unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "broken":
        target.symlink_to("nowhere.h5")
    else:
        (target.parent / "other").symlink_to(target.name)
        target.symlink_to("other")
    reason = {"fifo": "a FIFO", "broken": "a broken symbolic link", "loop": "a symbolic link loop"}
    named = f"({where}|{Path(where).parent.as_posix()}/other)"  # either half of a loop
    with pytest.raises(ArtifactError, match=f"{named}: {reason[kind]}"), open_artifact(folder):
        pass


@pytest.mark.parametrize("kind", ["fifo", "broken"])
def test_a_shard_that_is_no_regular_file_is_refused_naming_it(
    layout_files: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    folder = shutil.copytree(layout_files["sharded"], tmp_path / "s")
    shard = sorted(folder.glob("w_*.weights.h5"))[-1]
    shard.unlink()
    if kind == "fifo":
        os.mkfifo(shard)
    else:
        shard.symlink_to("nowhere.h5")
    reason = {"fifo": "a FIFO", "broken": "a broken symbolic link"}[kind]
    refused = f"shard '{shard.name}': {reason}"
    with pytest.raises(ArtifactError, match=refused), open_artifact(folder / "w.weights.json"):
        pass


# --- KerasHub presets ---------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["task_preset", "backbone_preset", "sharded_preset"])
def test_a_presets_backbone_reads_as_the_backbone_saved_by_keras(
    preset_files: dict[str, Path], preset: str
) -> None:
    description = describe_artifact(preset_files[preset])
    keras_file = describe_artifact(preset_files["backbone.keras"])
    assert description["format"] == "kerashub-preset"
    assert keras_file["format"] == "keras"
    assert len(description["weights"]) == 23
    assert description["weights"] == keras_file["weights"]
    if preset == "sharded_preset":
        with open_artifact(preset_files[preset]) as artifact:
            shards = [p.name for p in artifact.parts if p.role == "shard"]
        assert len(shards) >= 2, shards


@pytest.mark.parametrize("preset", ["task_preset", "backbone_preset", "sharded_preset"])
def test_preset_weight_values_are_what_keras_hub_loads(
    preset_files: dict[str, Path], preset: str
) -> None:
    import keras_hub

    backbone = keras_hub.models.Backbone.from_preset(str(preset_files[preset]))
    ours = [value for _, value in _values(preset_files[preset])]
    assert len(ours) == len(backbone.get_weights()) == 23
    assert _same_arrays(ours, backbone.get_weights())


def test_a_preset_names_its_task_components(preset_files: dict[str, Path]) -> None:
    with open_artifact(preset_files["task_preset"]) as artifact:
        classes = {name: c.get("class_name") for name, c in artifact.components.items()}
        roles = {p.name: p.role for p in artifact.parts}
    assert classes == {
        "task": "BertTextClassifier",
        "preprocessor": "BertTextClassifierPreprocessor",
        "tokenizer": "BertTokenizer",
    }
    assert roles["task.weights.h5"] == "task weights"
    assert roles["assets/tokenizer/vocabulary.txt"] == "asset"


def test_the_scan_treats_keras_hub_as_keras_own(preset_files: dict[str, Path]) -> None:
    """KerasHub's classes are Keras's own: a healthy preset, task, backbone or sharded, has no
    finding without any module allowed."""
    for name in ("backbone_preset", "task_preset", "sharded_preset"):
        assert scan_artifact(preset_files[name]) == [], name


def test_a_preset_naming_a_module_outside_keras_is_flagged(
    preset_files: dict[str, Path],
) -> None:
    findings = scan_artifact(preset_files["foreign_preset"], allowed_modules=["keras_hub"])
    assert [f.check for f in findings] == ["foreign-module"]
    assert f"module {FOREIGN_MODULE!r}, outside Keras" in findings[0].reason
    assert findings[0].where.startswith("config.json:")
