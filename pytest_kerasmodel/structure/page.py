"""What ``kerasmodel inspect --html`` shows, as plain data: the description (with its explained
tree), statistics of every weight's values and the safety scan's findings.

Computed here, once, with h5py, zipfile and json only (never Keras, nothing from the file run);
:mod:`pytest_kerasmodel.structure.html` renders it and computes nothing. The data is JSON, so
``inspect`` computes it in its isolated child process and renders it in the parent.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

PAGE_VERSION = 1


def page_data(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``{"page_version", "description", "statistics", "findings", "statistics_unread"}``.

    ``statistics`` maps each weight's Keras name to its ``size``, ``min``, ``max``, ``mean``,
    ``std`` (over the finite values), ``nan``, ``inf`` and ``zeros`` counts; weights the reader
    cannot read (a SavedModel's checkpoint) leave it empty and ``statistics_unread`` says why.
    Raises :class:`~pytest_kerasmodel.errors.ArtifactError` when the file cannot be described.
    """
    from pytest_kerasmodel.errors import ArtifactError
    from pytest_kerasmodel.safety import scan_artifact
    from pytest_kerasmodel.structure.describe import describe_artifact
    from pytest_kerasmodel.structure.weights import read_weights

    description = describe_artifact(path, scan_values=False)
    statistics: dict[str, dict[str, Any]] = {}
    unread: str | None = None
    try:
        with read_weights(path) as weights:
            for name in weights:
                statistics[name] = weight_statistics(np.asarray(weights[name]))
    except ArtifactError as exc:
        unread = exc.reason
    findings = [
        {"check": f.check, "where": f.where, "reason": f.reason} for f in scan_artifact(path)
    ]
    return {
        "page_version": PAGE_VERSION,
        "description": description,
        "statistics": statistics,
        "statistics_unread": unread,
        "findings": findings,
    }


def weight_statistics(values: np.ndarray) -> dict[str, Any]:
    """Counts and moments of one weight; min/max/mean/std over its finite values (None when it
    has none, or is not numeric)."""
    size = int(values.size)
    stats: dict[str, Any] = {
        "size": size,
        "dtype": str(values.dtype),
        "min": None,
        "max": None,
        "mean": None,
        "std": None,
        "nan": 0,
        "inf": 0,
        "zeros": 0,
    }
    if values.dtype.kind not in "biuf" or size == 0:
        return stats
    as_float = values.astype(np.float64, copy=False)
    finite = np.isfinite(as_float)
    stats["nan"] = int(np.isnan(as_float).sum())
    stats["inf"] = int(size - finite.sum() - stats["nan"])
    stats["zeros"] = int((as_float == 0).sum())
    kept = as_float[finite]
    if kept.size:
        stats.update(
            min=_number(kept.min()),
            max=_number(kept.max()),
            mean=_number(kept.mean()),
            std=_number(kept.std()),
        )
    return stats


def _number(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None
