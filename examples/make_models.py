"""Write the tiny example artifacts of ``examples/models/`` and record their goldens.

    python examples/make_models.py

Three artifacts of one small classifier, in the three formats Keras 3 writes, then
``pytest --keras-model-dir examples/models --keras-update-golden`` records their goldens
(structure and predictions) beside them. Run it again only when you mean to change them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
MODELS = HERE / "models"


def build(folder: Path) -> list[Path]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((4,), name="features"),
            keras.layers.Dense(8, activation="relu", name="hidden"),
            keras.layers.Dense(3, activation="softmax", name="probabilities"),
        ],
        name="iris_classifier",
    )
    folder.mkdir(parents=True, exist_ok=True)
    paths = [
        folder / "iris_classifier.keras",
        folder / "legacy" / "iris_classifier.h5",
        folder / "iris_classifier.weights.h5",
    ]
    paths[1].parent.mkdir(exist_ok=True)
    model.save(paths[0])
    model.save(paths[1])
    model.save_weights(paths[2])
    return paths


def main() -> int:
    for path in build(MODELS):
        print(f"wrote {path.relative_to(HERE.parent)} ({path.stat().st_size} bytes)")
    return int(
        pytest.main(
            [
                "--keras-model-dir",
                str(MODELS),
                "--keras-update-golden",
                "-q",
                "-p",
                "no:cacheprovider",
            ]
        )
    )


if __name__ == "__main__":
    sys.exit(main())
