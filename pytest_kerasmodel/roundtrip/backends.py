"""Reload saved files under other Keras backends: one child process per backend, reused.

Keras picks its backend when it is first imported (``KERAS_BACKEND``), so a file written under
TensorFlow can be reloaded under JAX or torch only in another process. :func:`child` keeps one
such process per backend for the life of this process (``python -m pytest_kerasmodel.roundtrip.child
jax``, :mod:`pytest_kerasmodel.roundtrip.child`), so the import of Keras and the backend is paid
once per backend, not per call. The
protocol is the gate worker's: one JSON request per line on the child's stdin, one JSON answer
per line on its stdout (library noise goes to stderr). Arrays larger than :data:`INLINE_BYTES`
(the inputs, the reloaded model's outputs, weights and optimizer slots) do not travel through the
pipe: each side writes them as ``.npy`` files into the roundtrip's temporary folder and sends their
paths, and the reader memory-maps them; small ones travel as base64 of their bytes with dtype and
shape (:func:`encode`, :func:`decode`). Nothing is pickled.

A request names a saved file, its roundtrip format and the inputs; the answer is the reloaded
model as a :class:`~pytest_kerasmodel.roundtrip.run.ModelState` (outputs, every weight and
variable, optimizer and compile state, metric names, config, layer attributes) or how loading
failed, which :func:`~pytest_kerasmodel.roundtrip.run.compare_states` compares with the original.

The pool is module state, not ``config.stash``: ``assert_roundtrip`` is a plain function that
also runs outside pytest; the children are closed at interpreter exit (:func:`close_all`).
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from pytest_kerasmodel.frameworks import KNOWN_BACKENDS
from pytest_kerasmodel.roundtrip.report import FormatDiff, LoadFailure
from pytest_kerasmodel.roundtrip.state import ModelState, compare_states

if TYPE_CHECKING:  # pragma: no cover
    from pytest_kerasmodel.frameworks.base import KerasAdapter

#: how long one request (load, call, describe) may take in a child, import excluded
REQUEST_TIMEOUT = 300.0


#: how long a child may take to import Keras and its backend
IMPORT_TIMEOUT = 300.0


#: arrays up to this many bytes travel inline (base64 in the JSON line); larger ones as files
INLINE_BYTES = 4096


def encode(value: Any, folder: str | os.PathLike[str] | None = None) -> Any:
    """``value`` as JSON-ready data: tuples as lists, numpy scalars as Python numbers, numpy
    arrays as ``{"__ndarray__": base64, dtype, shape}``, or, with ``folder``, each array larger
    than :data:`INLINE_BYTES` written there as a ``.npy`` file and sent as
    ``{"__npy__": path}``: the other side memory-maps it (:func:`decode`), so a model's
    weights cross between processes without passing through the pipe or base64 text."""
    import numpy as np

    written = [0]

    def walk(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            array = np.require(value, requirements="C")  # keeps 0-d arrays 0-d
            if folder is not None and array.nbytes > INLINE_BYTES and array.dtype.kind != "O":
                os.makedirs(folder, exist_ok=True)
                path = os.path.join(os.fspath(folder), f"{written[0]}.npy")
                written[0] += 1
                np.save(path, array, allow_pickle=False)
                return {"__npy__": path}
            return {
                "__ndarray__": base64.b64encode(array.tobytes()).decode("ascii"),
                "dtype": array.dtype.str,
                "shape": list(array.shape),
            }
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, dict):
            return {str(k): walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v) for v in value]
        return value

    return walk(value)


def decode(value: Any) -> Any:
    """The inverse of :func:`encode`: a ``.npy`` file is memory-mapped read-only (never
    unpickled), so its pages are read only when compared."""
    if isinstance(value, dict):
        if "__ndarray__" in value:
            import numpy as np

            data = base64.b64decode(value["__ndarray__"])
            return np.frombuffer(data, dtype=np.dtype(value["dtype"])).reshape(value["shape"])
        if "__npy__" in value:
            import numpy as np

            return np.load(value["__npy__"], mmap_mode="r", allow_pickle=False)
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


class ChildDied(RuntimeError):
    """The child process ended or stopped answering; the message says how."""


class BackendChild:
    """One ``python -m pytest_kerasmodel.roundtrip.child BACKEND`` process, started on first use."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.proc: subprocess.Popen[bytes] | None = None
        self.stderr: IO[bytes] | None = None
        self.started = 0
        self.requests = 0
        self._buffer = b""
        self._imported = False

    def start(self) -> None:
        """Start the child (it imports Keras at once, while the parent works on)."""
        if self.proc is not None and self.proc.poll() is None:
            return
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the child
        self._buffer = b""
        self._imported = False
        env = dict(
            os.environ, KERAS_BACKEND=self.backend, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="3"
        )
        env.pop("TF_USE_LEGACY_KERAS", None)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytest_kerasmodel.roundtrip.child", self.backend],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            env=env,
        )
        self.started += 1

    def send(self, request: dict[str, Any]) -> None:
        """Write one request; its answer is read by :meth:`receive`."""
        self.start()
        assert self.proc is not None and self.proc.stdin is not None
        self.requests += 1
        try:
            self.proc.stdin.write((json.dumps(encode(request)) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise ChildDied(self._death("while a request was sent")) from None

    def receive(self) -> dict[str, Any]:
        """The answer to the request sent last (the child's import is not counted)."""
        assert self.proc is not None
        deadline = time.monotonic() + (REQUEST_TIMEOUT if self._imported else IMPORT_TIMEOUT)
        while True:
            line = self._read_line(deadline)
            event = json.loads(line)
            if event.get("event") == "ready":
                self._imported = True
                deadline = time.monotonic() + REQUEST_TIMEOUT
                continue
            return dict(decode(event))

    def _read_line(self, deadline: float) -> bytes:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(0.0, left))
            if not ready:
                if time.monotonic() >= deadline:
                    self.kill()
                    raise ChildDied(
                        f"the {self.backend} child process did not answer within "
                        f"{REQUEST_TIMEOUT:g} s and was stopped"
                    )
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                raise ChildDied(self._death("while it was reloading the model"))
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _death(self, when: str) -> str:
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            code = -9
        tail = ""
        if self.stderr is not None:
            self.stderr.seek(0)
            lines = [ln for ln in self.stderr.read().decode("utf-8", "replace").splitlines() if ln]
            tail = "\n".join(lines[-8:])
        self.proc = None
        how = f"by signal {-code}" if code < 0 else f"with status {code}"
        return f"the {self.backend} child process ended {how} {when}" + (
            f"; its last messages:\n{tail}" if tail else ""
        )

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
        self.proc = None
        if self.stderr is not None:
            self.stderr.close()
            self.stderr = None


_CHILDREN: dict[str, BackendChild] = {}


def child(backend: str) -> BackendChild:
    """The session's child process for ``backend`` (created, not yet started, on first use)."""
    found = _CHILDREN.get(backend)
    if found is None:
        found = _CHILDREN[backend] = BackendChild(backend)
    return found


@atexit.register
def close_all() -> None:
    """Close every child process this process started."""
    for found in list(_CHILDREN.values()):
        found.close()
    _CHILDREN.clear()


def prestart(backends: Iterable[str]) -> list[str]:
    """Start the children of ``backends`` now, without waiting for the first roundtrip: they
    import Keras and their backend (and TensorFlow, which Keras's serializer imports whenever
    it is installed) while the tests build and train their models. This process's own backend
    (``KERAS_BACKEND``, or Keras's if it is imported) and ``tf_keras`` are left out. Returns
    the backends started."""
    here = os.environ.get("KERAS_BACKEND") or "tensorflow"
    keras = sys.modules.get("keras")
    if keras is not None:
        here = str(keras.config.backend())
    started = [b for b in dict.fromkeys(backends) if b in KNOWN_BACKENDS and b != here]
    for backend in started:
        child(backend).start()
    return started


def class_locations(objects: dict[str, Any] | None) -> dict[str, str]:
    """``custom_objects`` as ``{name: "module:qualname"}``, for the child to import."""
    found: dict[str, str] = {}
    for name, obj in (objects or {}).items():
        module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
        if module and qualname and "<locals>" not in qualname and module != "__main__":
            found[name] = f"{module}:{qualname}"
    return found


def model_modules(model: Any) -> list[str]:
    """The modules that define the model's non-Keras classes (their registration runs when
    they are imported), for the child to import before it loads the file."""
    from pytest_kerasmodel.frameworks import keras3

    modules = []
    for _, layer in keras3.iter_layers(model):
        module = type(layer).__module__
        if not module.startswith(("keras.", "keras_hub.", "tf_keras.")) and module != "__main__":
            modules.append(module)
    for obj in (getattr(model, "optimizer", None), getattr(model, "loss", None)):
        module = getattr(type(obj), "__module__", "")
        if obj is not None and not module.startswith(("keras.", "builtins")):
            modules.append(module)
    return list(dict.fromkeys(modules))


@dataclass
class Pending:
    """Requests sent to the backends' children for one saved file, answers not read yet."""

    results: list[FormatDiff]
    sent: list[tuple[FormatDiff, Any]]


def send_to_backends(
    model: Any,
    fmt: str,
    path: str,
    inputs: Any,
    targets: list[str],
    *,
    framework: KerasAdapter,
    custom_objects: dict[str, Any] | None,
    compile: bool,
) -> Pending:
    """Ask each backend's child process to reload the saved file (they all work at once).
    ``framework`` is the adapter of ``model``'s Keras
    (:func:`~pytest_kerasmodel.frameworks.module_for`)."""
    from pytest_kerasmodel.frameworks import keras3

    arrays = os.path.join(os.path.dirname(path), "arrays")
    request = {
        "format": fmt,
        "path": path,
        "inputs": encode(inputs, os.path.join(arrays, "inputs")),  # written once for all
        "compile": compile,
        "custom_objects": class_locations(custom_objects),
        "modules": model_modules(model),
        "sys_path": [p for p in sys.path if p],  # where those modules are, as of now
    }
    pending = Pending([], [])
    for backend in targets:
        result = FormatDiff(format=fmt, file=framework.FORMAT_FILES[fmt], backend=backend)
        pending.results.append(result)
        if fmt not in keras3.FORMATS:  # a tf-keras SavedModel
            result.failure = LoadFailure(
                "load",
                "NotAKerasFile",
                "Keras 3's load_model cannot load a SavedModel as a Keras model (only tf-keras "
                "can); keras.layers.TFSMLayer(folder) wraps it for inference only",
                hint="to move to Keras 3, save the model as .keras or .h5 with tf-keras and "
                "check those (formats=('keras', 'h5'))",
            )
            continue
        worker = child(backend)
        try:
            worker.send({**request, "array_dir": os.path.join(arrays, backend)})
        except ChildDied as exc:
            result.failure = LoadFailure("load", "ChildDied", str(exc))
            continue
        pending.sent.append((result, worker))
    return pending


def receive_from_backends(
    pending: Pending,
    original: ModelState,
    *,
    fmt: str,
    rtol: float,
    atol: float,
    compile: bool,
) -> list[FormatDiff]:
    """Read each child's answer and compare the model it reloaded with the original."""
    for result, worker in pending.sent:
        try:
            answer = worker.receive()
        except ChildDied as exc:
            result.failure = LoadFailure("load", "ChildDied", str(exc))
            continue
        if "error" in answer:
            result.failure = LoadFailure(
                "load", "ChildError", f"{answer['error']}\n{answer.get('traceback', '')}"
            )
            continue
        result.warnings = list(answer.get("warnings") or [])
        if answer.get("failure"):
            result.failure = LoadFailure(**answer["failure"])
        if "state" in answer:
            new = ModelState(**answer["state"])
            compare_states(original, new, result, fmt=fmt, rtol=rtol, atol=atol, compile=compile)
    return pending.results
