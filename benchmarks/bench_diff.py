"""``kerasmodel diff`` on two 1 GiB model files against ``h5diff`` on the same pair.

    python benchmarks/bench_diff.py [--size-mib 1024] [--repeats 3] [--workdir DIR]

h5diff (``apt-get install hdf5-tools``) compares HDF5 paths and values; ``kerasmodel diff``
compares by Keras names (structure, config, every weight), and can compare across formats,
which h5diff cannot (a ``.keras`` is a zip). Each row is a pair both tools can read:

- ``same``: a legacy ``.h5`` of 16 Dense(4096) layers and a byte copy of it (every value read,
  none differs: the cost of saying "identical");
- ``one value``: the same copy with one value of the last kernel changed (both must find it);
- ``.keras vs .h5``: the same model as ``.keras`` and ``.h5`` (kerasmodel diff only).

Wall time and peak RSS (of the process and its children: kerasmodel diff reads in an isolated
child by default) are medians of ``--repeats`` runs, the two tools alternating, the files in the
page cache (each pair read once before timing). Not run in CI: it writes 3 GiB of files.
Target: kerasmodel diff no slower than h5diff (ratio <= 1.0).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate
from harness import bench_env, median, run_process

KERASMODEL = Path(sys.executable).with_name("kerasmodel")


def _change_one_value(src: Path, dst: Path) -> None:
    import h5py

    shutil.copyfile(src, dst)
    with h5py.File(dst, "r+") as f:
        kernels = []
        f["model_weights"].visititems(
            lambda name, obj: (
                kernels.append(name) if isinstance(obj, h5py.Dataset) and obj.ndim == 2 else None
            )
        )
        last = f["model_weights"][sorted(kernels)[-1]]
        last[-1, -1] = last[-1, -1] + 1.0


def _measure(argv: list[str], expect: int, repeats: int) -> tuple[float, float]:
    runs = []
    for _ in range(repeats):
        run = run_process(argv, env=bench_env())
        if run.returncode != expect:
            raise SystemExit(
                f"{argv[0]} exited {run.returncode}, expected {expect}:\n{run.stdout[-2000:]}\n"
                f"{run.stderr[-2000:]}"
            )
        runs.append(run)
    return median([r.seconds for r in runs]), median([r.maxrss_mib for r in runs])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    h5diff = shutil.which("h5diff")
    if h5diff is None:
        print("h5diff not found: apt-get install -y hdf5-tools", file=sys.stderr)
        return 2
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_diff-"))
    h5 = generate.large_artifact(workdir, args.size_mib, "h5")
    keras = generate.large_artifact(workdir, args.size_mib, "keras")
    copy = workdir / "copy.h5"
    changed = workdir / "changed.h5"
    shutil.copyfile(h5, copy)
    _change_one_value(h5, changed)

    pairs = [
        ("same", h5, copy, 0),
        ("one value", h5, changed, 1),
        (".keras vs .h5", keras, h5, 0),
    ]
    rows = []
    for label, a, b, expect in pairs:
        ours = [str(KERASMODEL), "diff", str(a), str(b)]
        theirs = [h5diff, str(a), str(b)] if a.suffix == b.suffix == ".h5" else None
        run_process(ours, env=bench_env())  # page-cache both files
        # alternate the two tools, repeat by repeat
        ours_t, ours_m, theirs_t, theirs_m = [], [], [], []
        for _ in range(args.repeats):
            t, m = _measure(ours, expect, 1)
            ours_t.append(t)
            ours_m.append(m)
            if theirs is not None:
                t, m = _measure(theirs, expect, 1)
                theirs_t.append(t)
                theirs_m.append(m)
        row = [label, f"{median(ours_t):.2f} s", f"{median(ours_m):.0f} MiB"]
        if theirs_t:
            row += [
                f"{median(theirs_t):.2f} s",
                f"{median(theirs_m):.0f} MiB",
                f"{median(ours_t) / median(theirs_t):.2f}",
                f"{median(ours_m) / median(theirs_m):.2f}",
            ]
        else:
            row += ["cannot (a .keras is a zip)", "-", "-", "-"]
        rows.append(row)
    size = h5.stat().st_size / 1024**3
    print(f"## kerasmodel diff vs h5diff ({size:.2f} GiB files, median of {args.repeats})\n")
    header = [
        "pair",
        "kerasmodel diff",
        "peak RSS",
        "h5diff",
        "peak RSS",
        "time ratio",
        "memory ratio",
    ]
    print("| " + " | ".join(header) + " |")
    print("| " + " | ".join("---" for _ in header) + " |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
