"""pytest collectors and items for the gate: one item per artifact and check.

``pytest --keras-model-dir DIR`` makes DIR a collection root; every artifact under it becomes a
collector (an :class:`ArtifactFile`, or a :class:`SavedModelDir` for a SavedModel folder) whose
items are its checks: ``models/clf.keras::integrity``, ``models/clf.keras::load``, ...
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_kerasmodel.errors import ArtifactError, UnsafeArtifactError
from pytest_kerasmodel.gate.checks import CHECKS, FAILED, SKIPPED
from pytest_kerasmodel.gate.discover import is_artifact_file, is_savedmodel_dir, model_dir_of
from pytest_kerasmodel.gate.goldens import budget_sidecar
from pytest_kerasmodel.gate.session import REPORT_PROPERTY, gate_state
from pytest_kerasmodel.options import Settings, get_settings


def adjust_args(config: pytest.Config) -> None:
    """Make each ``--keras-model-dir`` a collection root.

    With model folders on the command line and no test paths, only the artifacts are collected
    (``testpaths`` is not used); with test paths too, or folders from the ini key, both are. A
    path inside a model folder (``models/clf.keras::load``) selects just that, as usual.
    """
    settings = get_settings(config)
    if not settings.model_dirs:
        return
    missing = [str(d) for d in settings.model_dirs if not d.is_dir()]
    if missing:
        raise pytest.UsageError(f"--keras-model-dir: no such folder: {', '.join(missing)}")
    dirs = [str(d) for d in settings.model_dirs]
    from_cli = bool(config.getoption("keras_model_dir"))
    if from_cli and config.args_source != pytest.Config.ArgsSource.ARGS:
        config.args = dirs
        return
    roots = [Path(arg.split("::")[0]).resolve() for arg in config.args]
    for directory in settings.model_dirs:
        # given already, or narrowed to some of its artifacts (`models/clf.keras::load`)
        if not any(directory.is_relative_to(r) or r.is_relative_to(directory) for r in roots):
            config.args.append(str(directory))


def collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    settings = get_settings(parent.config)
    if not settings.model_dirs or not is_artifact_file(file_path):
        return None
    model_dir = model_dir_of(file_path, settings.model_dirs)
    if model_dir is None:
        return None
    return ArtifactFile.from_parent(parent, path=file_path, model_dir=model_dir)


def collect_directory(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    settings = get_settings(parent.config)
    if not settings.model_dirs or not is_savedmodel_dir(path):
        return None
    model_dir = model_dir_of(path, settings.model_dirs)
    if model_dir is None:
        return None
    return SavedModelDir.from_parent(parent, path=path, model_dir=model_dir)


def budgets_apply(settings: Settings, artifact: Path) -> bool:
    """Whether a budget is set for the artifact (flags, ini keys, or its sidecar)."""
    return (
        settings.max_file_size is not None
        or settings.max_params is not None
        or bool(settings.allowed_versions)
        or budget_sidecar(artifact).is_file()
    )


class _ArtifactCollector:
    """What an artifact's collector does, whether the artifact is a file or a folder."""

    path: Path
    model_dir: Path

    def collect(self) -> Iterator[CheckItem]:
        settings = get_settings(self.config)  # type: ignore[attr-defined]
        for check in CHECKS:
            if check == "budgets" and not budgets_apply(settings, self.path):
                continue  # no budget set for this artifact: nothing to check, no item
            yield CheckItem.from_parent(
                self,  # type: ignore[arg-type]
                name=check,
                check=check,
                artifact=self.path,
                model_dir=self.model_dir,
            )


class ArtifactFile(_ArtifactCollector, pytest.File):
    def __init__(self, *, model_dir: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model_dir = model_dir


class SavedModelDir(_ArtifactCollector, pytest.Directory):
    def __init__(self, *, model_dir: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model_dir = model_dir


class CheckItem(pytest.Item):
    """One check on one artifact; its result comes from the artifact's (cached) worker run."""

    def __init__(self, *, check: str, artifact: Path, model_dir: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.artifact = artifact
        self.model_dir = model_dir

    def runtest(self) -> None:
        response = gate_state(self.config).result_for(self)
        result = response["checks"][self.check]
        record = {
            "artifact": self.artifact_id,
            "check": self.check,
            "status": result["status"],
            "message": result["message"],
            "blocked_by": result.get("details", {}).get("blocked_by"),
            "info": {**response.get("info", {}), "seconds": response.get("elapsed")},
        }
        self.user_properties.append((REPORT_PROPERTY, json.dumps(record)))
        if result["status"] == SKIPPED:
            pytest.skip(result["message"])
        if result["status"] == FAILED:
            findings = result.get("details", {}).get("findings")
            if self.check == "safety" and findings:
                raise UnsafeArtifactError(self.artifact_id, findings)
            raise ArtifactError(self.artifact_id, self.check, result["message"])

    @property
    def artifact_id(self) -> str:
        return self.nodeid.rsplit("::", 1)[0]

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | Any:
        if isinstance(excinfo.value, ArtifactError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.artifact_id}::{self.check}"
