"""The gate with tf-keras: --keras-backends tf_keras gives items ``::load[tf_keras]``,
``::predictions[tf_keras]`` (and ``::compile[tf_keras]``), run in an isolated worker that loads
with tf-keras (TF_USE_LEGACY_KERAS=1); Keras 3 files tf-keras cannot read fail with the reason,
exported graphs skip, goldens compare with the same tolerances."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from builders.gate_artifacts import message, run_gate, status

from pytest_kerasmodel.frameworks import installed

TESTS = Path(__file__).parent

pytestmark = pytest.mark.skipif(not installed("tf_keras"), reason="tf-keras is not installed")

_WRITE = """
import sys, keras
from builders import tfkeras_models as tm
from pathlib import Path
from pytest_kerasmodel.frameworks import tfkeras
from pytest_kerasmodel.gate import goldens
from pytest_kerasmodel.frameworks.inputs import make_inputs
folder = sys.argv[1]
trained = tm.train_one_step(tm.sequential())
inputs = make_inputs(trained)
outputs = goldens.named_outputs(trained, tfkeras.call_model(trained, inputs))
for name, options in [
    ("tfk_clf.h5", {}), ("tfk_clf.keras", {}), ("tfk_clf_savedmodel", {"save_format": "tf"})
]:
    trained.save(folder + "/" + name, **options)
    # recorded with tf-keras, what a Keras 2 team records its goldens with
    _, golden = goldens.golden_paths(Path(folder) / name, None, None)
    goldens.write_predictions(golden, inputs, outputs)
k3 = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
k3.save(folder + "/k3_dense.keras")
k3.export(folder + "/k3_export", verbose=False)
"""


@pytest.fixture(scope="module")
def tfk_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained tf-keras Sequential (Dense, BatchNormalization) as .h5, .keras and SavedModel;
    a Keras 3 Dense as .keras and exported as a SavedModel (written in one child process)."""
    folder = tmp_path_factory.mktemp("tfk_models")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
    subprocess.run([sys.executable, "-c", _WRITE, str(folder)], env=env, check=True, timeout=300)
    return folder


def test_tf_keras_items_load_keras_2_artifacts_and_refuse_others(
    pytester: pytest.Pytester, tfk_models: Path
) -> None:
    shutil.copytree(tfk_models, pytester.path / "models")
    result, verdicts = run_gate(
        pytester, "--keras-backends", "tf_keras", "--keras-load-compile", "-v"
    )
    result.stdout.fnmatch_lines(
        [
            "*k3_dense.keras::load[[]tf_keras[]] FAILED*",
            "*k3_export::load[[]tf_keras[]] SKIPPED*",
            "*tfk_clf.h5::load[[]tf_keras[]] PASSED*",
            "*tfk_clf.h5::predictions[[]tf_keras[]] PASSED*",
            "*tfk_clf.h5::compile[[]tf_keras[]] PASSED*",
        ]
    )
    # the legacy .h5 loads under both, and Keras 3 reproduces the golden tf-keras recorded
    h5 = status(verdicts, "tfk_clf.h5")
    assert h5["load"] == h5["load[tf_keras]"] == "passed"
    assert h5["predictions"] == h5["predictions[tf_keras]"] == "passed"
    assert "compiled under tf_keras: Adam" in message(verdicts, "tfk_clf.h5", "compile[tf_keras]")
    # tf-keras 2.21's .keras of a BatchNormalization does not load in Keras 3 (its axis is saved
    # as a list), but does with tf-keras: the Keras 2 team's gate passes it, the migration fails
    keras_file = status(verdicts, "tfk_clf.keras")
    assert keras_file["load"] == "failed" and keras_file["predictions"] == "failed"
    assert "why: written by Keras 2 (2." in message(verdicts, "tfk_clf.keras", "load")
    assert keras_file["load[tf_keras]"] == keras_file["compile[tf_keras]"] == "passed"
    assert keras_file["predictions[tf_keras]"] == "passed"
    # tf-keras's own SavedModel is a Keras model to tf-keras, not to Keras 3
    saved = status(verdicts, "tfk_clf_savedmodel")
    assert saved["load"] == "skipped"
    assert saved["load[tf_keras]"] == saved["compile[tf_keras]"] == "passed"
    assert saved["predictions"] == saved["predictions[tf_keras]"] == "passed"
    # a Keras 3 file tf-keras cannot read: failed, with the reason
    k3 = status(verdicts, "k3_dense.keras")
    assert k3["load"] == "passed" and k3["load[tf_keras]"] == "failed"
    text = message(verdicts, "k3_dense.keras", "load[tf_keras]")
    assert "(installed: tf-keras 2." in text
    assert "why: a Keras 3 file, loaded with tf-keras" in text
    assert "batch_shape" in text
    # an exported graph is not a Keras model: load skipped with the reason
    exported = status(verdicts, "k3_export")
    assert exported["load"] == exported["load[tf_keras]"] == "skipped"
    assert "without tf-keras's keras_metadata.pb" in message(
        verdicts, "k3_export", "load[tf_keras]"
    )


def test_tf_keras_goldens_use_the_same_tolerances(
    pytester: pytest.Pytester, tfk_models: Path
) -> None:
    import numpy as np

    shutil.copytree(tfk_models, pytester.path / "models")
    golden = pytester.path / "models" / "tfk_clf.h5.golden.npz"
    with np.load(golden) as npz:
        arrays = {k: npz[k] for k in npz.files}
    name = next(k for k in arrays if k.startswith("output/"))
    arrays[name] = arrays[name] + 1e-3  # as if the model changed a little
    np.savez(golden, **arrays)
    _, verdicts = run_gate(
        pytester,
        "--keras-backends",
        "tf_keras",
        "--keras-atol",
        "5e-4",
        "-k",
        "tfk_clf.h5 and predictions and tf_keras",
    )
    assert status(verdicts, "tfk_clf.h5") == {"predictions[tf_keras]": "failed"}
    text = message(verdicts, "tfk_clf.h5", "predictions[tf_keras]")
    assert "the predictions differ from the golden" in text
    assert "(rtol=1e-05, atol=0.0005)" in text


def test_tf_keras_from_the_ini_file(pytester: pytest.Pytester, tfk_models: Path) -> None:
    shutil.copytree(tfk_models, pytester.path / "models")
    pytester.makeini("[pytest]\nkeras_backends = tensorflow, tf_keras\n")
    result = pytester.runpytest(
        "--keras-model-dir", "models", "--collect-only", "-q", "-p", "no:cacheprovider"
    )
    result.stdout.fnmatch_lines(
        [
            "models/tfk_clf.h5::load[[]tensorflow[]]",
            "models/tfk_clf.h5::load[[]tf_keras[]]",
            "models/tfk_clf.h5::predictions[[]tf_keras[]]",
        ]
    )
