"""pytest collectors and items for the gate: one item per artifact and check.

``pytest --keras-model-dir DIR`` makes DIR a collection root; every artifact under it becomes a
collector (an :class:`ArtifactFile`, or a :class:`SavedModelDir` for a SavedModel folder) whose
items are its checks: ``models/clf.keras::integrity``, ``models/clf.keras::load``, ...

Each model folder is collected by a :class:`ModelDir`, which asks :mod:`.discover` (and through
it the artifact registry) what every entry is, one level at a time as pytest's own ``Dir``
does, so ``models/sub/clf.keras::load`` selects as usual.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_kerasmodel import artifacts
from pytest_kerasmodel.errors import ArtifactError, UnsafeArtifactError
from pytest_kerasmodel.gate import discover
from pytest_kerasmodel.gate.goldens import budget_sidecar
from pytest_kerasmodel.gate.protocol import FAILED, SKIPPED
from pytest_kerasmodel.gate.report import provenance_record
from pytest_kerasmodel.gate.session import REPORT_PROPERTY, backend_checks, gate_checks, gate_state
from pytest_kerasmodel.options import Settings, get_settings

#: the item a file no artifact holds gets under --keras-strict
STRICT_CHECK = "recognised"


def adjust_args(config: pytest.Config) -> None:
    """Make each ``--keras-model-dir`` a collection root.

    With model folders on the command line and no test paths, only the artifacts are collected
    (``testpaths`` is not used); with test paths too, or folders from the ini key, both are. A
    path inside a model folder (``models/clf.keras::load``) selects just that, as usual.
    """
    settings = get_settings(config)
    if not settings.model_dirs:
        return
    problems = model_dir_problems(settings)
    if problems:
        raise pytest.UsageError("\n".join(problems))
    dirs = [str(d) for d in settings.model_dirs]
    from_cli = bool(config.getoption("keras_model_dir"))
    if from_cli and config.args_source != pytest.Config.ArgsSource.ARGS:
        config.args = dirs
        return
    roots = [Path(os.path.abspath(arg.split("::")[0])) for arg in config.args]
    for directory in settings.model_dirs:
        # given already, or narrowed to some of its artifacts (`models/clf.keras::load`)
        if not any(directory.is_relative_to(r) or r.is_relative_to(directory) for r in roots):
            config.args.append(str(directory))


def model_dir_problems(settings: Settings) -> list[str]:
    """Why a ``--keras-model-dir`` cannot be gated: a file (and what to pass instead), or no
    such folder (a glob matching nothing stays as given: see options._expand)."""
    problems = []
    for d in settings.model_dirs:
        if d.is_dir():
            continue
        if d.exists():
            problems.append(
                f"--keras-model-dir: {d} is a file; the option takes a folder of artifacts: pass "
                f"--keras-model-dir {d.parent} and, to check only this file, also the test path "
                f"{d} (or run: kerasmodel gate {d})"
            )
        else:
            problems.append(
                f"--keras-model-dir: no such folder: {d} (pass a folder of artifacts, or a glob "
                "such as 'models/*' matching folders)"
            )
    return problems


def collect_directory(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """A model folder (from ``--keras-model-dir``) is collected by :class:`ModelDir`."""
    settings = get_settings(parent.config)
    if not settings.model_dirs:
        return None
    given = Path(os.path.abspath(path))
    if given not in settings.model_dirs:
        return None
    if artifacts.layout_of(given) is not None:  # the folder itself is an artifact
        return ArtifactDir.from_parent(parent, path=path, model_dir=given)
    return ModelDir.from_parent(parent, path=path, model_dir=given)


class ModelDir(pytest.Directory):
    """A folder under a model folder: its artifacts, its subfolders, and its other files (test
    modules pytest collects as usual; with ``--keras-strict`` each remaining file fails)."""

    def __init__(self, *, model_dir: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model_dir = model_dir

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        settings = get_settings(self.config)
        ihook = self.ihook
        _walked(self.session).add(self.path.resolve())
        for entry in discover.scan_folder(self.path, _held(self.session, self.model_dir)):
            if ihook.pytest_ignore_collect(collection_path=entry.path, config=self.config):
                continue
            if entry.kind == discover.FOLDER:
                if entry.path.resolve() in _walked(self.session):
                    continue  # a link back to a folder already gated
                yield ModelDir.from_parent(self, path=entry.path, model_dir=self.model_dir)
            elif entry.kind == discover.ARTIFACT:
                kind = ArtifactDir if entry.path.is_dir() and not entry.problem else ArtifactFile
                yield kind.from_parent(self, path=entry.path, model_dir=self.model_dir)
                if settings.strict:
                    for unowned in entry.unowned:
                        yield UncheckedFile.from_parent(self, path=unowned)
            else:
                collected = ihook.pytest_collect_file(file_path=entry.path, parent=self)
                if collected:
                    yield from collected
                elif settings.strict:
                    yield UncheckedFile.from_parent(self, path=entry.path)


_walked_key = pytest.StashKey[set[Path]]()
_held_key = pytest.StashKey[dict[Path, frozenset[Path]]]()


def _held(session: pytest.Session, model_dir: Path) -> frozenset[Path]:
    """What the artifacts of a model folder hold through links (see
    :func:`.discover.held_through_links`), found once per model folder."""
    held = session.stash.setdefault(_held_key, {})
    if model_dir not in held:
        held[model_dir] = discover.held_through_links(model_dir)
    return held[model_dir]


def _walked(session: pytest.Session) -> set[Path]:
    """The folders a :class:`ModelDir` collected so far (resolved), to walk each once."""
    return session.stash.setdefault(_walked_key, set())


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
        checks = [
            check
            for check in gate_checks(settings)
            # no budget set for this artifact: nothing to check, no item
            if check != "budgets" or budgets_apply(settings, self.path)
        ]
        for check in checks:
            yield CheckItem.from_parent(
                self,  # type: ignore[arg-type]
                name=check,
                check=check,
                artifact=self.path,
                model_dir=self.model_dir,
            )
        # a worker may check it while pytest collects the others
        gate_state(self.config).collected(self.path, self.model_dir, checks)  # type: ignore[attr-defined]
        for backend in settings.backends:
            for check in backend_checks(settings):
                yield CheckItem.from_parent(
                    self,  # type: ignore[arg-type]
                    name=f"{check}[{backend}]",
                    check=check,
                    artifact=self.path,
                    model_dir=self.model_dir,
                    backend=backend,
                )


class ArtifactFile(_ArtifactCollector, pytest.File):
    def __init__(self, *, model_dir: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model_dir = model_dir


class ArtifactDir(_ArtifactCollector, pytest.Directory):
    """A folder layout (unzipped model, KerasHub preset, SavedModel, Orbax checkpoint)."""

    def __init__(self, *, model_dir: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model_dir = model_dir


class UncheckedFile(pytest.File):
    """A file under a model folder that no artifact holds, failing under ``--keras-strict``."""

    def collect(self) -> Iterator[pytest.Item]:
        yield UncheckedItem.from_parent(self, name=STRICT_CHECK)


class _GateItem(pytest.Item):
    """An item of the gate: its failures are an :class:`ArtifactError`'s own text."""

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | Any:
        if isinstance(excinfo.value, ArtifactError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)


class UncheckedItem(_GateItem):
    def runtest(self) -> None:
        raise ArtifactError(
            self.nodeid.rsplit("::", 1)[0],
            STRICT_CHECK,
            "no Keras artifact holds this file, so nothing checked it (--keras-strict)",
            hint="move it out of the model folder, or make it part of an artifact",
        )

    def reportinfo(self) -> tuple[Path, int | None, str]:
        # the domain is the item's own name: pytest shows dots in a domain as "::"
        return self.path, None, self.name


class CheckItem(_GateItem):
    """One check on one artifact; its result comes from the artifact's (cached) worker run."""

    is_gate_check = True

    def __init__(
        self,
        *,
        check: str,
        artifact: Path,
        model_dir: Path,
        backend: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.artifact = artifact
        self.model_dir = model_dir
        #: the Keras backend of the worker this item's check runs in (None: the default one)
        self.backend = backend

    @property
    def label(self) -> str:
        """``load``, or ``load[jax]`` for a check run under a backend of --keras-backends."""
        return self.check if self.backend is None else f"{self.check}[{self.backend}]"

    def runtest(self) -> None:
        response = gate_state(self.config).result_for(self)
        result = response["checks"][self.check]
        record = {
            "artifact": self.artifact_id,
            "check": self.label,
            "status": result["status"],
            "message": result["message"],
            "blocked_by": result.get("details", {}).get("blocked_by"),
            **provenance_record(result),
            "info": {**response.get("info", {}), "seconds": response.get("elapsed")},
            "cached": bool(response.get("cached")),
            "stored": bool(response.get("stored")),
        }
        self.user_properties.append((REPORT_PROPERTY, json.dumps(record)))
        for key, value in sorted(record.get("provenance", {}).items()):  # JUnit <property>s
            text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
            self.user_properties.append((f"{self.label}.{key}", text))
        for written in result.get("details", {}).get("written", []):
            # listed with the other goldens written (plugin._GoldenWrites), xdist's too
            self.user_properties.append(
                ("keras_golden_written", f"{written} ({self.label} of {self.artifact_id})")
            )
        if result["status"] == SKIPPED:
            pytest.skip(result["message"])  # located at the item by locate_skip
        if result["status"] == FAILED:
            findings = result.get("details", {}).get("findings")
            if self.check == "safety" and findings:
                raise UnsafeArtifactError(self.artifact_id, findings)
            raise ArtifactError(self.artifact_id, self.label, result["message"])

    @property
    def artifact_id(self) -> str:
        return self.nodeid.rsplit("::", 1)[0]

    def reportinfo(self) -> tuple[Path, int | None, str]:
        # the domain is the item's name alone: pytest shows dots in a domain as "::"
        return self.path, None, self.name


def locate_skip(item: pytest.Item, report: pytest.TestReport) -> None:
    """A skipped check's report located at its item (``models/clf.keras::load``), not at the line
    in this module that skips: ``-rs`` then names each skipped check beside its reason instead
    of folding every artifact's ``not applicable`` into one line at ``collect.py``."""
    if isinstance(item, CheckItem) and report.skipped and isinstance(report.longrepr, tuple):
        _path, _line, reason = report.longrepr
        # no line: pytest's -rs prints "path: reason" then, as for a skip marker at module level
        located: Any = (f"{item.path}::{item.name}", None, reason)
        report.longrepr = located
