"""Run by test_backends.py (and for the backend matrix) under a writer backend: models saved
under this process's backend and reloaded under every other installed backend by
``assert_roundtrip(..., backends="all")``; prints one JSON object:
``{model: {"keras -> jax": {"checks": [...], "text": ...}, ...}}`` ("checks" empty: passed).
"""

from __future__ import annotations

import json
import sys

import keras
from builders import roundtrip_models as rm

from pytest_kerasmodel import RoundtripError, assert_roundtrip

MODELS = {
    "trained_dense": rm.trained_dense,
    "conv": lambda: rm.train_one_step(rm.conv()),
    "multi_io": rm.multi_io,
    "subclassed": rm.subclassed,
}


def main(names: list[str], formats: list[str], compile: bool) -> None:
    results: dict[str, dict[str, dict[str, object]]] = {}
    for name in names:
        model = MODELS[name]()
        chosen = [f for f in formats if not (f == "h5" and name == "subclassed")]
        try:
            diff = assert_roundtrip(model, formats=chosen, backends="all", compile=compile).diff
        except RoundtripError as exc:
            diff = exc.diff
        results[name] = {
            f"{f.format} -> {f.backend or keras.backend.backend()}": {
                "checks": f.failed_checks,
                "text": f.render(),
            }
            for f in diff.formats
        }
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1].split(","), sys.argv[2].split(","), sys.argv[3] == "compile")
