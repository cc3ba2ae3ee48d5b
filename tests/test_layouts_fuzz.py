"""Untrusted bytes in the layouts of several files: mutants of an unzipped model folder, of
sharded weights (manifest and shards) and of a KerasHub preset, through the whole gate. Every
mutant must stay one artifact with a verdict for every check, crashes and hangs of the libraries
contained, and no file changed."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
from test_safety_fuzz import CHECKS, MUTATIONS, _digests, _gate, mutate

SEED = 20261201
MUTANTS_PER_SOURCE = 16


@pytest.fixture(scope="module")
def layout_sources(
    layout_files: dict[str, Path], request: pytest.FixtureRequest
) -> dict[str, tuple[Path, list[str]]]:
    """Healthy sources (the session's, built once), each with the files of it to mutate: an
    unzipped model folder, sharded weights and, when keras-hub is installed, a task preset."""
    shards = sorted(p.name for p in layout_files["sharded"].glob("w_*.weights.h5"))
    assert len(shards) >= 2, shards
    sources = {
        "unzipped": (layout_files["mlp_dir"], ["config.json", "model.weights.h5", "metadata.json"]),
        "sharded": (layout_files["sharded"], ["w.weights.json", *shards]),
    }
    try:
        presets = request.getfixturevalue("preset_files")
    except pytest.skip.Exception:  # keras-hub is not installed
        return sources
    files = ["config.json", "task.json", "tokenizer.json", "model.weights.h5", "task.weights.h5"]
    sources["preset"] = (presets["task_preset"], files)
    return sources


def test_mutated_layouts_each_get_one_verdict_and_are_never_changed(
    pytester: pytest.Pytester, layout_sources: dict[str, tuple[Path, list[str]]], tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    folder = tmp_path / "mutants"
    expected: list[str] = []  # the artifact of each mutant, relative to the model folder
    for label, (source, files) in sorted(layout_sources.items()):
        for index in range(MUTANTS_PER_SOURCE):
            kind = MUTATIONS[index % len(MUTATIONS)]
            target = folder / f"{label}-{index:03d}-{kind}"
            shutil.copytree(source, target)
            victim = target / files[index % len(files)]
            data = victim.read_bytes()
            mutant = mutate(data, kind, rng)
            # what makes the layout recognisable stays, so the mutant is still that artifact
            for token in (b'"weight_map"', b'"keras_hub'):
                while token in data and token not in mutant:
                    mutant = mutate(data, kind, rng)
            victim.write_bytes(mutant)
            artifact = target / "w.weights.json" if label == "sharded" else target
            expected.append(artifact.relative_to(folder).as_posix())
    before = _digests(folder)
    result, data = _gate(pytester, folder)
    assert _digests(folder) == before, "the gate changed or created files in the model folder"

    rows = {a["artifact"].split("mutants/", 1)[1]: a for a in data["artifacts"]}
    # a manifest whose mutation broke a shard's name leaves that shard to be gated on its own
    extra = sorted(set(rows) - set(expected))
    assert all(n.startswith("sharded-") and n.endswith(".weights.h5") for n in extra), extra
    assert set(expected) <= set(rows)
    for name, row in rows.items():
        assert sorted(row["checks"]) == sorted(CHECKS), name
        assert {o["status"] for o in row["checks"].values()} <= {"passed", "failed", "skipped"}
    outcomes = result.parseoutcomes()
    items = sum(outcomes.get(k, 0) for k in ("passed", "failed", "skipped"))
    assert items == len(rows) * len(CHECKS)
    assert outcomes.get("error", 0) == 0
    # a shard that a mutation damaged is never passed over: its manifest fails integrity
    failed = sorted(n for n, row in rows.items() if row["result"] == "failed")
    print(f"\nLAYOUT FUZZ: {len(rows)} mutants (seed {SEED}), {len(failed)} failed")
    assert failed, "no mutant failed: the mutations did not reach what the gate reads"
