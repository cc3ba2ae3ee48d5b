"""``python -m pytest_kerasmodel inspect PATH [--json] [--scan-values]``: a Keras file explained.

Reads the file with h5py, zipfile and json only: no Keras, no TensorFlow, nothing from the file
is run. Exit status 0 when the file was described, 2 when it could not be read safely.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_kerasmodel",
        description="Explain Keras model files without loading them.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    inspect = commands.add_parser(
        "inspect",
        help="describe a Keras artifact: format, writer, layers, weights, optimizer, oddities",
    )
    inspect.add_argument("path", help="a .keras, .h5, .weights.h5 file or a SavedModel folder")
    inspect.add_argument("--json", action="store_true", help="print the description as JSON")
    inspect.add_argument(
        "--scan-values",
        action="store_true",
        help="also read every weight to count NaN and infinite values (reads all the data)",
    )
    args = parser.parse_args(argv)

    from pytest_kerasmodel.describe import describe_artifact, render_description
    from pytest_kerasmodel.errors import ArtifactError

    try:
        description = describe_artifact(args.path, scan_values=args.scan_values)
    except ArtifactError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(description, indent=2))
    else:
        print(render_description(description))
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through subprocess tests
    sys.exit(main())
