"""pytest_kerasmodel.artifacts: format from content, safe opening, hygiene, weight names."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from builders.describe_artifacts import RICH_WEIGHTS, TINY_WEIGHTS

from pytest_kerasmodel.artifacts import Limits, detect_format, open_artifact
from pytest_kerasmodel.artifacts.names import iter_optimizer_weights, iter_weights
from pytest_kerasmodel.errors import ArtifactError


def _weights(path: Path) -> dict[str, list[int]]:
    with open_artifact(path) as artifact:
        return {name: list(ds.shape) for name, _, ds in iter_weights(artifact)}


@pytest.mark.parametrize(
    ("key", "fmt"), [("keras", "keras"), ("h5", "h5"), ("weights.h5", "weights.h5")]
)
def test_keras3_formats_are_detected_from_content(
    keras3_files: dict[str, Path], key: str, fmt: str
) -> None:
    assert detect_format(keras3_files[key]) == fmt


def test_inner_weights_read_in_memory_or_in_place_alike(
    keras3_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small model.weights.h5 is opened from memory, a large one in place in the archive."""
    from pytest_kerasmodel.artifacts import kerasfile
    from pytest_kerasmodel.structure.describe import describe_artifact

    in_memory = describe_artifact(keras3_files["keras"], scan_values=True)
    monkeypatch.setattr(kerasfile, "IN_MEMORY_WEIGHTS_BYTES", 0)
    in_place = describe_artifact(keras3_files["keras"], scan_values=True)
    assert in_memory["weights"] and in_memory["values"]
    assert in_place == in_memory


@pytest.mark.parametrize(
    ("key", "fmt"), [("keras", "keras"), ("h5", "h5"), ("h5-weights", "h5-weights")]
)
def test_tf_keras_formats_are_detected_from_content(
    tf_keras_files: dict[str, Path], key: str, fmt: str
) -> None:
    assert detect_format(tf_keras_files[key]) == fmt


def test_weight_names_are_identical_in_every_format(
    keras3_files: dict[str, Path], tf_keras_files: dict[str, Path]
) -> None:
    files = [keras3_files[k] for k in ("keras", "h5", "weights.h5")]
    files += [tf_keras_files[k] for k in ("keras", "h5", "h5-weights")]
    for path in files:
        assert _weights(path) == TINY_WEIGHTS, path.name


def test_naming_table_covers_nested_models_wrappers_and_recurrent_layers(
    keras3_files: dict[str, Path], tf_keras_files: dict[str, Path]
) -> None:
    files = [keras3_files[k] for k in ("rich.keras", "rich.h5", "rich.weights.h5")]
    files += [tf_keras_files[k] for k in ("rich.keras", "rich.h5", "rich.h5-weights")]
    for path in files:
        assert _weights(path) == RICH_WEIGHTS, path.name


def test_weights_carry_their_hdf5_path_and_unread_dataset(keras3_files: dict[str, Path]) -> None:
    with open_artifact(keras3_files["keras"]) as artifact:
        entries = {e.name: e for e in iter_weights(artifact)}
        assert entries["bi/backward/recurrent_kernel"].h5_path == (
            "layers/bidirectional/backward_layer/cell/vars/1"
        )
        assert entries["out/kernel"].dataset.dtype == np.float32
    with open_artifact(keras3_files["h5"]) as artifact:
        entries = {e.name: e for e in iter_weights(artifact)}
        assert entries["hidden/kernel"].h5_path == "model_weights/hidden/hidden/kernel"
        assert entries["hidden/kernel"].dataset[()].shape == (6, 4)


def test_optimizer_variables_share_names_across_keras3_formats(
    keras3_files: dict[str, Path],
) -> None:
    shapes = {}
    for key in ("keras", "h5", "weights.h5"):
        with open_artifact(keras3_files[key]) as artifact:
            shapes[key] = {n: ds.shape for n, _, ds in iter_optimizer_weights(artifact)}
    assert shapes["keras"] == shapes["h5"] == shapes["weights.h5"]
    assert shapes["keras"]["optimizer/0"] == ()  # the iteration counter
    assert len(shapes["keras"]) == 2 + 2 * len(
        [n for n in TINY_WEIGHTS if "moving" not in n]
    )  # Adam: iteration, learning rate, momentum and velocity per trainable variable


def test_keras_zip_metadata_and_config(keras3_files: dict[str, Path]) -> None:
    import keras

    with open_artifact(keras3_files["keras"]) as artifact:
        assert artifact.keras_version == keras.__version__
        assert artifact.model_class == "Functional"
        assert [m.name for m in artifact.zip_members] == [
            "metadata.json",
            "config.json",
            "model.weights.h5",
        ]
        assert all(m.method == "stored" for m in artifact.zip_members)
        assert artifact.notes == []


def test_keras_zip_weights_are_read_in_place(keras3_files: dict[str, Path], tmp_path: Path) -> None:
    # Reading leaves no extracted file behind and never modifies the artifact.
    copy = tmp_path / "copy.keras"
    shutil.copy(keras3_files["keras"], copy)
    before = copy.read_bytes()
    with open_artifact(copy) as artifact:
        values = {n: ds[()] for n, _, ds in iter_weights(artifact)}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.keras"]
    assert copy.read_bytes() == before
    with zipfile.ZipFile(copy) as zf, zf.open("model.weights.h5") as fh:
        inner = tmp_path / "inner.h5"
        inner.write_bytes(fh.read())
    with h5py.File(inner, "r") as f:
        np.testing.assert_array_equal(values["hidden/kernel"], f["layers/dense/vars/0"][()])


def test_hdf5_named_keras_is_detected_as_h5_and_noted(
    keras3_files: dict[str, Path], tmp_path: Path
) -> None:
    odd = tmp_path / "model.keras"
    shutil.copy(keras3_files["h5"], odd)
    with open_artifact(odd) as artifact:
        assert artifact.format == "h5"
        assert artifact.notes[0].startswith("extension .keras but the content is legacy HDF5")


def test_weights_h5_layout_under_plain_h5_name_is_noted(
    keras3_files: dict[str, Path], tmp_path: Path
) -> None:
    odd = tmp_path / "weights.h5"
    shutil.copy(keras3_files["weights.h5"], odd)
    with open_artifact(odd) as artifact:
        assert artifact.format == "weights.h5"
        assert "only reads it from a name ending in .weights.h5" in artifact.notes[0]


def test_savedmodel_directory_is_detected_and_named(tmp_path: Path) -> None:
    saved = tmp_path / "exported"
    (saved / "variables").mkdir(parents=True)
    (saved / "saved_model.pb").write_bytes(b"\x08\x01")
    (saved / "keras_metadata.pb").write_bytes(b"")
    with open_artifact(saved) as artifact:
        assert artifact.format == "savedmodel"
        assert artifact.savedmodel_files == [("keras_metadata.pb", 0), ("saved_model.pb", 2)]
        assert "tf.keras SavedModel" in artifact.notes[0]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "the file is empty"),
        (b"GIF89a not a model", "neither HDF5 nor zip"),
    ],
)
def test_unknown_content_is_an_artifact_error(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "model.h5"
    path.write_bytes(content)
    with pytest.raises(ArtifactError, match=reason) as info:
        detect_format(path)
    assert info.value.check == "format"
    assert info.value.path == str(path)


def test_plain_hdf5_is_not_a_keras_artifact(tmp_path: Path) -> None:
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as f:
        f["table"] = np.arange(3)
    with pytest.raises(ArtifactError, match="without model_config, layer_names"):
        detect_format(path)


def test_zip_without_config_is_not_a_keras_archive(tmp_path: Path) -> None:
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(ArtifactError, match=r"without config\.json"):
        detect_format(path)


def test_truncated_hdf5_is_an_artifact_error(keras3_files: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "cut.h5"
    path.write_bytes(keras3_files["h5"].read_bytes()[:600])
    with pytest.raises(ArtifactError, match=r"cut\.h5: hdf5:"):
        detect_format(path)


# ---- HDF5 hygiene: refused before any data is read ------------------------------------------


def _weights_file(path: Path) -> h5py.File:
    f = h5py.File(path, "w")
    f.create_group("layers/dense/vars")
    f["layers/dense/vars/0"] = np.ones((2, 2), "float32")
    return f


def test_external_link_is_refused(tmp_path: Path) -> None:
    (tmp_path / "other.h5").write_bytes(b"")
    path = tmp_path / "evil.weights.h5"
    with _weights_file(path) as f:
        f["layers/dense/vars/1"] = h5py.ExternalLink("/etc/passwd", "/x")
    with pytest.raises(ArtifactError, match=r"external link to '/etc/passwd'.*outside the file"):
        detect_format(path)


def test_dangling_soft_link_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.weights.h5"
    with _weights_file(path) as f:
        f["layers/dense/vars/1"] = h5py.SoftLink("/nowhere/at/all")
    with pytest.raises(ArtifactError, match="soft link to '/nowhere/at/all'"):
        detect_format(path)


def test_soft_link_inside_the_file_is_recorded_not_followed(tmp_path: Path) -> None:
    path = tmp_path / "loop.weights.h5"
    with _weights_file(path) as f:
        f["layers/dense/vars/again"] = h5py.SoftLink("/layers")  # a loop if followed
    with open_artifact(path) as artifact:
        links = [n for n in artifact.nodes if n.kind == "softlink"]
    assert [(n.path, n.target) for n in links] == [("layers/dense/vars/again", "/layers")]


def test_external_dataset_storage_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\x00" * 64)
    path = tmp_path / "evil.weights.h5"
    with _weights_file(path) as f:
        f.create_dataset(
            "layers/dense/vars/1", shape=(16,), dtype="float32", external=[(str(secret), 0, 64)]
        )
    with pytest.raises(ArtifactError, match="stores its data in an external file") as info:
        detect_format(path)
    assert info.value.check == "hdf5-hygiene"


def test_virtual_dataset_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.weights.h5"
    layout = h5py.VirtualLayout(shape=(4,), dtype="float32")
    layout[:] = h5py.VirtualSource(str(tmp_path / "elsewhere.h5"), "data", shape=(4,))
    with _weights_file(path) as f:
        f["layers/dense/vars"].create_virtual_dataset("1", layout)
    with pytest.raises(ArtifactError, match="virtual storage"):
        detect_format(path)


def test_shape_bomb_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "bomb.weights.h5"
    with _weights_file(path) as f:
        # 2**40 float32 declared, nothing written: reading it would allocate 4 TiB
        f.create_dataset(
            "layers/dense/vars/1", shape=(2**20, 2**20), dtype="float32", chunks=(1, 16)
        )
    with pytest.raises(ArtifactError, match=r"declares shape \(1048576, 1048576\).*shape bomb"):
        detect_format(path)


def test_too_many_objects_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "many.weights.h5"
    with _weights_file(path) as f:
        for i in range(20):
            f.create_group(f"layers/g{i}")
    with pytest.raises(ArtifactError, match="more than 10 HDF5 objects"):
        detect_format(path, limits=Limits(max_hdf5_objects=10))


def test_too_deep_nesting_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deep.weights.h5"
    with _weights_file(path) as f:
        f.create_group("layers/a/b/c")
    assert detect_format(path, limits=Limits(max_hdf5_depth=4)) == "weights.h5"
    with pytest.raises(ArtifactError, match="groups nested deeper than 3"):
        detect_format(path, limits=Limits(max_hdf5_depth=3))


def test_walk_lists_links_depth_first_by_name_and_enters_a_group_once(tmp_path: Path) -> None:
    path = tmp_path / "links.weights.h5"
    with _weights_file(path) as f:
        f["layers/dense/vars/1"] = f["layers/dense/vars/0"]  # a dataset under two names
        f["layers/dense/vars/up"] = f["layers"]  # a hard-link cycle
        f["layers/zz"] = f["layers/dense"]  # a group under two names
        f.create_group("layers/\u00e9")
        f.create_group("layers/Z")
        f["layers/dense/vars"].attrs["name"] = "dense"
    with open_artifact(path) as artifact:
        nodes = [(n.path, n.kind) for n in artifact.nodes]
        vars_attrs = next(n.attrs for n in artifact.nodes if n.path == "layers/dense/vars")
    assert nodes == [
        ("", "group"),
        ("layers", "group"),
        ("layers/Z", "group"),
        ("layers/dense", "group"),
        ("layers/dense/vars", "group"),
        ("layers/dense/vars/0", "dataset"),
        ("layers/dense/vars/1", "dataset"),
        ("layers/\u00e9", "group"),
    ]
    assert vars_attrs == {"name": "dense"}


def test_walk_reads_attributes_exactly_as_h5py_does(tmp_path: Path) -> None:
    path = tmp_path / "attrs.weights.h5"
    values = {
        "text": "caf\u00e9",
        "fixed": np.bytes_(b"abc"),
        "ints": np.arange(3),
        "names": np.array([b"dense/kernel:0", b"dense/bias:0"]),
        "vlen": np.array(["x", "y\u00e9"], dtype=h5py.string_dtype()),
        "rows": np.zeros((2,), dtype=np.dtype("(3,)f4")),
        "record": np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),
        "empty": h5py.Empty("f4"),
        "flag": True,
        "number": 2.5,
    }
    with _weights_file(path) as f:
        for obj in (f, f["layers/dense/vars"], f["layers/dense/vars/0"]):
            for name, value in values.items():
                obj.attrs[name] = value
    with open_artifact(path) as artifact, h5py.File(path, "r") as f:
        checked = [n for n in artifact.nodes if n.attrs]
        assert [n.path for n in checked] == ["", "layers/dense/vars", "layers/dense/vars/0"]
        for node in checked:
            expected = dict(f[node.path or "/"].attrs.items())
            assert list(node.attrs) == sorted(expected)
            for name, value in expected.items():
                got = node.attrs[name]
                assert type(got) is type(value) and repr(got) == repr(value), name


def test_user_defined_link_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ud.weights.h5"
    with _weights_file(path) as f:
        f["layers/e"] = h5py.ExternalLink("other.h5", "/x")
    # h5py cannot write a user-defined link: turn the external link's type (64) into 65 in its
    # link message (version 1, type flag, one-byte name "e", value length, flags, file name)
    data = bytearray(path.read_bytes())
    at = data.index(b"other.h5\x00/x\x00") - 6
    assert data[at : at + 3] == b"\x40\x01e"
    data[at] = 65
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="/layers/e is a link of unknown kind") as info:
        detect_format(path)
    assert info.value.check == "hdf5-hygiene"


# ---- zip hygiene -------------------------------------------------------------------------------


def _keras_like_zip(path: Path, extra: dict[str, bytes], **kwargs: object) -> None:
    with zipfile.ZipFile(path, "w", **kwargs) as zf:  # type: ignore[arg-type]
        zf.writestr("config.json", '{"class_name": "Sequential", "config": {"layers": []}}')
        zf.writestr("metadata.json", '{"keras_version": "3.15.0"}')
        for name, data in extra.items():
            zf.writestr(name, data)


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        ("../../etc/cron.d/x", "path outside the archive"),
        ("/abs/path", "path outside the archive"),
        ("assets/model.pkl", "pickled data"),
    ],
)
def test_unsafe_zip_members_are_refused(tmp_path: Path, member: str, reason: str) -> None:
    path = tmp_path / "evil.keras"
    _keras_like_zip(path, {member: b"x"})
    with pytest.raises(ArtifactError, match=reason) as info:
        detect_format(path)
    assert info.value.check == "zip"


def test_zip_bomb_member_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.keras"
    _keras_like_zip(
        path, {"assets/zeros": b"\x00" * (16 * 1024**2)}, compression=zipfile.ZIP_DEFLATED
    )
    with pytest.raises(ArtifactError, match="a zip bomb"):
        detect_format(path)


def test_zip_member_count_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "many.keras"
    _keras_like_zip(path, {f"assets/{i}": b"" for i in range(8)})
    with pytest.raises(ArtifactError, match="10 members"):
        detect_format(path, limits=Limits(max_zip_members=5))


def test_invalid_config_json_is_an_artifact_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", "{not json")
    with pytest.raises(ArtifactError, match=r"config\.json in the archive is not valid JSON"):
        detect_format(path)
