"""The gate across backends: --keras-backends gives items ``::load[jax]``,
``::predictions[torch]``, each backend's checks in an isolated worker with KERAS_BACKEND set;
goldens compared under each with the same tolerances; --keras-load-compile's compile check."""

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

pytestmark = pytest.mark.skipif(
    not (installed("jax") and installed("torch")),
    reason="jax and torch are not installed (.ci/run installs them)",
)


@pytest.fixture(scope="module")
def backend_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``gru.keras`` (TensorFlow, trained) and ``torch_clf.keras`` (written under torch,
    compiled with Adam and trained), in one folder."""
    folder = tmp_path_factory.mktemp("backend_models")
    from builders import roundtrip_models as rm

    rm.train_one_step(rm.gru()).save(folder / "gru.keras")
    code = (
        "import sys; from builders import roundtrip_models as rm; "
        f"rm.trained_dense().save({str(folder / 'torch_clf.keras')!r})"
    )
    env = dict(os.environ, KERAS_BACKEND="torch", TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=300)
    return folder


def _stage(pytester: pytest.Pytester, folder: Path) -> None:
    shutil.copytree(folder, pytester.path / "models")


def test_checks_run_under_every_backend(pytester: pytest.Pytester, backend_models: Path) -> None:
    _stage(pytester, backend_models)
    recorded, _ = run_gate(pytester, "--keras-update-golden", "-k", "gru.keras")
    recorded.assert_outcomes(passed=6)
    result, verdicts = run_gate(
        pytester, "--keras-backends", "jax,torch", "--keras-load-compile", "-v"
    )
    result.stdout.fnmatch_lines(
        [
            "*gru*::load[[]jax[]] PASSED*",
            "*gru*::predictions[[]jax[]] PASSED*",
            "*gru*::compile[[]torch[]] PASSED*",
            "*torch_clf*::load[[]jax[]] PASSED*",
            "*torch_clf*::compile[[]jax[]] FAILED*",
        ]
    )
    gru = status(verdicts, "gru.keras")
    assert {c: gru[c] for c in ("predictions", "predictions[jax]", "predictions[torch]")} == {
        "predictions": "passed",
        "predictions[jax]": "passed",
        "predictions[torch]": "passed",
    }
    assert gru["compile"] == gru["compile[jax]"] == "passed"
    torch_clf = status(verdicts, "torch_clf.keras")
    # written under torch: it reloads compiled under torch only
    assert torch_clf["compile[torch]"] == "passed"
    assert torch_clf["compile"] == torch_clf["compile[jax]"] == "failed"
    assert torch_clf["load"] == torch_clf["load[jax]"] == torch_clf["load[torch]"] == "passed"
    text = message(verdicts, "torch_clf.keras", "compile[jax]")
    assert "keras.src.backend.torch.optimizers.torch_adam.Adam" in text
    assert "the torch backend's own class, under jax" in text
    assert "hint: under jax, reload with compile=False" in text
    assert "the torch backend's own class, under tensorflow" in message(
        verdicts, "torch_clf.keras", "compile"
    )
    result.stdout.fnmatch_lines(["*models/torch_clf.keras: compile (the reloaded optimizer is*"])


def test_goldens_are_compared_under_each_backend_with_the_same_tolerances(
    pytester: pytest.Pytester, backend_models: Path
) -> None:
    _stage(pytester, backend_models)
    run_gate(pytester, "--keras-update-golden", "-k", "gru.keras")
    # rtol = atol = 0: bit for bit. TensorFlow reproduces its own golden; JAX's GRU does not.
    result, verdicts = run_gate(
        pytester,
        "--keras-backends",
        "jax",
        "--keras-rtol",
        "0",
        "--keras-atol",
        "0",
        "-k",
        "gru.keras and predictions",
    )
    gru = status(verdicts, "gru.keras")
    assert gru == {"predictions": "passed", "predictions[jax]": "failed"}
    assert "the predictions differ from the golden" in message(
        verdicts, "gru.keras", "predictions[jax]"
    )
    assert "(rtol=0, atol=0)" in message(verdicts, "gru.keras", "predictions[jax]")
    result.stdout.fnmatch_lines(
        ["*models/gru.keras: predictions[[]jax[]]: the predictions differ*"]
    )


def test_backends_and_load_compile_from_the_ini_file(
    pytester: pytest.Pytester, backend_models: Path
) -> None:
    _stage(pytester, backend_models)
    pytester.makeini("[pytest]\nkeras_backends = torch\nkeras_load_compile = true\n")
    result = pytester.runpytest(
        "--keras-model-dir", "models", "--collect-only", "-q", "-p", "no:cacheprovider"
    )
    result.stdout.fnmatch_lines(
        [
            "models/gru.keras::compile",
            "models/gru.keras::load[[]torch[]]",
            "models/gru.keras::predictions[[]torch[]]",
            "models/gru.keras::compile[[]torch[]]",
        ]
    )
    assert "[jax]" not in result.stdout.str()


def test_backend_verdicts_are_cached_per_backend(
    pytester: pytest.Pytester,
    backend_models: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A backend item's verdict, passing or failing, is served from the verdict cache on the next
    run (no worker of that backend starts), and only for the backend that gave it."""
    monkeypatch.setenv("KERAS_GATE_CACHE_KEY", "a-ci-secret")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    _stage(pytester, backend_models)
    args = ["--keras-model-dir", "models", "--keras-checks", "integrity,load", "-v"]
    args += ["--keras-load-compile"]
    first = pytester.runpytest(*args, "--keras-backends", "jax")
    assert "(cached)" not in first.stdout.str()
    second = pytester.runpytest(*args, "--keras-backends", "jax")
    second.stdout.fnmatch_lines(
        [
            "*gru.keras::load[[]jax[]] PASSED (cached)*",
            "*torch_clf.keras::compile[[]jax[]] FAILED (cached)*",
        ]
    )
    assert second.ret == first.ret == pytest.ExitCode.TESTS_FAILED
    other = pytester.runpytest(*args, "--keras-backends", "torch")
    other.stdout.fnmatch_lines(["*gru.keras::load PASSED (cached)*"])  # the default backend's
    torch_lines = [line for line in other.stdout.lines if "[torch]" in line]
    assert torch_lines and not [line for line in torch_lines if "(cached)" in line]


SENT_AHEAD = """
from pathlib import Path
from pytest_kerasmodel.gate.session import gate_state

def pytest_runtest_teardown(item, nextitem):
    state = gate_state(item.config)
    sent = sorted(f"{Path(a).name}[{b}]" for a, b in state.backend_sent)
    print(f"AFTER {item.nodeid}: SENT {sent}")
"""


def test_each_backend_worker_is_sent_its_next_artifact_ahead(
    pytester: pytest.Pytester, backend_models: Path
) -> None:
    """The jax worker checks an artifact while pytest reports others: it has gru.keras as soon
    as gru.keras's first item ran, and torch_clf.keras once gru.keras's jax items are read."""
    _stage(pytester, backend_models)
    pytester.makeconftest(SENT_AHEAD)
    # in a subprocess: the conftest must see the gate's own state, not a re-imported copy
    result = pytester.runpytest_subprocess(
        "--keras-model-dir",
        "models",
        "--keras-checks",
        "integrity,load",
        "--keras-backends",
        "jax",
        "-s",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(
        [
            "*AFTER models/gru.keras::integrity: SENT [[]'gru.keras[[]jax]']",
            "*AFTER models/gru.keras::load[[]jax]: SENT [[]'torch_clf.keras[[]jax]']",
            "*AFTER models/torch_clf.keras::load[[]jax]: SENT [[]]",
        ]
    )
