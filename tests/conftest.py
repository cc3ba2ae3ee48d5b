"""Shared fixtures of the test suite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from builders.describe_artifacts import build_keras3, build_tf_keras


@pytest.fixture(scope="session")
def keras3_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny model saved by Keras 3 as .keras, legacy .h5 and .weights.h5 (built once)."""
    return build_keras3(tmp_path_factory.mktemp("keras3"))


@pytest.fixture(scope="session")
def tf_keras_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same tiny model saved by tf-keras 2.21 (Keras 2 layouts), built once."""
    return build_tf_keras(tmp_path_factory.mktemp("tf_keras"))


# --- roundtrip: real tiny models, built once per session --------------------------------------
# assert_roundtrip leaves a model as it was (test_roundtrip.py checks it), so tests share them.
# roundtrip_models imports Keras: imported inside the fixtures, not when this conftest loads.

HEALTHY_MODELS = (
    "attention",
    "conv",
    "dense",
    "embedding_lstm",
    "gru",
    "masked_embedding",
    "multi_io",
    "nested",
    "normalization",
    "subclassed",
)


@pytest.fixture(scope="session", params=HEALTHY_MODELS)
def healthy_model(request: pytest.FixtureRequest) -> Any:
    """Each healthy model of the issue's list: Dense, Conv2D+BatchNormalization+Dropout,
    Embedding+LSTM on integer inputs, GRU, nested, dict multi-input multi-output,
    Normalization after adapt, a registered subclassed model."""
    from builders import roundtrip_models

    return roundtrip_models.HEALTHY[request.param]()


@pytest.fixture(scope="session")
def trained_dense() -> Any:
    """A small MLP after one Adam step: its optimizer has momentum and velocity slots."""
    from builders import roundtrip_models

    return roundtrip_models.trained_dense()


@pytest.fixture(scope="session")
def compiled_untrained() -> Any:
    """A compiled model whose optimizer was never built."""
    from builders import roundtrip_models

    model = roundtrip_models.conv()
    # the full name: legacy .h5 renames the alias "mae" (test_legacy_h5_renames_an_aliased_metric)
    model.compile(optimizer="adam", loss="mean_squared_error", metrics=["mean_absolute_error"])
    return model


@pytest.fixture(scope="session")
def gate_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Healthy, broken, unsafe and hostile artifacts for the gate tests (built once)."""
    from builders.gate_artifacts import build_gate_files

    return build_gate_files(tmp_path_factory.mktemp("gate"))


@pytest.fixture(scope="session", autouse=True)
def _keras_imported_before_any_pytester() -> None:
    """Import Keras (and so TensorFlow and h5py) once per test process, first.

    pytester removes, when a test ends, every module imported during it; TensorFlow cannot be
    imported twice in one process (it aborts: "PyExceptionRegistry::Init() already called").
    A pytester test that was first to import it (an in-process gate run) made the next import
    abort the whole pytest-xdist worker. The tests that prove the plugin and the file-only
    checks import none of them run in fresh subprocesses, so this hides nothing.
    """
    import keras  # noqa: F401


@pytest.fixture(scope="session")
def _inner_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("inner_home")


@pytest.fixture
def pytester(
    pytester: pytest.Pytester, _inner_home: Path, monkeypatch: pytest.MonkeyPatch
) -> pytest.Pytester:
    """pytester, whose inner runs share one empty HOME (outside the user's) for the whole test
    process instead of each test's own folder: an in-process gate run then gets the environment
    of the run before, and forks its workers from the zygote that run kept (forkserver's
    ``release``) instead of importing Keras again (about 5 s of CPU each)."""
    monkeypatch.setenv("HOME", str(_inner_home))
    monkeypatch.setenv("USERPROFILE", str(_inner_home))
    return pytester


@pytest.fixture(scope="session")
def layout_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny MLP as .keras, unzipped folder and sharded weights, and their hostile twins."""
    from builders.layouts import build_layout_files

    return build_layout_files(tmp_path_factory.mktemp("layouts"))


@pytest.fixture(scope="session")
def preset_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """KerasHub presets of one tiny BERT (task, backbone, sharded, foreign), built once."""
    pytest.importorskip("keras_hub")
    from builders.layouts import build_preset_files

    return build_preset_files(tmp_path_factory.mktemp("presets"))


@pytest.fixture(scope="session")
def exported_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One softmax MLP as clf.keras and exported in every format, and hostile exports."""
    for module in ("tf2onnx", "onnx", "onnxruntime", "ai_edge_litert", "openvino"):
        pytest.importorskip(module, reason="the [export] extra is not installed")
    from builders.exported_artifacts import build_exported

    return build_exported(tmp_path_factory.mktemp("exported"))
