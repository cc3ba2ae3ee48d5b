"""Builders of the real files the gate tests run on: healthy, broken, unsafe and hostile.

Every healthy file is written by a real Keras; every broken one is a healthy file damaged the way
files get damaged (cut short, emptied, overwritten, a flipped byte in a zip member), and the hostile
ones are crafted at the byte level the way an attacker would, each builder saying what it does.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

MARKER_NAME = "LAMBDA_RAN"


def _clf(keras: Any, units: int = 4, name: str = "clf") -> Any:
    return keras.Sequential(
        [
            keras.Input((3,), name="features"),
            keras.layers.Dense(units, activation="relu", name="hidden"),
            keras.layers.Dense(2, name="out"),
        ],
        name=name,
    )


def _rewrite_zip(src: Path, dst: Path, edit: dict[str, bytes]) -> None:
    """Copy a .keras archive member by member, replacing the members in ``edit``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, edit.get(info.filename, zin.read(info.filename)))


def _edit_config(src: Path, dst: Path, edit: Any) -> None:
    with zipfile.ZipFile(src) as zf:
        config = json.loads(zf.read("config.json"))
    edit(config)
    _rewrite_zip(src, dst, {"config.json": json.dumps(config).encode()})


def _walk(node: Any, visit: Any) -> None:
    if isinstance(node, dict):
        visit(node)
        for value in node.values():
            _walk(value, visit)
    elif isinstance(node, list):
        for value in node:
            _walk(value, visit)


def flip_zip_member_byte(src: Path, dst: Path, member: str = "model.weights.h5") -> None:
    """A bit-rotted archive: one byte inside a stored member changed, so its CRC no longer holds."""
    data = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as zf:
        info = zf.getinfo(member)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + info.file_size // 2] ^= 0xFF
    dst.write_bytes(bytes(data))


def crash_hdf5_vlen_class(src: Path, dst: Path) -> None:
    """A legacy .h5 whose ``weight_names`` attribute declares an invalid variable-length type.

    The attribute's datatype message is VLEN (class 9); its first class-bit byte selects sequence
    (0) or string (1). Setting it to 0x1a (type 10, which does not exist) makes HDF5 1.14 crash
    with SIGSEGV when the attribute is read. Found by fuzzing Keras-written files.
    """
    data = bytearray(src.read_bytes())
    name = data.index(b"weight_names\x00")
    datatype = name + 16  # the name, NUL-terminated, padded to 8 bytes
    assert data[datatype] == 0x19, "expected a version-1 VLEN datatype after the name"
    data[datatype + 1] = 0x1A
    dst.write_bytes(bytes(data))


def hang_hdf5_global_heap(src: Path, dst: Path) -> None:
    """A legacy .h5 whose global heap holds an object of index 0 and size 0.

    Variable-length strings (``layer_names``, ``weight_names``) live in a global heap collection
    ("GCOL"); HDF5 1.14 walks its objects by their sizes, and a zero-sized free-space object makes
    it loop forever when such an attribute is read. Found by fuzzing Keras-written files.
    """
    data = bytearray(src.read_bytes())
    heap = data.index(b"GCOL")
    first = heap + 16  # "GCOL", version, 3 reserved bytes, 8-byte collection size
    index, _refcount, _reserved, size = struct.unpack("<HHIQ", data[first : first + 16])
    assert index != 0 and size > 0, "expected a used heap object first"
    data[first : first + 2] = b"\0\0"
    data[first + 8 : first + 16] = bytes(8)
    dst.write_bytes(bytes(data))


def build_gate_files(folder: Path) -> dict[str, Path]:
    """Every file the gate tests use, keyed by a short name (the file name without folder)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    keras.utils.set_random_seed(0)
    files: dict[str, Path] = {}

    def path(name: str) -> Path:
        files[name] = folder / name
        return files[name]

    clf = _clf(keras)
    clf.save(path("clf.keras"))
    clf.save(path("clf.h5"))
    clf.save_weights(path("clf.weights.h5"))

    retrained = _clf(keras)  # same architecture, other weights: predictions differ
    retrained.set_weights([w + 0.5 for w in clf.get_weights()])
    retrained.save(path("retrained.keras"))
    _clf(keras, units=5).save(path("wider.keras"))  # another architecture: structure differs

    weights = clf.get_weights()
    weights[0][0, 0] = np.nan
    weights[0][1, 1] = np.inf
    weights[0][2, 2] = -np.inf
    clf_nan = _clf(keras)
    clf_nan.set_weights(weights)
    clf_nan.save(path("nan.keras"))
    weights = clf.get_weights()
    weights[3][:] = np.inf  # every value of the output bias
    clf_inf = _clf(keras)
    clf_inf.set_weights(weights)
    clf_inf.save(path("inf.h5"))

    # A Lambda layer whose code writes a file: the gate must never run it. A lambda expression
    # (not a def) so that Keras stores its bytecode; the marker's path is a literal in that code.
    marker = folder / MARKER_NAME
    touch = eval(f"lambda x: (open({str(marker)!r}, 'w').write('the Lambda ran'), x)[1]")

    lam = keras.Sequential(
        [keras.Input((3,)), keras.layers.Lambda(touch, name="touch"), keras.layers.Dense(2)],
        name="lam",
    )
    lam.save(path("lambda.keras"))
    lam.save(path("lambda.h5"))
    marker.unlink(missing_ok=True)

    # A config naming a function outside Keras (os.system as an activation).
    def foreign(config: Any) -> None:
        def visit(node: dict[str, Any]) -> None:
            if node.get("class_name") == "Dense" and node["config"].get("name") == "out":
                node["config"]["activation"] = {
                    "module": "os",
                    "class_name": "function",
                    "config": "system",
                    "registered_name": "function",
                }

        _walk(config, visit)

    _edit_config(files["clf.keras"], path("foreign.keras"), foreign)

    # Damaged files.
    data = files["clf.keras"].read_bytes()
    path("truncated.keras").write_bytes(data[: len(data) // 2])
    data = files["clf.h5"].read_bytes()
    path("truncated.h5").write_bytes(data[: len(data) // 2])
    path("empty.h5").write_bytes(b"")
    path("garbage.keras").write_bytes(b"this is not a model\n" * 20)
    flip_zip_member_byte(files["clf.keras"], path("crc.keras"))
    shutil.copyfile(files["clf.h5"], path("h5named.keras"))  # legacy HDF5 under a .keras name

    # Hostile files that bring the HDF5 library down.
    crash_hdf5_vlen_class(files["clf.h5"], path("segv.h5"))
    hang_hdf5_global_heap(files["clf.h5"], path("hang.h5"))

    # A config asking for a 200000 x 200000 kernel (160 GB): a memory bomb when built.
    def huge(config: Any) -> None:
        def visit(node: dict[str, Any]) -> None:
            if node.get("class_name") == "Dense" and node["config"].get("name") == "hidden":
                node["config"]["units"] = 200_000
            for key in ("batch_shape", "input_shape"):
                if node.get(key) == [None, 3]:
                    node[key] = [None, 200_000]

        _walk(config, visit)

    _edit_config(files["clf.keras"], path("membomb.keras"), huge)

    # Files from a future Keras: written by this Keras, then stamped as written by Keras 99.0.0
    # and given a Dense argument this Keras does not know, as a newer Keras's file is to an older
    # installed one (Keras 3.15's quantization_config to Keras 3.12).
    newer = "99.0.0"

    def future(config: Any) -> None:
        def visit(node: dict[str, Any]) -> None:
            if node.get("class_name") == "Dense" and node["config"].get("name") == "hidden":
                node["config"]["future_option"] = None

        _walk(config, visit)

    with zipfile.ZipFile(files["clf.keras"]) as zf:
        config = json.loads(zf.read("config.json"))
        metadata = json.loads(zf.read("metadata.json"))
    future(config)
    metadata["keras_version"] = newer
    _rewrite_zip(
        files["clf.keras"],
        path("future.keras"),
        {
            "config.json": json.dumps(config).encode(),
            "metadata.json": json.dumps(metadata).encode(),
        },
    )
    import h5py

    shutil.copyfile(files["clf.h5"], path("future.h5"))
    with h5py.File(files["future.h5"], "r+") as f:
        config = json.loads(f.attrs["model_config"])
        future(config)
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["keras_version"] = newer

    # Keras 2 (tf-keras 2.21) legacy HDF5: an MLP Keras 3 loads, and an LSTM it cannot rebuild.
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "HDF5 ... is considered legacy"
        _clf(tf_keras).save(path("keras2.h5"))
        tf_keras.Sequential(
            [tf_keras.Input((4, 3)), tf_keras.layers.LSTM(2, name="lstm")], name="seq"
        ).save(path("keras2_lstm.h5"))
    return files


def stage(target: Path, files: dict[str, Path], names: list[str]) -> Path:
    """Copy the named files into ``target`` (created) and return it."""
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(files[name], target / name)
    return target


def run_gate(pytester: Any, *args: str, folder: str = "models") -> tuple[Any, dict[str, Any]]:
    """Run ``pytest --keras-model-dir folder`` in-process; return the result and the JSON report
    as ``{artifact file name: {"info"..., "checks": {check: {"status", "message"}}}}``."""
    report = pytester.path / "gate-report.json"
    result = pytester.runpytest(
        "--keras-model-dir", folder, "--keras-report", str(report), "-p", "no:cacheprovider", *args
    )
    verdicts: dict[str, Any] = {}
    if report.exists():
        for entry in json.loads(report.read_text())["artifacts"]:
            verdicts[Path(entry["artifact"]).name] = entry
        report.unlink()
    return result, verdicts


def status(verdicts: dict[str, Any], artifact: str) -> dict[str, str]:
    """{check: status} of one artifact."""
    return {check: v["status"] for check, v in verdicts[artifact]["checks"].items()}


def message(verdicts: dict[str, Any], artifact: str, check: str) -> str:
    return str(verdicts[artifact]["checks"][check]["message"])
