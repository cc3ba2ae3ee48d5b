"""An artifact's goldens: where they live, recording them atomically, reading and comparing them.

Two goldens per artifact, beside it or under ``--keras-golden-dir`` (same relative path):

- ``<artifact>.golden.json``: the recorded structure, with a format version;
- ``<artifact>.golden.npz``: golden inputs and the outputs the approved model gave for them.

Golden inputs are generated from the model's input specs, or read from a sidecar
``<artifact>.inputs.npz`` that the user provides (arrays in the model's input order, by sorted key).
The artifact itself is never written.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

GOLDEN_VERSION = 1
STRUCTURE_SUFFIX = ".golden.json"
PREDICTIONS_SUFFIX = ".golden.npz"
INPUTS_SUFFIX = ".inputs.npz"
HOW_TO_RECORD = "record it with: pytest --keras-model-dir DIR --keras-update-golden"
HOW_TO_UPDATE = "If the change is intended, re-record with --keras-update-golden."


def golden_paths(
    artifact: Path, model_dir: Path | None, golden_dir: Path | None
) -> tuple[Path, Path]:
    """(structure golden, predictions golden) of ``artifact``."""
    if golden_dir is None or model_dir is None:
        base = artifact
    else:
        base = golden_dir / artifact.relative_to(model_dir)
    return (
        base.with_name(base.name + STRUCTURE_SUFFIX),
        base.with_name(base.name + PREDICTIONS_SUFFIX),
    )


def inputs_sidecar(artifact: Path) -> Path:
    return artifact.with_name(artifact.name + INPUTS_SUFFIX)


def write_atomic(path: Path, write: Callable[[IO[bytes]], object] | bytes) -> None:
    """Write through a temporary file in the same folder, then ``os.replace`` it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            if isinstance(write, bytes):
                fh.write(write)
            else:
                write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class GoldenVersionError(Exception):
    """A golden recorded by another format version of the plugin."""


def _check_version(path: Path, version: Any) -> None:
    if version != GOLDEN_VERSION:
        raise GoldenVersionError(
            f"the golden {path} has format version {version!r}, this plugin reads version "
            f"{GOLDEN_VERSION}: regenerate it with --keras-update-golden"
        )


# -- structure -------------------------------------------------------------------------------------


def write_structure(path: Path, structure: dict[str, Any]) -> None:
    data = {"kerasmodel_golden": GOLDEN_VERSION, "kind": "structure", "structure": structure}
    text = json.dumps(data, indent=1, sort_keys=True) + "\n"
    write_atomic(path, text.encode())


def read_structure(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    _check_version(path, data.get("kerasmodel_golden"))
    structure = data["structure"]
    assert isinstance(structure, dict)
    return structure


def diff_structure(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    if expected.get("format") != actual.get("format"):
        problems.append(f"format: golden {expected.get('format')!r}, now {actual.get('format')!r}")
    want, have = expected.get("weights", {}), actual.get("weights", {})
    problems += [f"{name}: in the golden, missing now" for name in want if name not in have]
    problems += [f"{name}: new, not in the golden" for name in have if name not in want]
    for name in want:
        if name in have and want[name] != have[name]:
            problems.append(f"{name}: golden {want[name]}, now {have[name]}")
    return problems


# -- predictions -----------------------------------------------------------------------------------


def write_predictions(path: Path, inputs: list[Any], outputs: list[Any]) -> None:
    import numpy as np

    arrays: dict[str, Any] = {"__version__": np.array(GOLDEN_VERSION)}
    arrays.update({f"input_{i}": np.asarray(x) for i, x in enumerate(inputs)})
    arrays.update({f"output_{i}": np.asarray(y) for i, y in enumerate(outputs)})
    write_atomic(path, lambda fh: np.savez(fh, **arrays))


def _numbered(arrays: dict[str, Any], prefix: str) -> list[Any]:
    keys = sorted((k for k in arrays if k.startswith(prefix)), key=lambda k: int(k[len(prefix) :]))
    return [arrays[k] for k in keys]


def read_predictions(path: Path) -> tuple[list[Any], list[Any]] | None:
    import numpy as np

    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    _check_version(path, int(arrays["__version__"]) if "__version__" in arrays else None)
    return _numbered(arrays, "input_"), _numbered(arrays, "output_")


def golden_inputs(model: Any, inputs_file: str | None) -> list[Any]:
    """The user's sidecar inputs when given, else inputs generated from the model's input specs."""
    import numpy as np

    if inputs_file and Path(inputs_file).is_file():
        with np.load(inputs_file, allow_pickle=False) as npz:
            return [npz[k] for k in sorted(npz.files)]
    rng = np.random.default_rng(0)
    inputs = []
    for tensor in model.inputs:
        shape = [4 if i == 0 else (d or 8) for i, d in enumerate(tensor.shape)]
        dtype = np.dtype(str(tensor.dtype))
        if dtype.kind == "f":
            inputs.append(rng.standard_normal(shape).astype(dtype))
        else:
            inputs.append(rng.integers(0, 2, shape).astype(dtype))
    return inputs


def predict(model: Any, inputs: list[Any]) -> list[Any]:
    import numpy as np

    result = model(inputs[0] if len(inputs) == 1 else list(inputs), training=False)
    if isinstance(result, dict):
        result = [result[k] for k in sorted(result)]
    elif not isinstance(result, (list, tuple)):
        result = [result]
    return [np.asarray(r) for r in result]


def diff_outputs(expected: list[Any], actual: list[Any], rtol: float, atol: float) -> list[str]:
    import numpy as np

    if len(expected) != len(actual):
        return [f"  the model gives {len(actual)} output(s), the golden holds {len(expected)}"]
    problems = []
    for i, (want, have) in enumerate(zip(expected, actual, strict=True)):
        if want.shape != have.shape:
            problems.append(f"  output {i}: shape golden {want.shape}, now {have.shape}")
            continue
        close = np.isclose(have, want, rtol=rtol, atol=atol, equal_nan=True)
        if not close.all():
            delta = np.abs(have.astype("float64") - want.astype("float64"))
            problems.append(
                f"  output {i}: {int((~close).sum())} of {close.size} values differ, "
                f"max abs diff {float(np.nanmax(delta)):.6g}"
            )
    return problems
