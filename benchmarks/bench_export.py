"""assert_export against the hand-written check it replaces, per export format and model.

The hand-written check is what a user writes without the plugin: ``model.export(...)``, load
the artifact with the format's runtime, run it on one batch, ``model.predict`` the same batch
and ``np.allclose``. ``assert_export`` also runs batch sizes 1 and 4 (and a second length for a
``None`` time axis), compares every output with numpy-style figures, and says which stage failed.

Both run in this one process on the same model, alternating, ``repeats`` times after one warm-up
each; the table shows medians and ``ratio = ours / naive`` (below 1: faster), and what each
check concluded (``np.allclose`` with its defaults, ``assert_export`` with its own).

    python benchmarks/bench_export.py [--repeats N] [--formats onnx,litert]

``run(repeats=...)`` returns the rows as dicts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FORMATS = ("tf_saved_model", "onnx", "litert", "openvino")


def _models() -> dict[str, Any]:
    import keras

    layers = keras.layers
    keras.utils.set_random_seed(0)
    return {
        "mlp": keras.Sequential(
            [keras.Input((32,)), layers.Dense(64, activation="relu"), layers.Dense(10)]
        ),
        "cnn": keras.Sequential(
            [
                keras.Input((16, 16, 3)),
                layers.Conv2D(8, 3, activation="relu"),
                layers.GlobalAveragePooling2D(),
                layers.Dense(4),
            ]
        ),
    }


def naive(model: Any, fmt: str, folder: str) -> bool:
    """The check a user writes by hand: export, load, run one batch, np.allclose."""
    import numpy as np

    x = np.random.default_rng(0).standard_normal((4, *model.input_shape[1:])).astype("float32")
    expected = model.predict(x, verbose=0)
    if fmt == "tf_saved_model":
        import tensorflow as tf

        path = os.path.join(folder, "saved")
        model.export(path, format=fmt, verbose=False)
        loaded = tf.saved_model.load(path)  # kept alive: the function references its variables
        actual = loaded.serve(x).numpy()
    elif fmt == "onnx":
        import onnxruntime as ort

        path = os.path.join(folder, "model.onnx")
        model.export(path, format=fmt, verbose=False)
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        actual = session.run(None, {session.get_inputs()[0].name: x})[0]
    elif fmt == "litert":
        from ai_edge_litert.interpreter import Interpreter

        path = os.path.join(folder, "model.tflite")
        model.export(path, format=fmt, verbose=False)
        runner = Interpreter(model_path=path).get_signature_runner()
        name = next(iter(runner.get_input_details()))
        actual = next(iter(runner(**{name: x}).values()))
    else:
        import openvino as ov

        path = os.path.join(folder, "model.xml")
        model.export(path, format=fmt, verbose=False)
        actual = ov.Core().compile_model(path, "CPU")([x])[0]
    return bool(np.allclose(actual, expected))


def ours(model: Any, fmt: str) -> bool:
    from pytest_kerasmodel import ExportError, assert_export

    try:
        assert_export(model, formats=[fmt])
    except ExportError:
        return False
    return True


def _timed(fn: Any, *args: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def run(repeats: int = 3, formats: tuple[str, ...] = FORMATS) -> list[dict[str, Any]]:
    import contextlib
    import io

    rows = []
    for name, model in _models().items():
        for fmt in formats:
            naive_times, our_times = [], []
            naive_ok = our_ok = None
            for i in range(repeats + 1):  # the first round warms both up
                with (
                    tempfile.TemporaryDirectory() as folder,
                    contextlib.redirect_stdout(io.StringIO()),
                ):
                    t_naive, naive_ok = _timed(naive, model, fmt, folder)
                t_ours, our_ok = _timed(ours, model, fmt)
                if i:
                    naive_times.append(t_naive)
                    our_times.append(t_ours)
            n, o = statistics.median(naive_times), statistics.median(our_times)
            rows.append(
                {
                    "model": name,
                    "format": fmt,
                    "naive_s": round(n, 3),
                    "ours_s": round(o, 3),
                    "ratio": round(o / n, 3),
                    "naive_ok": naive_ok,
                    "ours_ok": our_ok,
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--formats", default=",".join(FORMATS))
    args = parser.parse_args(argv)
    rows = run(args.repeats, tuple(f for f in args.formats.split(",") if f))
    print("| model | format | hand-written (s) | assert_export (s) | ratio | np.allclose | ours |")
    print("| --- | --- | ---: | ---: | ---: | --- | --- |")
    for r in rows:
        verdicts = ["agree" if r[k] else "DIFFER" for k in ("naive_ok", "ours_ok")]
        print(
            f"| {r['model']} | {r['format']} | {r['naive_s']} | {r['ours_s']} | {r['ratio']} "
            f"| {verdicts[0]} | {verdicts[1]} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
