"""What the gate shows on a terminal: colours for ok / FAIL / skip, and ``kerasmodel gate``'s
progress line.

Both only where a person reads them: colour when the output is a terminal (or ``--color=yes``),
never under ``NO_COLOR`` (https://no-color.org) nor ``--color=no``; the progress line only when
stderr is a terminal, rewritten in place with a carriage return and erased before the summary,
so that piped and captured output holds no escape code and no progress at all. Under pytest the
colours come from pytest's own terminal writer, which applies ``--color`` and ``NO_COLOR`` the
same way.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import IO, Any

from pytest_kerasmodel.gate.protocol import FAILED, PASSED, SKIPPED

#: the summary table's cell of each status
CELL = {PASSED: "ok", FAILED: "FAIL", SKIPPED: "skip"}
#: ANSI SGR colour of each status (green, bold red, yellow), as pytest colours its outcomes
_SGR = {PASSED: "32", FAILED: "1;31", SKIPPED: "33"}
_STATUS_OF_CELL = {cell: status for status, cell in CELL.items()}

#: paints a text in the colour of a status (identity when colour is off)
Paint = Callable[[str, str], str]


def no_paint(text: str, status: str) -> str:
    return text


def ansi_paint(text: str, status: str) -> str:
    code = _SGR.get(status)
    return f"\x1b[{code}m{text}\x1b[0m" if code else text


def wants_colour(stream: IO[str], choice: str = "auto") -> bool:
    """Whether to colour ``stream``: ``choice`` ``yes`` / ``no``, or ``auto``: a terminal, and
    ``NO_COLOR`` not set; ``FORCE_COLOR`` set counts as ``yes`` for ``auto`` (as in pytest)."""
    if choice == "yes":
        return True
    if choice == "no" or os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"


def painter(stream: IO[str], choice: str = "auto") -> Paint:
    return ansi_paint if wants_colour(stream, choice) else no_paint


def pytest_paint(terminal_writer: Any) -> Paint:
    """Colours through pytest's terminal writer (``config.get_terminal_writer()``), which knows
    ``--color``, ``NO_COLOR``, ``PY_COLORS`` and whether the output is a terminal."""
    colours = {
        PASSED: {"green": True},
        FAILED: {"red": True, "bold": True},
        SKIPPED: {"yellow": True},
    }

    def paint(text: str, status: str) -> str:
        markup = colours.get(status)
        return str(terminal_writer.markup(text, **markup)) if markup else text

    return paint


def paint_cell(text: str, paint: Paint) -> str:
    """A summary table's cell painted when it is a status (``ok``, ``FAIL``, ``skip``); in a
    cell that adds a short reason (``skip (no golden)``) the status word is painted."""
    status = _STATUS_OF_CELL.get(text)
    if status:
        return paint(text, status)
    word, space, rest = text.partition(" ")
    status = _STATUS_OF_CELL.get(word)
    if status and rest.startswith("("):
        return paint(word, status) + space + rest
    return text


class Progress:
    """``kerasmodel gate``'s progress line on a terminal: artifacts done of the total, the current
    file and the time elapsed, rewritten in place (at most ten times a second). Silent when the
    stream is not a terminal."""

    def __init__(self, stream: IO[str], total: int, *, enabled: bool | None = None) -> None:
        self.stream = stream
        self.total = total
        isatty = getattr(stream, "isatty", None)
        self.enabled = bool(isatty and isatty()) if enabled is None else enabled
        self.start = time.monotonic()
        self._shown = 0.0
        self._width = 0

    def update(self, done: int, current: str, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._shown < 0.1 and done < self.total:
            return
        self._shown = now
        columns = _columns(self.stream)
        text = f"[{done}/{self.total}] {now - self.start:5.1f}s {current}"
        if len(text) > columns - 1:
            text = text[: max(0, columns - 4)] + "..."
        self.stream.write("\r" + text.ljust(self._width))
        self._width = len(text)
        self.stream.flush()

    def clear(self) -> None:
        """Erase the line (before the results and the summary are printed)."""
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0


def _columns(stream: IO[str]) -> int:
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        columns = 0
    return columns if columns > 0 else 80  # a terminal that does not say its size
