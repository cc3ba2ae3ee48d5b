"""Run the benchmarks of issue 6 and write `benchmarks/RESULTS.md`.

    python benchmarks/run.py                  # every section but the large artifacts
    python benchmarks/run.py --quick          # fewer repeats and sizes: a check that it all runs
    python benchmarks/run.py --only startup   # one section (repeatable: --only gate --only large)
    python benchmarks/run.py --only signature # the signature check over 1 GiB (opt-in)
    python benchmarks/run.py --large          # also 256 MiB, 1 GiB and 2 GiB artifacts (disk, time)
    python benchmarks/run.py --only sizes     # models of 1M, 10M, 30M parameters (or --large)

Generated suites and artifacts live in a temporary folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    REPO,
    Options,
    Section,
    Table,
    Target,
    bench_env,
    load_average,
    machine,
    python,
    run_process,
)


def _startup(opts: Options) -> Section:
    import bench_startup

    return bench_startup.run(opts)


def _roundtrip(opts: Options) -> Section:
    """Rows of `bench_roundtrip.run` (the roundtrip helper's module), in a process of their own
    so that Keras is never imported into this one."""
    title = "2. Roundtrip: `assert_roundtrip` vs the hand-written check"
    if not (Path(__file__).resolve().parent / "bench_roundtrip.py").exists():
        section = Section("roundtrip", title)
        section.notes.append(
            "not available: `benchmarks/bench_roundtrip.py` is not in this checkout."
        )
        section.targets.append(Target("roundtrip ratio per model and format", "-", "<= 1.0", None))
        return section
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import bench_roundtrip; "
        "print('ROWS=' + json.dumps(bench_roundtrip.run(repeats=int(sys.argv[2]))))"
    )
    here = str(Path(__file__).resolve().parent)
    opts.log(f"roundtrip: bench_roundtrip.run(repeats={opts.repeats}) in a subprocess")
    run = run_process([python(), "-c", code, here, str(opts.repeats)], env=bench_env())
    run.check("bench_roundtrip.run")
    line = next(x for x in reversed(run.stdout.splitlines()) if x.startswith("ROWS="))
    section = roundtrip_section(title, json.loads(line[len("ROWS=") :]))
    section.notes.append(
        "Measured by `benchmarks/bench_roundtrip.py` (in one process: both checks on the same "
        "trained model, alternating, after a warm-up); `ratio` = assert_roundtrip / hand-written."
    )
    return section


def _plain(row: Any) -> dict[str, Any]:
    if isinstance(row, dict):
        return row
    if hasattr(row, "_asdict"):
        return dict(row._asdict())
    import dataclasses

    if dataclasses.is_dataclass(row) and not isinstance(row, type):
        return dataclasses.asdict(row)
    return dict(vars(row))


def roundtrip_section(title: str, raw_rows: list[Any], prefix: str = "roundtrip") -> Section:
    """Render the rows of `bench_roundtrip.run` whatever their exact columns are.

    A column whose name contains "ratio" is read as the figure of a target (at most 1.0); the
    string columns of the row name the target.
    """
    section = Section("roundtrip", title)
    rows = [_plain(r) for r in raw_rows]
    headers: list[str] = []
    for r in rows:
        headers.extend(k for k in r if k not in headers)

    def cell(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    section.tables.append(
        Table(
            "rows of `bench_roundtrip.run`",
            headers,
            [[cell(r.get(h, "")) for h in headers] for r in rows],
        )
    )
    for r in rows:
        ratios = {
            k: v for k, v in r.items() if "ratio" in k.lower() and isinstance(v, (int, float))
        }
        label = " ".join(str(v) for k, v in r.items() if isinstance(v, str))
        for key, value in ratios.items():
            section.targets.append(
                Target(
                    f"{prefix} {label} ({key})",
                    f"{value:.3f}",
                    "<= 1.0 (aim 0.5)",
                    value <= 1.0,
                )
            )
    if not section.targets:
        section.targets.append(Target("roundtrip ratios", "no ratio column", "<= 1.0", None))
    return section


def _gate(opts: Options) -> Section:
    import bench_gate

    return bench_gate.run_many(opts)


def _isolation(opts: Options) -> Section:
    import bench_gate

    return bench_gate.run_isolation(opts)


def _throughput(opts: Options) -> Section:
    import bench_throughput

    return bench_throughput.run(opts)


def _large(opts: Options) -> Section:
    import bench_large

    return bench_large.run(opts)


def _signature(opts: Options) -> Section:
    import bench_signature

    return bench_signature.run(opts)


def _export(opts: Options) -> Section:
    """Rows of `bench_export.run`, in a process of their own (Keras and the runtimes)."""
    title = "Export: `assert_export` vs the hand-written check"
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import bench_export; "
        "print('ROWS=' + json.dumps(bench_export.run(repeats=int(sys.argv[2]))))"
    )
    here = str(Path(__file__).resolve().parent)
    opts.log(f"export: bench_export.run(repeats={opts.repeats}) in a subprocess")
    run = run_process([python(), "-c", code, here, str(opts.repeats)], env=bench_env())
    run.check("bench_export.run")
    line = next(x for x in reversed(run.stdout.splitlines()) if x.startswith("ROWS="))
    section = roundtrip_section(title, json.loads(line[len("ROWS=") :]), prefix="export")
    section.key = "export"
    section.notes.append(
        "Measured by `benchmarks/bench_export.py` (export, load with the runtime, run, "
        "np.allclose on one batch, vs assert_export on batch 1 and 4); ratio = ours / naive."
    )
    return section


def _sizes(opts: Options) -> Section:
    """Rows of `bench_sizes.run` (each measurement is a process of its own)."""
    import bench_sizes

    sizes = (1,) if opts.quick else (1, 10, 30)
    opts.log(f"sizes: bench_sizes.run(sizes={sizes})")
    rows = bench_sizes.run(sizes)
    section = Section("sizes", "Model sizes: `assert_roundtrip` vs the hand-written check")
    section.tables.append(
        Table(
            "one format (`keras`), then with `backends=['jax']` and `['jax', 'torch']`",
            ["size", "parameters", "backends", "hand-written", "ours", "ratio", "peak MiB"],
            [
                [
                    r["size"],
                    f"{r['params']:,}",
                    r["backends"],
                    f"{r['hand_s']:.2f} s",
                    f"{r['ours_s']:.2f} s",
                    f"{r['ratio']:.2f}",
                    f"{r['hand_peak_mib']:.0f} / {r['ours_peak_mib']:.0f}",
                ]
                for r in rows
            ],
        )
    )
    for r in rows:
        section.targets.append(
            Target(
                f"sizes {r['size']} backends {r['backends']} (ours / hand-written)",
                f"{r['ratio']:.2f}",
                f"<= {r['limit']:g}",
                r["ratio"] <= r["limit"],
            )
        )
    section.notes.append(
        "Measured by `benchmarks/bench_sizes.py`: one process per (size, check), one run each; "
        "peak MiB = peak RSS of the process above its RSS before the check (hand / ours)."
    )
    return section


SECTIONS: dict[str, Callable[[Options], Section]] = {
    "startup": _startup,
    "roundtrip": _roundtrip,
    "gate": _gate,
    "large": _large,
    "isolation": _isolation,
    "throughput": _throughput,
    "export": _export,
    "signature": _signature,  # opt-in (--only signature): a 1 GiB file, out of CI
    "sizes": _sizes,  # with --large or --only sizes: models of up to 30M parameters
}


def render(sections: list[Section], opts: Options, command: str, started: str, total: float) -> str:
    out: list[str] = ["# Benchmark results", ""]
    out.append(f"Generated by `{command}` on {started} (UTC), in {total / 60:.1f} min.")
    if opts.quick:
        out.append("**Quick run**: fewer repeats and sizes; figures are indicative only.")
    out.append(
        "Each figure is the median of several runs; each ratio is against a reference measured "
        "in the same run on the same machine, runs of the two alternating. "
        "Regenerate with `python benchmarks/run.py` (add `--large` for the large artifacts)."
    )
    out += ["", "## Machine", "", "| | |", "| --- | --- |"]
    out += [f"| {k} | {v} |" for k, v in machine()]
    out += [
        "",
        "## Targets",
        "",
        "| section | target | measured | limit | verdict |",
        "| --- | --- | --- | --- | --- |",
    ]
    for s in sections:
        for t in s.targets:
            out.append(f"| {s.key} | {t.name} | {t.measured} | {t.limit} | {t.verdict} |")
    for s in sections:
        out += ["", f"## {s.title}", "", f"_Section time: {s.seconds:.0f} s._"]
        for table in s.tables:
            out += [
                "",
                f"{table.caption}:",
                "",
                "| " + " | ".join(table.headers) + " |",
                "|" + " --- |" * len(table.headers),
            ]
            out += ["| " + " | ".join(str(c) for c in row) + " |" for row in table.rows]
        if s.notes:
            out.append("")
            out += [f"- {n}" for n in s.notes]
    out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and sizes")
    parser.add_argument(
        "--only",
        action="append",
        choices=list(SECTIONS),
        default=[],
        help="run only this section (repeatable)",
    )
    parser.add_argument(
        "--large",
        action="store_true",
        help="include the large-artifact section (GiBs of disk, minutes)",
    )
    parser.add_argument(
        "--large-sizes",
        default="256,1024,2048",
        help="sizes in MiB of the large artifacts (default 256,1024,2048)",
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="runs per figure (default 5, quick 2)"
    )
    parser.add_argument(
        "--startup-tests",
        type=int,
        default=200,
        help="tests in the generated start-up suite (default 200)",
    )
    parser.add_argument(
        "--gate-sizes",
        default="",
        help="artifacts per folder in the gate sections (default 50,100,200,400; quick 50,100)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "RESULTS.md")
    args = parser.parse_args(argv)

    names = args.only or [
        n for n in SECTIONS if (n not in ("large", "sizes") or args.large) and n != "signature"
    ]
    command = "python benchmarks/run.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:7.1f}s] {msg}", flush=True)

    sections: list[Section] = []

    def write(done: list[Section], opts: Options, left: list[str]) -> None:
        order = list(SECTIONS)
        ordered = sorted(done, key=lambda s: order.index(s.key) if s.key in order else len(order))
        text = render(ordered, opts, command.strip(), started, time.perf_counter() - t0)
        if left:
            text = text.replace(
                "# Benchmark results\n",
                f"# Benchmark results\n\n**Run in progress**: still to run: {', '.join(left)}.\n",
                1,
            )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, args.out)

    with tempfile.TemporaryDirectory(prefix="kerasmodel-bench-") as tmp:
        opts = Options(
            quick=args.quick,
            repeats=args.repeats or (2 if args.quick else 5),
            large=args.large or "large" in args.only,
            large_sizes_mib=tuple(int(s) for s in args.large_sizes.split(",") if s),
            startup_tests=args.startup_tests,
            gate_sizes=tuple(int(n) for n in args.gate_sizes.split(",") if n),
            workdir=Path(tmp),
            log=log,
        )
        for name in names:
            log(f"section {name} (load average {load_average()})")
            start = time.perf_counter()
            try:
                section = SECTIONS[name](opts)
            except Exception:
                section = Section(name, f"{name}: failed")
                section.notes.append(
                    "The section raised:\n\n```\n" + traceback.format_exc() + "```"
                )
                section.targets.append(Target(f"{name}", "section failed", "-", False))
                log(traceback.format_exc())
            section.seconds = time.perf_counter() - start
            section.notes.append(f"load average after the section: {load_average()}")
            sections.append(section)
            for t in section.targets:
                log(f"  {t.name}: {t.measured} (limit {t.limit}) {t.verdict}")
            # Written after every section, so an interrupted run still leaves its figures.
            left = names[names.index(name) + 1 :]
            write(sections, opts, left)
    write(sections, opts, [])
    log(f"wrote {args.out}")
    return 0 if all(t.ok is not False for s in sections for t in s.targets) else 1


if __name__ == "__main__":
    sys.exit(main())
