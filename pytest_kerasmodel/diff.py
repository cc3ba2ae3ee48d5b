"""Diffs as data first: small JSON-serialisable dataclasses, rendered to text second.

Comparisons build these objects and never print; renderers read them and never compute.
The same object feeds an assertion message, the terminal summary and the JSON report.
Each feature module defines its own diff dataclasses on top of :class:`Diff`; the text helpers
below (:func:`indent`, :func:`short`, :func:`capped`) are the one set every renderer uses.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import PurePath
from typing import Any


def jsonable(value: Any) -> Any:
    """Turn dataclasses, numpy scalars/arrays, tuples and paths into plain JSON values.

    Non-finite floats become the strings "nan", "inf" and "-inf" so the output is strict JSON.
    """
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:  # most values: as they are
        return value
    plain_container = kind is dict or kind is list or kind is tuple  # never a dataclass
    if not plain_container and dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [jsonable(v) for v in items]
    if isinstance(value, PurePath):
        return str(value)
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy scalar or array
        return jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


@dataclasses.dataclass
class Diff:
    """Base of every diff: empty means "no difference"."""

    def is_empty(self) -> bool:
        raise NotImplementedError

    def __bool__(self) -> bool:
        return not self.is_empty()

    def to_dict(self) -> dict[str, Any]:
        result = jsonable(self)
        assert isinstance(result, dict)
        return result

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def render(self) -> str:
        raise NotImplementedError


#: how many items of one check a report lists before "... N more"
MAX_LISTED = 10


def capped(items: list[str], prefix: str = "    ") -> list[str]:
    """The first :data:`MAX_LISTED` items, indented, and how many more there are."""
    lines = [indent(item, prefix) for item in items[:MAX_LISTED]]
    if len(items) > MAX_LISTED:
        lines.append(f"{prefix}... {len(items) - MAX_LISTED} more (see the error's .diff)")
    return lines


def indent(text: str, prefix: str) -> str:
    """Every line of ``text`` behind ``prefix``."""
    return "\n".join(prefix + line for line in text.splitlines())


def indent_rest(text: str, prefix: str) -> str:
    """Every line but the first behind ``prefix`` (the first follows a label)."""
    first, *rest = text.splitlines() or [""]
    return "\n".join([first, *(prefix + line for line in rest)])


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short_text(text: str, limit: int = 300) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
