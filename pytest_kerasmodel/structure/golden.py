"""The ``keras_golden_structure`` fixture's engine: an artifact's structure compared with the
golden recorded for the calling test (``test_x.py`` -> ``test_x.keras-golden.json``), or recorded
with ``--keras-update-golden``.

Golden files themselves (versioned JSON, atomic writes, locking) are :mod:`.golden`'s; the
comparison is :mod:`.structure`'s.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pytest_kerasmodel.diff import jsonable
from pytest_kerasmodel.errors import GoldenError
from pytest_kerasmodel.golden import GoldenDiff, load_golden_file, update_golden_entry

STRUCTURE_KIND = "structure"
GOLDEN_SUFFIX = ".keras-golden.json"
WRITTEN_PROPERTY = "keras_golden_written"


def golden_path_for(module_path: str | os.PathLike[str]) -> Path:
    """Where a test module's goldens live: ``test_x.py`` -> ``test_x.keras-golden.json``."""
    p = Path(module_path)
    return p.with_name(p.stem + GOLDEN_SUFFIX)


class StructureGolden:
    """Compare an artifact's structure with the golden recorded for the calling test.

    Call it with an artifact path; ``name`` distinguishes several artifacts in one test.
    With ``--keras-update-golden`` it records or updates the golden instead of failing and
    reports what it wrote in the terminal summary.
    """

    def __init__(self, node: Any, update: bool) -> None:
        self._node = node
        self._update = update
        self._calls: dict[str, int] = {}
        self.path = golden_path_for(node.path)
        self.test_key = node.nodeid.split("::", 1)[1] if "::" in node.nodeid else node.name

    def key(self, name: str | None) -> str:
        base = f"{self.test_key}::{name}" if name else self.test_key
        self._calls[base] = self._calls.get(base, 0) + 1
        count = self._calls[base]
        return base if count == 1 else f"{base}#{count}"

    def __call__(self, artifact: str | os.PathLike[str], *, name: str | None = None) -> None:
        __tracebackhide__ = True
        from pytest_kerasmodel.structure.describe import describe_artifact
        from pytest_kerasmodel.structure.expected import (
            StructureDiff,
            compare_descriptions,
            structure_view,
        )

        key = self.key(name)
        view = jsonable(structure_view(describe_artifact(artifact)))
        if self._update:
            status = update_golden_entry(self.path, STRUCTURE_KIND, key, view)
            if status:
                self._node.user_properties.append(
                    (WRITTEN_PROPERTY, f"{status} {self.path} [{key}]")
                )
            return
        try:
            entries = load_golden_file(self.path, kind=STRUCTURE_KIND)
        except FileNotFoundError:
            raise GoldenError(GoldenDiff(str(self.path), key, "missing")) from None
        if key not in entries:
            raise GoldenError(GoldenDiff(str(self.path), key, "missing"))
        changes = compare_descriptions(entries[key], view, exact=True)
        if changes:
            structure = StructureDiff(Path(artifact).name, "its golden", changes)
            raise GoldenError(
                GoldenDiff(str(self.path), key, "differs", structure=structure, changes=changes)
            )
