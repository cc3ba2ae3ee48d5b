"""Artifacts for the benchmarks, generated in a temporary folder.

Small artifacts: one Keras process saves a few tiny models (MLP, CNN, LSTM in `.keras` and `.h5`);
the many-artifact folders are copies of them, hard-linked into one folder per size.

Large artifacts: building a multi-GiB model in Keras would need its weights in memory several
times over, so they are written directly with h5py and zipfile in Keras's own layouts. One Keras
process saves a *template* (the same stack of Dense layers, 3 units wide) in both formats; the large
file copies the template's groups, attributes and config with every width of 3 replaced by the
large width, and fills the datasets block by block, so writing takes little memory. Keras loads
the result (checked on the smallest size by `bench_large`).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness import MIB, bench_env, python, run_process

SMALL_VARIANTS = ("mlp.keras", "mlp.h5", "cnn.keras", "cnn.h5", "lstm.keras")

_SMALL_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import keras
    from keras import layers

    out = Path(sys.argv[1])
    keras.utils.set_random_seed(0)
    models = {
        "mlp": keras.Sequential(
            [keras.Input((16,)), layers.Dense(32, activation="relu"), layers.Dense(4)]
        ),
        "cnn": keras.Sequential(
            [keras.Input((12, 12, 1)), layers.Conv2D(4, 3, activation="relu"),
             layers.MaxPooling2D(), layers.Flatten(), layers.Dense(3)]
        ),
        "lstm": keras.Sequential([keras.Input((6, 4)), layers.LSTM(8), layers.Dense(2)]),
    }
    for name in sys.argv[2:]:
        stem, ext = name.split(".")
        models[stem].save(out / name)
    """
)

TEMPLATE_WIDTH = 3

_TEMPLATE_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import keras

    out, width = Path(sys.argv[1]), int(sys.argv[2])
    for n_layers in map(int, sys.argv[3:]):
        model = keras.Sequential(
            [keras.Input((width,))] + [keras.layers.Dense(width) for _ in range(n_layers)]
        )
        model.save(out / f"template-{n_layers}.keras")
        model.save(out / f"template-{n_layers}.h5")
    """
)


def small_models(workdir: Path) -> Path:
    """The small variants, saved once by Keras; returns their folder."""
    folder = workdir / "small-models"
    if all((folder / v).exists() for v in SMALL_VARIANTS):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    run_process(
        [python(), "-c", _SMALL_SCRIPT, str(folder), *SMALL_VARIANTS], env=bench_env()
    ).check("saving the small models")
    return folder


def many_artifacts(workdir: Path, count: int) -> Path:
    """A folder of `count` small artifacts: hard links into one pool of real copies."""
    source = small_models(workdir)
    pool = workdir / "pool"
    pool.mkdir(exist_ok=True)
    folder = workdir / f"artifacts-{count}"
    if folder.exists():
        return folder
    folder.mkdir()
    for i in range(count):
        variant = SMALL_VARIANTS[i % len(SMALL_VARIANTS)]
        stem, ext = variant.split(".", 1)
        name = f"{stem}_{i:04d}.{ext}"
        pooled = pool / name
        if not pooled.exists():
            shutil.copyfile(source / variant, pooled)
        os.link(pooled, folder / name)
    return folder


# --------------------------------------------------------------------------- large artifacts

KERNEL_WIDTH = 4096  # one Dense kernel of 4096 x 4096 float32 = 64 MiB


def layers_for(size_mib: int) -> int:
    return max(1, round(size_mib * MIB / (KERNEL_WIDTH * KERNEL_WIDTH * 4)))


def templates(workdir: Path, layer_counts: list[int]) -> Path:
    folder = workdir / "templates"
    folder.mkdir(parents=True, exist_ok=True)
    missing = [n for n in layer_counts if not (folder / f"template-{n}.h5").exists()]
    if missing:
        run_process(
            [
                python(),
                "-c",
                _TEMPLATE_SCRIPT,
                str(folder),
                str(TEMPLATE_WIDTH),
                *map(str, missing),
            ],
            env=bench_env(),
        ).check("saving the templates")
    return folder


def _widen(value: Any, width: int) -> Any:
    """The template's config with its width replaced: `units` and every `[null, 3]` shape."""
    if isinstance(value, dict):
        return {
            k: (width if k == "units" and v == TEMPLATE_WIDTH else _widen(v, width))
            for k, v in value.items()
        }
    if isinstance(value, list):
        if len(value) == 2 and value[0] is None and value[1] == TEMPLATE_WIDTH:
            return [None, width]
        return [_widen(v, width) for v in value]
    return value


def _fill_blocks(shape: tuple[int, ...], rows: int) -> Iterator[tuple[slice, Any]]:
    import numpy as np

    rng = np.random.default_rng(0)
    if len(shape) == 1:
        yield slice(0, shape[0]), (rng.standard_normal(shape[0], dtype=np.float32) * 0.01)
        return
    block = rng.standard_normal((min(rows, shape[0]), *shape[1:]), dtype=np.float32) * 0.01
    for start in range(0, shape[0], rows):
        stop = min(start + rows, shape[0])
        yield slice(start, stop), block[: stop - start]


def _copy_tree(src: Any, dst: Any, width: int) -> None:
    """Copy groups and attributes of `src` into `dst`, widening datasets and the model config."""
    import h5py

    for name, value in src.attrs.items():
        dtype = src.attrs.get_id(name).dtype
        if name == "model_config":
            text = value.decode() if isinstance(value, bytes) else str(value)
            value = json.dumps(_widen(json.loads(text), width))
            if isinstance(src.attrs[name], bytes):
                value = value.encode()
        dst.attrs.create(name, value, dtype=dtype if name != "model_config" else None)
    for name, obj in src.items():
        if isinstance(obj, h5py.Dataset):
            shape = tuple(width if s == TEMPLATE_WIDTH else s for s in obj.shape)
            ds = dst.create_dataset(name, shape=shape, dtype=obj.dtype)
            for key, value in obj.attrs.items():
                ds.attrs[key] = value
            for where, block in _fill_blocks(shape, rows=1024):
                ds[where] = block
        else:
            _copy_tree(obj, dst.create_group(name), width)


def large_artifact(workdir: Path, size_mib: int, fmt: str) -> Path:
    """A Dense stack with about `size_mib` MiB of float32 weights, as `.h5` or `.keras`."""
    import h5py

    n_layers = layers_for(size_mib)
    folder = templates(workdir, [n_layers])
    out_dir = workdir / "large"
    out_dir.mkdir(exist_ok=True)
    dest = out_dir / f"dense-{size_mib}MiB.{fmt}"
    if dest.exists():
        return dest
    tmp = dest.with_suffix(dest.suffix + ".part")
    if fmt == "h5":
        with h5py.File(folder / f"template-{n_layers}.h5", "r") as src, h5py.File(tmp, "w") as dst:
            _copy_tree(src, dst, KERNEL_WIDTH)
    elif fmt == "keras":
        inner = out_dir / f"inner-{size_mib}.weights.h5"
        with zipfile.ZipFile(folder / f"template-{n_layers}.keras") as zt:
            config = _widen(json.loads(zt.read("config.json")), KERNEL_WIDTH)
            metadata = zt.read("metadata.json")
            with (
                h5py.File(io.BytesIO(zt.read("model.weights.h5")), "r") as src,
                h5py.File(inner, "w") as dst,
            ):
                _copy_tree(src, dst, KERNEL_WIDTH)
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr("metadata.json", metadata)
            zf.writestr("config.json", json.dumps(config))
            zf.write(inner, "model.weights.h5")
        inner.unlink()
    else:
        raise ValueError(fmt)
    os.replace(tmp, dest)
    return dest
