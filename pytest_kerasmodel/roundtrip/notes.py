"""The notes of a passing roundtrip, shown to the user as :class:`KerasModelNote` warnings.

A failing roundtrip prints its notes in the failure text; a passing one has no text, so without
a warning a note (a Dropout layer's seed-generator state, which Keras never saves) reaches nobody.
pytest lists the warnings in its summary, and ``-W`` / ``filterwarnings`` filter them by class.
"""

from __future__ import annotations

import warnings

from pytest_kerasmodel.errors import KerasModelNote
from pytest_kerasmodel.roundtrip.report import RoundtripDiff


def warn_notes(diff: RoundtripDiff, *, stacklevel: int = 3) -> None:
    """One :class:`KerasModelNote` per note of each format (``[keras] model.keras: ...``),
    attributed to the caller of :func:`~pytest_kerasmodel.assert_roundtrip` by default."""
    for fmt in diff.formats:
        for note in fmt.notes:
            warnings.warn(
                f"assert_roundtrip [{fmt.label}] {fmt.file}: {note}",
                KerasModelNote,
                stacklevel=stacklevel,
            )
