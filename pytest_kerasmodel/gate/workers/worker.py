"""The isolated worker: ``python -m pytest_kerasmodel.gate.workers.worker --memory-limit MB``.

It caps its own memory (:func:`limit_memory`), then reads one JSON request per line on stdin
(an artifact, the checks to run and a request id) and answers with one JSON event per line: each
check's start and result (from :func:`~pytest_kerasmodel.gate.runner.iter_checks`), then ``done``.
Anything a library prints goes to stderr, so it cannot corrupt the protocol on stdout.
Keras is imported only when a load or predictions check first needs it, then kept for the next
artifacts. A crash, hang or memory blow-up ends this process, not the pytest session.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import sys
import time
import traceback
from collections.abc import Iterable
from typing import IO, Any


def limit_memory(megabytes: int, hard_megabytes: int | None = None) -> None:
    """Cap the worker's data memory (RLIMIT_DATA: heap and private writable mappings, where
    every large allocation lands); beyond it allocations fail (MemoryError) instead of swapping.

    ``hard_megabytes`` (the start-up ``--memory-limit``) sets the hard limit too; later calls
    move only the soft limit, up or down below it, to the limit of the artifact being checked.
    Not RLIMIT_AS: TensorFlow and glibc reserve large address ranges they never touch, and under
    an address-space cap loading a model was measured ~20% slower.
    """
    hard = resource.getrlimit(resource.RLIMIT_DATA)[1]
    if hard_megabytes is not None and hard_megabytes > 0:
        hard = hard_megabytes * 1024 * 1024
    soft = megabytes * 1024 * 1024 if megabytes > 0 else hard
    if hard != resource.RLIM_INFINITY and (soft == resource.RLIM_INFINITY or soft > hard):
        soft = hard
    resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


def soft_limit_mb() -> int:
    """The data-memory limit in force (MB), 0 for none."""
    soft = resource.getrlimit(resource.RLIMIT_DATA)[0]
    return 0 if soft == resource.RLIM_INFINITY else soft // 1024**2


_status_fd: int | None = None
_status_pid = 0


def data_in_use_mb() -> int:
    """The worker's data memory now (VmData: what RLIMIT_DATA counts), 0 where unknown.

    Asked after every artifact: ``/proc/self/status`` is opened once per process and read again
    from its start (the kernel writes it anew on each read)."""
    global _status_fd, _status_pid
    try:
        if _status_fd is None or _status_pid != os.getpid():  # (a forked worker opens its own)
            _status_fd, _status_pid = os.open("/proc/self/status", os.O_RDONLY), os.getpid()
        text = os.pread(_status_fd, 1 << 14, 0)
    except OSError:
        return 0
    at = text.find(b"\nVmData:")
    if at < 0:
        return 0
    return int(text[at + 8 :].split(None, 1)[0]) // 1024


def run_as_batch() -> None:
    """Schedule this worker as a batch job (Linux ``SCHED_BATCH``: same share of the CPU, but
    waking up never preempts a running task). Each request written to an idle worker wakes it;
    as an ordinary task it would take the core from the pytest process that wrote it, which
    then waits to report (measured: 1.2 s of 400 writes' flushes on two busy cores, 0.15-0.55 s
    as batch)."""
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_BATCH"):
        # not allowed in some sandboxes (a seccomp profile): then it runs as it is
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


def _stderr_size() -> int | None:
    try:
        return os.fstat(2).st_size
    except OSError:
        return None


def done_marker(request_id: int) -> bytes:
    """How the line that ends the answer to request ``request_id`` begins (what :func:`serve`
    writes), so that a reader can tell a whole answer is in without parsing it."""
    return json.dumps({"id": request_id, "event": "done"})[:-1].encode()


def serve(requests: Iterable[str], out: IO[str]) -> None:
    """Answer each request line: one event line per check start and end, then ``done``."""

    from pytest_kerasmodel.gate.protocol import Request
    from pytest_kerasmodel.gate.runner import iter_checks

    request_id: Any = None

    def send(event: dict[str, Any]) -> None:
        out.write(json.dumps({"id": request_id, **event}) + "\n")
        out.flush()

    for line in requests:
        if not line.strip():
            continue
        start = time.perf_counter()
        fields = json.loads(line)
        request_id = fields.pop("id", None)
        # the artifact's time limit runs from here, not from when the request was written (a
        # worker of the pool may still have been starting): CLOCK_MONOTONIC is system-wide
        # and where its stderr stands: what it prints from here on is this artifact's (quoted
        # when it crashes), not the earlier requests' that waited in the pipe behind
        sys.stderr.flush()
        send({"event": "begin", "at": time.monotonic(), "stderr_at": _stderr_size()})
        try:
            limit_memory(int(fields.get("memory_limit_mb") or 0))
            for name, result, info in iter_checks(Request(**fields), notify=send):
                if result is None:
                    send({"event": "start", "check": name})
                else:
                    send(
                        {"event": "result", "check": name, "result": result.as_dict(), "info": info}
                    )
        except Exception:
            send({"event": "error", "traceback": traceback.format_exc()})
        send(
            {
                "event": "done",
                "elapsed": round(time.perf_counter() - start, 4),
                "pid": os.getpid(),
                "keras_imported": "keras" in sys.modules,
                "data_mb": data_in_use_mb(),
                "memory_limit_mb": soft_limit_mb(),
            }
        )


def run(requests: Iterable[str], protocol: IO[str], memory_limit_mb: int) -> None:
    """A worker's life, spawned (:func:`main`) or forked by the zygote (:mod:`.forkserver`):
    its hard memory limit, batch scheduling, then the requests until stdin closes."""
    limit_memory(memory_limit_mb, memory_limit_mb)
    run_as_batch()
    serve(requests, protocol)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_kerasmodel.gate.workers.worker")
    parser.add_argument("--memory-limit", type=int, default=0, metavar="MB")
    args = parser.parse_args(argv)
    # Keep the real stdout for the protocol; point fd 1 at stderr for everything else.
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    run(sys.stdin, protocol, args.memory_limit)
    # Nothing is left to write: end without the interpreter's teardown of Keras and its backend,
    # which the pytest process would wait for when it closes the worker (measured: 0.9 s after
    # a load under TensorFlow)
    protocol.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
