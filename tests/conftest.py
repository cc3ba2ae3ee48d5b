"""Shared fixtures of the test suite."""

from __future__ import annotations

from pathlib import Path

import pytest
from describe_artifacts import build_keras3, build_tf_keras


@pytest.fixture(scope="session")
def keras3_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny model saved by Keras 3 as .keras, legacy .h5 and .weights.h5 (built once)."""
    return build_keras3(tmp_path_factory.mktemp("keras3"))


@pytest.fixture(scope="session")
def tf_keras_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same tiny model saved by tf-keras 2.21 (Keras 2 layouts), built once."""
    return build_tf_keras(tmp_path_factory.mktemp("tf_keras"))
