"""The team's own code in the gate: ``--keras-import`` and ``--keras-custom-objects``
(``kerasmodel gate --import`` / ``--custom-objects``).

A real tiny package, ``teamcode``, written into the test folder: a custom layer registered with
``keras.saving.register_keras_serializable``, a subclassed model registered the same way, and a
layer that is not registered but listed in a ``CUSTOM_OBJECTS`` dict. Its models are saved once,
in a child process that imports the package (the test process's Keras registry stays clean).
The gate must load them only with the options, and its safety scan must allow exactly what the
imports registered.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from builders.gate_artifacts import run_gate, status

LAYERS = """
import keras


@keras.saving.register_keras_serializable(package="teamcode")
class TeamScale(keras.layers.Layer):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package="teamcode")
class TeamModel(keras.Model):
    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dense = keras.layers.Dense(units)
        self.scale = TeamScale(3.0)

    def call(self, x):
        return self.scale(self.dense(x))

    def get_config(self):
        return {**super().get_config(), "units": self.units}
"""

OBJECTS = """
import keras


class Unregistered(keras.layers.Layer):
    def call(self, x):
        return x + 1.0


CUSTOM_OBJECTS = {"Unregistered": Unregistered}
NOT_A_DICT = 3
"""

BUILD = """
import sys
import numpy as np
import keras
from teamcode.layers import TeamScale, TeamModel
from teamcode.objects import Unregistered

out = sys.argv[1]
inputs = keras.Input((4,))
layered = keras.Model(inputs, TeamScale(2.0)(keras.layers.Dense(2)(inputs)))
layered.save(f"{out}/layered.keras")
sub = TeamModel(3)
sub(np.zeros((1, 4), "float32"))
sub.save(f"{out}/subclassed.keras")
inputs = keras.Input((4,))
plain = keras.Model(inputs, Unregistered()(keras.layers.Dense(2)(inputs)))
plain.save(f"{out}/unregistered.keras")
"""

CHECKS = "integrity,safety,load,predictions"


def _write_package(folder: Path) -> None:
    package = folder / "teamcode"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "layers.py").write_text(textwrap.dedent(LAYERS))
    (package / "objects.py").write_text(textwrap.dedent(OBJECTS))


@pytest.fixture(scope="module")
def team_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package and its three models, saved once by a child process."""
    folder = tmp_path_factory.mktemp("teamcode")
    _write_package(folder)
    (folder / "models").mkdir()
    subprocess.run(
        [sys.executable, "-c", BUILD, str(folder / "models")],
        cwd=folder,
        check=True,
        capture_output=True,
        env={**__import__("os").environ, "PYTHONPATH": str(folder)},
    )
    return folder


@pytest.fixture
def project(pytester: pytest.Pytester, team_models: Path) -> pytest.Pytester:
    """A pytester folder holding the package and the models (no goldens yet)."""
    _write_package(pytester.path)
    shutil.copytree(team_models / "models", pytester.path / "models")
    return pytester


def test_without_the_options_the_team_layers_fail_safety_and_load_says_which_option(
    project: pytest.Pytester,
) -> None:
    _, verdicts = run_gate(project, "--keras-checks", CHECKS)
    assert status(verdicts, "layered.keras")["safety"] == "failed"
    assert "teamcode" in verdicts["layered.keras"]["checks"]["safety"]["message"]
    # the modules allowed by hand: safety passes, load cannot build the class and names the option
    _result, verdicts = run_gate(
        project, "--keras-checks", "integrity,safety,load", "--keras-allowed-modules", "teamcode"
    )
    assert status(verdicts, "layered.keras") == {
        "integrity": "passed",
        "safety": "passed",
        "load": "failed",
    }
    text = verdicts["layered.keras"]["checks"]["load"]["message"]
    assert "--keras-import MODULE" in text and "--keras-custom-objects MODULE:NAME" in text
    assert status(verdicts, "subclassed.keras")["load"] == "failed"


def test_keras_import_loads_registered_layers_and_subclassed_models_and_allows_them(
    project: pytest.Pytester,
) -> None:
    options = ("--keras-checks", CHECKS, "--keras-import", "teamcode.layers")
    project.makepyfile(
        test_team="""
        import pytest

        def test_model(keras_artifact):
            if "unregistered" in keras_artifact.id:
                pytest.skip("not registered by teamcode.layers")
            assert type(keras_artifact.model).__module__.startswith(("teamcode", "keras"))
        """
    )
    with_test = run_gate(project, *options, "test_team.py", "-k", "test_model")[0]
    with_test.assert_outcomes(passed=2, skipped=1)
    recorded, verdicts = run_gate(project, *options, "--keras-update-golden")
    assert recorded.ret == 1, recorded.stdout.str()  # unregistered.keras fails; the rest pass
    for name in ("layered.keras", "subclassed.keras"):
        assert set(status(verdicts, name).values()) == {"passed"}, verdicts[name]
    assert "TeamModel" in verdicts["subclassed.keras"]["checks"]["load"]["message"]
    # the unregistered layer's module was not registered by the import: not allowed
    assert status(verdicts, "unregistered.keras")["safety"] == "failed"
    _compared, verdicts = run_gate(project, *options)
    for name in ("layered.keras", "subclassed.keras"):
        assert status(verdicts, name)["predictions"] == "passed", verdicts[name]
        assert "match" in verdicts[name]["checks"]["predictions"]["message"]


def test_keras_custom_objects_hands_the_dict_to_load_model_and_allows_its_modules(
    project: pytest.Pytester,
) -> None:
    project.makeini("[pytest]\nkeras_custom_objects = teamcode.objects:CUSTOM_OBJECTS\n")
    _result, verdicts = run_gate(project, "--keras-checks", "integrity,safety,load")
    assert status(verdicts, "unregistered.keras") == {
        "integrity": "passed",
        "safety": "passed",
        "load": "passed",
    }
    # the dict vouches for its own classes only: the registered ones are still not allowed
    assert status(verdicts, "layered.keras")["safety"] == "failed"


def test_a_name_that_is_not_a_dict_fails_the_checks_that_need_it_naming_the_option(
    project: pytest.Pytester,
) -> None:
    _result, verdicts = run_gate(
        project,
        "--keras-checks",
        "integrity,safety",
        "--keras-custom-objects",
        "teamcode.objects:NOT_A_DICT",
    )
    assert status(verdicts, "layered.keras") == {"integrity": "passed", "safety": "failed"}
    text = verdicts["layered.keras"]["checks"]["safety"]["message"]
    assert "--keras-custom-objects: teamcode.objects:NOT_A_DICT is int, not a dict" in text


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--keras-import", "nosuchteam.layers"), "*--keras-import: no module 'nosuchteam'*"),
        (("--keras-import", "team-code"), "*--keras-import: 'team-code' is not a module name*"),
        (("--keras-custom-objects", "teamcode.objects"), "*--keras-custom-objects: expected*"),
    ],
)
def test_a_bad_import_option_is_one_usage_error_before_any_work(
    project: pytest.Pytester, args: tuple[str, ...], expected: str
) -> None:
    result = project.runpytest("--keras-model-dir", "models", "-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {expected}"])
    assert "passed" not in result.stdout.str() and "failed" not in result.stdout.str()


def test_kerasmodel_gate_import_and_custom_objects(project: pytest.Pytester) -> None:
    kerasmodel = Path(sys.executable).with_name("kerasmodel")
    report = project.path / "gate.json"
    run = subprocess.run(
        [
            str(kerasmodel),
            "gate",
            "models",
            "--checks",
            "integrity,safety,load",
            "--import",
            "teamcode.layers",
            "--custom-objects",
            "teamcode.objects:CUSTOM_OBJECTS",
            "--no-cache",
            "--json",
            str(report),
        ],
        cwd=project.path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    data: dict[str, Any] = json.loads(report.read_text())
    assert {a["artifact"]: a["result"] for a in data["artifacts"]} == {
        "models/layered.keras": "passed",
        "models/subclassed.keras": "passed",
        "models/unregistered.keras": "passed",
    }
    bad = subprocess.run(
        [str(kerasmodel), "gate", "models", "--import", "nosuchteam"],
        cwd=project.path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert "--import: no module 'nosuchteam'" in bad.stderr
