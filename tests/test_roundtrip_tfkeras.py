"""assert_roundtrip on tf-keras (Keras 2) models: real tiny tf_keras models saved and reloaded
with tf-keras's own API in its four formats (keras, h5, weights, savedmodel), healthy and broken,
through the same checks and report as Keras 3 models."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_kerasmodel import RoundtripError, assert_roundtrip
from pytest_kerasmodel.frameworks import BackendError, installed

tf_keras = pytest.importorskip("tf_keras")
from builders import tfkeras_models as tm  # noqa: E402  (imports tf_keras)

ALL = ("keras", "h5", "weights", "savedmodel")
#: the formats each healthy model is checked in: a subclassed model cannot be saved as legacy
#: HDF5 (its own test); an LSTM's SavedModel costs ~9 s of tracing, so the LSTM skips it
HEALTHY_FORMATS = {
    "sequential": ALL,
    "functional": ALL,
    "subclassed": ("keras", "weights", "savedmodel"),
    "embedding": ("keras", "h5", "weights"),
}


@pytest.fixture(scope="module", params=sorted(HEALTHY_FORMATS))
def healthy(request: pytest.FixtureRequest) -> tuple[str, Any]:
    return request.param, tm.HEALTHY[request.param]()


@pytest.fixture(scope="module")
def trained() -> Any:
    """A Sequential (Dense, BatchNormalization) after one Adam step, compiled with mae."""
    return tm.train_one_step(tm.sequential())


def _format(error: pytest.ExceptionInfo[RoundtripError], fmt: str) -> Any:
    (found,) = [f for f in error.value.diff.formats if f.format == fmt]
    return found


def test_healthy_tf_keras_models_pass_each_format(healthy: tuple[str, Any]) -> None:
    name, model = healthy
    result = assert_roundtrip(model, formats=HEALTHY_FORMATS[name])
    assert result.formats == HEALTHY_FORMATS[name]
    for reloaded in result.models.values():
        assert type(reloaded).__module__.split(".")[0] in ("tf_keras", "builders")
    assert result.diff.backend == "tf_keras"


def test_the_default_format_is_keras(trained: Any) -> None:
    assert assert_roundtrip(trained).formats == ("keras",)


def test_trained_model_keeps_its_optimizer_in_keras_h5_and_weights(trained: Any) -> None:
    result = assert_roundtrip(trained, formats=("keras", "h5", "weights"))
    for fmt in ("keras", "h5", "weights"):  # the optimizer check compared every slot
        assert len(result[fmt].optimizer.variables) == len(trained.optimizer.variables)


def test_savedmodel_loses_the_optimizer_state(trained: Any) -> None:
    """tf-keras 2.21's SavedModel reloads the optimizer without its slots and with its step
    counter at 0: training resumes from a fresh Adam."""
    with pytest.raises(RoundtripError) as error:
        assert_roundtrip(trained, formats=("savedmodel",))
    diff = _format(error, "savedmodel")
    assert diff.failed_checks == ["optimizer"]
    lost = sorted(d.name for d in diff.optimizer if d.kind == "missing")
    assert len(lost) == 2 * len(trained.trainable_variables)  # m and v of each weight
    assert lost[0].startswith("m of ")
    text = str(error.value)
    assert "[savedmodel] savedmodel: optimizer differ" in text
    assert "lost on reload" in text
    assert "Adam/iteration: shape () int64" in text
    (hint,) = diff.hints  # TensorFlow's known bug, and its workaround
    assert "call model.load_weights(the same folder) after load_model" in hint
    assert "hint: tf-keras's load_model does not restore a SavedModel's optimizer state" in text


def test_legacy_optimizer_state_is_lost_by_the_keras_format() -> None:
    """``tf_keras.optimizers.legacy.Adam`` is reloaded from ``.keras`` and ``.weights.h5``
    without its step counter or slots (legacy HDF5 keeps them)."""
    model = tm.trained_with_legacy_adam()
    with pytest.raises(RoundtripError) as error:
        assert_roundtrip(model, formats=("keras", "h5", "weights"))
    assert _format(error, "h5").is_empty()
    for fmt in ("keras", "weights"):
        diff = _format(error, fmt)
        assert diff.failed_checks == ["optimizer"]
        assert diff.optimizer_name == "Adam 'Adam'"
        assert all(d.kind == "missing" for d in diff.optimizer)
        assert len(diff.optimizer) == len(model.optimizer.variables())
        assert diff.hints and "a legacy optimizer (tf_keras.optimizers.legacy)" in diff.hints[0]


@pytest.mark.parametrize("fmt", ALL)
def test_get_config_forgetting_a_constructor_argument(fmt: str) -> None:
    with pytest.raises(RoundtripError) as error:
        assert_roundtrip(tm.forgetful(), formats=(fmt,))
    diff = _format(error, fmt)
    assert "outputs" in diff.failed_checks and "layers" in diff.failed_checks
    (change,) = diff.layers
    assert (change.layer, change.attribute, change.old, change.new) == ("scale", "factor", 3.0, 1.0)
    assert "scale (ForgetfulScale).factor: 3.0 -> 1.0" in str(error.value)
    assert "'factor' is a constructor argument of ForgetfulScale that get_config() does not " in (
        str(error.value)
    )


def test_subclassed_model_as_h5_fails_to_save_with_a_hint() -> None:
    with pytest.raises(RoundtripError) as error:
        assert_roundtrip(tm.subclassed(), formats=("h5",))
    failure = _format(error, "h5").failure
    assert failure is not None and failure.stage == "save"
    assert failure.error_type == "NotImplementedError"
    assert failure.hint is not None and "cannot save a subclassed model" in failure.hint


def test_savedmodel_renames_a_subclassed_models_aliased_metric() -> None:
    """A subclassed model compiled with ``metrics=["mae"]`` comes back from a SavedModel logging
    ``mean_absolute_error``: history keys and ``val_mae`` monitors break."""
    model = tm.train_one_step(tm.subclassed())
    with pytest.raises(RoundtripError) as error:
        assert_roundtrip(model, formats=("savedmodel",), compile=True)
    diff = _format(error, "savedmodel")
    assert diff.metric_names is not None
    assert diff.metric_names.renamed == [("mae", "mean_absolute_error")]
    assert "callbacks monitoring 'val_mae'" in str(error.value)


def test_unregistered_custom_layer_is_named_with_tf_keras_registration() -> None:
    with pytest.raises(RoundtripError) as error:
        assert_roundtrip(tm.unregistered(), formats=("keras",))
    failure = _format(error, "keras").failure
    assert failure is not None and failure.stage == "load"
    assert failure.missing_class is not None and "Unregistered" in failure.missing_class
    assert "@tf_keras.saving.register_keras_serializable" in str(failure.hint)
    assert_roundtrip(
        tm.unregistered(), formats=("keras",), custom_objects={"Unregistered": tm.Unregistered}
    )


def test_compile_false_skips_the_optimizer(trained: Any) -> None:
    assert_roundtrip(trained, formats=("savedmodel",), compile=False)


@pytest.mark.skipif(not installed("jax"), reason="jax is not installed (.ci/run installs it)")
def test_backends_reload_a_tf_keras_models_files_in_keras_3() -> None:
    """The migration question: each file of a trained tf-keras Functional model reloaded by
    Keras 3 (under JAX, in the session's child process): its .h5 loads with the same outputs and
    weights but without the Adam slots and with renamed metrics; its .keras does not load
    ('Functional'); a SavedModel is no Keras 3 file."""
    model = tm.train_one_step(tm.functional())
    with pytest.raises(RoundtripError) as error:
        assert_roundtrip(model, formats=("keras", "h5", "savedmodel"), backends=["jax"])
    found = {f.label: f for f in error.value.diff.formats}
    assert found["keras"].is_empty() and found["h5"].is_empty()
    h5 = found["h5 -> jax"]
    assert h5.failed_checks == ["optimizer", "compile"]
    # Keras 3 rebuilds the metrics tf-keras saved per output (y_mae) and prefixes them again
    # (its evaluate and fit then fail: the saved fn stays a string)
    assert h5.metric_names is not None
    assert h5.metric_names.renamed[0] == ("y_mae", "y_y_mae")
    assert not h5.outputs and not h5.weights
    assert {d.kind for d in h5.optimizer} == {"missing"}
    assert len(h5.optimizer) == 2 * len(model.trainable_variables)  # iteration kept
    assert "Keras 3 rebuilds the optimizer of a tf-keras file without the slots" in h5.hints[0]
    assert "config, layer attributes and compile arguments are not compared" in h5.notes[0]
    keras_file = found["keras -> jax"].failure
    assert keras_file is not None and keras_file.missing_class == "Functional"
    assert "Keras 3 cannot load this file" in str(keras_file.hint)
    # compiled, a plain Sequential's .keras fails on tf-keras's optimizer config instead
    with pytest.raises(RoundtripError) as sequential:
        assert_roundtrip(tm.train_one_step(tm.dense()), formats=("keras",), backends=["jax"])
    failure = next(f for f in sequential.value.diff.formats if f.backend).failure
    assert failure is not None and "is_legacy_optimizer" in failure.message
    assert "reload with compile=False and compile again" in str(failure.hint)
    saved = found["savedmodel -> jax"].failure
    assert saved is not None and saved.error_type == "NotAKerasFile"
    assert "saved under tf_keras" in str(error.value)


def test_backends_and_formats_that_do_not_apply_are_usage_errors() -> None:
    from builders import roundtrip_models as rm

    with pytest.raises(BackendError, match=r"'tf_keras' is the gate's Keras 2 loader"):
        assert_roundtrip(rm.dense(), backends=["tf_keras"])
    with pytest.raises(ValueError, match=r"savedmodel: a tf-keras \(Keras 2\) format"):
        assert_roundtrip(rm.dense(), formats=("savedmodel",))


def test_nothing_leaks_between_tf_keras_and_keras_3(trained: Any) -> None:
    """tf-keras and Keras 3 in one process: each registry keeps its own classes, ``tf.keras`` is
    Keras 3 (TF_USE_LEGACY_KERAS unset), and a tf-keras roundtrip leaves tf-keras's name counters
    and the random state as they were."""
    import random

    import keras
    import numpy as np
    import tensorflow as tf

    from pytest_kerasmodel.frameworks import which

    assert which(tf.keras.Sequential([tf.keras.Input((2,)), tf.keras.layers.Dense(1)])) == "keras"
    assert which(trained) == which(tm.subclassed()) == "tf_keras"
    tf_keras_name = f"{tm.PACKAGE}>ForgetfulScale"
    assert tf_keras.saving.get_registered_object(tf_keras_name) is tm.ForgetfulScale
    assert keras.saving.get_registered_object(tf_keras_name) is None
    before = (random.getstate(), np.random.get_state()[1].tolist())
    first = tf_keras.layers.Dense(1).name
    assert_roundtrip(trained, formats=("keras", "h5"))
    assert (random.getstate(), np.random.get_state()[1].tolist()) == before
    second = tf_keras.layers.Dense(1).name
    assert int(second.rsplit("_", 1)[-1]) == int(first.rsplit("_", 1)[-1]) + 1
