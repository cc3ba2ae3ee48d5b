"""assert_roundtrip under the torch and JAX backends, each in a child process (KERAS_BACKEND
must be set before Keras is imported): healthy models pass, backend-internal state (torch's
module mode) is not reported, a Dropout's seed-generator state is a note."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).parent
BACKEND_PACKAGES = {"torch": "torch", "jax": "jax"}


def _run_under(backend: str) -> dict[str, Any]:
    if importlib.util.find_spec(BACKEND_PACKAGES[backend]) is None:
        pytest.skip(f"{backend} is not installed (.ci/run installs it)")
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, str(TESTS / "scripts" / "same_backend.py"), backend],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_healthy_models_pass_under_the_backend(backend: str) -> None:
    from builders import roundtrip_models as rm

    results = _run_under(backend)
    assert results.pop("_backend") == {"name": backend}
    fitted = results.pop("fitted_dropout")
    assert fitted["keras"] == "ok"
    (note,) = json.loads(fitted["notes"])
    assert "seed_generator_state" in note
    assert set(results) == set(rm.HEALTHY)
    failed = {
        (name, fmt): text
        for name, by in results.items()
        for fmt, text in by.items()
        if text != "ok"
    }
    assert not failed, "\n".join(f"{k}: {v}" for k, v in failed.items())
    for name, by in results.items():
        expected = {"keras", "weights"} | (set() if name in rm.NOT_H5 else {"h5"})
        assert set(by) == expected
