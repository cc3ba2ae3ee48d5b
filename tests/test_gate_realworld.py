"""The gate over files that others published, written by Keras 1.2 to 3.11 and tf.keras:
each gets the verdict, and the reason, that a maintainer would expect."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from gate_artifacts import message, run_gate, status

REALWORLD = Path(__file__).resolve().parents[2] / "shared" / "realworld"

pytestmark = pytest.mark.skipif(not REALWORLD.is_dir(), reason=f"{REALWORLD} is absent")

FILE_CHECKS_OK = {"integrity": "passed", "safety": "passed", "finite": "passed"}


def test_realworld_verdicts(pytester: pytest.Pytester) -> None:
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in REALWORLD.iterdir()}
    result, verdicts = run_gate(
        pytester, "-k", "not structure and not budgets", folder=str(REALWORLD)
    )
    assert len(verdicts) == 9, sorted(verdicts)

    # Loads with Keras 3: a Keras 3.8 legacy .h5 and a tf.keras 2.12 MLP.
    for name in ("k3.8_vasuki_simplernn_legacy_full.h5", "tfk2.12_07sada_sound_mlp_full.h5"):
        assert status(verdicts, name) == {
            **FILE_CHECKS_OK,
            "load": "passed",
            "predictions": "skipped",
        }
    assert verdicts["tfk2.12_07sada_sound_mlp_full.h5"]["writer"] == "2.12.0"

    # Weights only: nothing to load, not a failure.
    for name, fmt in (
        ("k2.3.1_dventimiglia_carnd_bn_weights_only.h5", "h5-weights"),
        ("k3.11_hongong_fashion_mlp.weights.h5", "weights.h5"),
    ):
        assert status(verdicts, name) == {
            **FILE_CHECKS_OK,
            "load": "skipped",
            "predictions": "skipped",
        }
        assert message(verdicts, name, "load").startswith(
            f"not applicable: a weights-only file ({fmt})"
        )

    # Keras 1.2.2 Sequential: Keras 3 says "pop expected at most 1 argument"; we say why.
    keras1 = message(verdicts, "k1.2.2_dl4j_simple_lstm_theano_full.h5", "load")
    assert keras1.startswith("load_model failed on a file written by Keras 1.2.2")
    assert "why: a Keras 1 Sequential model (its config is a plain list of layers)" in keras1
    assert "Keras said: TypeError: pop expected at most 1 argument, got 2" in keras1

    # tf.keras 2.2.4 TensorFlowOpLayer: a class Keras 3 does not have.
    tfop = message(verdicts, "k2.2.4tf_dl4j_tensorflowoplayer_full.h5", "load")
    assert "why: the class 'TensorFlowOpLayer' could not be built" in tfop

    # Keras 2.2.5 Bidirectional(LSTM): Keras 3 says "Could not locate class 'LSTM'" (misleading).
    bidir = message(verdicts, "k2.2.5_fdeep_lstm_bidir_multiinput_full.h5", "load")
    assert (
        "why: LSTM is a built-in Keras layer; layer 'lstm_4' is wrapped in Bidirectional" in bidir
    )
    assert "Keras said: TypeError: Could not locate class 'LSTM'" in bidir

    # Lambda bytecode (Keras 2.0.9) and custom classes from a foreign package: never loaded.
    lam = "k2.0.9_dl4j_functional_lambda_full.h5"
    assert status(verdicts, lam)["safety"] == "failed"
    assert message(verdicts, lam, "safety").count("[lambda-bytecode]") == 2
    assert message(verdicts, lam, "load").startswith("refused: the safety scan has 2 finding(s)")
    belief = "tfk2.14_beliefppg_custom_layers_v3zip.keras"
    assert "module 'beliefppg.model.positional_encoding', outside Keras" in message(
        verdicts, belief, "safety"
    )
    assert message(verdicts, belief, "load").startswith("refused")

    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in REALWORLD.iterdir()}
    assert after == before
    assert result.ret == pytest.ExitCode.TESTS_FAILED
