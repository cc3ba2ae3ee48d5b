"""assert_roundtrip against the hand-written check it replaces, per format and model.

The hand-written check is what a user writes without the plugin: save, ``load_model`` (for
``weights``: rebuild from the config and ``load_weights``), ``predict`` on both models and
``np.allclose``. It checks predictions only; ``assert_roundtrip`` also checks every weight,
the config, the optimizer state and the compile state, and layer attributes.

Both run in this one process on the same model (a small MLP, a CNN and an LSTM, each compiled
and trained one step so the optimizer has state), alternating, ``repeats`` times after one
warm-up each; the table shows medians and ``ratio = ours / naive`` (below 1: faster). The
``all three`` rows time one ``assert_roundtrip`` call over the three formats against the three
hand-written checks in a row.

    python benchmarks/bench_roundtrip.py [--repeats N]

``run(repeats=...)`` returns the rows as dicts for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

FORMATS = ("keras", "weights", "h5")
FILES = {"keras": "model.keras", "h5": "model.h5", "weights": "model.weights.h5"}
#: one assert_roundtrip call over every format (the original's outputs and weights are read
#: once) against the three hand-written checks one after the other
ALL = "all three"


def _models() -> dict[str, Any]:
    import keras
    import numpy as np

    layers = keras.layers
    rng = np.random.default_rng(0)
    builders = {
        "mlp": (
            lambda: keras.Sequential(
                [keras.Input((32,)), layers.Dense(64, activation="relu"), layers.Dense(10)]
            ),
            (16, 32),
        ),
        "cnn": (
            lambda: keras.Sequential(
                [
                    keras.Input((28, 28, 1)),
                    layers.Conv2D(8, 3, activation="relu"),
                    layers.MaxPooling2D(),
                    layers.Conv2D(16, 3, activation="relu"),
                    layers.GlobalAveragePooling2D(),
                    layers.Dense(10),
                ]
            ),
            (16, 28, 28, 1),
        ),
        "lstm": (
            lambda: keras.Sequential([keras.Input((20, 8)), layers.LSTM(32), layers.Dense(1)]),
            (16, 20, 8),
        ),
    }
    models = {}
    for name, (build, shape) in builders.items():
        model = build()
        model.compile(optimizer="adam", loss="mean_squared_error")
        x = rng.normal(size=shape).astype("float32")
        y = np.zeros((shape[0], *model.output_shape[1:]), "float32")
        model.fit(x, y, batch_size=shape[0], epochs=1, verbose=0)
        models[name] = (model, x)
    return models


def naive_check(model: Any, x: Any, fmt: str, folder: Path) -> None:
    """The hand-written check: save, load, predict on both, np.allclose."""
    import keras
    import numpy as np

    path = str(folder / FILES[fmt])
    if fmt == "weights":
        model.save_weights(path)
        loaded = keras.Sequential.from_config(model.get_config())
        loaded.load_weights(path)
    else:
        model.save(path)
        loaded = keras.models.load_model(path)
    assert np.allclose(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


def ours_check(model: Any, x: Any, fmt: str, folder: Path) -> None:
    from pytest_kerasmodel import RoundtripError, assert_roundtrip

    formats = FORMATS if fmt == ALL else (fmt,)
    try:
        assert_roundtrip(model, x, formats=formats, folder=folder)
    except RoundtripError as exc:
        # legacy HDF5 drops Adam's slots: a finding the naive check misses, not an error here
        for found in exc.diff.formats:
            if found and (found.format != "h5" or found.failure or found.outputs or found.weights):
                raise


def naive_all(model: Any, x: Any, folder: Path) -> None:
    for fmt in FORMATS:
        naive_check(model, x, fmt, folder)


def _time(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(repeats: int = 5) -> list[dict[str, Any]]:
    """Rows ``{model, format, ours_s, naive_s, ratio}``: medians over ``repeats`` runs."""
    rows = []
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
        warnings.simplefilter("ignore")
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
        folder = Path(tmp)
        for name, (model, x) in _models().items():
            for fmt in (*FORMATS, ALL):
                ours, naive = [], []
                for i in range(repeats + 1):  # the first round warms up and is not recorded
                    sub = folder / f"{name}-{fmt.replace(' ', '-')}-{i}"
                    sub.mkdir()
                    compile_config = dict(model._compile_config.config)
                    n = _time(
                        lambda m=model, v=x, s=sub, f=fmt: (
                            naive_all(m, v, s) if f == ALL else naive_check(m, v, f, s)
                        )
                    )
                    # Keras's legacy HDF5 writer pops the optimizer from the model's compile
                    # config: undo it (untimed) so that both sides check the same model.
                    model._compile_config.config.update(compile_config)
                    o = _time(lambda m=model, v=x, s=sub, f=fmt: ours_check(m, v, f, s))
                    if i:
                        naive.append(n)
                        ours.append(o)
                ours_s, naive_s = statistics.median(ours), statistics.median(naive)
                rows.append(
                    {
                        "model": name,
                        "format": fmt,
                        "ours_s": ours_s,
                        "naive_s": naive_s,
                        "ratio": ours_s / naive_s,
                    }
                )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| model | format | assert_roundtrip (s) | hand-written check (s) | ratio |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['format']} | {r['ours_s']:.3f} | {r['naive_s']:.3f} "
            f"| {r['ratio']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per cell (median)")
    args = parser.parse_args(argv)
    print(table(run(repeats=args.repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
