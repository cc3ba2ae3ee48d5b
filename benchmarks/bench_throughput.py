"""Gate throughput (issue 14): the pool of checking workers, the verdict cache, pytest's floor,
the peer scanners side by side, and 10,000 artifacts.

Every figure is a ratio of two commands timed in the same run on the same folder, alternating
(ABBA), whole commands (interpreter, imports and all). The peers, modelscan and ModelAudit, are
installed in virtual environments of their own inside the benchmark's temporary folder; when they
cannot be installed their rows say so and are not measured.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from bench_gate import _naive, make_item_floor
from bench_gate import _prepare as prepare_goldens
from gate_runs import scratch_root
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
)

CACHE_KEY = "benchmark-cache-key"
# the checks of each variant, chosen as a user would: --keras-checks collects just their items
# (-k would collect every check's item first, then deselect; see the README)
FILE_ONLY_CHECKS = ("integrity", "safety", "finite", "structure")
WITH_LOAD_CHECKS = ("integrity", "safety", "load", "finite", "structure")
FILE_ONLY = ("--keras-checks", ",".join(FILE_ONLY_CHECKS))
WITH_LOAD = ("--keras-checks", ",".join(WITH_LOAD_CHECKS))
# the targets against modelscan: (our command's first word, peer, artifacts) -> limit;
# against ModelAudit, 0.05 everywhere
PEER_LIMITS = {
    ("pytest", "modelscan", 200): 0.35,
    ("pytest", "modelscan", 2000): 1.0,
    ("kerasmodel", "modelscan", 2000): 0.5,
}
PEERS = {
    # name: (pip requirements, the first one the peer, command over a folder). With the extras
    # each needs to read Keras files at all: without them modelscan skips every .keras file
    # ("please install modelscan with tensorflow extras") and ModelAudit every HDF5 weights file,
    # and both exit 2.
    "modelscan": (
        ["modelscan[tensorflow]", "h5py"],
        lambda venv, folder: [str(venv / "bin" / "modelscan"), "-p", str(folder)],
    ),
    "ModelAudit": (
        ["modelaudit[h5]"],
        lambda venv, folder: [str(venv / "bin" / "modelaudit"), "scan", str(folder)],
    ),
}


def _gate_argv(folder: Path, *extra: str, cache_dir: Path | None = None) -> list[str]:
    if cache_dir is None:  # the verdict cache off, as in every other gate benchmark
        base = [python(), *PYTEST_BASE]
    else:  # on, in a cache folder of the run's own
        base = [python(), "-m", "pytest", "-q", "-p", "no:hypothesispytest"]
        base += ["-o", f"cache_dir={cache_dir}"]
    return [*base, "--keras-model-dir", str(folder), *extra]


def _gate(opts: Options, folder: Path, *extra: str, cache_dir: Path | None = None) -> Run:
    env = bench_env(KERAS_GATE_CACHE_KEY=CACHE_KEY)
    argv = _gate_argv(folder, *extra, cache_dir=cache_dir)
    return run_process(argv, cwd=scratch_root(opts.workdir), env=env).check(f"gate over {folder}")


def _prepare(opts: Options, size: int) -> tuple[Path, Path]:
    """The folder of ``size`` artifacts and its structure goldens (recorded without a load), in
    a folder of their own."""
    return prepare_goldens(
        opts, size, "--keras-checks", "structure", golden_folder="structure-goldens"
    )


def _floor(suite: Path) -> Run:
    """pytest's floor: the same items as a gate run, each doing nothing."""
    return run_process([python(), *PYTEST_BASE], cwd=suite, env=bench_env()).check("floor")


def _file_only(opts: Options, folder: Path, goldens: Path, *extra: str) -> Run:
    """The file-only gate over ``folder``, its structure goldens recorded in ``goldens``: the
    structure check compares (it would skip without them) and every item passes."""
    return _gate(opts, folder, *FILE_ONLY, "--keras-golden-dir", str(goldens), *extra)


def _kerasmodel_gate() -> list[str] | None:
    """The `kerasmodel gate` console script of the tools issue, when this checkout has it."""
    script = Path(python()).parent / "kerasmodel"
    return [str(script), "gate"] if script.exists() else None


def _peer_venv(opts: Options, name: str, requirements: list[str]) -> tuple[Path | None, str]:
    venv = opts.workdir / "peers" / name
    if not (venv / "bin" / "python").exists():
        opts.log(f"throughput: installing {name} in {venv}")
        made = subprocess.run(
            [python(), "-m", "venv", str(venv)], capture_output=True, text=True, check=False
        )
        if made.returncode != 0:
            return None, made.stderr[-300:]
        pip = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *requirements],
            capture_output=True,
            text=True,
            check=False,
        )
        if pip.returncode != 0:
            return None, (pip.stderr or pip.stdout)[-300:]
    show = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    versions = {p["name"].lower(): p["version"] for p in json.loads(show.stdout or "[]")}
    wanted = requirements[0].split("[")[0].lower()
    return venv, f"{wanted} {versions.get(wanted, '?')}" + (
        f", tensorflow {versions['tensorflow']}" if "tensorflow" in versions else ""
    )


# one CPU-bound Python process's work: a loop of fixed length (about 0.3 s on the 2-core VM)
_SPIN = "x = 0\nfor i in range(6_000_000):\n    x += i\n"


def parallel_speed(cores: int, repeats: int) -> tuple[float, float]:
    """How fast this machine runs ``cores`` CPU-bound processes at once, against one alone:
    (seconds alone, seconds of the slowest of ``cores`` started together), medians of
    ``repeats`` alternating runs. On a VM whose cores share physical ones, or whose host is
    busy, each of them runs slower than alone, and a pool of workers scales by less than
    ``cores``."""
    alone: list[float] = []
    together: list[float] = []
    for _ in range(repeats):
        alone.append(run_process([python(), "-c", _SPIN]).check("spin").seconds)
        start = time.perf_counter()
        procs = [subprocess.Popen([python(), "-c", _SPIN]) for _ in range(cores)]
        codes = [proc.wait() for proc in procs]
        together.append(time.perf_counter() - start)
        if any(codes):
            raise RuntimeError("a spin process failed: the machine's parallel speed is unknown")
    return median(alone), median(together)


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.3f}" if b else "-"


def _cell(run_list: list[Run]) -> tuple[float, float]:
    return median([r.seconds for r in run_list]), max(r.maxrss_mib for r in run_list)


def run(opts: Options) -> Section:
    section = Section("throughput", "6. Throughput: the pool, the verdict cache, the peers")
    repeats = 1 if opts.quick else min(opts.repeats, 3)
    rows: list[list[str]] = []

    # --- pytest's floor and the pool against the naive script (400 artifacts) -----------------
    size = 100 if opts.quick else 400
    folder, goldens = _prepare(opts, size)
    suite = make_item_floor(opts.workdir, size)
    cores = len(os.sched_getaffinity(0))
    variants: dict[str, Callable[[], Run]] = {
        "naive script": lambda: _naive(folder),
        "pytest floor": lambda: _floor(suite),
        "file-only": lambda: _file_only(opts, folder, goldens),
        # the default leaves pytest's process a core for file-only checks: a worker on every
        # core, side by side
        f"file-only, {cores} workers": lambda: _file_only(
            opts, folder, goldens, "--keras-workers", str(cores)
        ),
        "with load, 1 worker": lambda: _gate(opts, folder, *WITH_LOAD, "--keras-workers", "1"),
        f"with load, pool ({cores} workers)": lambda: _gate(opts, folder, *WITH_LOAD),
        # the same pool with each worker spawned (its own Python start and Keras import)
        f"with load, pool ({cores} workers), spawned": lambda: _gate(
            opts, folder, *WITH_LOAD, "--keras-no-fork"
        ),
    }
    opts.log(f"throughput: {size} artifacts, {repeats} runs per variant")
    samples = interleaved(variants, repeats)
    t = {name: _cell(runs) for name, runs in samples.items()}
    for name, (seconds, rss) in t.items():
        rows.append([str(size), name, fmt_s(seconds), f"{rss:.0f}"])
    floor_ratio = t["file-only"][0] / t["pytest floor"][0]
    section.targets.append(
        Target(
            "file-only gate / pytest's floor (the same items, empty)",
            f"{floor_ratio:.2f} ({fmt_s(t['file-only'][0])} vs "
            f"{fmt_s(t['pytest floor'][0])}), {size} artifacts",
            "<= 1.5",
            floor_ratio <= 1.5,
        )
    )
    pool = t[f"with load, pool ({cores} workers)"][0]
    pool_ratio = pool / t["naive script"][0]
    # What the pool needs at least: its zygote imports Keras once (the workers are forked from
    # it, see gate/workers/forkserver.py), then the loads (the naive script's own, which the
    # load check matches) share the cores.
    said = samples["naive script"][-1].stdout.split("import ")[-1]
    imported, loads = (float(w) for w in re.findall(r"([0-9.]+) s", said)[:2])
    bound = imported + loads / cores
    alone, together = parallel_speed(cores, repeats)
    speed = cores * alone / together  # how many cores' work the machine does at once
    machine_bound = imported + loads / speed
    section.notes.append(
        f"A pool of {cores} workers forked from one process that imported Keras needs at least "
        f"{imported:.2f} s importing Keras + {loads:.2f} s of loads / {cores} cores = "
        f"{bound:.2f} s: {bound / t['naive script'][0]:.2f} of the naive script, before any "
        "pytest work (the naive script's import and load times, from this run)."
    )
    section.notes.append(
        f"This machine runs {cores} CPU-bound processes at once in {fmt_s(together)}, one alone "
        f"in {fmt_s(alone)} (medians of {repeats}): it does the work of {speed:.2f} cores, not "
        f"{cores}. With that, the pool needs at least {imported:.2f} s + {loads:.2f} s / "
        f"{speed:.2f} = {machine_bound:.2f} s: {machine_bound / t['naive script'][0]:.2f} of "
        "the naive script."
    )
    section.targets.append(
        Target(
            f"with load, pool of {cores} / naive load_model + isfinite script",
            f"{pool_ratio:.2f} ({fmt_s(pool)} vs {fmt_s(t['naive script'][0])}); one worker: "
            f"{_ratio(t['with load, 1 worker'][0], t['naive script'][0])}; spawned workers: "
            f"{_ratio(t[f'with load, pool ({cores} workers), spawned'][0], t['naive script'][0])}",
            "<= 0.6",
            pool_ratio <= 0.6,
        )
    )

    # --- the verdict cache: a second run, and one artifact changed --------------------------
    opts.log("throughput: verdict cache")
    firsts, seconds_, changed_runs, floors = [], [], [], []
    kg_firsts, kg_seconds = [], []
    # pytest's floor for the same items as the cached run, with pytest's cache on as there
    load_floor = make_item_floor(opts.workdir, size, WITH_LOAD_CHECKS)
    kerasmodel = _kerasmodel_gate()
    for i in range(repeats):
        cache_dir = opts.workdir / f"cache-{i}"
        shutil.rmtree(cache_dir, ignore_errors=True)
        firsts.append(_gate(opts, folder, *WITH_LOAD, cache_dir=cache_dir))
        seconds_.append(_gate(opts, folder, *WITH_LOAD, cache_dir=cache_dir))
        floor_cache = opts.workdir / f"floor-cache-{i}"
        shutil.rmtree(floor_cache, ignore_errors=True)
        floor_argv = [python(), "-m", "pytest", "-q", "-p", "no:hypothesispytest"]
        floors.append(
            run_process(
                [*floor_argv, "-o", f"cache_dir={floor_cache}"], cwd=load_floor, env=bench_env()
            ).check("floor")
        )
        if kerasmodel is not None:  # the same checks without pytest: its cache under --root
            root = opts.workdir / f"kerasmodel-root-{i}"
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir()
            argv = [*kerasmodel, "--checks", ",".join(WITH_LOAD_CHECKS), str(folder)]
            env = bench_env(KERAS_GATE_CACHE_KEY=CACHE_KEY)
            for runs in (kg_firsts, kg_seconds):
                runs.append(run_process(argv, cwd=root, env=env).check("kerasmodel gate"))
    first, second = median([r.seconds for r in firsts]), median([r.seconds for r in seconds_])
    floor = median([r.seconds for r in floors])
    cache_ratio = second / first
    section.targets.append(
        Target(
            "second run, nothing changed, with load / first run",
            f"{cache_ratio:.3f} ({fmt_s(second)} vs {fmt_s(first)}), {size} artifacts; pytest's "
            f"floor for the same {len(WITH_LOAD_CHECKS) * size} items is {floor / first:.3f} of "
            f"the first run ({fmt_s(floor)})",
            "<= 0.1",
            cache_ratio <= 0.1,
        )
    )
    if kg_firsts:
        kg_first = median([r.seconds for r in kg_firsts])
        kg_second = median([r.seconds for r in kg_seconds])
        section.targets.append(
            Target(
                "kerasmodel gate: second run, nothing changed, with load / first run",
                f"{kg_second / kg_first:.3f} ({fmt_s(kg_second)} vs {fmt_s(kg_first)}), "
                f"{size} artifacts",
                "<= 0.1",
                kg_second / kg_first <= 0.1,
            )
        )
    # one artifact replaced by another model of its format (a new file: the folder's files are
    # hard links into one pool, so editing one in place would change them all)
    files = sorted(folder.iterdir())
    victim = files[size // 2]
    replacement = next(
        f for f in files if f.suffix == victim.suffix and f.stem[:3] != victim.stem[:3]
    )
    report = opts.workdir / "changed-report.json"
    original = victim.read_bytes()
    try:
        victim.unlink()
        shutil.copyfile(replacement, victim)
        changed_runs.append(
            _gate(
                opts,
                folder,
                *WITH_LOAD,
                "--keras-report",
                str(report),
                cache_dir=opts.workdir / "cache-0",
            )
        )
        verdicts = json.loads(report.read_text())["artifacts"]
        rechecked = sorted(
            a["artifact"]
            for a in verdicts
            if not all(c.get("cached") for c in a["checks"].values())
        )
    finally:
        victim.unlink(missing_ok=True)
        victim.write_bytes(original)
    only_it = [Path(r).name for r in rechecked] == [victim.name]
    section.targets.append(
        Target(
            f"one artifact changed out of {size}: only its checks run",
            f"re-checked: {', '.join(Path(r).name for r in rechecked) or 'none'}; "
            f"{fmt_s(changed_runs[0].seconds)} "
            f"({changed_runs[0].seconds / first:.3f} of a first run)",
            "only the changed one",
            only_it,
        )
    )
    for name, runs in (
        ("with load, cache: first run", firsts),
        ("with load, cache: second run", seconds_),
        ("with load, cache: one changed", changed_runs),
        ("pytest floor, with-load items, cache on", floors),
        ("kerasmodel gate, with load, cache: first run", kg_firsts),
        ("kerasmodel gate, with load, cache: second run", kg_seconds),
    ):
        if not runs:
            continue
        s, rss = _cell(runs)
        rows.append([str(size), name, fmt_s(s), f"{rss:.0f}"])

    # --- the peers, 200 and 2,000 artifacts ---------------------------------------------------
    peers: dict[str, tuple[Path, str]] = {}
    for name, (requirements, _) in PEERS.items():
        venv, info = _peer_venv(opts, name, requirements)
        if venv is None:
            section.notes.append(f"{name} could not be installed, not measured: {info}")
        else:
            peers[name] = (venv, info)
    if kerasmodel is None:
        section.notes.append(
            "`kerasmodel gate` (the tools issue) is not in this checkout: not measured."
        )
    peer_rows: list[list[str]] = []
    env = bench_env(PROMPTFOO_DISABLE_TELEMETRY="1", KERAS_GATE_CACHE_KEY=CACHE_KEY)
    for count in [200] if opts.quick else [200, 2000]:
        many, goldens = _prepare(opts, count)
        floor_suite = make_item_floor(opts.workdir, count)
        cmds: dict[str, Callable[[], Run]] = {
            "pytest --keras-model-dir (file-only)": lambda many=many, goldens=goldens: _file_only(
                opts, many, goldens
            ),
            # pytest's own cost for the same items, doing nothing: what no gate run can go below
            "pytest floor (the same items, empty)": lambda suite=floor_suite: _floor(suite),
        }
        if kerasmodel is not None:
            cmds["kerasmodel gate (file-only)"] = lambda many=many, goldens=goldens: run_process(
                # the verdict cache off: every run reads every file, as the peers do
                [
                    *kerasmodel,
                    "--checks",
                    ",".join(FILE_ONLY_CHECKS),
                    "--golden-dir",
                    str(goldens),
                    "--no-cache",
                    str(many),
                ],
                env=env,
            )
        for name, (venv, _) in peers.items():
            command = PEERS[name][1]
            cmds[name] = lambda venv=venv, command=command, many=many: run_process(
                command(venv, many), env=env
            )
        opts.log(f"throughput: peers over {count} artifacts")
        # ModelAudit takes minutes over 2,000 files: one run each there, no warm-up
        got = interleaved(cmds, repeats if count <= 200 else 1, warmup=count <= 200)
        cells = {name: _cell(runs) for name, runs in got.items()}
        for name, (s, rss) in cells.items():
            codes = sorted({r.returncode for r in got[name]})
            if codes != [0] and name in peers:
                said = (got[name][-1].stdout + got[name][-1].stderr).strip().splitlines()[-3:]
                section.notes.append(
                    f"{name} exited {codes} over {count} healthy artifacts: " + " / ".join(said)
                )
            peer_rows.append([str(count), name, fmt_s(s), f"{rss:.0f}", ",".join(map(str, codes))])
        limit = PEER_LIMITS.get(("pytest", "modelscan", count))
        if "modelscan" in cells and limit is not None:
            floor_s = cells["pytest floor (the same items, empty)"][0]
            ours_s = cells["pytest --keras-model-dir (file-only)"][0]
            allowed = limit * cells["modelscan"][0]
            section.notes.append(
                f"{count} artifacts: pytest's floor for the same {len(FILE_ONLY_CHECKS) * count} "
                f"items, empty, takes {fmt_s(floor_s)}, {floor_s / cells['modelscan'][0]:.3f} of "
                f"modelscan's time; `pytest --keras-model-dir` at <= {limit}x modelscan "
                f"({fmt_s(allowed)}) may cost at most {allowed / floor_s:.2f}x its floor, and "
                f"costs {ours_s / floor_s:.2f}x."
            )
        for ours in [n for n in cells if "gate" in n or "keras-model-dir" in n]:
            for peer in peers:
                ratio = cells[ours][0] / cells[peer][0]
                limit = PEER_LIMITS.get(
                    (ours.split()[0], peer, count), 0.05 if peer == "ModelAudit" else None
                )
                if limit is None:
                    continue
                section.targets.append(
                    Target(
                        f"{ours} / {peer}, {count} artifacts (wall; peak RSS "
                        f"{cells[ours][1]:.0f} vs {cells[peer][1]:.0f} MiB)",
                        f"{ratio:.3f} ({fmt_s(cells[ours][0])} vs {fmt_s(cells[peer][0])})",
                        f"<= {limit}",
                        ratio <= limit,
                    )
                )
    section.tables.append(
        Table(
            f"Peers side by side, median of {repeats} alternating runs (the gate checks integrity, "
            "safety, finite and structure, against structure goldens recorded beforehand in a "
            "folder of their own; the peers check safety alone)",
            ["artifacts", "command", "wall, median", "peak RSS (MiB)", "exit codes"],
            peer_rows,
        )
    )
    for name, (_, info) in peers.items():
        section.notes.append(f"{name}: {info}, in its own virtual environment")

    # --- 10,000 artifacts, file-only ---------------------------------------------------------
    big = 1000 if opts.quick else 10000
    opts.log(f"throughput: {big} artifacts, file-only")
    scale = _file_only(opts, *_prepare(opts, big))
    per = scale.seconds / big
    section.targets.append(
        Target(
            f"{big} artifacts, file-only: pytest process's peak memory",
            f"{scale.maxrss_mib:.0f} MiB; {per * 1000:.1f} ms per artifact "
            f"({fmt_s(scale.seconds)} in all)",
            "< 500 MiB",
            scale.maxrss_mib < 500,
        )
    )
    rows.append([str(big), "file-only", fmt_s(scale.seconds), f"{scale.maxrss_mib:.0f}"])
    section.notes.append(
        "The file-only runs (and `kerasmodel gate`) compare each artifact's structure with a "
        "golden recorded beforehand, outside the artifacts' folder (the peers see the same "
        "folder); the with-load runs record none, so their structure items skip."
    )
    section.tables.insert(
        0,
        Table(
            f"Whole-command wall time, median of {repeats} alternating runs",
            ["artifacts", "variant", "wall, median", "peak RSS (MiB)"],
            rows,
        ),
    )
    section.notes.append(
        "Peak RSS is the largest of the command and every process it waited for (os.wait4): for "
        "the gate, the pytest process or one checking worker, whichever is larger."
    )
    return section
