"""Run by test_roundtrip_backends.py under KERAS_BACKEND=torch / jax in a child process.

Every healthy model of roundtrip_models, after one optimizer step and a ``predict`` (which
switches torch's module mode), goes through ``assert_roundtrip`` under the backend this
process runs; prints one JSON object: per model and format ``"ok"`` or the report.
"""

from __future__ import annotations

import json
import sys

import keras
import numpy as np
from builders import roundtrip_models as rm

from pytest_kerasmodel import RoundtripError, assert_roundtrip, make_inputs


def main() -> None:
    results: dict[str, dict[str, str]] = {"_backend": {"name": keras.backend.backend()}}
    for name, build in rm.HEALTHY.items():
        model = rm.train_one_step(build())
        model.predict(make_inputs(model), verbose=0)
        outcome: dict[str, str] = {}
        for fmt in ("keras", "h5", "weights"):
            if fmt == "h5" and name in rm.NOT_H5:
                continue
            try:
                # legacy .h5 drops the optimizer's slots (test_roundtrip.py): not compared here
                assert_roundtrip(model, formats=(fmt,), compile=fmt != "h5")
                outcome[fmt] = "ok"
            except RoundtripError as exc:
                outcome[fmt] = str(exc)
        results[name] = outcome
    fitted = rm.fitted_dropout()
    try:
        notes = assert_roundtrip(fitted, formats=("keras",)).diff.formats[0].notes
        results["fitted_dropout"] = {"keras": "ok", "notes": json.dumps(notes)}
    except RoundtripError as exc:
        results["fitted_dropout"] = {"keras": str(exc)}
    np.testing.assert_equal(keras.backend.backend(), sys.argv[1])
    print(json.dumps(results))


if __name__ == "__main__":
    main()
