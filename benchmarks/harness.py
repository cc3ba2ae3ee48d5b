"""Shared machinery of the benchmarks: timing, subprocesses with their peak memory, the machine.

Every figure is a median of several runs, and every target is a ratio against a reference measured
in the same run on the same machine, so that a slow or busy machine moves both sides together.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024


@dataclasses.dataclass
class Options:
    """What `run.py` was asked for."""

    quick: bool = False
    repeats: int = 5
    large: bool = False
    large_sizes_mib: tuple[int, ...] = (256, 1024, 2048)
    startup_tests: int = 200
    gate_sizes: tuple[int, ...] = ()  # artifacts per folder; empty: the defaults
    workdir: Path = Path()
    log: Callable[[str], None] = print


@dataclasses.dataclass
class Target:
    """One promise of issue 6 with the figure measured against it."""

    name: str
    measured: str
    limit: str
    ok: bool | None  # None: not measured (module missing, skipped)

    @property
    def verdict(self) -> str:
        return {True: "met", False: "**NOT met**", None: "not measured"}[self.ok]


@dataclasses.dataclass
class Table:
    caption: str
    headers: list[str]
    rows: list[list[Any]]


@dataclasses.dataclass
class Section:
    """What one benchmark hands back to `run.py` to render."""

    key: str
    title: str
    targets: list[Target] = dataclasses.field(default_factory=list)
    tables: list[Table] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0


# --------------------------------------------------------------------------- timing


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def spread(values: Sequence[float]) -> str:
    """min-max of a sample, for the detail tables."""
    if not values:
        return "-"
    return f"{min(values):.3f}-{max(values):.3f}"


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


@dataclasses.dataclass
class Run:
    """One subprocess run: wall time, peak RSS of the process tree, exit code, output.

    `cpu_seconds` (user + system of the process and its reaped children) is much less sensitive
    than wall time to other jobs on a shared machine.
    """

    seconds: float
    maxrss_mib: float
    returncode: int
    stdout: str
    stderr: str
    cpu_seconds: float = 0.0

    def check(self, what: str) -> Run:
        if self.returncode != 0:
            tail = "\n".join((self.stdout + "\n" + self.stderr).splitlines()[-30:])
            raise RuntimeError(f"{what}: exit code {self.returncode}\n{tail}")
        return self


def run_process(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 3600.0,
) -> Run:
    """Run `argv`, returning its wall time and the peak RSS of it and the children it reaped.

    `os.wait4` gives the rusage of this one child; on Linux its ``ru_maxrss`` is the largest of
    the child itself and every descendant it waited for (pytest's isolated workers, xdist workers).
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(argv), cwd=cwd, env=env, stdout=out, stderr=err)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.002)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    cpu = usage.ru_utime + usage.ru_stime
    return Run(seconds, usage.ru_maxrss / 1024, proc.returncode, stdout, stderr, cpu)


# Hypothesis (a test-only dependency here) imports itself at the end of every pytest session,
# about 1 s on this machine: disabled in every benchmarked pytest run, on both sides.
PYTEST_BASE = ("-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest")


def bench_env(**extra: str) -> dict[str, str]:
    """The environment of every benchmarked subprocess: the same for reference and candidate."""
    env = dict(os.environ)
    # PYTHONDONTWRITEBYTECODE (set in some sandboxes and Docker images) would make every run of
    # an editable checkout compile the plugin's modules again (and pytest rewrite their
    # asserts: 0.45 s of a 400-artifact gate run), which no installed package pays (pip
    # compiles a wheel's modules when it installs them, the peers' included)
    for key in (
        "PYTEST_ADDOPTS",
        "PYTEST_PLUGINS",
        "PYTEST_XDIST_AUTO_NUM_WORKERS",
        "PYTHONDONTWRITEBYTECODE",
    ):
        env.pop(key, None)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONHASHSEED"] = "0"
    env.update(extra)
    return env


T = TypeVar("T")


def interleaved(
    variants: dict[str, Callable[[], T]], repeats: int, *, warmup: bool = True
) -> dict[str, list[T]]:
    """Run every variant `repeats` times, alternating their order each round (ABBA...).

    Alternating spreads a slow drift of a shared machine evenly over reference and candidate.
    """
    names = list(variants)
    if warmup:
        for name in names:
            variants[name]()
    samples: dict[str, list[T]] = {name: [] for name in names}
    for i in range(repeats):
        order = names if i % 2 == 0 else names[::-1]
        for name in order:
            samples[name].append(variants[name]())
    return samples


# --------------------------------------------------------------------------- the machine


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _pkg(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "log", "-1", "--format=%h %s"],
            capture_output=True,
            text=True,
            check=True,
        )
        dirty = subprocess.run(
            # the results file is this run's own output, not a change to what is measured
            [
                "git",
                "-C",
                str(REPO),
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                ":!benchmarks/RESULTS.md",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return out.stdout.strip() + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def machine() -> list[tuple[str, str]]:
    """The machine and software the figures were measured on, read without importing Keras."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    blas = {
        k: os.environ[k]
        for k in (
            "OPENBLAS_NUM_THREADS",
            "OMP_NUM_THREADS",
            "MKL_NUM_THREADS",
            "TF_NUM_INTRAOP_THREADS",
            "TF_NUM_INTEROP_THREADS",
        )
        if k in os.environ
    }
    return [
        ("CPU", _cpu_model()),
        ("cores", f"{os.cpu_count()} logical, {usable} usable by this process"),
        ("memory", _memory_gib()),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("numpy", _pkg("numpy")),
        ("h5py", _pkg("h5py")),
        ("keras", _pkg("keras")),
        (
            "tensorflow",
            _pkg("tensorflow-cpu")
            if _pkg("tensorflow-cpu") != "not installed"
            else _pkg("tensorflow"),
        ),
        ("pytest", _pkg("pytest")),
        ("pytest-xdist", _pkg("pytest-xdist")),
        ("BLAS/thread env", ", ".join(f"{k}={v}" for k, v in blas.items()) or "none set"),
        ("pytest-kerasmodel", f"{_pkg('pytest-kerasmodel')} at {_git_commit()}"),
    ]


def python() -> str:
    return sys.executable


def fmt_s(seconds: float) -> str:
    if seconds != seconds:  # nan
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"
