"""A passing roundtrip's notes reach the user as :class:`pytest_kerasmodel.KerasModelNote`
warnings: in pytest's warnings summary, attributed to the test's own line, raised to an error
by ``-W error::pytest_kerasmodel.KerasModelNote`` and hidden by ``filterwarnings``."""

from __future__ import annotations

import pytest

import pytest_kerasmodel

TEST_FILE = """
import numpy as np
import keras

from pytest_kerasmodel import assert_roundtrip


def dropout_mlp():
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dropout(0.5), keras.layers.Dense(2)]
    )
    model(np.ones((2, 4), "float32"), training=True)  # draws: the seed generator moves on
    return model


def test_function():
    assert_roundtrip(dropout_mlp(), formats=["keras"])


def test_fixture(keras_roundtrip):
    keras_roundtrip(dropout_mlp(), formats=["keras"])


def test_plain_dense_has_no_note():
    import warnings

    from pytest_kerasmodel import KerasModelNote

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with warnings.catch_warnings():
        warnings.simplefilter("error", KerasModelNote)
        assert_roundtrip(model, formats=["keras"])
"""


def test_kerasmodelnote_is_public_and_a_userwarning() -> None:
    assert "KerasModelNote" in pytest_kerasmodel.__all__
    assert issubclass(pytest_kerasmodel.KerasModelNote, UserWarning)
    assert not issubclass(pytest_kerasmodel.KerasModelNote, pytest_kerasmodel.KerasModelError)


def test_notes_are_warnings_of_the_plugins_class(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_notes=TEST_FILE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "0")
    result.assert_outcomes(passed=3)
    assert result.stdout.str().count("KerasModelNote: assert_roundtrip") == 2
    result.stdout.fnmatch_lines(
        [
            "*warnings summary*",
            "test_notes.py::test_function",
            "  */test_notes.py:16: KerasModelNote: assert_roundtrip [[]keras[]] model.keras: "
            "dropout/seed_generator_state: seed-generator state differs*Keras does not save "
            "seed-generator state*",
            "test_notes.py::test_fixture",
            "  *: KerasModelNote: assert_roundtrip [[]keras[]] model.keras: dropout*/seed_gen*",
        ]
    )

    raised = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "0", "-W", "error::pytest_kerasmodel.KerasModelNote"
    )
    raised.assert_outcomes(passed=1, failed=2)
    raised.stdout.fnmatch_lines(["*KerasModelNote: assert_roundtrip [[]keras[]]*"])

    pytester.makeini("[pytest]\nfilterwarnings =\n    ignore::pytest_kerasmodel.KerasModelNote\n")
    hidden = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "0")
    hidden.assert_outcomes(passed=3)
    assert "KerasModelNote" not in hidden.stdout.str()
