"""Large artifacts: the finite and structure checks against the cost of reading the bytes.

For each size and format (`.h5`, `.keras`):
- the floor: a fresh process reading every dataset with plain h5py (for `.keras`, the inner
  `model.weights.h5` through a window on the archive's bytes, the member being stored uncompressed;
  the same through `zipfile.ZipFile.open` is reported beside it);
- the gate's `finite` and `structure` items (their durations from JUnit XML; a tiny artifact
  sorted first takes the worker's start), and the peak RSS of the whole gate run (pytest and its
  isolated worker);
- a plain `keras.models.load_model` of the file: its time and peak RSS, for comparison;
- `describe_artifact` on the size closest to 1 GiB: time and bytes read (metadata only).
The files are page-cached after the first read, so all figures are warm-cache ones: the floor is
then memory bandwidth plus HDF5's own overhead, the strictest reference.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import generate
from gate_runs import available, gate_available, item_seconds, record_goldens, run_gate
from harness import (
    MIB,
    Options,
    Section,
    Table,
    Target,
    bench_env,
    fmt_s,
    median,
    python,
    run_process,
    spread,
)

FLOOR_RATIO = 1.3
PEAK_LIMIT_MIB = 256
DESCRIBE_LIMIT_S = 0.2

_FLOOR_SCRIPT = textwrap.dedent(
    """
    import io, json, os, struct, sys, time, zipfile
    import h5py

    path, how = sys.argv[1], sys.argv[2]

    class Window(io.RawIOBase):
        # The bytes of one stored zip member, as a seekable file.
        def __init__(self, path, start, size):
            self.fd, self.start, self.size, self.pos = os.open(path, os.O_RDONLY), start, size, 0
        def readable(self): return True
        def seekable(self): return True
        def tell(self): return self.pos
        def seek(self, offset, whence=0):
            self.pos = (offset, self.pos + offset, self.size + offset)[whence]
            return self.pos
        def readinto(self, b):
            want = max(0, min(len(b), self.size - self.pos))
            n = os.preadv(self.fd, [memoryview(b)[:want]], self.start + self.pos)
            self.pos += n
            return n
        def close(self):
            if not self.closed:
                os.close(self.fd)
            super().close()

    def read_all(h5):
        total = 0
        def visit(name, obj):
            nonlocal total
            if isinstance(obj, h5py.Dataset):
                total += obj[()].nbytes
        h5.visititems(visit)
        return total

    start = time.perf_counter()
    if how == "h5py":
        with h5py.File(path, "r") as h5:
            n = read_all(h5)
    elif how == "zip-window":
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo("model.weights.h5")
            assert info.compress_type == zipfile.ZIP_STORED
        with open(path, "rb") as f:
            f.seek(info.header_offset)
            header = f.read(30)
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        start_data = info.header_offset + 30 + name_len + extra_len
        with Window(path, start_data, info.file_size) as w, h5py.File(w, "r") as h5:
            n = read_all(h5)
    elif how == "zip-open":
        with zipfile.ZipFile(path) as zf, zf.open("model.weights.h5") as f, h5py.File(f, "r") as h5:
            n = read_all(h5)
    print(json.dumps({"seconds": time.perf_counter() - start, "bytes": n}))
    """
)

_LOAD_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import keras
    start = time.perf_counter()
    model = keras.models.load_model(sys.argv[1])
    print(json.dumps({"seconds": time.perf_counter() - start, "params": model.count_params()}))
    """
)

_DESCRIBE_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    start = time.perf_counter()
    import h5py, numpy  # describe_artifact imports them lazily: a one-off cost of the process
    from pytest_kerasmodel import describe_artifact
    imports = time.perf_counter() - start

    def rchar():
        with open("/proc/self/io") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("rchar"))

    times, reads = [], []
    for _ in range(int(sys.argv[2])):
        before, start = rchar(), time.perf_counter()
        description = describe_artifact(sys.argv[1])
        times.append(time.perf_counter() - start)
        reads.append(rchar() - before)
    json.dump({"times": times, "reads": reads, "imports": imports}, sys.stdout)
    """
)


def _json_out(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def run(opts: Options) -> Section:
    section = Section(
        "large", "4. Large artifacts: finite and structure checks vs reading the bytes"
    )
    if not opts.large:
        section.notes.append("Skipped: opt in with `python benchmarks/run.py --large`.")
        section.targets.append(Target("large artifacts", "skipped (opt-in `--large`)", "-", None))
        return section
    sizes = opts.large_sizes_mib[:1] if opts.quick else opts.large_sizes_mib
    repeats = 2 if opts.quick else max(2, min(opts.repeats, 3))
    has_gate = gate_available()
    has_describe = available("pytest_kerasmodel.structure.describe")
    describe_size = min(sizes, key=lambda s: abs(s - 1024))
    env = bench_env()
    rows: list[list[str]] = []
    peaks: list[list[str]] = []
    worst_ratio, worst_net, worst_peak = 0.0, 0.0, 0.0
    verified = False

    for size in sizes:
        for fmt in ("h5", "keras"):
            tag = f"{size} MiB .{fmt}"
            opts.log(f"large: writing {tag}")
            path = generate.large_artifact(opts.workdir, size, fmt)
            nbytes = path.stat().st_size

            # The reference load: a plain load_model (also proves Keras reads what we wrote).
            load = run_process([python(), "-c", _LOAD_SCRIPT, str(path)], env=env).check(
                f"load_model {tag}"
            )
            load_info = _json_out(load.stdout)
            verified = True

            floor_how = "h5py" if fmt == "h5" else "zip-window"
            floors, floor_peak = [], 0.0
            for _ in range(repeats + 1):  # the first run warms the page cache
                r = run_process([python(), "-c", _FLOOR_SCRIPT, str(path), floor_how], env=env)
                floors.append(_json_out(r.check(f"floor {tag}").stdout)["seconds"])
                floor_peak = max(floor_peak, r.maxrss_mib)
            floors = floors[1:]
            floor = median(floors)
            zip_open = float("nan")
            if fmt == "keras":
                r = run_process([python(), "-c", _FLOOR_SCRIPT, str(path), "zip-open"], env=env)
                zip_open = _json_out(r.check(f"zip-open {tag}").stdout)["seconds"]

            check_s = wall = peak = float("nan")
            if has_gate:
                model_dir = opts.workdir / "large-gate" / f"{size}-{fmt}"
                model_dir.mkdir(parents=True, exist_ok=True)
                (model_dir / path.name).unlink(missing_ok=True)
                (model_dir / path.name).hardlink_to(path)
                # A tiny artifact sorted first takes the worker's start and the imports, so the
                # large file's items time its checks alone.
                shutil.copyfile(
                    generate.small_models(opts.workdir) / "mlp.h5", model_dir / "0-warm-up.h5"
                )
                goldens = opts.workdir / "large-goldens" / f"{size}-{fmt}"
                # Only the structure golden: recording predictions would load the model, and a
                # 2 GiB model does not fit the worker's default memory limit.
                record_goldens(opts.workdir, model_dir, goldens, "-k", "structure")
                checks, integrity, walls, peak = [], [], [], 0.0
                for i in range(repeats):
                    for select, into in (("finite or structure", checks), ("integrity", integrity)):
                        junit = opts.workdir / f"large-{size}-{fmt}-{i}.xml"
                        g = run_gate(
                            opts.workdir,
                            model_dir,
                            "-k",
                            select,
                            golden_dir=goldens,
                            junit=junit,
                            what=f"gate {tag}",
                        )
                        into.append(item_seconds(junit, artifact=path.name)["total"])
                        if into is checks:
                            walls.append(g.seconds)
                            peak = max(peak, g.maxrss_mib)
                check_s, wall = median(checks), median(walls)
                integrity_s = median(integrity)
                net_s = max(0.0, check_s - integrity_s)
                worst_ratio = max(worst_ratio, check_s / floor)
                worst_net = max(worst_net, net_s / floor)
                worst_peak = max(worst_peak, peak)
                shutil.rmtree(model_dir)
            rows.append(
                [
                    tag,
                    f"{nbytes / MIB:.0f} MiB",
                    fmt_s(floor),
                    spread(floors),
                    fmt_s(zip_open) if fmt == "keras" else "-",
                    fmt_s(check_s),
                    f"{check_s / floor:.2f}" if has_gate else "-",
                    fmt_s(integrity_s),
                    f"{net_s / floor:.2f}" if has_gate else "-",
                    fmt_s(wall),
                    fmt_s(load_info["seconds"]),
                ]
            )
            peaks.append(
                [
                    tag,
                    f"{floor_peak:.0f}",
                    f"{peak:.0f}" if has_gate else "-",
                    f"{load.maxrss_mib:.0f}",
                ]
            )

            if size == describe_size:
                if has_describe:
                    _describe(section, path, repeats, env, opts)
                else:
                    section.targets.append(
                        Target(
                            f"`describe_artifact` on {tag}",
                            "describe module not on main yet",
                            f"< {DESCRIBE_LIMIT_S} s, metadata only",
                            None,
                        )
                    )
            path.unlink()

    section.tables.append(
        Table(
            f"Times, medians of {repeats} warm-cache runs",
            [
                "artifact",
                "file",
                "floor: h5py reads every dataset",
                "floor min-max (s)",
                "zipfile.open + h5py (info)",
                "gate `-k 'finite or structure'` items (runs integrity too)",
                "ratio to floor",
                "gate `-k integrity` items",
                "finite+structure net of integrity / floor",
                "gate run wall time",
                "plain load_model",
            ],
            rows,
        )
    )
    section.tables.append(
        Table(
            "Peak RSS in MiB (`ru_maxrss` of the process and the children it waited for)",
            ["artifact", "floor process", "gate run (pytest + worker)", "plain load_model"],
            peaks,
        )
    )
    section.notes.append(
        "Files are written with h5py/zipfile in Keras's layouts (see `generate.py`); "
        + ("each was loaded by `keras.models.load_model` above." if verified else "")
    )
    if has_gate:
        section.targets.append(
            Target(
                "finite + structure checks / plain h5py read (worst size and format), "
                "net of the integrity check they depend on",
                f"{worst_net:.2f}",
                f"<= {FLOOR_RATIO}",
                worst_net <= FLOOR_RATIO,
            )
        )
        section.targets.append(
            Target(
                "the same as the gate runs them (`-k 'finite or structure'` also runs "
                "integrity, which for `.keras` verifies the zip CRC: one more full read)",
                f"{worst_ratio:.2f}",
                f"<= {FLOOR_RATIO}",
                worst_ratio <= FLOOR_RATIO,
            )
        )
        section.targets.append(
            Target(
                "peak RSS of the gate's finite + structure run (worst size)",
                f"{worst_peak:.0f} MiB",
                f"<= {PEAK_LIMIT_MIB} MiB",
                worst_peak <= PEAK_LIMIT_MIB,
            )
        )
    else:
        section.targets.append(
            Target(
                "finite + structure vs floor, peak RSS",
                "gate not on main yet",
                f"<= {FLOOR_RATIO}",
                None,
            )
        )
    return section


def _describe(section: Section, path: Path, repeats: int, env: dict, opts: Options) -> None:
    opts.log(f"large: describe_artifact on {path.name}")
    r = run_process(
        [python(), "-c", _DESCRIBE_SCRIPT, str(path), str(max(3, repeats))], env=env
    ).check("describe_artifact")
    info = json.loads(r.stdout)
    size = path.stat().st_size
    t = median(info["times"])
    read = max(info["reads"])
    section.tables.append(
        Table(
            f"`describe_artifact` on {path.name} ({size / MIB:.0f} MiB), in one process",
            [
                "imports (h5py, numpy, once)",
                "first call",
                "median",
                "bytes read per call (max)",
                "share of the file",
                "peak RSS",
            ],
            [
                [
                    fmt_s(info["imports"]),
                    fmt_s(info["times"][0]),
                    fmt_s(t),
                    f"{read / MIB:.2f} MiB",
                    f"{read / size:.2%}",
                    f"{r.maxrss_mib:.0f} MiB",
                ]
            ],
        )
    )
    section.targets.append(
        Target(
            f"`describe_artifact` on {path.name}: time (first call, h5py imported)",
            fmt_s(info["times"][0]),
            f"< {DESCRIBE_LIMIT_S} s",
            info["times"][0] < DESCRIBE_LIMIT_S,
        )
    )
    section.targets.append(
        Target(
            f"`describe_artifact` on {path.name}: reads metadata only",
            f"{read / MIB:.2f} MiB read of {size / MIB:.0f} MiB",
            "< 1% of the file",
            read < 0.01 * size,
        )
    )
