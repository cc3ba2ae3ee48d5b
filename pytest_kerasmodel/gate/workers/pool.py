"""A pool of isolated checking workers, so that every core checks while pytest reports.

Each worker is a :class:`~.isolation.WorkerRunner` as with one worker (its own time and memory
limit, crash containment, restart after a crash). The session sends the artifacts after the one
being reported to idle workers (:meth:`WorkerPool.prefetch`), in item order, and reads each answer
when that artifact's first item runs (:meth:`WorkerPool.run`): results, order and reports are
those of a one-worker run, only sooner.

Memory: an artifact is sent ahead only while what the requests in flight are expected to need, its
own included, fits in the share of physical memory one artifact may use (``memory_cap_mb``), so
that two large models are not loaded at once on a machine that holds one. The expectation is the
derived limit's formula without its floor (1536 MB + 7 x the artifact's size), never more than the
request's limit.

Start-up: the pool's workers are forked from one zygote (:mod:`.forkserver`) that imported h5py,
the checks and, when a check that needs Keras runs, Keras: a worker, and each restart after a
crash, a timeout or a memory kill, costs a fork instead of a Python start and a Keras import.
``fork=False`` (``--keras-no-fork``), or a machine without fork, spawns each worker as before.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pytest_kerasmodel.gate.protocol import KERAS_CHECKS, size_on_disk
from pytest_kerasmodel.gate.workers import forkserver
from pytest_kerasmodel.gate.workers.isolation import WorkerRunner, worker_env
from pytest_kerasmodel.options import expected_memory_mb


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def needs_keras(checks: Iterable[str]) -> bool:
    """Whether any of ``checks`` imports Keras (then the zygote imports it before forking)."""
    return any(check in KERAS_CHECKS for check in checks)


def default_size(checks: Iterable[str], *, reporting: bool = True) -> int:
    """The pool's size when ``keras_workers`` is not set: one worker per usable core, but one
    fewer in a pytest session (``reporting``) when no check that loads the model with Keras is
    collected (at least one).

    The file-only checks cost a few milliseconds an artifact, about what pytest's own process
    spends reporting the artifact's items; that process then keeps a core busy, and a worker on
    it would only compete with it (over 400 small artifacts, file-only, on 2 cores, side by side
    in bench_throughput: 3.16 s with one worker, 3.36 s with two). A load costs tens of
    milliseconds, and pytest mostly waits for the workers; ``kerasmodel gate`` reports with a
    few lines an artifact.
    """
    cores = usable_cores()
    if not reporting or needs_keras(checks):
        return cores
    return max(1, cores - 1)


#: requests each worker of the pool holds at once (see WorkerRunner): the second waits in its
#: pipe while the first is checked, so the worker never idles while pytest reads an answer
DEPTH = 2


class WorkerPool:
    def __init__(
        self,
        size: int,
        timeout: float,
        memory_limit_mb: int,
        memory_budget_mb: int | None,
        *,
        fork: bool = True,
        checks: Iterable[str] | None = None,
    ) -> None:
        """``fork``: fork the workers from a zygote where the platform can (else spawn each);
        ``checks``: the checks the session runs, when known (the zygote imports Keras if one
        needs it); None: the first request's checks decide."""
        self.forkserver: forkserver.ForkServer | None = None
        # under a hard limit that Keras's own import would mostly fill, a forked worker would
        # exec a fresh one anyway (forkserver._fork_worker): spawn without waiting for a zygote
        roomy = not memory_limit_mb or memory_limit_mb > 2 * forkserver.KERAS_DATA_MB
        env = worker_env()
        if fork and roomy and forkserver.available() and forkserver.safe_to_fork(env):
            keras = None if checks is None else needs_keras(checks)
            server = forkserver.ForkServer(env, preload_keras=keras)
            if server.start():
                self.forkserver = server
        self.runners = [
            WorkerRunner(timeout, memory_limit_mb, depth=DEPTH, forkserver=self.forkserver)
            for _ in range(max(1, size))
        ]
        self.memory_budget_mb = memory_budget_mb
        # artifact path -> the worker checking it, and the memory (MB) it is expected to need
        self._holding: dict[str, tuple[WorkerRunner, int]] = {}

    def in_flight_mb(self) -> int:
        """The memory the requests sent ahead are expected to need at once (MB): each worker
        checks its requests one after the other, so the largest of each worker's."""
        return sum(self._runner_mb(runner) for runner in self.runners)

    def _runner_mb(self, runner: WorkerRunner) -> int:
        """The largest expected need of the requests in ``runner``'s pipe (MB)."""
        queued = {r["path"] for r in runner.queued_requests()}
        return max([mb for p, (r, mb) in self._holding.items() if p in queued], default=0)

    def holds_path(self, path: str) -> bool:
        """Whether the artifact's request was sent ahead and its answer waits to be read."""
        return path in self._holding

    @staticmethod
    def _expected_mb(runner: WorkerRunner, request: dict[str, Any]) -> int:
        try:
            size = size_on_disk(Path(request["path"]))
        except OSError:
            size = 0
        limit = runner._limit_of(request)
        return min(expected_memory_mb(size), limit) if limit else expected_memory_mb(size)

    def prefetch(self, request: dict[str, Any]) -> bool:
        """Send ``request`` to the worker holding the fewest (an idle one first); False when
        every worker holds as many as it may (or memory says wait)."""
        self._decide(request)
        if self.holds_path(request["path"]):
            return True
        room = [r for r in self.runners if r.queued < r.depth]
        if not room:
            return False
        runner = min(room, key=lambda r: r.queued)
        expected = self._expected_mb(runner, request)
        # what is in flight with this one, at once: the largest of its worker's requests
        mine = self._runner_mb(runner)
        in_flight = self.in_flight_mb() - mine + max(mine, expected)
        busy = any(r.queued for r in self.runners)
        if busy and self.memory_budget_mb and in_flight > self.memory_budget_mb:
            return False
        if not runner.prefetch(request):  # not sent: run() will run it when asked
            return False
        self._holding[request["path"]] = (runner, expected)
        return True

    def drain(self) -> None:
        """Read the answers the workers have finished, without waiting (see
        :meth:`WorkerRunner.drain`)."""
        for runner in self.runners:
            runner.drain()

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        """The answer to ``request``: read from the worker it was sent to, or run now."""
        self._decide(request)
        held = self._holding.pop(request["path"], None)
        # not sent ahead: the worker holding the fewest (it answers those first and keeps them)
        runner = held[0] if held is not None else min(self.runners, key=lambda r: r.queued)
        answer = runner.run(request)
        # what that worker lost when it died is held no more
        self._holding = {
            p: h for p, h in self._holding.items() if h[0] is not runner or runner.holds_path(p)
        }
        return answer

    def _decide(self, request: dict[str, Any]) -> None:
        """The first request, when the session's checks were not known at the start (pytest
        collects, then ``-k`` deselects), says whether the zygote imports Keras."""
        if self.forkserver is not None and self.forkserver.preload_keras is None:
            self.forkserver.decide(needs_keras(request["checks"]))

    def close(self) -> None:
        self._holding.clear()
        if self.forkserver is not None:  # a session that ran no check: none was sent to a zygote
            self.forkserver.cancel_held()
        for runner in self.runners:
            runner.close()
        if self.forkserver is not None:
            self.forkserver.release()
            self.forkserver = None

    @property
    def started(self) -> int:
        return sum(r.started for r in self.runners)
