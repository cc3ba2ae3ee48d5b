"""Start-up: what the plugin costs a test suite that never touches Keras.

A generated suite of plain tests runs in a fresh `python -m pytest` with the plugin enabled and with
`-p no:kerasmodel`, alternately, many times; the figure is the ratio of the medians. A conftest in
the suite records which heavy modules were imported by the end of the session.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

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
    run_process,
    spread,
)
from harness import python as py

HEAVY = ("tensorflow", "keras", "h5py")
RATIO_LIMIT = 1.02

_CONFTEST = textwrap.dedent(
    """
    import json, os, sys

    def pytest_unconfigure(config):
        path = os.environ.get("BENCH_MODULES_OUT")
        if path:
            names = ("tensorflow", "keras", "h5py", "pytest_kerasmodel.plugin")
            with open(path, "w") as f:
                json.dump({n: n in sys.modules for n in names}, f)
    """
)


def make_suite(root: Path, n_tests: int, per_file: int = 10, name: str = "startup_suite") -> Path:
    """A suite of `n_tests` trivial tests in files of `per_file`, with its own rootdir."""
    suite = root / name
    suite.mkdir(parents=True, exist_ok=True)
    (suite / "pytest.ini").write_text("[pytest]\n")
    (suite / "conftest.py").write_text(_CONFTEST)
    for start in range(0, n_tests, per_file):
        count = min(per_file, n_tests - start)
        body = "\n\n".join(
            f"def test_case_{start + i}():\n    assert sum(range({start + i})) >= 0"
            for i in range(count)
        )
        (suite / f"test_plain_{start // per_file:03d}.py").write_text(body + "\n")
    return suite


def _pytest(suite: Path, *extra: str, modules_out: Path | None = None) -> Run:
    env = bench_env(BENCH_MODULES_OUT=str(modules_out) if modules_out else "")
    argv = [py(), *PYTEST_BASE, *extra]
    return run_process(argv, cwd=suite, env=env).check(f"pytest {' '.join(extra)}")


def run(opts: Options) -> Section:
    section = Section("startup", "1. Start-up: a suite that never touches Keras")
    n = opts.startup_tests
    suite = make_suite(opts.workdir, n)
    repeats = opts.repeats if opts.quick else max(3, opts.repeats * 3)

    opts.log(f"startup: {n} tests, {repeats} alternating runs per configuration")
    configs = {"plugin enabled": (), "-p no:kerasmodel": ("-p", "no:kerasmodel")}
    cpu: dict[str, list[float]] = {label: [] for label in configs}

    seen: dict[str, dict[str, bool]] = {}

    def measure(label: str) -> float:
        out = opts.workdir / f"modules-{len(seen)}-{label.replace(' ', '_')}.json"
        run = _pytest(suite, *configs[label], modules_out=out)
        seen[label] = json.loads(out.read_text())  # which modules the session ended with
        cpu[label].append(run.cpu_seconds)
        return run.seconds

    if not opts.quick:
        for label in configs:  # warm the page cache and the .pyc files, not recorded
            _pytest(suite, *configs[label])
    samples = interleaved(
        {label: (lambda label=label: measure(label)) for label in configs}, repeats, warmup=False
    )
    on, off = median(samples["plugin enabled"]), median(samples["-p no:kerasmodel"])
    ratio = on / off
    cpu_on, cpu_off = median(cpu["plugin enabled"]), median(cpu["-p no:kerasmodel"])

    section.tables.append(
        Table(
            f"`python {' '.join(PYTEST_BASE)}` over {n} plain tests, "
            f"{repeats} runs each, alternating",
            [
                "configuration",
                "wall, median",
                "min-max (s)",
                "ratio",
                "CPU time, median",
                "CPU ratio",
            ],
            [
                [
                    "`-p no:kerasmodel` (reference)",
                    fmt_s(off),
                    spread(samples["-p no:kerasmodel"]),
                    "1.00",
                    fmt_s(cpu_off),
                    "1.00",
                ],
                [
                    "plugin enabled",
                    fmt_s(on),
                    spread(samples["plugin enabled"]),
                    f"{ratio:.3f}",
                    fmt_s(cpu_on),
                    f"{cpu_on / cpu_off:.3f}",
                ],
            ],
        )
    )
    plugin_loaded = seen["plugin enabled"].get("pytest_kerasmodel.plugin", False)
    imported = sorted(m for m in HEAVY if seen["plugin enabled"].get(m))
    section.tables.append(
        Table(
            "Modules present in `sys.modules` at the end of the session",
            ["configuration", "pytest_kerasmodel.plugin", *HEAVY],
            [
                [
                    label,
                    *("yes" if mods.get(m) else "no" for m in ("pytest_kerasmodel.plugin", *HEAVY)),
                ]
                for label, mods in seen.items()
            ],
        )
    )
    section.targets.append(
        Target(
            "start-up, plugin enabled / `-p no:kerasmodel`",
            f"{ratio:.3f} ({fmt_s(on)} vs {fmt_s(off)}); CPU time {cpu_on / cpu_off:.3f}",
            f"<= {RATIO_LIMIT}",
            ratio <= RATIO_LIMIT and plugin_loaded,
        )
    )
    section.targets.append(
        Target(
            "start-up imports none of tensorflow, keras, h5py",
            "imported: "
            + (", ".join(imported) if imported else "none")
            + ("" if plugin_loaded else " (plugin NOT loaded: figure meaningless)"),
            "none",
            not imported and plugin_loaded,
        )
    )
    if not plugin_loaded:
        section.notes.append("The plugin was not loaded in the enabled run: is it installed?")
    return section
