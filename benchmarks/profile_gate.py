"""Where the gate's file-only time goes: its checks called directly, in one process.

    python benchmarks/profile_gate.py small [N]        per-check cost over N small artifacts
    python benchmarks/profile_gate.py large [MIB] [h5|keras]
                                                       finite + structure vs a plain h5py read

Artifacts are generated in a temporary folder (deleted afterwards). A focused timing tool for the
gate's own code; `run.py` writes RESULTS.md.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate

STEPS = (
    ["integrity"],
    ["integrity", "safety"],
    ["integrity", "finite"],
    ["integrity", "structure"],
    ["integrity", "budgets"],
    ["integrity", "safety", "finite", "structure", "budgets"],
)


def _request(path: Path, folder: Path, goldens: Path, checks: list[str], **kw: object) -> dict:
    from pytest_kerasmodel.gate.goldens import golden_paths
    from pytest_kerasmodel.gate.protocol import Request

    structure, predictions = golden_paths(path, folder, goldens)
    return asdict(
        Request(
            path=str(path),
            checks=checks,
            golden_structure=str(structure),
            golden_predictions=str(predictions),
            max_params=10**9,
            **kw,  # type: ignore[arg-type]
        )
    )


def small(count: int) -> None:
    from pytest_kerasmodel.gate.runner import check_artifact

    with tempfile.TemporaryDirectory(prefix="profile-gate-") as tmp:
        work = Path(tmp)
        folder = generate.many_artifacts(work, count)
        goldens = work / "goldens"
        goldens.mkdir()
        files = sorted(folder.iterdir())
        for path in files:
            check_artifact(_request(path, folder, goldens, ["structure"], update_golden=True))
        for checks in STEPS:
            check_artifact(_request(files[0], folder, goldens, checks))  # warm
            times = []
            for _ in range(5):
                start = time.perf_counter()
                for path in files:
                    result = check_artifact(_request(path, folder, goldens, checks))
                    bad = [c for c, r in result["checks"].items() if r["status"] == "failed"]
                    assert not bad, result
                times.append((time.perf_counter() - start) / len(files))
            print(f"{' + '.join(checks):<55} {1000 * statistics.median(times):6.2f} ms/artifact")


def _floor(path: Path) -> None:
    """A plain h5py read of every dataset (of the extracted inner weights file of a .keras)."""
    import h5py

    def visit(_: str, obj: object) -> None:
        if isinstance(obj, h5py.Dataset):
            obj[()]

    with h5py.File(path, "r") as f:
        f.visititems(visit)


def large(size_mib: int, fmt: str) -> None:
    from pytest_kerasmodel.gate.runner import check_artifact

    with tempfile.TemporaryDirectory(prefix="profile-gate-") as tmp:
        work = Path(tmp)
        path = generate.large_artifact(work, size_mib, fmt)
        goldens = work / "goldens"
        goldens.mkdir()
        folder = path.parent
        check_artifact(_request(path, folder, goldens, ["structure"], update_golden=True))
        floor_file = path
        if fmt == "keras":  # the floor reads the weights file itself, extracted beforehand
            import zipfile

            with zipfile.ZipFile(path) as zf:
                floor_file = Path(zf.extract("model.weights.h5", work / "extracted"))
        runs: dict[str, list[float]] = {"floor": [], "integrity": [], "finite+structure": []}
        for _ in range(5):
            for name in runs:
                start = time.perf_counter()
                if name == "floor":
                    _floor(floor_file)
                else:
                    checks = ["integrity"] if name == "integrity" else ["finite", "structure"]
                    result = check_artifact(_request(path, folder, goldens, checks))
                    assert all(r["status"] == "passed" for r in result["checks"].values()), result
                runs[name].append(time.perf_counter() - start)
        floor = statistics.median(runs["floor"])
        for name, times in runs.items():
            m = statistics.median(times)
            print(f"{size_mib} MiB .{fmt} {name:<18} {1000 * m:8.1f} ms  ratio {m / floor:5.2f}")


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "small"
    if mode == "small":
        small(int(sys.argv[2]) if len(sys.argv) > 2 else 100)
    else:
        large(
            int(sys.argv[2]) if len(sys.argv) > 2 else 256,
            sys.argv[3] if len(sys.argv) > 3 else "h5",
        )
