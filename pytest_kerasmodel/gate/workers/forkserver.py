"""The checking workers' fork server ("zygote"): workers forked from one warm process.

A worker spawned with ``python -m pytest_kerasmodel.gate.workers.worker`` starts Python, then
imports
numpy, h5py and, at its first load check, Keras and TensorFlow (about 4 s of CPU here). A pool of
N workers paid that N times, and every restart after a crash, a timeout or a memory kill paid it
again. The zygote is started once per pool, with the environment a spawned worker gets
(:func:`~.isolation.worker_env`); it imports h5py, the checks' modules and, when the session
runs a check that needs Keras, Keras itself (:func:`preload`), then forks one worker per request:
a worker then costs a fork, not a Python start and an import.

Each forked worker is the same isolated process as a spawned one (:func:`.worker.run`: the same
protocol on its own pipes, its own stderr file, RLIMIT_DATA set in the child, ``SCHED_BATCH``).
The pytest process is not its parent, so the zygote reaps its children and reports each one's exit
status (``-N`` for a signal, as :class:`subprocess.Popen` says it) over the socket the fork
requests came on; :class:`ForkedWorker` answers ``poll``/``wait``/``kill`` like a ``Popen``.

Not :mod:`multiprocessing`'s forkserver context: its server takes the pytest process's
environment (no ``PYTHONUNBUFFERED``, no ``TF_CPP_MIN_LOG_LEVEL`` without changing
``os.environ``), a child's stdio is not its own pipes, and its children run a pickled target
rather than the worker's protocol.

Forking after ``import keras`` is safe because the zygote never runs a TensorFlow op: importing
Keras 3 on TensorFlow 2.21 starts no thread (the one extra thread is OpenBLAS's pool, which
re-creates itself after a fork), and TensorFlow's runtime (thread pools, devices) starts in each
worker at its first load. Measured here: load, predictions and compile checks in forked workers
give the spawned workers' verdicts.

A process that runs one gate session after another (pytester's in-process runs, repeated
``pytest.main`` calls) keeps its pool's zygote when the pool closes (:meth:`ForkServer.release`):
the next pool whose workers get the same environment (pytest's per-test variables aside) forks
from it instead of starting Python and importing Keras again, and the process ends the zygotes
it kept when it exits (:func:`close_kept`). A zygote is kept only once every worker it forked
has been reaped, and one that imported Keras serves only a pool that needs Keras.

Not on JAX nor tf-keras (:func:`safe_to_fork`): there the workers are spawned, as before.
Linux only (:func:`available`): macOS forks badly after system frameworks are loaded, and the
socket's ``SOCK_SEQPACKET`` is Linux's.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from typing import IO, Any

from pytest_kerasmodel.frameworks import LOADER_ENV, TF_KERAS

#: the backends whose ``import keras`` starts no thread, so that forking after it is safe. Measured
#: (threads in /proc/self/task after ``import keras``, OpenBLAS's one pool thread aside): none on
#: TensorFlow 2.21 and torch 2.13 (load and predict then work in a forked child); one native thread
#: on JAX 0.10.2 and one after ``import tf_keras``: the default pool spawns its workers there, as
#: before, since a thread holding a lock at the fork would leave the child waiting on it forever.
FORK_SAFE_BACKENDS = ("tensorflow", "torch")
#: the zygote's data memory (RLIMIT_DATA's count) once Keras is imported: 293 MB measured with
#: Keras 3.15 on TensorFlow 2.21 (95 MB with h5py and the checks alone)
KERAS_DATA_MB = 300
_MESSAGE_BYTES = 4096
#: pytest's own variables, which differ from one test (and inner session) to the next and which
#: no check reads: two environments differing only in these fork the same workers
PER_TEST_ENV = ("PYTEST_CURRENT_TEST", "PYTEST_DEBUG_TEMPROOT")
#: how many idle zygotes a process keeps for its next pools (the oldest is ended first)
KEEP_AT_MOST = 4
#: the idle zygotes this process kept, oldest first
_KEPT: list[ForkServer] = []


def available() -> bool:
    """Whether workers can be forked from a zygote here (Linux, with ``socket.send_fds``)."""
    return (
        sys.platform.startswith("linux")
        and hasattr(os, "fork")
        and hasattr(socket, "send_fds")
        and hasattr(socket, "SOCK_SEQPACKET")
    )


def keras_backend(env: dict[str, str]) -> str:
    """The backend Keras picks in a process of environment ``env``, without importing it:
    ``KERAS_BACKEND``, else ``keras.json``'s under ``KERAS_HOME`` (``~/.keras``), else
    ``tensorflow``."""
    if env.get("KERAS_BACKEND"):
        return env["KERAS_BACKEND"]
    home = env.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json"), encoding="utf-8") as fh:
            return str(json.load(fh).get("backend") or "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def same_workers(env: dict[str, str], other: dict[str, str]) -> bool:
    """Whether zygotes of environments ``env`` and ``other`` fork the same workers: equal but
    for :data:`PER_TEST_ENV`."""
    return {k: v for k, v in env.items() if k not in PER_TEST_ENV} == {
        k: v for k, v in other.items() if k not in PER_TEST_ENV
    }


def _take_kept(env: dict[str, str], keras: bool) -> ForkServer | None:
    """A kept zygote, alive, for workers of ``env``, that imported Keras (``keras``) or not;
    removed from those kept. Dead ones are dropped on the way."""
    for server in list(_KEPT):
        if not server.alive():
            _KEPT.remove(server)
            server.close()
        elif bool(server.preload_keras) == keras and same_workers(server.env, env):
            _KEPT.remove(server)
            return server
    return None


def _keep(server: ForkServer) -> None:
    if not _KEPT:
        atexit.unregister(close_kept)  # once, however many times the list empties
        atexit.register(close_kept)
    _KEPT.append(server)
    while len(_KEPT) > KEEP_AT_MOST:
        _KEPT.pop(0).close()


def close_kept() -> None:
    """End every zygote this process kept (at its exit: ``atexit``)."""
    while _KEPT:
        _KEPT.pop().close()


def safe_to_fork(env: dict[str, str]) -> bool:
    """Whether workers of environment ``env`` may be forked after Keras is imported: Keras 3 on
    a backend of :data:`FORK_SAFE_BACKENDS`, not tf-keras."""
    if env.get(LOADER_ENV) == TF_KERAS:
        return False
    return keras_backend(env) in FORK_SAFE_BACKENDS


class ForkServer:
    """The pytest side of one zygote: starts it, asks it for workers, learns their exit status.

    Fork requests are not waited for: the pipes are the pytest process's from the start, so a
    request written to a worker whose zygote is still importing Keras waits in the pipe, and a
    pool can start its workers without blocking collection.

    ``preload_keras``: whether the zygote imports Keras before it forks; None: not known yet
    (the gate starts its pool while pytest collects, before ``-k`` has deselected anything),
    then fork requests wait here until :meth:`decide` says.
    """

    def __init__(self, env: dict[str, str], preload_keras: bool | None) -> None:
        self.env = env
        self.preload_keras = preload_keras
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        # the zygote's own library noise (its imports'), kept to explain a start-up failure
        self.stderr: IO[bytes] | None = None
        self._requests = 0
        self._unanswered = 0  # fork requests sent to the zygote that it has not answered yet
        # fork requests waiting for decide(): (request, message, the child's ends)
        self._held: list[tuple[int, bytes, list[int]]] = []
        self._forked: dict[int, tuple[int, int | None]] = {}  # request -> (pid, pidfd)
        self._failed: set[int] = set()  # requests the zygote could not fork
        self._exits: dict[int, int] = {}  # pid -> its returncode
        self.gone = False  # the zygote ended (or never started): fork() says None from now on

    def start(self) -> bool:
        """Start the zygote, or take one this process kept whose workers would be the same
        (:meth:`release`); False when none can be started (then workers are spawned)."""
        kept = (self.preload_keras and _take_kept(self.env, keras=True)) or _take_kept(
            self.env, keras=False
        )
        if kept is not None:
            self._adopt(kept)
            if self.preload_keras and not kept.preload_keras:
                self._send(json.dumps({"preload": "keras"}).encode(), [])
            return True
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the zygote
        command = [
            sys.executable,
            "-m",
            "pytest_kerasmodel.gate.workers.forkserver",
            "--socket",
            str(theirs.fileno()),
        ]
        try:
            self.proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=self.stderr,
                stderr=self.stderr,
                env=self.env,
                pass_fds=(theirs.fileno(),),
            )
        except OSError:
            ours.close()
            self.gone = True
            return False
        finally:
            theirs.close()
        self.sock = ours
        if self.preload_keras:
            self._send(json.dumps({"preload": "keras"}).encode(), [])
        return True

    def decide(self, keras: bool) -> None:
        """Whether the zygote imports Keras, once: the fork requests held till now go after."""
        if self.preload_keras is not None:
            return
        self.preload_keras = keras
        kept = _take_kept(self.env, keras=True) if keras else None
        if kept is not None:  # one that imported Keras already: this one, unused, is kept instead
            self._hand_to_kept(keras=False)
            self._adopt(kept)
        elif keras:
            self._send(json.dumps({"preload": "keras"}).encode(), [])
        held, self._held = self._held, []
        for _, message, fds in held:
            self._send(message, fds)
            for fd in fds:
                os.close(fd)

    def _send(self, message: bytes, fds: list[int]) -> None:
        if self.sock is None:
            return
        try:
            socket.send_fds(self.sock, [message], fds)
        except OSError:
            self._lost()
            return
        if fds:  # a fork request: the zygote answers each
            self._unanswered += 1

    def fork(self, memory_limit_mb: int, stderr: IO[bytes]) -> ForkedWorker | None:
        """A worker forked with the hard data-memory limit ``memory_limit_mb`` (0: none), writing
        its stderr to ``stderr``; None when the zygote is gone (then spawn one)."""
        if self.gone or self.sock is None:
            return None
        self._receive(0.0)  # what the zygote said since: never let its messages pile up
        if self.gone:
            return None
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        self._requests += 1
        message = json.dumps({"fork": self._requests, "memory_limit_mb": memory_limit_mb})
        # the child's ends travel with the message (held: until it is sent)
        child_ends = [stdin_r, stdout_w, os.dup(stderr.fileno())]
        if self.preload_keras is None:
            self._held.append((self._requests, message.encode(), child_ends))
        else:
            self._send(message.encode(), child_ends)
            for fd in child_ends:
                os.close(fd)
            if self.gone:  # the zygote ended: spawn this one
                os.close(stdin_w)
                os.close(stdout_r)
                return None
        return ForkedWorker(
            self, self._requests, os.fdopen(stdin_w, "wb"), os.fdopen(stdout_r, "rb")
        )

    def _lost(self) -> None:
        """The zygote is gone: no more forks; its children's statuses are unknowable."""
        self.gone = True
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _receive(self, timeout: float) -> None:
        """Read what the zygote says, waiting up to ``timeout`` seconds for a first message."""
        waited = False
        while self.sock is not None:
            ready, _, _ = select.select([self.sock], [], [], 0.0 if waited else timeout)
            waited = True
            if not ready:
                return
            try:
                data, fds, _, _ = socket.recv_fds(self.sock, _MESSAGE_BYTES, 1)
            except OSError:
                data, fds = b"", []
            if not data:
                for fd in fds:
                    os.close(fd)
                self._lost()
                return
            message = json.loads(data)
            if "forked" in message:
                self._unanswered -= 1
                if message["pid"]:
                    self._forked[message["forked"]] = (message["pid"], fds[0] if fds else None)
                else:
                    self._failed.add(message["forked"])
            elif "exit" in message:
                self._exits[message["exit"]] = message["returncode"]

    def pid_of(self, request: int, timeout: float) -> int | None:
        """The pid of the worker forked for ``request``, waiting up to ``timeout`` seconds for
        the zygote's reply; None if it was not forked (yet)."""
        self._receive_until(
            lambda: request in self._forked or request in self._failed,
            time.monotonic() + timeout,
        )
        forked = self._forked.get(request)
        return forked[0] if forked else None

    def _receive_until(self, answered: Callable[[], bool], deadline: float) -> None:
        """Read what the zygote says until ``answered()``, the zygote is gone or the
        ``deadline`` (``time.monotonic()``) has passed."""
        while not answered() and not self.gone:
            left = deadline - time.monotonic()
            self._receive(max(0.0, left))
            if left <= 0:
                break

    def returncode_of(self, request: int, timeout: float) -> int | None:
        """The forked worker's returncode once the zygote has reaped it, waiting up to
        ``timeout`` seconds; None while it runs (or was not forked)."""
        deadline = time.monotonic() + timeout
        pid = self.pid_of(request, timeout)
        if pid is not None:
            self._receive_until(lambda: pid in self._exits, deadline)
        if pid is None or pid not in self._exits:
            return None
        self._close_pidfd(request)
        return self._exits[pid]

    def kill(self, request: int) -> None:
        """SIGKILL the worker of ``request`` (through its pidfd where there is one: a pid the
        zygote reaped could name another process by then)."""
        forked = self._forked.get(request)
        if forked is None:
            return
        pid, pidfd = forked
        with contextlib.suppress(ProcessLookupError):
            if pidfd is not None and hasattr(signal, "pidfd_send_signal"):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            elif pid not in self._exits:
                os.kill(pid, signal.SIGKILL)

    def _close_pidfd(self, request: int) -> None:
        pid, pidfd = self._forked[request]
        if pidfd is not None:
            os.close(pidfd)
            self._forked[request] = (pid, None)

    def cancel_held(self) -> None:
        """The fork requests still held for :meth:`decide` are never sent: their workers are
        never forked (and so are not waited for)."""
        for request, _, fds in self._held:
            for fd in fds:
                os.close(fd)
            self._failed.add(request)
        self._held = []

    def alive(self) -> bool:
        """Whether this object has a zygote and it runs."""
        return not self.gone and self.proc is not None and self.proc.poll() is None

    def _hand_to_kept(self, keras: bool) -> None:
        """Keep this zygote, which has no worker running and imported Keras (``keras``) or not,
        for a later pool of the process; this object has none from now on."""
        kept = ForkServer(self.env, preload_keras=keras)
        kept._adopt(self)
        _keep(kept)

    def _adopt(self, other: ForkServer) -> None:
        """Take ``other``'s zygote (process, socket, stderr file), which has no worker running."""
        self.proc, self.sock, self.stderr = other.proc, other.sock, other.stderr
        self.gone = False
        other.proc = other.sock = other.stderr = None
        other.gone = True

    def release(self) -> None:
        """The pool is done with the zygote (its workers are closed first): kept for this
        process's next pool when it is alive and has reaped every worker it forked (so that no
        report of theirs is left to arrive), else ended."""
        self.cancel_held()  # never sent: nothing of theirs is left to arrive
        if not self.alive():
            self.close()
            return

        def settled() -> bool:  # every request answered, every worker forked reaped
            return not self._unanswered and all(
                pid in self._exits for pid, _ in self._forked.values()
            )

        self._receive_until(settled, time.monotonic() + 2.0)
        if self.gone or not settled():
            self.close()
            return
        for request in list(self._forked):
            self._close_pidfd(request)
        self._hand_to_kept(keras=bool(self.preload_keras))

    def close(self) -> None:
        """End the zygote (its workers are closed first: it kills any left)."""
        self.cancel_held()
        if self.sock is not None:
            self.sock.close()  # the zygote's end of the socket reads EOF and it exits
            self.sock = None
        for request in list(self._forked):
            self._close_pidfd(request)
        self.gone = True
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self.stderr is not None:
            self.stderr.close()
            self.stderr = None


class ForkedWorker:
    """A worker forked by the zygote, answering what :class:`~.isolation.WorkerRunner` asks of
    a ``subprocess.Popen``: its pipes, ``poll``, ``wait``, ``kill`` and ``returncode``."""

    def __init__(
        self, server: ForkServer, request: int, stdin: IO[bytes], stdout: IO[bytes]
    ) -> None:
        self.server = server
        self.request = request
        self.stdin: IO[bytes] | None = stdin
        self.stdout: IO[bytes] | None = stdout
        self.returncode: int | None = None
        self._killed = False

    @property
    def pid(self) -> int | None:
        """The worker's pid, None until the zygote has forked it."""
        return self.server.pid_of(self.request, 0.0)

    def never_forked(self) -> bool:
        """Whether the zygote ended (or refused) before forking this worker: its request can go
        to a spawned worker instead."""
        return self.pid is None and (self.server.gone or self.request in self.server._failed)

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._status(0.0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        """The worker's returncode; None when it cannot be known (the zygote is gone, or it was
        never forked). Raises :class:`subprocess.TimeoutExpired` as ``Popen.wait`` does."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            left = 60.0 if deadline is None else max(0.0, deadline - time.monotonic())
            self.returncode = self._status(left)
            if self.returncode is not None or self.server.gone or self.never_forked():
                break
            if timeout is not None and deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"forked worker {self.pid}", timeout)
        return self.returncode

    def _status(self, timeout: float) -> int | None:
        if self.never_forked():
            return -signal.SIGKILL if self._killed else None
        return self.server.returncode_of(self.request, timeout)

    def kill(self) -> None:
        self._killed = True
        # a worker that may be running has been forked: its pid comes with the fork's reply
        if self.server.pid_of(self.request, 5.0) is not None:
            self.server.kill(self.request)
        else:  # not forked (yet): it would read EOF and end at once
            self._close_pipes()
            if self.server.pid_of(self.request, 0.0) is None:
                self.server._failed.add(self.request)

    def _close_pipes(self) -> None:
        for pipe in (self.stdin, self.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def preload(keras: bool) -> None:
    """What every worker needs, imported once in the zygote: h5py, the checks and the modules
    they import at their first run, and Keras (its backend) when ``keras`` is set. A failed
    Keras import is left to the workers, whose checks report it as they do when spawned."""

    from pytest_kerasmodel import frameworks

    if keras:
        try:
            frameworks.loader().keras()
        except Exception:
            traceback.print_exc()


def _fork_worker(message: dict[str, Any], fds: list[int], keep_out: list[int]) -> int:
    """Fork one worker on the pipes ``fds`` (stdin, stdout, stderr); its pid in the zygote."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:  # the child: never back into the zygote's loop
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd in keep_out:
            os.close(fd)
        stdin_fd, stdout_fd, stderr_fd = fds
        os.dup2(stdin_fd, 0)
        os.dup2(stderr_fd, 2)
        os.close(stdin_fd)
        os.close(stderr_fd)
        from pytest_kerasmodel.gate.workers import worker

        limit = int(message.get("memory_limit_mb") or 0)
        if limit and worker.data_in_use_mb() > limit // 2:
            # What the zygote imported would hold most of the worker's memory limit (an explicit
            # small keras_memory_limit): a fresh worker, as spawned, then imports Keras under
            # the limit and says so when it cannot, instead of failing every allocation.
            os.dup2(stdout_fd, 1)  # worker.main speaks on fd 1
            os.close(stdout_fd)
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # as subprocess's restore_signals
            command = ["-m", "pytest_kerasmodel.gate.workers.worker", "--memory-limit", str(limit)]
            os.execv(sys.executable, [sys.executable, *command])
        os.dup2(2, 1)  # library noise on fd 1 goes to stderr, as in a spawned worker
        protocol = os.fdopen(stdout_fd, "w", encoding="utf-8")
        requests = os.fdopen(0, "r", encoding="utf-8", closefd=False)
        sys.stdin = requests
        sys.stdout = sys.stderr
        worker.run(requests, protocol, limit)
        code = 0
    except BaseException:
        with contextlib.suppress(Exception):
            traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os._exit(code)


def serve(sock: socket.socket) -> None:
    """Fork a worker for each request on ``sock`` and report each child's exit status, until
    the pytest process closes its end; then kill the children still running."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # wakes select() via wake_w
    children: set[int] = set()

    def reap() -> None:
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if not pid:
                return
            children.discard(pid)
            returncode = os.waitstatus_to_exitcode(status)
            with contextlib.suppress(OSError):
                sock.send(json.dumps({"exit": pid, "returncode": returncode}).encode())

    while True:
        ready, _, _ = select.select([sock.fileno(), wake_r], [], [])
        if wake_r in ready:
            with contextlib.suppress(BlockingIOError):
                while os.read(wake_r, 512):
                    pass
        reap()
        if sock.fileno() not in ready:
            continue
        try:
            data, fds, _, _ = socket.recv_fds(sock, _MESSAGE_BYTES, 3)
        except OSError:
            break
        if not data:
            break
        message = json.loads(data)
        if message.get("preload") == "keras":
            preload(keras=True)
            continue
        pid = 0
        if len(fds) == 3:
            try:
                pid = _fork_worker(message, fds, [sock.fileno(), wake_r, wake_w])
            except OSError:
                traceback.print_exc()
        for fd in fds:
            os.close(fd)
        pidfds: list[int] = []
        if pid:
            children.add(pid)
            with contextlib.suppress(OSError, AttributeError):
                pidfds.append(os.pidfd_open(pid))
        reply = json.dumps({"forked": message["fork"], "pid": pid}).encode()
        try:
            socket.send_fds(sock, [reply], pidfds)
        except OSError:
            break
        finally:
            for fd in pidfds:
                os.close(fd)
    for pid in children:  # the pytest process is done or gone: so are its workers
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_kerasmodel.gate.workers.forkserver")
    parser.add_argument("--socket", type=int, required=True, metavar="FD")
    args = parser.parse_args(argv)
    # Ctrl-C reaches the whole process group: the pytest process ends the zygote itself
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=args.socket)
    preload(keras=False)  # Keras when the pytest process asks for it (the first message)
    serve(sock)
    # Nothing is left to write: end without the interpreter's teardown of what was imported
    # (h5py, Keras and its backend), which the pytest process would wait for at the end of the
    # session (measured: 64 ms after the file-only checks)
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
