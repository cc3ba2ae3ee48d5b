"""Every crafted attack through the gate (`pytest --keras-model-dir`): each artifact fails, the
failure names the layer, member or HDF5 path, the model is never deserialised, and no code from
an artifact runs; the healthy files beside them pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from builders import attacks


@pytest.fixture(scope="module")
def attack_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("gate_attacks")
    files = attacks.build_all(folder)
    attacks.healthy(folder / "healthy")
    return files


def test_every_attack_fails_the_gate_naming_where(
    pytester: pytest.Pytester, attack_files: dict[str, Path]
) -> None:
    attack_dir = next(iter(attack_files.values())).parents[1]
    report = pytester.path / "report.json"
    result = pytester.runpytest(
        "--keras-model-dir",
        str(attack_dir),
        "--keras-report",
        str(report),
        "-p",
        "no:cacheprovider",
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    rows = json.loads(report.read_text())["artifacts"]
    by_name = {"/".join(Path(row["artifact"]).parts[-2:]): row for row in rows}

    verdicts: dict[str, str] = {}
    for attack, (_, _, where) in sorted(attacks.ATTACKS.items()):
        row = by_name[f"{attack}/{attack_files[attack].name}"]
        checks = row["checks"]
        assert row["result"] == "failed", attack
        named = [c for c in ("safety", "integrity") if where in checks[c]["message"]]
        assert named, (attack, where, checks["integrity"]["message"], checks["safety"]["message"])
        if row["format"] in ("h5-weights", "weights.h5"):  # nothing to load: not a 2nd failure
            assert checks["load"]["message"].startswith("not applicable: a weights-only"), attack
        else:
            assert checks["load"]["status"] == "failed", attack
            assert checks["load"]["message"].startswith(("refused", "cannot be verified")), attack
        verdicts[attack] = f"{named[0]}: {checks[named[0]]['message'].splitlines()[-1].strip()}"
    healthy = [row for row in rows if Path(row["artifact"]).parent.name == "healthy"]
    assert [row["checks"]["safety"]["status"] for row in healthy] == ["passed"] * 3
    assert not list(attack_dir.rglob(attacks.MARKER)), "code from an artifact ran"
    print("\nGATE VERDICTS\n" + "\n".join(f"{k}: {v[:150]}" for k, v in verdicts.items()))
