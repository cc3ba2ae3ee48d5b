"""assert_roundtrip(..., backends=...): each saved file reloaded under the other Keras backends,
in one child process per backend reused for the whole test session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from builders import roundtrip_models as rm

from pytest_kerasmodel import RoundtripError, assert_roundtrip
from pytest_kerasmodel.frameworks import BackendError, installed, parse_backends
from pytest_kerasmodel.roundtrip.backends import child

TESTS = Path(__file__).parent
OTHERS = ["jax", "torch"]  # this test process runs TensorFlow

pytestmark = pytest.mark.skipif(
    not all(installed(b) for b in OTHERS), reason="jax and torch are not installed (.ci/run does)"
)


def _labels(diff: Any) -> list[str]:
    return [f.label for f in diff.formats]


@pytest.mark.parametrize(
    "name", ["dense", "multi_io", "subclassed", "conv", "attention", "masked_embedding"]
)
def test_healthy_models_pass_under_every_backend(name: str) -> None:
    model = rm.train_one_step(rm.HEALTHY[name]())
    result = assert_roundtrip(model, formats=("keras", "weights"), backends="all")
    assert _labels(result.diff) == [
        "keras",
        "keras -> jax",
        "keras -> torch",
        "weights",
        "weights -> jax",
        "weights -> torch",
    ]
    assert not result.diff


def test_children_are_reused_across_calls() -> None:
    assert_roundtrip(rm.dense(), backends=["jax"])
    before = child("jax").started, child("jax").requests
    assert_roundtrip(rm.dense(), backends=["jax"])
    assert child("jax").started == before[0] == 1
    assert child("jax").requests == before[1] + 1


def test_a_broken_model_is_reported_under_each_backend() -> None:
    with pytest.raises(RoundtripError) as info:
        assert_roundtrip(rm.forgetful_scale(), backends=OTHERS)
    diff = info.value.diff
    for found in diff.formats:
        assert found.failed_checks == ["outputs", "layers"], found.label
    text = str(info.value)
    assert "reloaded as 'keras', 'keras -> jax', 'keras -> torch' (saved under tensorflow" in text
    assert "[keras -> jax] model.keras: outputs, layers differ" in text
    assert "[keras -> torch] model.keras: outputs, layers differ" in text
    assert text.count("scale (ForgetfulScale).factor: 3.0 -> 1.0") == 3


def test_the_optimizer_state_comes_back_from_the_child() -> None:
    model = rm.trained_dense()
    with pytest.raises(RoundtripError) as info:
        assert_roundtrip(model, formats=("h5",), backends=["torch"])
    (here, there) = info.value.diff.formats
    assert here.label == "h5" and there.label == "h5 -> torch"
    lost = sorted(d.name for d in there.optimizer if d.kind == "missing")
    assert lost == sorted(d.name for d in here.optimizer if d.kind == "missing")
    assert len(lost) == 2 * len(model.trainable_weights)


def test_unknown_backend_is_an_error() -> None:
    with pytest.raises(BackendError, match=r"unknown backend 'mxnet'.*tensorflow"):
        assert_roundtrip(rm.dense(), backends=["mxnet"])
    assert parse_backends("all") == ["tensorflow", "jax", "torch"]
    assert parse_backends("jax, torch,jax") == ["jax", "torch"]


def _run(backend: str, code: str) -> str:
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_a_backend_not_installed_names_the_package() -> None:
    # A process where torch cannot be imported, as in a serving image without it.
    out = _run(
        "jax",
        """
        import sys
        sys.modules["torch"] = None
        from pytest_kerasmodel.frameworks import BackendError, parse_backends
        try:
            parse_backends(["torch"], source="assert_roundtrip: backends")
        except BackendError as exc:
            print(exc)
        """,
    )
    assert out == (
        "assert_roundtrip: backends: the torch backend is not installed: pip install "
        "'torch' to reload models under it (the CPU build: pip install torch --index-url "
        "https://download.pytorch.org/whl/cpu)"
    )


@pytest.fixture(scope="module")
def torch_written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A compiled, trained model saved under torch (kept as ``clf.keras``) and reloaded under
    TensorFlow and JAX by assert_roundtrip, in one torch process."""
    saved = tmp_path_factory.mktemp("torch_written") / "clf.keras"
    out = _run(
        "torch",
        f"""
        from scripts import cross_backend
        from builders import roundtrip_models as rm
        rm.trained_dense().save({str(saved)!r})
        cross_backend.main(["trained_dense"], ["keras", "weights"], True)
        """,
    )
    return {"file": saved, **json.loads(out)["trained_dense"]}


def test_torch_written_compiled_keras_does_not_train_under_tensorflow_or_jax(
    torch_written: dict[str, Any],
) -> None:
    assert torch_written["keras -> torch"]["checks"] == []
    for reader in ("tensorflow", "jax"):
        for fmt in ("keras", "weights"):
            found = torch_written[f"{fmt} -> {reader}"]
            assert found["checks"] == ["compile"], found["text"]
            text = found["text"]
            assert f"[{fmt} -> {reader}]" in text
            assert "keras.src.backend.torch.optimizers.torch_adam.Adam" in text
            assert f"the torch backend's own class, under {reader}" in text
            assert f"hint: under {reader}, reload with compile=False" in text


def test_torch_written_compiled_keras_does_not_load_without_torch(
    torch_written: dict[str, Any],
) -> None:
    saved = torch_written["file"]
    out = _run(
        "jax",
        f"""
        import json, sys
        sys.modules["torch"] = None
        from dataclasses import asdict
        from pytest_kerasmodel.frameworks import keras3
        from pytest_kerasmodel.roundtrip.hints import failure_of
        try:
            keras3.load("keras", {str(saved)!r})
        except Exception as exc:
            print(json.dumps(asdict(failure_of("load", exc))))
        keras3.load("keras", {str(saved)!r}, compile=False)
        """,
    )
    failure = json.loads(out)
    assert "keras.src.backend.torch.optimizers.torch_adam cannot be imported" in failure["message"]
    assert "'keras.src.backend.torch.optimizers.torch_adam'" in failure["hint"]
    assert "reload with compile=False" in failure["hint"]


# --- the keras_roundtrip fixture: --keras-backends / keras_backends ----------------------------

FIXTURE_TEST = """
import keras
L = keras.layers


@keras.saving.register_keras_serializable(package="backends_fixture_{n}")
class Scale(L.Layer):
    def __init__(self, factor=1.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return super().get_config()


def test_healthy(keras_roundtrip):
    model = keras.Sequential([keras.Input((4,)), L.Dense(2)], name="mlp")
    assert [f.label for f in keras_roundtrip(model).diff.formats] == {labels!r}


def test_forgets(keras_roundtrip):
    keras_roundtrip(keras.Sequential([keras.Input((4,)), Scale(3.0, name="scale")]))
"""


def test_fixture_takes_the_backends_flag(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_flag=FIXTURE_TEST.format(n=1, labels=["keras", "keras -> jax", "keras -> torch"])
    )
    result = pytester.runpytest("--keras-backends=jax,torch", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*[[]keras -> jax[]] model.keras: outputs, layers differ*",
            "*[[]keras -> torch[]] model.keras: outputs, layers differ*",
        ]
    )


def test_fixture_takes_the_ini_key(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nkeras_backends = torch\n")
    pytester.makepyfile(test_ini=FIXTURE_TEST.format(n=2, labels=["keras", "keras -> torch"]))
    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "healthy")
    result.assert_outcomes(passed=1)


def test_unknown_backend_flag_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--keras-backends=theano")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*keras_backends: unknown backend 'theano'*"])


def test_children_start_when_a_collected_test_uses_the_fixture(pytester: pytest.Pytester) -> None:
    # A subprocess: this test process's own pool may hold children already. The test body
    # looks at the pool before any roundtrip: started at collection, importing meanwhile.
    pytester.makepyfile(
        test_uses="""
        from pytest_kerasmodel.roundtrip import backends

        def test_started(keras_roundtrip):
            assert backends.child("jax").proc is not None
            assert backends.child("torch").proc is None  # not asked for
        """
    )
    result = pytester.runpytest_subprocess("--keras-backends=jax", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    pytester.makepyfile(
        test_uses="""
        from pytest_kerasmodel.roundtrip import backends

        def test_not_started():
            assert backends.child("jax").proc is None  # no test uses keras_roundtrip
        """
    )
    result = pytester.runpytest_subprocess("--keras-backends=jax", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_encode_writes_large_arrays_as_files_and_decode_maps_them(tmp_path: Path) -> None:
    import numpy as np

    from pytest_kerasmodel.roundtrip.backends import INLINE_BYTES, decode, encode

    big = np.arange(256 * 1024, dtype="float32").reshape(512, 512)
    small = np.arange(4, dtype="int64")
    line = json.dumps(encode({"big": big, "small": small, "n": np.int32(3)}, tmp_path / "a"))
    assert len(line) < 1000 < big.nbytes  # the megabyte is not in the line
    back = decode(json.loads(line))
    assert isinstance(back["big"], np.memmap) and not back["big"].flags.writeable
    np.testing.assert_array_equal(back["big"], big)
    np.testing.assert_array_equal(back["small"], small)
    assert back["n"] == 3 and small.nbytes <= INLINE_BYTES
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["0.npy"]
    # without a folder everything travels inline, as before
    inline = decode(json.loads(json.dumps(encode({"big": big}))))
    np.testing.assert_array_equal(inline["big"], big)


def test_the_child_hands_back_its_arrays_as_files(tmp_path: Path) -> None:
    # A failing roundtrip keeps its folder: the inputs the parent wrote once and the arrays the
    # child wrote are there as .npy files, and the weights read from them match.
    import keras
    import numpy as np

    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(64), rm.ForgetfulScale(factor=3.0)]
    )
    with pytest.raises(RoundtripError) as info:
        assert_roundtrip(
            model,
            np.ones((32, 64), "float32"),  # 8 KiB: above INLINE_BYTES
            formats=("keras",),
            backends=["jax"],
            folder=tmp_path,
        )
    here, there = info.value.diff.formats
    assert (here.label, there.label) == ("keras", "keras -> jax")
    assert there.failed_checks == ["outputs", "layers"] and not there.weights
    (kept,) = tmp_path.glob("roundtrip-*")
    arrays = kept / "keras" / "arrays"
    assert [p.name for p in (arrays / "inputs").iterdir()] == ["0.npy"]
    assert len(list((arrays / "jax").glob("*.npy"))) >= 2  # outputs and the kernel at least
