"""Untrusted bytes through the whole gate: mutants of healthy artifacts of every format, crafted
attacks and real-world files. The gate must give every artifact its items and a verdict, contain
crashes and hangs of the libraries it uses, and change no artifact's bytes.

One gate run (in a subprocess, as CI runs it) covers a few hundred mutants, so the test stays fast.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import random
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest
from builders import attacks

from pytest_kerasmodel.gate.protocol import CHECKS as ALL_CHECKS
from pytest_kerasmodel.gate.protocol import OPTIONAL_CHECKS

# no budget is set; compile is collected only with --keras-load-compile
CHECKS = [c for c in ALL_CHECKS if c != "budgets" and c not in OPTIONAL_CHECKS]

SEED = 20261129
MUTANTS_PER_SOURCE = 40
SAVEDMODEL_MUTANTS = 8
TIMEOUT = "5"  # seconds per artifact in the worker (Keras's import is not counted)
REALWORLD = Path(
    os.environ.get(
        "KERASMODEL_REALWORLD", Path(__file__).resolve().parents[2] / "shared" / "realworld"
    )
)
MUTATIONS = ("bitflip", "truncate", "zeroed", "duplicated")


def mutate(data: bytes, kind: str, rng: random.Random) -> bytes:
    """One mutant of ``data``: bit flips, a truncation, a zeroed or a duplicated byte range."""
    out = bytearray(data)
    if kind == "bitflip":
        for _ in range(rng.randint(1, 8)):
            position = rng.randrange(len(out))
            out[position] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        del out[rng.randrange(len(out)) :]
    elif kind == "zeroed":
        start = rng.randrange(len(out))
        end = min(len(out), start + rng.randint(1, 512))
        out[start:end] = bytes(end - start)
    else:
        start = rng.randrange(len(out))
        chunk = out[start : start + rng.randint(1, 512)]
        at = rng.randrange(len(out))
        out[at:at] = chunk
    return bytes(out)


def _suffix(path: Path) -> str:
    return ".weights.h5" if path.name.endswith(".weights.h5") else path.suffix


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Healthy artifacts of every format: Keras 3 .keras / .h5 / .weights.h5, the legacy HDF5
    full model and weights-only file of tf-keras (Keras 2), and a TensorFlow SavedModel."""
    folder = tmp_path_factory.mktemp("sources")
    files = attacks.healthy(folder)
    import tf_keras

    inputs = tf_keras.Input((4,))
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(2)(inputs))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "HDF5 is legacy"
        model.save(folder / "k2_full.h5")
    model.save_weights(folder / "k2_weights.h5")
    files["k2_full.h5"] = folder / "k2_full.h5"
    files["k2_weights.h5"] = folder / "k2_weights.h5"
    import keras

    keras_in = keras.Input((4,))
    exported = keras.Model(keras_in, keras.layers.Dense(2)(keras_in))
    exported.export(folder / "savedmodel", verbose=False)
    files["savedmodel"] = folder / "savedmodel"
    return files


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _gate(pytester: pytest.Pytester, folder: Path, *args: str) -> tuple[pytest.RunResult, dict]:
    report = pytester.path / "report.json"
    result = pytester.runpytest_subprocess(
        "--keras-model-dir",
        str(folder),
        "--keras-report",
        str(report),
        "--keras-timeout",
        TIMEOUT,
        "-p",
        "no:cacheprovider",
        "-q",
        *args,
    )
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), result.stdout.str()
    return result, json.loads(report.read_text())


def _assert_every_artifact_has_a_verdict(
    result: pytest.RunResult, report: dict, names: list[str]
) -> dict[str, dict]:
    rows = {Path(a["artifact"]).name: a for a in report["artifacts"]}
    assert sorted(rows) == sorted(names)
    for name, row in rows.items():
        assert row["result"] in ("passed", "failed"), name
        assert sorted(row["checks"]) == sorted(CHECKS), name
        for check, outcome in row["checks"].items():
            assert outcome["status"] in ("passed", "failed", "skipped"), (name, check)
    outcomes = result.parseoutcomes()
    items = sum(outcomes.get(k, 0) for k in ("passed", "failed", "skipped", "error"))
    assert items == len(names) * len(CHECKS)
    assert outcomes.get("error", 0) == 0
    return rows


def test_fuzzed_artifacts_all_get_a_verdict_and_are_never_changed(
    pytester: pytest.Pytester, sources: dict[str, Path], tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    folder = tmp_path / "mutants"
    folder.mkdir()
    for label, source in sorted(sources.items()):
        stem = label.replace(".", "_")
        if source.is_dir():  # a SavedModel folder: mutate its graph, keep its variables
            for index in range(SAVEDMODEL_MUTANTS):
                kind = MUTATIONS[index % len(MUTATIONS)]
                target = folder / f"{stem}-{index:03d}-{kind}"
                shutil.copytree(source, target)
                graph = target / "saved_model.pb"
                graph.write_bytes(mutate(graph.read_bytes(), kind, rng))
            continue
        data = source.read_bytes()
        for index in range(MUTANTS_PER_SOURCE):
            kind = MUTATIONS[index % len(MUTATIONS)]
            name = f"{stem}-{index:03d}-{kind}{_suffix(source)}"
            (folder / name).write_bytes(mutate(data, kind, rng))
    hang = attacks.hdf5_hang_h5(tmp_path / "hang")
    shutil.copy(hang, folder / hang.name)
    before = _digests(folder)

    result, report = _gate(pytester, folder)

    assert _digests(folder) == before, "the gate changed or created files in the model folder"
    names = sorted(p.name for p in folder.iterdir())
    rows = _assert_every_artifact_has_a_verdict(result, report, names)
    hang_row = rows["hdf5_hang.h5"]
    assert hang_row["result"] == "failed"
    text = json.dumps(hang_row["checks"])
    assert "time limit" in text or "timed out" in text, text

    verdicts = {name: row["result"] for name, row in rows.items()}
    contained: dict[str, str] = {}
    for name, row in sorted(rows.items()):
        for check, outcome in row["checks"].items():
            message = outcome.get("message", "")
            words = ("time limit", "timed out", "crashed", "killed", "signal")
            if name not in contained and any(word in message.lower() for word in words):
                contained[name] = f"{check}: {message.splitlines()[0][:90]}"
    print(
        f"\nFUZZ: {len(rows)} artifacts ({len(rows) - 1} mutants, seed {SEED}): "
        f"{sum(v == 'failed' for v in verdicts.values())} failed, "
        f"{sum(v == 'passed' for v in verdicts.values())} passed; "
        f"{len(contained)} crashes/hangs contained; 0 artifacts changed\n"
        + "\n".join(f"  {name}: {text}" for name, text in contained.items())
    )


def test_a_full_gate_run_changes_no_artifact(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """Healthy files, every crafted attack and the real-world files, through a run that records
    goldens and a run that compares with them: every artifact's sha256 stays the same."""
    folder = tmp_path / "models"
    attacks.healthy(folder / "healthy")
    attacks.build_all(folder / "attacks")
    if REALWORLD.is_dir():
        (folder / "realworld").mkdir()
        for path in sorted(REALWORLD.iterdir()):
            if path.suffix in (".h5", ".keras"):
                shutil.copy(path, folder / "realworld" / path.name)
    before = _digests(folder)
    artifacts = sorted(p for p in before if p.endswith((".h5", ".keras")))
    assert len(artifacts) >= 40

    _gate(pytester, folder, "--keras-update-golden")
    _gate(pytester, folder)

    after = _digests(folder)
    assert {p: after.get(p) for p in before} == before, "an artifact's bytes changed"
    written = sorted(set(after) - set(before))
    print(f"\nFULL RUN: {len(artifacts)} artifacts unchanged; {len(written)} golden files written")
    assert written, "the update run wrote no golden: the test did not exercise it"
    assert not list(folder.rglob(attacks.MARKER)), "code from an artifact ran"


# ---------------------------------------------------------------------------------------------
# The allowlist rules under fuzzing: a hostile name planted anywhere in a real config is found
# ---------------------------------------------------------------------------------------------

#: What may be planted, and the finding it must give wherever it lands.
PLANTS: tuple[tuple[str, Any, str], ...] = (
    ("unknown class", {"class_name": "EvilLayer", "config": {"name": "evil"}}, "unknown-class"),
    (
        "foreign registered name",
        {"class_name": "Dense", "registered_name": "evilpkg>Dense", "config": {"name": "e"}},
        "foreign-module",
    ),
    (
        "Lambda reference",
        {"class_name": "Lambda", "config": {"name": "lam", "function": "exploit"}},
        "lambda",
    ),
    ("bytecode", {"class_name": "__lambda__", "config": {"code": "YQ=="}}, "lambda"),
    ("subprocess", "subprocess", "suspicious-reference"),
    ("os.system", "os.system", "suspicious-reference"),
    ("builtins.exec", "builtins.exec", "suspicious-reference"),
    ("get_file", "keras.utils.get_file", "dangerous-function"),
    ("unsafe switch", "keras.config.enable_unsafe_deserialization", "unsafe-switch"),
)


def _containers(config: Any) -> list[Any]:
    """Every dict and list of a config: where a plant can go."""
    found, stack = [], [config]
    while stack:
        node = stack.pop()
        if isinstance(node, (dict, list)):
            found.append(node)
            stack.extend(node.values() if isinstance(node, dict) else node)
    return found


@pytest.fixture(scope="module")
def healthy_configs() -> list[Any]:
    """The configs of real healthy files Keras saved (.keras config.json, .h5 model_config)."""
    import zipfile

    import h5py

    configs = []
    with zipfile.ZipFile(io.BytesIO(attacks._base("dense.keras"))) as zf:
        configs.append(json.loads(zf.read("config.json")))
    with h5py.File(io.BytesIO(attacks._base("dense.h5")), "r") as f:
        configs.extend(
            json.loads(f.attrs[a]) for a in ("model_config", "training_config") if a in f.attrs
        )
    return configs


def test_planted_names_are_found_wherever_they_land(healthy_configs: list[Any]) -> None:
    """300 plants at random places and under random keys of real configs: each gives its
    finding, and the configs without them give none (the allowlist passes what Keras wrote)."""
    from pytest_kerasmodel.safety import scan_config

    for config in healthy_configs:
        assert scan_config(config) == [], config
    rng = random.Random(SEED)
    for _ in range(300):
        config = copy.deepcopy(rng.choice(healthy_configs))
        name, plant, check = rng.choice(PLANTS)
        target = rng.choice(_containers(config))
        if isinstance(target, dict):
            # class_name / module / registered_name hold names: a plant there is judged as one
            kept = [k for k in target if k not in ("class_name", "module", "registered_name")]
            key = rng.choice(["fn", "fn_module", "url", "callback", "x", *kept])
            target[key] = copy.deepcopy(plant)
        else:
            target.insert(rng.randrange(len(target) + 1), copy.deepcopy(plant))
        checks = {f.check for f in scan_config(config)}
        assert check in checks, (name, checks)
