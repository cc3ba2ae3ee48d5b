"""Many small artifacts: the gate against the naive script it replaces, and its isolation cost.

The naive script is what a team writes without the plugin: one process, Keras imported once, and
for each file `keras.models.load_model` followed by `np.isfinite` on every weight. Both sides are
timed as whole commands (interpreter, imports and all), alternating, over the same folders.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import generate
from gate_runs import FILE_ONLY, WITH_LOAD, gate_available, record_goldens, run_gate
from harness import (
    PYTEST_BASE,
    Options,
    Run,
    Section,
    Table,
    Target,
    bench_env,
    fmt_s,
    interleaved,
    median,
    python,
    run_process,
    spread,
)

FILE_ONLY_SPEEDUP = 20.0
# integrity, safety, finite, structure: the items of one artifact in a file-only run (no budget
# is set, so there is no budgets item)
ITEMS_FILE_ONLY = 4
PYTEST_FLOOR = (
    f"pytest alone: {ITEMS_FILE_ONLY} empty items per file, collected as the gate collects "
    "(floor of any gate with an item per check)"
)
XDIST_SPEEDUP = 1.7

NAIVE_SCRIPT = textwrap.dedent(
    """
    import sys
    import time
    from pathlib import Path

    started = time.perf_counter()
    import keras
    import numpy as np

    imported = time.perf_counter()
    bad = []
    for path in sorted(Path(sys.argv[1]).iterdir()):
        model = keras.models.load_model(path)
        for weight in model.weights:
            if not np.isfinite(weight.numpy()).all():
                bad.append(f"{path.name}: {weight.path}")
    print(f"{len(bad)} non-finite weights")
    print(f"import {imported - started:.3f} s, loads {time.perf_counter() - imported:.3f} s")
    """
)


# The gate's checks called directly, one process, no pytest and no worker: what each costs.
BREAKDOWN_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from dataclasses import asdict
    from pathlib import Path
    import h5py, numpy
    from pytest_kerasmodel.gate.protocol import Request
    from pytest_kerasmodel.gate.runner import check_artifact
    from pytest_kerasmodel.gate.goldens import golden_paths

    folder, goldens = Path(sys.argv[1]), Path(sys.argv[2])
    files = sorted(folder.iterdir())

    def request(path, checks):
        structure, predictions = golden_paths(path, folder, goldens)
        return asdict(Request(path=str(path), checks=checks, golden_structure=str(structure),
                              golden_predictions=str(predictions)))

    steps = [["integrity"], ["integrity", "safety"], ["integrity", "finite"],
             ["integrity", "structure"], ["integrity", "budgets"],
             ["integrity", "safety", "finite", "structure", "budgets"]]
    out = {}
    for checks in steps:
        check_artifact(request(files[0], checks))  # warm
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            for path in files:
                check_artifact(request(path, checks))
            best = min(best, (time.perf_counter() - start) / len(files))
        out[" + ".join(checks)] = best
    print(json.dumps(out))
    """
)


FLOOR_CHECKS = ("integrity", "safety", "finite", "structure")
FLOOR_CONFTEST = textwrap.dedent(
    """
    import pytest

    class Empty(pytest.Item):
        def runtest(self):
            pass

        def reportinfo(self):
            return self.path, None, self.name

    class Artifact(pytest.File):
        def collect(self):
            for check in {items}:
                yield Empty.from_parent(self, name=check)

    def pytest_collect_file(file_path, parent):
        if file_path.suffix == ".art":
            return Artifact.from_parent(parent, path=file_path)
    """
)


def make_item_floor(
    workdir: Path, count: int, checks: tuple[str, ...] = FLOOR_CHECKS[:ITEMS_FILE_ONLY]
) -> Path:
    """`count` empty files, each collected as one item per name in `checks` that does nothing:
    what pytest's own collection and run protocol cost for the gate's items, without any
    check."""
    suite = workdir / f"pytest-floor-{count}" / "-".join(checks)
    suite.mkdir(parents=True, exist_ok=True)
    (suite / "pytest.ini").write_text("[pytest]\n")
    (suite / "conftest.py").write_text(FLOOR_CONFTEST.format(items=repr(checks)))
    for i in range(count):
        (suite / f"artifact_{i:04d}.art").touch()
    return suite


def _naive(folder: Path) -> Run:
    argv = [python(), "-c", NAIVE_SCRIPT, str(folder)]
    return run_process(argv, env=bench_env()).check("naive script")


def _fit(sizes: list[int], times: list[float]) -> tuple[float, float, float]:
    """Least squares `t = a + b n`: (a, b, r2)."""
    n = len(sizes)
    mx, my = sum(sizes) / n, sum(times) / n
    sxx = sum((x - mx) ** 2 for x in sizes)
    b = sum((x - mx) * (y - my) for x, y in zip(sizes, times, strict=True)) / sxx if sxx else 0.0
    a = my - b * mx
    ss_tot = sum((y - my) ** 2 for y in times)
    ss_res = sum((y - a - b * x) ** 2 for x, y in zip(sizes, times, strict=True))
    return a, b, (1 - ss_res / ss_tot) if ss_tot else 1.0


def _prepare(
    opts: Options, size: int, *extra: str, golden_folder: str = "goldens"
) -> tuple[Path, Path]:
    """The folder of `size` artifacts and the golden folder shared by every size.

    Every folder holds the first `size` files of one pool under the same names, so goldens
    recorded once for the largest folder serve the smaller ones too. `extra`: options of the
    recording run (`--keras-checks structure` records structure goldens alone, without a load),
    kept in a `golden_folder` of their own.
    """
    folder = generate.many_artifacts(opts.workdir, size)
    goldens = opts.workdir / golden_folder
    marker = goldens / ".recorded-for"
    if not marker.exists() or int(marker.read_text()) < size:
        opts.log(f"recording goldens in {golden_folder}/ for {size} artifacts")
        run = record_goldens(opts.workdir, folder, goldens, *extra)
        opts.log(f"recorded in {run.seconds:.1f} s")
        marker.write_text(str(size))
    return folder, goldens


def run_many(opts: Options) -> Section:
    section = Section("gate", "3. Many artifacts: the gate vs the naive script")
    sizes = list(opts.gate_sizes) or ([50, 100] if opts.quick else [50, 100, 200, 400])
    repeats = max(1, opts.repeats if opts.quick else min(opts.repeats, 3))
    has_gate = gate_available()
    if not has_gate:
        section.notes.append(
            "The gate (`pytest_kerasmodel.gate`) is not on main yet: "
            "only the naive script is measured."
        )

    medians: dict[str, dict[int, float]] = {}
    cpu: dict[str, dict[int, float]] = {}
    details: list[list[str]] = []
    if has_gate:
        _prepare(opts, sizes[-1])
    for size in sizes:
        opts.log(f"gate: {size} artifacts, {repeats} runs per variant")
        if has_gate:
            folder, goldens = _prepare(opts, size)
        else:
            folder, goldens = generate.many_artifacts(opts.workdir, size), None

        def gate(*extra: str, folder: Path = folder, goldens: Path | None = goldens) -> Run:
            return run_gate(opts.workdir, folder, *extra, golden_dir=goldens)

        suite = make_item_floor(opts.workdir, size)
        variants = {
            "naive script (reference)": lambda folder=folder: _naive(folder),
            PYTEST_FLOOR: lambda suite=suite: run_process(
                [python(), *PYTEST_BASE], cwd=suite, env=bench_env()
            ).check("pytest floor"),
        }
        if has_gate:
            variants.update(
                {
                    "gate, file-only checks, -n 0": lambda: gate("-k", FILE_ONLY),
                    "gate, with load, -n 0": lambda: gate("-k", WITH_LOAD),
                    "gate, file-only checks, -n 2": lambda: gate("-k", FILE_ONLY, "-n", "2"),
                }
            )
            if size in sizes[-2:]:  # the costly ones at the two largest sizes (a slope) only
                variants["gate, with load, -n 2"] = lambda: gate("-k", WITH_LOAD, "-n", "2")
            if size == sizes[-1]:
                variants["gate, all checks (+ predictions), -n 0"] = lambda: gate()
        samples = interleaved(variants, repeats, warmup=(size == sizes[0]))
        ref = median([r.seconds for r in samples["naive script (reference)"]])
        ref_cpu = median([r.cpu_seconds for r in samples["naive script (reference)"]])
        for name, runs in samples.items():
            values = [r.seconds for r in runs]
            m, c = median(values), median([r.cpu_seconds for r in runs])
            medians.setdefault(name, {})[size] = m
            cpu.setdefault(name, {})[size] = c
            details.append(
                [
                    str(size),
                    name,
                    fmt_s(m),
                    spread(values),
                    f"{m / ref:.3f}",
                    f"{ref / m:.1f}x",
                    fmt_s(c),
                    f"{c / ref_cpu:.3f}",
                ]
            )

    section.tables.append(
        Table(
            f"Whole-command wall time, median of {repeats} alternating runs",
            [
                "artifacts",
                "variant",
                "wall, median",
                "min-max (s)",
                "time / naive",
                "speed-up vs naive",
                "CPU time, median",
                "CPU / naive",
            ],
            details,
        )
    )
    fits = []
    cpu_slope: dict[str, float] = {}
    for name, by_size in medians.items():
        if len(by_size) < 2:
            continue
        xs = sorted(by_size)
        ys = [by_size[x] for x in xs]
        a, b, r2 = _fit(xs, ys)
        last = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2]) if len(xs) > 1 else float("nan")
        fits.append((name, a, b, r2, last))
        cpu_slope[name] = _fit(xs, [cpu[name][x] for x in xs])[1]
    section.tables.append(
        Table(
            "Cost against the number of artifacts n, least-squares fit "
            "`t = fixed + n * per_artifact`",
            [
                "variant",
                "fixed",
                "per artifact",
                "R^2",
                "marginal cost over the last step",
                "CPU time per artifact",
            ],
            [
                [
                    n,
                    fmt_s(a),
                    f"{b * 1000:.1f} ms",
                    f"{r2:.4f}",
                    f"{last * 1000:.1f} ms",
                    f"{cpu_slope[n] * 1000:.1f} ms",
                ]
                for n, a, b, r2, last in fits
            ],
        )
    )

    biggest = sizes[-1]
    naive = medians["naive script (reference)"][biggest]
    if not has_gate:
        section.targets.append(
            Target(
                "gate vs naive script", "gate not on main yet", f">= {FILE_ONLY_SPEEDUP:.0f}x", None
            )
        )
        return section

    for name, _a, b, r2, last in fits:
        if name.startswith("gate") and "-n 0" in name:
            linear = r2 >= 0.98 and (last <= 1.3 * b or last * biggest < 0.5)
            section.targets.append(
                Target(
                    f"{name}: cost linear in the number of artifacts",
                    f"R^2 {r2:.3f}, {b * 1000:.1f} ms/artifact, last step {last * 1000:.1f} ms",
                    "R^2 >= 0.98, last step <= 1.3x fitted slope",
                    linear,
                )
            )
    folder, goldens = _prepare(opts, sizes[1])
    breakdown = run_process(
        [python(), "-c", BREAKDOWN_SCRIPT, str(folder), str(goldens)], env=bench_env()
    )
    if breakdown.returncode == 0:
        costs = json.loads(breakdown.stdout.strip().splitlines()[-1])
        section.tables.append(
            Table(
                f"Where the file-only time goes: the gate's checks called directly "
                f"(`check_artifact`, one process, no pytest, no worker), {sizes[1]} artifacts, "
                "best of 3",
                ["checks", "per artifact"],
                [[k, f"{v * 1000:.2f} ms"] for k, v in costs.items()],
            )
        )
    else:
        section.notes.append("The per-check breakdown failed: " + breakdown.stderr[-500:])
    slope = {name: b for name, _a, b, _r2, _last in fits}
    naive_slope = slope["naive script (reference)"]

    def versus(label: str, name: str, limit: float, faster: bool) -> None:
        """Two figures per comparison: whole commands at the largest size, and per artifact
        (the fitted slopes: what a folder of thousands of artifacts converges to)."""
        whole = medians[name][biggest]
        cpu_whole = cpu[name][biggest] / cpu["naive script (reference)"][biggest]
        cpu_per = cpu_slope[name] / cpu_slope["naive script (reference)"]
        cpu_text = f"; CPU time ratio {cpu_whole:.2f}"
        cpu_per_text = f"; CPU time ratio {cpu_per:.2f}"
        if faster:
            ratio, per = naive / whole, naive_slope / slope[name]
            text, lim = f"{ratio:.1f}x faster", f">= {limit:.0f}x"
            ok_whole, ok_per = ratio >= limit, per >= limit
            per_text = f"{per:.1f}x faster"
        else:
            ratio, per = whole / naive, slope[name] / naive_slope
            text, lim = f"time ratio {ratio:.2f}", f"<= {limit}"
            ok_whole, ok_per = ratio <= limit, per <= limit
            per_text = f"time ratio {per:.2f}"
        section.targets.append(
            Target(
                f"{label} vs naive script, whole command, {biggest} artifacts",
                f"{text} ({fmt_s(whole)} vs {fmt_s(naive)}){cpu_text}",
                lim,
                ok_whole,
            )
        )
        section.targets.append(
            Target(
                f"{label} vs naive script, per artifact (fitted slope)",
                f"{per_text} ({slope[name] * 1000:.1f} vs {naive_slope * 1000:.1f} ms)"
                f"{cpu_per_text}",
                lim,
                ok_per,
            )
        )

    versus("file-only checks", "gate, file-only checks, -n 0", FILE_ONLY_SPEEDUP, faster=True)
    versus("with the load check", "gate, with load, -n 0", 1.0, faster=False)
    for label in ("file-only checks", "with load"):
        n0 = medians[f"gate, {label}, -n 0"][biggest]
        n2 = medians[f"gate, {label}, -n 2"][biggest]
        per = ""
        if f"gate, {label}, -n 2" in slope:
            speedup = slope[f"gate, {label}, -n 0"] / slope[f"gate, {label}, -n 2"]
            per = f"; {speedup:.2f}x per artifact"
        section.targets.append(
            Target(
                f"`-n 2` vs `-n 0`, {label}, {biggest} artifacts",
                f"{n0 / n2:.2f}x whole command ({fmt_s(n2)} vs {fmt_s(n0)}){per}",
                f">= {XDIST_SPEEDUP}x",
                n0 / n2 >= XDIST_SPEEDUP,
            )
        )
    section.notes.append(
        f"Folders hold copies of {len(generate.SMALL_VARIANTS)} small models "
        f"({', '.join(generate.SMALL_VARIANTS)}), round-robin. Goldens (structure, predictions) "
        "were recorded once with `--keras-update-golden` into one `--keras-golden-dir`. "
        "`with load, -n 2` runs at the two largest sizes only and `all checks` at the largest "
        "(cost); the slope of `with load, -n 2` comes from those two sizes. "
        f'File-only checks: `-k "{FILE_ONLY}"`; with load: `-k "{WITH_LOAD}"`. '
        "No budget is set, so there is no budgets item. The gate runs with "
        "`-p no:hypothesispytest` (hypothesis is this repository's test dependency, not a gate "
        "user's; its plugin imports it at the end of every session), like the pytest floor."
    )
    return section


def run_isolation(opts: Options) -> Section:
    section = Section("isolation", "5. Isolation: the gate in its worker vs `--keras-no-isolation`")
    if not gate_available():
        section.notes.append("The gate (`pytest_kerasmodel.gate`) is not on main yet.")
        section.targets.append(
            Target("isolation overhead per artifact", "gate not on main yet", "small", None)
        )
        return section
    sizes = [50, 100] if opts.quick else [50, 200]
    if opts.gate_sizes:
        sizes = [min(opts.gate_sizes), max(opts.gate_sizes)]
    repeats = max(2, opts.repeats if opts.quick else min(opts.repeats, 3))
    _prepare(opts, sizes[-1])
    rows: list[list[str]] = []
    overhead: dict[str, dict[int, float]] = {}
    cpu_overhead: dict[str, dict[int, float]] = {}
    for size in sizes:
        folder, goldens = _prepare(opts, size)
        for label, k in (("file-only checks", FILE_ONLY), ("with load", WITH_LOAD)):
            opts.log(f"isolation: {size} artifacts, {label}")

            def gate(
                *extra: str, k: str = k, folder: Path = folder, goldens: Path = goldens
            ) -> Run:
                return run_gate(opts.workdir, folder, "-k", k, *extra, golden_dir=goldens)

            samples = interleaved(
                {"isolated": lambda: gate(), "no isolation": lambda: gate("--keras-no-isolation")},
                repeats,
                warmup=False,
            )
            iso = median([r.seconds for r in samples["isolated"]])
            plain = median([r.seconds for r in samples["no isolation"]])
            iso_cpu = median([r.cpu_seconds for r in samples["isolated"]])
            plain_cpu = median([r.cpu_seconds for r in samples["no isolation"]])
            overhead.setdefault(label, {})[size] = iso - plain
            cpu_overhead.setdefault(label, {})[size] = iso_cpu - plain_cpu
            rows.append(
                [
                    str(size),
                    label,
                    fmt_s(plain),
                    fmt_s(iso),
                    f"{iso / plain:.2f}",
                    f"{(iso - plain) / size * 1000:.1f} ms",
                    fmt_s(plain_cpu),
                    fmt_s(iso_cpu),
                    f"{(iso_cpu - plain_cpu) / size * 1000:.1f} ms",
                ]
            )
    section.tables.append(
        Table(
            f"Whole-command wall time, median of {repeats} alternating runs",
            [
                "artifacts",
                "checks",
                "`--keras-no-isolation`",
                "isolated",
                "ratio",
                "overhead / artifact",
                "CPU, not isolated",
                "CPU, isolated",
                "CPU overhead / artifact",
            ],
            rows,
        )
    )
    lo, hi = sizes[0], sizes[-1]
    for label, by_size in overhead.items():
        per = (by_size[hi] - by_size[lo]) / (hi - lo)
        fixed = by_size[lo] - per * lo
        c = cpu_overhead[label]
        cpu_per = (c[hi] - c[lo]) / (hi - lo)
        section.targets.append(
            Target(
                f"isolation overhead, {label}",
                f"{per * 1000:.1f} ms per artifact + {fmt_s(fixed)} once "
                f"(CPU time: {cpu_per * 1000:.1f} ms per artifact)",
                "< 20 ms per artifact (our bar: the worker is reused)",
                max(per, cpu_per) < 0.02,
            )
        )
    section.notes.append(
        "Overhead per artifact is the slope between the two sizes of (isolated - not isolated), "
        "so the worker's one-off start is separated from the per-artifact cost. A negative wall "
        "time overhead is real: isolated, the worker checks the next artifact while pytest "
        "reports the current one (two processes, two cores), which `--keras-no-isolation` "
        "cannot do; the CPU time overhead is what the isolation costs."
    )
    return section
