"""``python -m pytest_kerasmodel``: the ``kerasmodel`` command (:mod:`pytest_kerasmodel.cli`)."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_kerasmodel.cli import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT, console_main
from pytest_kerasmodel.cli import main as _main

__all__ = ["DEFAULT_MEMORY_MB", "DEFAULT_TIMEOUT", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    return _main(argv, prog="python -m pytest_kerasmodel")


if __name__ == "__main__":  # pragma: no cover - exercised through subprocess tests
    console_main(prog="python -m pytest_kerasmodel")
