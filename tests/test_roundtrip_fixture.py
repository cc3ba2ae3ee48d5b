"""The keras_roundtrip fixture as a user meets it: pytester runs of real test files.

Custom layers in generated files are registered under a package unique to each file, so
that in-process runs never clash with each other or with tests/builders/roundtrip_models.py.
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
    return keras.Sequential(
        [keras.Input((4,)), L.Dense(3, name="hidden"), L.Dense(2, name="out")], name="mlp"
    )
"""

BROKEN = """
@keras.saving.register_keras_serializable(package="{package}")
class Scale(L.Layer):
    def __init__(self, factor=1.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return super().get_config()


@keras.saving.register_keras_serializable(package="{package}")
class Offset(L.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.offset = 0.0

    def call(self, x):
        return x + self.offset


@keras.saving.register_keras_serializable(package="{package}")
class Skipper(L.Layer):
    def build(self, input_shape):
        self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], 2))
        self.counter = self.add_weight(name="counter", shape=(), trainable=False)

    def call(self, x):
        return keras.ops.matmul(x, self.kernel)

    def save_own_variables(self, store):
        store["0"] = self.kernel.numpy()

    def load_own_variables(self, store):
        self.kernel.assign(store["0"])


class NotRegistered(L.Layer):
    def call(self, x):
        return x * 2.0


def test_forgotten_argument(keras_roundtrip):
    model = keras.Sequential([keras.Input((3,)), Scale(factor=2.0, name="scale")], name="m")
    keras_roundtrip(model)


def test_state_outside_variables(keras_roundtrip):
    model = keras.Sequential([keras.Input((3,)), Offset(name="off")], name="m")
    model.get_layer("off").offset = 4.0
    keras_roundtrip(model)


def test_skipped_variable(keras_roundtrip):
    model = keras.Sequential([keras.Input((3,)), Skipper(name="skipper")], name="m")
    model.get_layer("skipper").counter.assign(7.0)
    keras_roundtrip(model)


def test_unregistered_class(keras_roundtrip):
    model = keras.Sequential([keras.Input((3,)), NotRegistered(name="twice")], name="m")
    keras_roundtrip(model)


def test_h5_optimizer(keras_roundtrip):
    model = mlp()
    model.compile(optimizer="adam", loss="mean_squared_error")
    x = np.ones((4, 4), "float32")
    model.fit(x, np.zeros((4, 2), "float32"), batch_size=4, epochs=1, verbose=0)
    keras_roundtrip(model, x, formats=("keras", "h5"))
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


def test_failure_texts_of_real_broken_models(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(HEADER + BROKEN.format(package="fixture_failure_texts"))
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=5)
    result.stdout.fnmatch_lines(
        [
            # a constructor argument get_config() forgets: outputs differ, the argument named
            "*_ test_forgotten_argument _*",
            ">*keras_roundtrip(model)",
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
            # state outside Keras variables
            "*_ test_state_outside_variables _*",
            "E*off: shape (4, 3) float32: 12 of 12 elements differ (100%), max abs diff 4*",
            "E*off (Offset).offset: 4.0 -> 0.0",
            "E*'offset' is state kept outside Keras variables and the config*",
            # save_own_variables skipping a variable: the variable named
            "*_ test_skipped_variable _*",
            "E*[[]keras[]] model.keras: weights differ",
            "E*weights: 1 weight(s) differ",
            "E*m/skipper/counter: shape () float32: 1 of 1 elements differ (100%)*",
            # an unregistered class: the class named, with the hint
            "*_ test_unregistered_class _*",
            "E*[[]keras[]] model.keras: reloading failed",
            "E*load: reloading failed: TypeError: *",
            "E*Could not locate class 'NotRegistered'*",
            "E*class not found: NotRegistered",
            "E*hint: Keras cannot find 'NotRegistered': decorate the class with"
            " @keras.saving.register_keras_serializable(package=...) or pass"
            " custom_objects={'NotRegistered': NotRegistered}",
            # legacy .h5 loses Adam's slots: the optimizer named
            "*_ test_h5_optimizer _*",
            "E*[[]keras[]] model.keras: ok",
            "E*[[]h5[]] model.h5: optimizer differ",
            "E*optimizer: Adam 'adam*': 8 variable(s) differ, 8 lost on reload",
            "E*momentum of mlp/hidden/kernel: lost on reload (expected shape (4, 3))",
        ]
    )
    # __tracebackhide__: the user's line is shown, not the plugin's internals
    assert "def assert_roundtrip" not in result.stdout.str()


def test_healthy_models_through_the_fixture_and_ini_formats(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nkeras_roundtrip_formats = keras h5 weights\n")
    pytester.makepyfile(
        HEADER
        + """
import pytest


def conv():
    return keras.Sequential(
        [keras.Input((6, 6, 1)), L.Conv2D(2, 3), L.BatchNormalization(), L.Dropout(0.3),
         L.Flatten(), L.Dense(2)]
    )


def tokens():
    inp = keras.Input((5,), dtype="int32", name="tokens")
    feat = keras.Input((2,), name="feat")
    pooled = L.GlobalAveragePooling1D()(L.Embedding(20, 3)(inp))
    a = L.Dense(1, name="a")(L.Concatenate()([pooled, feat]))
    out = {"a": a, "b": L.Dense(2, name="b")(feat)}
    return keras.Model({"tokens": inp, "feat": feat}, out)


@pytest.mark.parametrize("build", [mlp, conv, tokens])
def test_healthy(keras_roundtrip, build):
    model = build()
    model.compile(optimizer="adam", loss="mean_squared_error")
    result = keras_roundtrip(model)
    assert result.formats == ("keras", "h5", "weights")
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


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
