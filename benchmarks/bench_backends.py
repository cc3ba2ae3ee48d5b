"""Cross-backend ``assert_roundtrip`` against the hand-written equivalent, per backend.

The hand-written check is what a user writes without the plugin to know that a model saved
under TensorFlow reloads under JAX or torch: save the ``.keras`` file and the inputs, start a
Python process with ``KERAS_BACKEND`` set, load the file there, predict, write the outputs,
read them back and ``np.allclose`` them with the original's. It checks predictions only;
``assert_roundtrip(model, backends=[...])`` also checks every weight and variable, the
optimizer and compile state, the config and the layer attributes, in this process and under
the other backend.

Both run on the same small trained MLP. The *first call* of each starts its process (ours is
the session's child, started once: ``backends.close_all()`` before it makes it a real first
call); *later calls* (``--repeats`` of each, alternating, medians) reuse ours, while the
hand-written check starts a process every time. Ratios: first call ``ours / naive`` (target
<= 1.0: no slower), later calls ``naive / ours`` (target >= 3.0).

    python benchmarks/bench_backends.py [--repeats N] [--backends jax,torch] [--write]

``--write`` appends the table to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

NAIVE_CHILD = """
import sys
import numpy as np
import keras
model = keras.models.load_model(sys.argv[1])
x = np.load(sys.argv[2])
np.save(sys.argv[3], np.asarray(model.predict(x, verbose=0)))
"""


def _model() -> tuple[Any, Any]:
    import keras
    import numpy as np

    model = keras.Sequential(
        [keras.Input((16,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(4)]
    )
    model.compile(optimizer="adam", loss="mean_squared_error")
    x = np.random.default_rng(0).normal(size=(8, 16)).astype("float32")
    model.fit(x, np.zeros((8, 4), "float32"), epochs=1, verbose=0)
    return model, x


def naive(model: Any, x: Any, backend: str, folder: Path) -> float:
    """The hand-written cross-backend check; returns its seconds."""
    import numpy as np

    start = time.perf_counter()
    path, inputs, outputs = folder / "m.keras", folder / "x.npy", folder / "y.npy"
    model.save(path)
    np.save(inputs, x)
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run(
        [sys.executable, "-c", NAIVE_CHILD, str(path), str(inputs), str(outputs)],
        check=True,
        env=env,
        capture_output=True,
    )
    expected = np.asarray(model.predict(x, verbose=0))
    assert np.allclose(np.load(outputs), expected, rtol=1e-5, atol=1e-6)
    return time.perf_counter() - start


def ours(model: Any, x: Any, backend: str) -> float:
    from pytest_kerasmodel import assert_roundtrip

    start = time.perf_counter()
    assert_roundtrip(model, x, formats=["keras"], backends=[backend])
    return time.perf_counter() - start


def run(repeats: int = 5, backends: tuple[str, ...] = ("jax", "torch")) -> list[dict[str, Any]]:
    from pytest_kerasmodel.roundtrip import backends as pool

    model, x = _model()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        naive(model, x, "tensorflow", folder)  # warm this process's own save and predict
        for backend in backends:
            pool.close_all()
            first_naive = naive(model, x, backend, folder)
            first_ours = ours(model, x, backend)
            later_naive, later_ours = [], []
            for _ in range(repeats):
                later_naive.append(naive(model, x, backend, folder))
                later_ours.append(ours(model, x, backend))
            rows.append(
                {
                    "backend": backend,
                    "first_naive": first_naive,
                    "first_ours": first_ours,
                    "first_ratio": first_ours / first_naive,
                    "later_naive": statistics.median(later_naive),
                    "later_ours": statistics.median(later_ours),
                    "later_speedup": statistics.median(later_naive) / statistics.median(later_ours),
                }
            )
    pool.close_all()
    return rows


def table(rows: list[dict[str, Any]], repeats: int) -> str:
    lines = [
        "## Cross-backend roundtrip: `assert_roundtrip(backends=[...])` vs the hand-written check",
        "",
        "Saved under TensorFlow, reloaded under each backend; a trained MLP (16-32-4); first call "
        f"and the median of {repeats} later calls (`python benchmarks/bench_backends.py`). "
        f"Load average at the end: {os.getloadavg()[0]:.2f}.",
        "",
        "| backend | first call: hand-written | first call: ours | ours / hand-written "
        "(target <= 1.0) | later: hand-written | later: ours | hand-written / ours "
        "(target >= 3.0) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['backend']} | {r['first_naive']:.2f} s | {r['first_ours']:.2f} s | "
            f"{r['first_ratio']:.2f} {'met' if r['first_ratio'] <= 1.0 else 'NOT met'} | "
            f"{r['later_naive']:.2f} s | {r['later_ours']:.2f} s | {r['later_speedup']:.1f}x "
            f"{'met' if r['later_speedup'] >= 3.0 else 'NOT met'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/bench_backends.py")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backends", default="jax,torch")
    parser.add_argument("--write", action="store_true", help="append to benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    rows = run(args.repeats, tuple(args.backends.split(",")))
    text = table(rows, args.repeats)
    print(text)
    if args.write:
        results = Path(__file__).resolve().parent / "RESULTS.md"
        old = results.read_text(encoding="utf-8") if results.exists() else ""
        tmp = results.with_suffix(".md.tmp")
        tmp.write_text(old.rstrip("\n") + "\n\n" + text, encoding="utf-8")
        os.replace(tmp, results)
    met = all(r["first_ratio"] <= 1.0 and r["later_speedup"] >= 3.0 for r in rows)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
