"""make_inputs: deterministic inputs from real models' input specs, or a clear error."""

from __future__ import annotations

import random
from typing import Any

import keras
import numpy as np
import pytest
from builders import roundtrip_models as rm

from pytest_kerasmodel import make_inputs
from pytest_kerasmodel.frameworks.inputs import (
    NONE_DIM,
    InputsError,
    InputSignature,
    InputSpec,
    inputs_for_signature,
)

L = keras.layers


def test_same_model_and_seed_give_the_same_arrays_without_touching_global_rngs() -> None:
    model = rm.dense()
    random.seed(5)
    np.random.seed(5)
    a = make_inputs(model)
    b = make_inputs(model)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (4, 4) and a.dtype == np.float32
    assert not np.array_equal(a, make_inputs(model, seed=1))
    assert make_inputs(model, batch_size=2).shape == (2, 4)
    assert random.random() == random.Random(5).random()
    assert np.random.rand() == np.random.RandomState(5).rand()


def test_embedding_inputs_stay_inside_input_dim() -> None:
    x = make_inputs(rm.embedding_lstm(), batch_size=64)
    assert x.dtype == np.int32 and x.shape == (64, 5)
    assert x.min() >= 0 and x.max() < 30 and x.max() > 1


def test_float_inputs_feeding_an_embedding_are_integer_valued() -> None:
    model = keras.Sequential([keras.Input((6,)), L.Embedding(7, 2), L.Flatten()])
    x = make_inputs(model, batch_size=32)
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x, np.round(x))
    assert x.min() >= 0 and x.max() <= 6


def test_dict_inputs_keep_their_keys_dtypes_and_ranges() -> None:
    x = make_inputs(rm.multi_io())
    assert set(x) == {"tokens", "features"}
    assert x["tokens"].dtype == np.int32 and x["tokens"].max() < 40
    assert x["features"].shape == (4, 3) and x["features"].dtype == np.float32


def test_list_inputs() -> None:
    a, b = keras.Input((2,)), keras.Input((3,), dtype="bool")
    model = keras.Model(
        [a, b], L.Concatenate()([a, L.Activation("linear")(keras.ops.cast(b, "float32"))])
    )
    x = make_inputs(model)
    assert isinstance(x, list) and [t.shape for t in x] == [(4, 2), (4, 3)]
    assert x[1].dtype == np.bool_


def test_unknown_dimensions_get_a_small_size() -> None:
    x = make_inputs(rm.gru())
    assert x.shape == (4, NONE_DIM, 3)


def test_subclassed_model_uses_its_build_shape() -> None:
    assert make_inputs(rm.subclassed()).shape == (4, 4)


def test_subclassed_model_never_called_says_pass_inputs() -> None:
    with pytest.raises(InputsError, match="pass inputs="):
        make_inputs(rm.Tower())


def test_string_inputs_say_pass_inputs() -> None:
    signature = InputSignature((InputSpec("text", (None, 1), "string"),))
    with pytest.raises(InputsError, match=r"input 'text' of dtype string.*pass inputs="):
        inputs_for_signature(signature)


def test_roundtrip_with_string_model_explains(tmp_path: Any) -> None:
    from pytest_kerasmodel import assert_roundtrip

    text = keras.Input((1,), dtype="string")
    model = keras.Model(text, L.StringLookup(vocabulary=["a", "b"])(text))
    with pytest.raises(InputsError, match="pass inputs="):
        assert_roundtrip(model)
    assert_roundtrip(model, np.array([["a"], ["b"], ["z"]]))
