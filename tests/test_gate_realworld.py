"""The gate over files that others published, written by Keras 1.2 to 3.13 and tf.keras:
each gets the verdict, and the reason, that a maintainer would expect."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from builders.gate_artifacts import message, run_gate, status

REALWORLD = Path(__file__).resolve().parents[2] / "shared" / "realworld"

pytestmark = pytest.mark.skipif(not REALWORLD.is_dir(), reason=f"{REALWORLD} is absent")

FILE_CHECKS_OK = {"integrity": "passed", "safety": "passed", "finite": "passed"}


def test_realworld_verdicts(pytester: pytest.Pytester) -> None:
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in REALWORLD.iterdir()}
    result, verdicts = run_gate(
        pytester, "-k", "not structure and not budgets", folder=str(REALWORLD)
    )
    assert len(verdicts) == 12, sorted(verdicts)

    # Every file Keras 3.15's load_model loads passes load: a Keras 3.8 legacy .h5, a tf.keras
    # 2.12 MLP, a Keras 3.10 BiLSTM and two TextVectorization models (one never built).
    loaded = {
        "k3.8_vasuki_simplernn_legacy_full.h5": 2651,
        "tfk2.12_07sada_sound_mlp_full.h5": 139530,
        "k3.10_sentiment_bilstm.keras": 623489,
        "k3.12_emotion_textvectorization_assets.keras": 0,  # vocabulary in assets, no variables
        "k3.13_toxic_textvectorization_assets.keras": None,  # never built: unknown, not an error
    }
    for name, params in loaded.items():
        assert status(verdicts, name) == {
            **FILE_CHECKS_OK,
            "load": "passed",
            "predictions": "skipped",
        }, name
        assert verdicts[name]["params"] == params, name
        assert verdicts[name]["root_cause"] is None, name
    assert verdicts["tfk2.12_07sada_sound_mlp_full.h5"]["writer"] == "2.12.0"
    assert message(verdicts, "k3.13_toxic_textvectorization_assets.keras", "load") == (
        "Sequential 'sequential_6', never built: parameter count unknown"
    )

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
    assert message(verdicts, lam, "safety").count("[lambda]") == 2
    assert message(verdicts, lam, "load").startswith("refused: the safety scan has 2 finding(s)")
    belief = "tfk2.14_beliefppg_custom_layers_v3zip.keras"
    assert "module 'beliefppg.model.positional_encoding', outside Keras" in message(
        verdicts, belief, "safety"
    )
    assert message(verdicts, belief, "load").startswith("refused")

    # No golden recorded: predictions has nothing to compare and is skipped, whatever load did;
    # each failing artifact is counted once, under its root cause.
    failing = {name: row["root_cause"] for name, row in verdicts.items() if row["root_cause"]}
    assert {name: cause["check"] for name, cause in failing.items()} == {
        "k1.2.2_dl4j_simple_lstm_theano_full.h5": "load",
        "k2.0.9_dl4j_functional_lambda_full.h5": "safety",
        "k2.2.4tf_dl4j_tensorflowoplayer_full.h5": "load",
        "k2.2.5_fdeep_lstm_bidir_multiinput_full.h5": "load",
        "tfk2.14_beliefppg_custom_layers_v3zip.keras": "safety",
    }
    for name in failing:
        assert status(verdicts, name)["predictions"] == "skipped", name
    assert failing[lam]["reason"] == "2 findings"
    result.stdout.fnmatch_lines(
        [
            "12 artifact(s), 5 failing at least one check",
            "5 failing artifacts, by root cause:",
            "  *k1.2.2_dl4j_simple_lstm_theano_full.h5: load (a Keras 1 Sequential model *)",
            "  *k2.0.9_dl4j_functional_lambda_full.h5: safety (2 findings)",
        ]
    )

    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in REALWORLD.iterdir()}
    assert after == before
    assert result.ret == pytest.ExitCode.TESTS_FAILED
