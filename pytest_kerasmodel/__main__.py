"""``python -m pytest_kerasmodel inspect PATH [--json] [--scan-values]``: a Keras file explained.

Reads the file with h5py, zipfile and json only: no Keras, no TensorFlow, nothing from the file
is run. The HDF5 library can still crash or hang on a damaged or crafted file, so by default the
file is read in a child process with a time and memory limit (``--no-isolation`` reads it here).
Exit status 0 when the file was described, 2 when it could not be read safely.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

DEFAULT_TIMEOUT = 60.0
DEFAULT_MEMORY_MB = 4096


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_kerasmodel",
        description="Explain Keras model files without loading them.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    inspect = commands.add_parser(
        "inspect",
        help="describe a Keras artifact: format, writer, layers, weights, optimizer, oddities",
    )
    inspect.add_argument(
        "path",
        help="an artifact: a .keras, .h5, .weights.h5 or .weights.json file, or a model, preset, "
        "SavedModel or Orbax folder",
    )
    inspect.add_argument("--json", action="store_true", help="print the description as JSON")
    inspect.add_argument(
        "--scan-values",
        action="store_true",
        help="also read every weight to count NaN and infinite values (reads all the data)",
    )
    inspect.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"time limit of the reading process (default {DEFAULT_TIMEOUT:g})",
    )
    inspect.add_argument(
        "--memory-limit",
        type=int,
        default=DEFAULT_MEMORY_MB,
        metavar="MB",
        help=f"memory limit of the reading process (default {DEFAULT_MEMORY_MB})",
    )
    inspect.add_argument(
        "--no-isolation",
        action="store_true",
        help="read the file in this process (trusted files only: a crash ends the command)",
    )
    return parser


def _limit_memory(megabytes: int) -> Any:
    def apply() -> None:  # pragma: no cover - runs in the child
        import resource

        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply if sys.platform.startswith("linux") else None


def _describe_isolated(args: argparse.Namespace) -> tuple[dict[str, Any] | None, str]:
    """The description from a child process, or None and why it could not be made."""
    command = [sys.executable, "-m", "pytest_kerasmodel", "inspect", "--no-isolation", "--json"]
    if args.scan_values:
        command.append("--scan-values")
    try:
        child = subprocess.run(
            [*command, args.path],
            capture_output=True,
            text=True,
            timeout=args.timeout,
            preexec_fn=_limit_memory(args.memory_limit),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, (
            f"{args.path}: isolation: reading the file did not finish within {args.timeout:g} s "
            "(the HDF5 library can loop forever on a damaged or crafted file)"
        )
    if child.returncode == 0:
        return json.loads(child.stdout), ""
    if child.returncode < 0:
        try:
            name = signal.Signals(-child.returncode).name
        except ValueError:
            name = f"signal {-child.returncode}"
        return None, (
            f"{args.path}: isolation: the HDF5 library crashed while reading this file ({name})"
        )
    stderr = child.stderr
    at = 0 if stderr.startswith("error: ") else stderr.find("\nerror: ") + 1
    if at >= 0 and stderr.startswith("error: ", at):
        return None, stderr[at + len("error: ") :].rstrip()
    error = stderr.strip().splitlines()
    if "MemoryError" in child.stderr:
        return None, f"{args.path}: isolation: reading exceeded {args.memory_limit} MB"
    tail = error[-1] if error else f"exit status {child.returncode}"
    return None, f"{args.path}: isolation: the reading process failed: {tail}"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    from pytest_kerasmodel.describe import describe_artifact, render_description
    from pytest_kerasmodel.errors import ArtifactError

    if args.no_isolation:
        try:
            description = describe_artifact(args.path, scan_values=args.scan_values)
        except ArtifactError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    else:
        result, reason = _describe_isolated(args)
        if result is None:
            print(f"error: {reason}", file=sys.stderr)
            return 2
        description = result
    if args.json:
        print(json.dumps(description, indent=2))
    else:
        print(render_description(description))
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through subprocess tests
    sys.exit(main())
