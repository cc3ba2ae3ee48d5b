"""Exceptions raised by the plugin's helpers.

The assertion errors carry a structured ``.diff`` (a dataclass from :mod:`pytest_kerasmodel.diff`)
so that tests and reports can inspect what differed; their text is that diff rendered.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class KerasModelError(Exception):
    """Base class of every error this plugin raises on purpose."""


class KerasModelNote(UserWarning):
    """What a passing check noticed that is no difference in the model (a Dropout layer's
    seed-generator state, which Keras never saves): a warning of its own class, so that
    ``-W error::pytest_kerasmodel.KerasModelNote`` or ``filterwarnings`` can raise or hide it."""


class ArtifactError(KerasModelError):
    """An artifact could not be read: names the file, the check and the reason."""

    def __init__(self, path: str | Path, check: str, reason: str, hint: str | None = None) -> None:
        self.path = str(path)
        self.check = check
        self.reason = reason
        self.hint = hint
        text = f"{self.path}: {check}: {reason}"
        if hint:
            text += f"\n  hint: {hint}"
        super().__init__(text)


class UnsafeArtifactError(ArtifactError):
    """The safety scan found something that must not be deserialised."""

    def __init__(self, path: str | Path, findings: list[Any]) -> None:
        self.findings = findings
        lines = "\n".join(f"  - {f}" for f in findings)
        super().__init__(path, "safety", f"{len(findings)} finding(s):\n{lines}")


class _DiffAssertionError(AssertionError, KerasModelError):
    """An AssertionError whose message is a rendered diff and whose ``.diff`` is the data."""

    def __init__(self, diff: Any, text: str | None = None) -> None:
        self.diff = diff
        super().__init__(text if text is not None else diff.render())


class RoundtripError(_DiffAssertionError):
    """The model reloaded from a saved file differs from the original (see ``.diff``)."""


class StructureError(_DiffAssertionError):
    """An artifact's structure differs from what was expected (see ``.diff``)."""


class GoldenError(_DiffAssertionError):
    """An artifact differs from its recorded golden, or no golden was recorded yet."""


class ArtifactsDiffer(_DiffAssertionError):
    """Two artifacts of one structure hold different values (see ``.diff``, an
    :class:`~pytest_kerasmodel.structure.match.ArtifactDiff`)."""


class ExportError(_DiffAssertionError):
    """An exported artifact, run with its format's runtime, differs from the Keras model, or
    exporting, loading or running it failed (see ``.diff``)."""
