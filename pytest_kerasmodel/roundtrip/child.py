"""The child process of :mod:`pytest_kerasmodel.roundtrip.backends`:
``python -m pytest_kerasmodel.roundtrip.child BACKEND``.

It imports Keras under ``KERAS_BACKEND=BACKEND``, says ``ready``, then answers one JSON request
per line on stdin (a saved file, its format, the inputs) with one JSON line on stdout: the
reloaded model's :class:`~pytest_kerasmodel.roundtrip.run.ModelState`, or how loading failed.
Its arrays are written as ``.npy`` files into the request's ``array_dir`` (in the parent's
temporary folder), which the parent memory-maps.
Anything a library prints goes to stderr, so it cannot corrupt the protocol.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
from collections.abc import Iterable
from typing import IO, Any

from pytest_kerasmodel.roundtrip.backends import decode, encode


def _answer(request: dict[str, Any]) -> dict[str, Any]:
    from dataclasses import asdict

    from pytest_kerasmodel.frameworks import keras3
    from pytest_kerasmodel.roundtrip.run import failure_of, model_state

    for entry in reversed(request.get("sys_path", [])):
        if entry not in sys.path:  # a folder the parent's tests added since this child started
            sys.path.insert(0, entry)
    for module in request.get("modules", []):
        with contextlib.suppress(Exception):  # the load names the class it cannot find
            importlib.import_module(module)
    custom: dict[str, Any] = {}
    for name, location in request.get("custom_objects", {}).items():
        module, _, qualname = location.partition(":")
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        custom[name] = obj
    compile = bool(request.get("compile", True))
    try:
        model, warnings = keras3.load(
            request["format"], request["path"], custom_objects=custom or None, compile=compile
        )
    except Exception as exc:
        return {"failure": asdict(failure_of("load", exc))}
    # the inputs arrive memory-mapped read-only: a writable copy for backends that wrap the
    # array's buffer (torch.from_numpy warns about a read-only one)
    inputs = keras3.keras().tree.map_structure(_writable, request["inputs"])
    state, failure = model_state(model, inputs, framework=keras3, with_compile=compile)
    return {
        "state": asdict(state),
        "failure": asdict(failure) if failure else None,
        "warnings": warnings,
    }


def _writable(value: Any) -> Any:
    import numpy as np

    return np.array(value) if isinstance(value, np.ndarray) else value


def _warm_up() -> None:
    """Import what the first request needs before it comes (the parent is still saving the
    file and checking it in its own process): Keras's serializer imports TensorFlow when it is
    installed, even under JAX or torch, to test ``isinstance(obj, tf.TensorShape)`` (3.9 s of
    a first request under JAX, measured), and the loader imports h5py and the saving code."""

    from pytest_kerasmodel.frameworks import keras3

    k = keras3.keras()
    k.saving.serialize_keras_object(k.layers.Dense(1))


def serve(requests: Iterable[str], out: IO[str]) -> None:
    """Answer each request line with one line: the reloaded model's state or the failure."""
    from pytest_kerasmodel.frameworks import keras3

    _warm_up()
    out.write(json.dumps({"event": "ready", "backend": keras3.backend()}) + "\n")
    out.flush()
    for line in requests:
        if not line.strip():
            continue
        request = decode(json.loads(line))
        try:
            answer = _answer(request)
        except Exception as exc:  # the child's own failure: said, and the child goes on
            import traceback

            answer = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        out.write(json.dumps(encode(answer, request.get("array_dir"))) + "\n")
        out.flush()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    backend = args[0] if args else os.environ.get("KERAS_BACKEND", "tensorflow")
    os.environ["KERAS_BACKEND"] = backend
    # Keep the real stdout for the protocol; point fd 1 at stderr for everything else.
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(sys.stdin, protocol)
    return 0


if __name__ == "__main__":
    sys.exit(main())
