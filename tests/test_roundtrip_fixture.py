"""The keras_roundtrip fixture as a user meets it: pytester runs of real test files.

Custom layers in generated files are registered under a package unique to each file, so
that in-process runs never clash with each other or with tests/roundtrip_models.py.
"""

from __future__ import annotations

# In-process pytester runs restore sys.modules afterwards: TensorFlow imported first inside a
# run would be imported again by the next run and abort. Import it here, once, for all runs.
import keras  # noqa: F401
import pytest

HEADER = """
import os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras
import numpy as np
L = keras.layers

def mlp():
    return keras.Sequential([keras.Input((4,)), L.Dense(3), L.Dense(2)], name="mlp")
"""

FORGETFUL = """
@keras.saving.register_keras_serializable(package="{package}")
class Scale(L.Layer):
    def __init__(self, factor=1.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return super().get_config()

def test_forgetful(keras_roundtrip):
    model = keras.Sequential([keras.Input((3,)), Scale(factor=2.0, name="scale")], name="m")
    keras_roundtrip(model)
"""


def test_fixture_passes_on_a_healthy_model(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        HEADER
        + """
def test_mlp(keras_roundtrip, tmp_path):
    result = keras_roundtrip(mlp())
    assert result.formats == ("keras",)
    assert isinstance(result["keras"], keras.Sequential)
    assert keras_roundtrip.folder.parent == tmp_path
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_failure_text_names_the_forgotten_argument(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(HEADER + FORGETFUL.format(package="fixture_failure_text"))
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*keras_roundtrip(model)",
            "E*RoundtripError: assert_roundtrip: the model changed when saved and reloaded"
            " as 'keras' (rtol=1e-05, atol=1e-06)",
            "E*[[]keras[]] model.keras: outputs, layers differ",
            "E*outputs: 1 output(s) differ",
            "E*scale: shape (4, 3) float32: 12 of 12 elements differ (100%),"
            " max abs diff *, max rel diff 0.5",
            "E*index*expected*actual",
            "E*layers: 1 attribute(s) differ after reload",
            "E*scale (Scale).factor: 2.0 -> 1.0",
            "E*'factor' is a constructor argument of Scale that get_config() does not return:"
            " add it to get_config()",
            "E*saved files kept in *roundtrip*",
        ]
    )
    # __tracebackhide__: the user's line is shown, not the plugin's internals
    assert "def assert_roundtrip" not in result.stdout.str()


def test_formats_and_tolerances_from_the_command_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        HEADER
        + """
def test_settings(keras_roundtrip):
    assert keras_roundtrip.formats == ("keras", "weights")
    assert keras_roundtrip.rtol == 0.5 and keras_roundtrip.atol == 0.25
    assert keras_roundtrip(mlp()).formats == ("keras", "weights")
"""
    )
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--keras-roundtrip-formats=keras,weights",
        "--keras-rtol=0.5",
        "--keras-atol=0.25",
    )
    result.assert_outcomes(passed=1)


def test_ini_keys_and_flag_wins(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
[pytest]
keras_roundtrip_formats = h5 weights
keras_rtol = 0.1
keras_atol = 2
"""
    )
    pytester.makepyfile(
        HEADER
        + """
def test_settings(keras_roundtrip):
    assert keras_roundtrip.formats == ("h5", "weights")
    assert (keras_roundtrip.rtol, keras_roundtrip.atol) == (0.1, 3.0)
    assert keras_roundtrip(mlp()).formats == ("h5", "weights")
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--keras-atol=3")
    result.assert_outcomes(passed=1)


def test_tolerance_from_ini_lets_a_small_difference_pass(pytester: pytest.Pytester) -> None:
    test = (
        HEADER
        + """
@keras.saving.register_keras_serializable(package="{package}")
class Offset(L.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.offset = 0.0

    def call(self, x):
        return x + self.offset

def test_offset(keras_roundtrip):
    model = keras.Sequential([keras.Input((3,)), Offset(name="off")], name="m")
    model.get_layer("off").offset = 1e-3
    result = keras_roundtrip(model, formats="keras")
"""
    )
    # a fresh package per run: pytester re-imports the file in this process
    pytester.makepyfile(test.replace("{package}", "fixture_tolerance_a"))
    failing = pytester.runpytest("-p", "no:cacheprovider")
    failing.assert_outcomes(failed=1)
    failing.stdout.fnmatch_lines(["E*off (Offset).offset: 0.001 -> 0.0", "E*state kept outside*"])
    pytester.makeini("[pytest]\nkeras_atol = 0.01\n")
    pytester.makepyfile(test.replace("{package}", "fixture_tolerance_b"))
    passing = pytester.runpytest("-p", "no:cacheprovider")
    passing.assert_outcomes(passed=1)
