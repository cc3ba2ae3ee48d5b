"""The gate of this checkout against the gate of an earlier revision: one folder, one run.

A change must not make the gate slower. RESULTS.md figures come from another day and machine
load, so "within 10% of RESULTS.md" says more about the machine than about the change; this
measures both revisions side by side instead, alternating their runs (ABBA...), with the same
artifacts, goldens and Python environment. Each revision's code is exported with ``git archive``
into a temporary folder and put first on ``PYTHONPATH`` (pytest's plugin and the gate's worker
both import from there); nothing in the repository changes.

    python benchmarks/bench_revisions.py --base 5178635             # 400 artifacts, 5 runs each
    python benchmarks/bench_revisions.py --base v0.1 --size 200 --repeats 3

Prints one line per variant (file-only checks, with load): the median wall and CPU time of each
revision, their spread, and the ratio this checkout / base (<= 1.10 is "nothing got slower").
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

import generate
from gate_runs import FILE_ONLY, WITH_LOAD, record_goldens, run_gate, scratch_root
from harness import REPO, bench_env, interleaved, median, python, spread

LIMIT = 1.10


def export(revision: str, into: Path) -> Path:
    """The tree of ``revision`` (its ``pytest_kerasmodel`` package) under ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", revision, "pytest_kerasmodel"],
        check=True,
        capture_output=True,
    ).stdout
    into.mkdir(parents=True)
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def imported_from(tree: Path, cwd: Path) -> str:
    """Where ``pytest_kerasmodel`` is imported from with ``tree`` first on the path (run from
    ``cwd``, as the gate runs are: the current folder comes first on ``sys.path``)."""
    env = bench_env(PYTHONPATH=str(tree))
    code = "import pytest_kerasmodel, os; print(os.path.dirname(pytest_kerasmodel.__file__))"
    out = subprocess.run([python(), "-c", code], env=env, capture_output=True, text=True, cwd=cwd)
    return out.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the revision to compare against")
    parser.add_argument("--size", type=int, default=400, help="artifacts in the folder")
    parser.add_argument("--repeats", type=int, default=5, help="runs per revision and variant")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="kerasmodel-revisions-") as tmp:
        workdir = Path(tmp)
        trees = {f"base {args.base}": export(args.base, workdir / "base"), "this checkout": REPO}
        for label, tree in trees.items():
            where = imported_from(tree, scratch_root(workdir))
            if not where.startswith(str(tree)):
                sys.exit(f"{label}: pytest_kerasmodel imports from {where}, not from {tree}")
        folder = generate.many_artifacts(workdir, args.size)
        goldens = workdir / "goldens"
        goldens.mkdir()
        record_goldens(workdir, folder, goldens)
        print(f"{args.size} artifacts, {args.repeats} alternating runs per revision and variant")
        worst = 0.0
        for variant, select in (("file-only checks", FILE_ONLY), ("with load", WITH_LOAD)):
            runs = interleaved(
                {
                    label: (
                        lambda t=tree, s=select: run_gate(
                            workdir, folder, "-k", s, golden_dir=goldens, pythonpath=t
                        )
                    )
                    for label, tree in trees.items()
                },
                args.repeats,
            )
            base, head = (runs[label] for label in trees)
            wall = median([r.seconds for r in head]) / median([r.seconds for r in base])
            cpu = median([r.cpu_seconds for r in head]) / median([r.cpu_seconds for r in base])
            worst = max(worst, wall)
            print(
                f"{variant}: base {median([r.seconds for r in base]):.2f} s "
                f"({spread([r.seconds for r in base])}), this checkout "
                f"{median([r.seconds for r in head]):.2f} s ({spread([r.seconds for r in head])}); "
                f"ratio {wall:.3f} wall, {cpu:.3f} CPU (limit {LIMIT})"
            )
        print("nothing got slower" if worst <= LIMIT else f"SLOWER: worst wall ratio {worst:.3f}")
        return 0 if worst <= LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
