"""Running an artifact's checks: in the isolated worker process (default) or in this process.

One worker serves every artifact of a pytest process (of each xdist worker under pytest-xdist),
so Keras is imported at most once. When it crashes, hangs past the time limit or is killed for
memory, the artifact it was checking gets a failed result saying so, and the next artifact gets
a fresh worker.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from pytest_kerasmodel.frameworks import LOADER_ENV, TF_KERAS
from pytest_kerasmodel.gate.protocol import (
    DEPENDS,
    FAILED,
    SKIPPED,
    Request,
    nothing_to_compare,
    size_on_disk,
)

if TYPE_CHECKING:
    from pytest_kerasmodel.gate.workers.forkserver import ForkServer


class WorkerProcess(Protocol):
    """What a runner uses of its worker: a spawned ``subprocess.Popen`` or a
    :class:`~.forkserver.ForkedWorker` (whose ``wait`` says None when its status is unknowable)."""

    stdin: IO[bytes] | None
    stdout: IO[bytes] | None

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int | None: ...

    def kill(self) -> None: ...


def worker_env(backend: str | None = None) -> dict[str, str]:
    """The environment of a checking worker (and of the zygote its pool forks workers from):
    this process's, unbuffered, with TensorFlow's start-up logs quieted and, for a worker of
    ``--keras-backends``, that backend's Keras."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    if backend == TF_KERAS:  # tf-keras (Keras 2) runs on TensorFlow, as tf.keras
        env.update({LOADER_ENV: TF_KERAS, "TF_USE_LEGACY_KERAS": "1"})
        env.pop("KERAS_BACKEND", None)
    elif backend is not None:
        env["KERAS_BACKEND"] = backend
        env.pop(LOADER_ENV, None)
    return env


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


# Longest time importing Keras (and TensorFlow) in the worker may take, not counted per artifact.
IMPORT_TIMEOUT = 300.0


def _culprit(check: str) -> str:
    if check in ("load", "predictions"):
        return "Keras (or the HDF5 library under it)"
    return "the HDF5 library"


def dependents(check: str) -> set[str]:
    """``check`` and every check that needs it."""
    found = {check}
    changed = True
    while changed:
        changed = False
        for name, needs in DEPENDS.items():
            if name not in found and found & set(needs):
                found.add(name)
                changed = True
    return found


class InProcessRunner:
    """``--keras-no-isolation``: checks run in the pytest process (trusted artifacts only)."""

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        from pytest_kerasmodel.gate.runner import check_artifact

        return check_artifact(request)

    def close(self) -> None:
        pass


@dataclass
class _Sent:
    """A request written to the worker whose answer has not been read yet."""

    request: dict[str, Any]
    request_id: int
    sent_at: float  # the worker starts on it at once: it is idle whenever a request is sent
    stderr_since: int  # where the worker's stderr stood, to quote what it printed since


class WorkerRunner:
    """Checks run in ``python -m pytest_kerasmodel.gate.workers.worker``, with a time and memory
    limit,
    or in a worker forked by ``forkserver`` (the pool's zygote), the same in every other way.

    :meth:`prefetch` sends the next artifacts' requests before this artifact's items are
    reported, so the worker checks while pytest reports (on two cores, the two overlap);
    :meth:`run` then reads the answer already computed. Up to ``depth`` requests wait in the
    worker's pipe, answered in the order sent: with two, a worker whose checks take about as
    long as pytest's reporting of them never waits for pytest to read an answer before it
    gets its next request.
    """

    def __init__(
        self,
        timeout: float,
        memory_limit_mb: int,
        backend: str | None = None,
        depth: int = 1,
        forkserver: ForkServer | None = None,
    ) -> None:
        self.timeout = timeout
        self.depth = max(1, depth)
        # the worker's KERAS_BACKEND (--keras-backends); None: the pytest process's own
        self.backend = backend
        # the worker's hard data-memory limit (0: none); each request may set a lower soft one
        self.memory_limit_mb = memory_limit_mb
        self.data_mb = 0  # the worker's data memory after its last request
        # where this runner's workers are forked from; None: spawned (also once it is gone)
        self.forkserver = forkserver
        self.proc: WorkerProcess | None = None
        self.stderr: IO[bytes] | None = None
        self.started = 0
        self._buffer = b""
        self._deadline = 0.0
        self._paused_deadline = 0.0
        self._begun = False
        self._request_id = 0
        self._queue: deque[_Sent] = deque()  # written, answers not read yet: oldest first
        # path -> (request, answer): answers read before their items asked (out of order)
        self._done: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}

    def start(self) -> WorkerProcess:
        """The running worker, started if there is none: forked by the zygote when there is
        one, else spawned."""
        if self.proc is not None and self.proc.poll() is None:
            return self.proc
        # A private, anonymous file: the worker's library noise, read back to explain a crash.
        if self.stderr is not None:
            self.stderr.close()
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the worker
        self._buffer = b""
        forked = None
        if self.forkserver is not None:
            forked = self.forkserver.fork(self.memory_limit_mb, self.stderr)
            if forked is None:  # the zygote is gone: spawn from now on
                self.forkserver = None
        if forked is not None:
            self.proc = forked
        else:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pytest_kerasmodel.gate.workers.worker",
                    "--memory-limit",
                    str(self.memory_limit_mb),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.stderr,
                env=worker_env(self.backend),
            )
        self.started += 1
        self.data_mb = 0
        return self.proc

    def _stderr_tail(self, since: int) -> str:
        if self.stderr is None:
            return ""
        self.stderr.seek(since)
        text = self.stderr.read().decode("utf-8", "replace")
        lines = [line for line in text.splitlines() if line.strip()]
        return "\n".join(lines[-8:])

    def _read_line(self, proc: WorkerProcess, deadline: float) -> bytes | None:
        """One line from the worker, or None on EOF; raises TimeoutError past the deadline."""
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        while b"\n" not in self._buffer:
            # what the worker wrote in time is read even when the reader comes late (prefetch)
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                if time.monotonic() >= deadline:
                    raise TimeoutError
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _limit_of(self, request: dict[str, Any]) -> int:
        """The data-memory limit (MB) the worker applies while it checks ``request``."""
        asked = int(request.get("memory_limit_mb") or 0)
        if self.memory_limit_mb and (not asked or asked > self.memory_limit_mb):
            return self.memory_limit_mb
        return asked

    @property
    def queued(self) -> int:
        """How many requests were sent whose answers are not read yet."""
        return len(self._queue)

    def queued_requests(self) -> list[dict[str, Any]]:
        """The requests sent whose answers are not read yet, in the order they are answered."""
        return [sent.request for sent in self._queue]

    def holds_path(self, path: str) -> bool:
        """Whether an answer for the artifact at ``path`` waits here: in the worker's pipe, or
        read already (before its items asked for it)."""
        return path in self._done or any(s.request["path"] == path for s in self._queue)

    def _needs_replacing(self, request: dict[str, Any]) -> bool:
        """A worker holding more than half the request's memory limit (what a large artifact
        before left allocated) is replaced first, so that leftovers never count against a
        smaller artifact's limit."""
        limit = self._limit_of(request)
        return self.proc is not None and bool(limit) and self.data_mb > limit // 2

    def _prepare(self, request: dict[str, Any]) -> _Sent:
        """Start the worker if needed (replacing it first, see :meth:`_needs_replacing`) and
        number the request; nothing is written yet."""
        if self._needs_replacing(request):
            self._kill()
        self.start()
        assert self.stderr is not None
        self.stderr.seek(0, os.SEEK_END)
        self._request_id += 1
        return _Sent(request, self._request_id, time.monotonic(), self.stderr.tell())

    def _write(self, sent: _Sent) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({**sent.request, "id": sent.request_id}) + "\n").encode())
        self.proc.stdin.flush()

    def prefetch(self, request: dict[str, Any]) -> bool:
        """Send ``request`` now, behind those in flight; a later :meth:`run` of the same request
        reads its answer. False when it was not sent: ``depth`` requests are in flight, or the
        worker must be replaced first or has died (the requests in flight would be lost), or it
        cannot be written to."""
        if self._queue and (
            len(self._queue) >= self.depth
            or self._needs_replacing(request)
            or self.proc is None
            or self.proc.poll() is not None  # died: a fresh worker would not hold those
        ):
            return False
        try:
            sent = self._prepare(request)
            self._write(sent)
        except OSError:  # the worker is gone: run() starts a fresh one and says what happened
            self._queue.clear()
            return False
        self._queue.append(sent)
        return True

    def drain(self) -> None:
        """Read the answers the worker has finished, without waiting for any, and keep them for
        when they are asked: the worker then has room for more while the pytest process does
        something else (collects)."""
        while self._queue and self._finished(self._queue[0]):
            self._keep_oldest()

    def _keep_oldest(self) -> None:
        """Read the answer of the oldest request in the pipe and keep it until it is asked."""
        ahead = self._queue.popleft()
        self._done[ahead.request["path"]] = (ahead.request, self._answer(ahead.request, ahead))

    def _finished(self, sent: _Sent) -> bool:
        """Whether the worker's whole answer to ``sent`` is in (what it wrote is read into the
        buffer here, without waiting), or the worker ended (then :meth:`_answer` says how)."""
        from pytest_kerasmodel.gate.workers.worker import done_marker

        if self.proc is None or self.proc.stdout is None:
            return False
        fd = self.proc.stdout.fileno()
        while select.select([fd], [], [], 0)[0]:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return True
            self._buffer += chunk
        return done_marker(sent.request_id) in self._buffer

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run the request; after a crash, run the checks that did not depend on the crashed one
        in a fresh worker, within the same time limit.

        Answers to requests sent before this one that no item asked for yet (items run out of
        order) are read first and kept for when they are asked. A request in flight behind one
        whose worker dies is lost with it, and runs in a fresh worker when asked."""
        done = self._done.pop(request["path"], None)
        if done is not None and done[0] == request:
            return done[1]
        while self._queue and self._queue[0].request != request:  # answered first: kept
            self._keep_oldest()
        # this request's, or None: not sent here, or lost with a worker that died meanwhile
        return self._answer(request, self._queue.popleft() if self._queue else None)

    def _answer(self, request: dict[str, Any], sent: _Sent | None) -> dict[str, Any]:
        """Read the answer of ``sent`` (None: send ``request`` now), rerunning after a crash."""
        now = time.monotonic()
        start = sent.sent_at if sent is not None else now
        # until the worker says it has begun (a worker of the pool may still be starting), the
        # start-up allowance; from its "begin" event, the artifact's own time limit. Counted from
        # now, not from when the request was sent: one that waited in the pipe behind others
        # began no earlier than their answers were read, and they are read by now
        self._deadline = now + max(self.timeout, IMPORT_TIMEOUT)
        self._begun = False
        response: dict[str, Any] = {"path": request["path"], "info": {}, "checks": {}}
        todo = list(request["checks"])
        while todo:
            running, death, timed_out = self._attempt(dict(request, checks=todo), response, sent)
            sent = None
            if not death:
                break
            lost = dependents(running) if running else set(todo)
            for check in todo:
                if check in response["checks"]:
                    continue
                details: dict[str, Any] = {}
                if check == running or not running:
                    text = death
                elif reason := nothing_to_compare(check, Request(**request)):
                    response["checks"][check] = {
                        "status": SKIPPED,
                        "message": reason,
                        "details": {},
                    }
                    continue
                elif timed_out or check in lost:
                    cause = "timed out" if timed_out else "crashed the worker"
                    text = f"cannot be verified: the {running} check {cause}"
                    details = {"blocked_by": running}
                else:
                    continue
                response["checks"][check] = {"status": FAILED, "message": text, "details": details}
            todo = [c for c in todo if c not in response["checks"]]
            if timed_out:
                break
        if not response["info"]:  # the worker died before it could say
            response["info"] = {"format": "unknown", "size": size_on_disk(Path(request["path"]))}
        # the worker's own time when it finished (a prefetched answer may be read much later)
        response["elapsed"] = response.get("elapsed_worker", round(time.monotonic() - start, 4))
        return response

    def _attempt(
        self, request: dict[str, Any], response: dict[str, Any], sent: _Sent | None = None
    ) -> tuple[str, str, bool]:
        """One worker round trip, filling ``response``: (running check, death text, timed out).

        ``sent``: the request was written already (prefetched); only its answer is read here.
        """
        running = ""
        error = ""
        written = sent is not None
        if sent is None:
            sent = self._prepare(request)
        proc, since = self.proc, sent.stderr_since
        limit = self._limit_of(sent.request)
        assert proc is not None
        try:
            if not written:
                self._write(sent)
            while True:
                line = self._read_line(proc, self._deadline)
                if line is None:
                    if self._never_started(proc):  # the zygote ended first: spawn one
                        return self._attempt(sent.request, response)
                    return running, self._death_message(proc, since, running, limit), False
                event = json.loads(line)
                if event.get("id") != sent.request_id:  # left over from an earlier request
                    continue
                kind = event["event"]
                if kind == "begin":  # the worker has the request: its time limit runs now
                    if event.get("stderr_at") is not None:  # what it prints from here on
                        since = int(event["stderr_at"])
                    if not self._begun:  # a rerun after a crash keeps the first one's limit
                        self._begun = True
                        self._deadline = float(event["at"]) + self.timeout
                elif kind == "import":  # Keras's start-up is not the artifact's time
                    self._paused_deadline = self._deadline
                    self._deadline = time.monotonic() + max(IMPORT_TIMEOUT, self.timeout)
                elif kind == "imported":
                    self._deadline = self._paused_deadline + event.get("seconds", 0.0)
                elif kind == "start":
                    running = event["check"]
                elif kind == "result":
                    response["checks"][event["check"]] = event["result"]
                    for key, value in event["info"].items():  # a rerun knows less: keep the best
                        if value not in (None, "", 0, "unknown") or key not in response["info"]:
                            response["info"][key] = value
                    running = ""
                elif kind == "error":  # a "done" event follows
                    error = f"the gate's worker failed:\n{event['traceback']}"
                elif kind == "done":
                    self.data_mb = int(event.get("data_mb") or 0)
                    response["elapsed_worker"] = event["elapsed"]
                    response["worker"] = {
                        "pid": event["pid"],
                        "keras": event["keras_imported"],
                        "memory_limit_mb": event.get("memory_limit_mb"),
                        "data_mb": self.data_mb,
                    }
                    return running, error, False
        except TimeoutError:
            self._kill()
            where = f" in the {running} check" if running else ""
            return (
                running,
                f"timed out{where}: checking this artifact took longer than {self.timeout:g} s "
                "(keras_timeout); the worker was stopped",
                True,
            )
        except BrokenPipeError:
            if self._never_started(proc):
                return self._attempt(sent.request, response)
            return running, self._death_message(proc, since, running, limit), False

    def _never_started(self, proc: WorkerProcess) -> bool:
        """Whether ``proc`` was to be forked by a zygote that ended before it could: then this
        runner spawns its workers from now on, and the request goes to one."""
        from pytest_kerasmodel.gate.workers.forkserver import ForkedWorker

        if not (isinstance(proc, ForkedWorker) and proc.never_forked()):
            return False
        self.forkserver = None
        self.proc = None
        self._queue.clear()  # what was written to it is lost with it: run when asked
        self.started -= 1  # it never ran
        return True

    def _death_message(self, proc: WorkerProcess, since: int, running: str, limit: int) -> str:
        try:
            returncode = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._kill()
            returncode = -signal.SIGKILL
        tail = self._stderr_tail(since)
        where = f" in the {running} check" if running else ""
        shown = f"{limit} MB" if limit else "unset"
        self.proc = None
        self._queue.clear()  # what was written to it is lost with it
        if returncode is None:  # a forked worker whose zygote ended: nobody could reap it
            text = (
                f"the worker ended while reading this file{where}; its exit status is unknown "
                "(the fork server it was forked from ended first)"
            )
        elif returncode < 0:
            name = _signal_name(returncode)
            if name == "SIGKILL":
                text = (
                    f"the worker was killed (SIGKILL) while reading this file{where}, most "
                    f"likely for memory (the worker's limit for this artifact is {shown}, "
                    "keras_memory_limit)"
                )
            else:
                text = f"{_culprit(running)} crashed while reading this file{where} (signal {name})"
                if running in ("load", "predictions"):
                    # TensorFlow can die by a signal, not MemoryError, when an allocation fails
                    text += (
                        f"; TensorFlow also ends this way when the model needs more memory than "
                        f"the worker may use (its limit for this artifact is {shown}, "
                        "keras_memory_limit)"
                    )
        else:
            text = f"the worker exited with status {returncode} while reading this file{where}"
        return text + (f"\nlast messages of the worker:\n{tail}" if tail else "")

    def _kill(self) -> None:
        self._queue.clear()  # what was written to it is lost with it
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def close(self) -> None:
        self._done.clear()
        if self._queue:  # answers nobody will read: do not wait for them
            self._kill()
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._kill()
        self.proc = None
        if self.stderr is not None:
            self.stderr.close()
            self.stderr = None
