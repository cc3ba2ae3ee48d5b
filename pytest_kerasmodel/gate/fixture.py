"""The ``keras_artifact`` fixture: one test run per artifact under ``--keras-model-dir``.

A team writes its own per-artifact checks (accuracy on a validation set, say) as ordinary tests;
the fixture hands each run the artifact's path, its description and a model that is loaded only
when asked for, and only after the artifact passed the integrity and safety checks (run in the
isolated worker, results shared with the gate's own items).
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from pytest_kerasmodel.errors import ArtifactError, UnsafeArtifactError
from pytest_kerasmodel.gate.discover import find_artifacts, model_dir_of
from pytest_kerasmodel.gate.protocol import FAILED, WEIGHTS_ONLY_FORMATS
from pytest_kerasmodel.gate.session import gate_state
from pytest_kerasmodel.options import get_settings


def artifact_id(path: Path, config: pytest.Config) -> str:
    try:
        return path.relative_to(config.rootpath).as_posix()
    except ValueError:
        return os.path.relpath(path, config.rootpath)


def parametrize(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``keras_artifact`` over every artifact under the model folders."""
    config = metafunc.config
    artifacts = find_artifacts(get_settings(config).model_dirs)
    if not artifacts:
        skip = pytest.mark.skip(
            reason="no artifacts: give --keras-model-dir DIR (or keras_model_dir)"
        )
        metafunc.parametrize("keras_artifact", [pytest.param(None, marks=skip)], indirect=True)
        return
    ids = [artifact_id(p, config) for p in artifacts]
    metafunc.parametrize("keras_artifact", artifacts, ids=ids, indirect=True)


class KerasArtifact:
    """One artifact under ``--keras-model-dir``: its path, description and (lazily) its model."""

    def __init__(self, path: Path, config: pytest.Config) -> None:
        self.path = path
        self.id = artifact_id(path, config)
        self._config = config
        self._model: Any = None
        self._description: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"KerasArtifact({self.id!r})"

    def _checked(self) -> dict[str, Any]:
        """Integrity and safety results, from the isolated worker (shared with the gate items)."""
        state = gate_state(self._config)
        cached = state.results.get(self.path)
        if cached is None or not {"integrity", "safety"} <= cached["checks"].keys():
            model_dir = model_dir_of(self.path, state.settings.model_dirs) or self.path.parent
            request = state.request_for(self.path, model_dir, ["integrity", "safety"])
            cached = state.get_runner().run(asdict(request))
            state.results[self.path] = cached
        return cached

    def _require(self, *checks: str) -> None:
        """Raise when one of the worker's checks failed: the file is not read in this process."""
        __tracebackhide__ = True
        results = self._checked()["checks"]
        for name in checks:
            if results[name]["status"] == FAILED:
                findings = results[name].get("details", {}).get("findings")
                if findings:
                    raise UnsafeArtifactError(self.id, findings)
                raise ArtifactError(self.id, name, results[name]["message"])

    @property
    def description(self) -> dict[str, Any]:
        """:func:`~pytest_kerasmodel.structure.describe.describe_artifact` of the artifact (no
        Keras), read
        here once the isolated worker read the file without trouble."""
        __tracebackhide__ = True
        if self._description is None:
            from pytest_kerasmodel.structure.describe import describe_artifact

            self._require("integrity")
            self._description = describe_artifact(self.path)
        return self._description

    @property
    def format(self) -> str:
        """The format from the file's content: keras, h5, h5-weights, weights.h5, savedmodel."""
        return str(self._checked()["info"].get("format", "unknown"))

    @property
    def model(self) -> Any:
        """The model, loaded (``safe_mode=True, compile=False``) once it passed the safety scan."""
        __tracebackhide__ = True
        if self._model is None:
            self._require("integrity", "safety")
            if self.format in WEIGHTS_ONLY_FORMATS:
                raise ArtifactError(
                    self.id,
                    "load",
                    "a weights-only file holds no model to load",
                    hint="skip weights-only artifacts with: if keras_artifact.format in "
                    "('h5-weights', 'weights.h5'): pytest.skip(...)",
                )
            from pytest_kerasmodel.frameworks import keras3
            from pytest_kerasmodel.gate.usercode import UserCodeError
            from pytest_kerasmodel.gate.usercode import load as user_code

            settings, state = get_settings(self._config), gate_state(self._config)
            try:  # --keras-import / --keras-custom-objects: imported here, where the model loads
                code = user_code(settings.imports, settings.custom_objects, state.user_code()[0])
            except UserCodeError as exc:
                raise ArtifactError(self.id, "load", str(exc)) from None
            self._model = keras3.load_model(
                self.path,
                safe_mode=True,
                compile=False,
                custom_objects=code.custom_objects or None,
            )
        return self._model


def make(request: pytest.FixtureRequest) -> KerasArtifact:
    return KerasArtifact(Path(request.param), request.config)
