"""``kerasmodel`` (and ``python -m pytest_kerasmodel``): inspect, diff and gate model files.

- ``kerasmodel inspect PATH [--json] [--scan-values] [--tree] [--html -o OUT.html]``: a Keras
  artifact explained (``--tree``: every HDF5 group, dataset and attribute with its Keras
  meaning; ``--html``: one self-contained page with the tree, layers, weight statistics and
  safety findings);
- ``kerasmodel diff A B [--rtol R] [--atol A] [--optimizer] [--json]``: two artifacts of any
  formats compared the way Keras sees them (exit 0 same, 1 different, 2 error, like h5diff);
- ``kerasmodel gate PATH... [--checks ...] [--json P] [--junitxml P] [--sarif P]``: the gate's
  checks without pytest (exit 0 all passed, 1 a check failed, 2 usage or internal error);
- ``kerasmodel sign PATH --key KEY`` and ``kerasmodel lock PATH...``: an OMS signature of an
  artifact, a lock of approved artifacts (:mod:`pytest_kerasmodel.provenance.command`).

inspect and diff read the files with h5py, zipfile and json only: no Keras, nothing from the
file is run. The HDF5 library can still crash or hang on a damaged or crafted file, so by
default they read in a child process with a time and memory limit (``--no-isolation`` reads
here). The gate runs its checks in its isolated worker, as under pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_TIMEOUT = 60.0
DEFAULT_MEMORY_MB = 4096
EXIT_OK, EXIT_DIFFER, EXIT_ERROR = 0, 1, 2


def _add_isolation(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"time limit of the reading process (default {DEFAULT_TIMEOUT:g})",
    )
    command.add_argument(
        "--memory-limit",
        type=int,
        default=DEFAULT_MEMORY_MB,
        metavar="MB",
        help=f"memory limit of the reading process (default {DEFAULT_MEMORY_MB})",
    )
    command.add_argument(
        "--no-isolation",
        action="store_true",
        help="read the files in this process (trusted files only: a crash ends the command)",
    )


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Explain, compare and gate Keras model files without loading them."
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
        "--tree",
        action="store_true",
        help="print the raw HDF5 tree (groups, datasets, attributes), each with its Keras meaning",
    )
    inspect.add_argument(
        "--html",
        action="store_true",
        help="write one self-contained HTML page (tree, layers, weight statistics, safety "
        "findings) to -o",
    )
    inspect.add_argument(
        "-o", "--output", help="the HTML page to write (with --html; written atomically)"
    )
    # what the isolated child prints for --html: the page's data as JSON
    inspect.add_argument("--page-data", action="store_true", help=argparse.SUPPRESS)
    inspect.add_argument(
        "--scan-values",
        action="store_true",
        help="also read every weight to count NaN and infinite values (reads all the data)",
    )
    _add_isolation(inspect)

    diff = commands.add_parser(
        "diff",
        help="compare two artifacts of any formats: structure, config, every weight by name",
        description="Compare two Keras artifacts by Keras names: the .keras and the .h5 of one "
        "model match. Exit status 0 same, 1 different, 2 error.",
    )
    diff.add_argument("expected", help="the reference artifact")
    diff.add_argument("actual", help="the artifact compared with it")
    diff.add_argument("--rtol", type=float, default=None, help="relative tolerance (default 0)")
    diff.add_argument("--atol", type=float, default=None, help="absolute tolerance (default 0)")
    diff.add_argument(
        "--optimizer", action="store_true", help="also compare the optimizer's saved variables"
    )
    diff.add_argument("--json", action="store_true", help="print the diff as JSON")
    _add_isolation(diff)

    gate = commands.add_parser(
        "gate",
        help="run the gate's checks on files and folders, without pytest",
        description="The checks of pytest --keras-model-dir on the given files and folders "
        "(folders are walked like a model folder). Exit status 0 all passed, 1 a check failed, "
        "2 usage or internal error.",
    )
    from pytest_kerasmodel.gate.protocol import CHECKS, select_checks
    from pytest_kerasmodel.options import DEFAULT_ATOL, DEFAULT_RTOL
    from pytest_kerasmodel.options import DEFAULT_TIMEOUT as GATE_T

    gate.add_argument("paths", nargs="+", metavar="PATH", help="artifacts or folders")
    gate.add_argument(
        "--checks",
        metavar="CHECKS",
        help=f"comma-separated checks to run, of {', '.join(CHECKS)} (default: "
        f"{', '.join(select_checks())}; compile only when named)",
    )
    gate.add_argument("--json", metavar="PATH", type=Path, help="write the JSON report to PATH")
    gate.add_argument("--junitxml", metavar="PATH", type=Path, help="write JUnit XML to PATH")
    gate.add_argument("--sarif", metavar="PATH", type=Path, help="write SARIF 2.1.0 to PATH")
    gate.add_argument(
        "--root",
        metavar="DIR",
        type=Path,
        help="the repository root that artifacts are named from (default: the current folder)",
    )
    gate.add_argument("--rtol", type=float, default=DEFAULT_RTOL, help="predictions rtol")
    gate.add_argument("--atol", type=float, default=DEFAULT_ATOL, help="predictions atol")
    gate.add_argument("--golden-dir", type=Path, metavar="DIR", help="folder of the goldens")
    gate.add_argument(
        "--update-golden", action="store_true", help="record missing goldens, update changed"
    )
    gate.add_argument(
        "--timeout",
        type=float,
        default=GATE_T,
        metavar="SECONDS",
        help=f"seconds one artifact's checks may take (default {GATE_T:g})",
    )
    gate.add_argument(
        "--memory-limit", type=int, metavar="MB", help="the worker's data-memory limit"
    )
    gate.add_argument(
        "--no-isolation", action="store_true", help="check in this process (trusted files only)"
    )
    gate.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="isolated checking workers at once (default: the usable cores)",
    )
    gate.add_argument(
        "--no-cache",
        action="store_true",
        help="check every artifact again (default: unchanged artifacts' verdicts come from the "
        "authenticated verdict cache in ROOT/.pytest_cache, keyed by KERAS_GATE_CACHE_KEY)",
    )
    gate.add_argument(
        "--no-fork",
        action="store_true",
        help="spawn each checking worker (default: forked from one process that imported "
        "Keras once)",
    )
    gate.add_argument("--allowed-modules", metavar="MODULES", help="module prefixes allowed")
    gate.add_argument(
        "--allowed-classes", metavar="NAMES", help="class or registered names allowed"
    )
    gate.add_argument("--max-file-size", metavar="SIZE", help="budget: largest artifact size")
    gate.add_argument("--max-params", type=int, metavar="N", help="budget: most parameters")
    gate.add_argument("--allowed-versions", metavar="PATTERNS", help="budget: Keras versions")
    gate.add_argument(
        "--strict",
        action="store_true",
        help="fail on files that no Keras artifact holds, and on artifacts holding HDF5 "
        "datasets or attributes that no reader interpreted",
    )
    gate.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE (your code, which registers its custom layers and models) in every "
        "checking worker before anything is loaded; what it registers counts as allowed by the "
        "safety scan (repeatable)",
    )
    gate.add_argument(
        "--custom-objects",
        dest="custom_objects",
        action="append",
        default=[],
        metavar="MODULE:NAME",
        help="a dict of your custom objects handed to load_model; their modules count as "
        "allowed by the safety scan (repeatable)",
    )
    gate.add_argument(
        "--color",
        choices=("auto", "yes", "no"),
        default="auto",
        help="colour ok / FAIL / skip: auto (a terminal, and NO_COLOR unset), yes or no",
    )
    gate.add_argument("-v", "--verbose", action="store_true", help="print every check's result")
    from pytest_kerasmodel.provenance import command as provenance

    provenance.add_gate_arguments(gate)
    provenance.add_commands(commands)
    return parser


def _limit_memory(megabytes: int) -> Any:
    def apply() -> None:  # pragma: no cover - runs in the child
        import resource

        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply if sys.platform.startswith("linux") else None


def _run_isolated(
    args: argparse.Namespace, command: list[str], what: str, ok: tuple[int, ...] = (0,)
) -> tuple[dict[str, Any] | None, int, str]:
    """Run ``python -m pytest_kerasmodel <command>`` (which prints JSON) in a child with the
    time and memory limits; (its JSON, its exit status, "") or (None, 2, why it failed)."""
    try:
        child = subprocess.run(
            [sys.executable, "-m", "pytest_kerasmodel", *command],
            capture_output=True,
            text=True,
            timeout=args.timeout,
            preexec_fn=_limit_memory(args.memory_limit),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return (
            None,
            EXIT_ERROR,
            (
                f"{what}: isolation: reading the file did not finish within {args.timeout:g} s "
                "(the HDF5 library can loop forever on a damaged or crafted file)"
            ),
        )
    if child.returncode in ok:
        return json.loads(child.stdout), child.returncode, ""
    if child.returncode < 0:
        try:
            name = signal.Signals(-child.returncode).name
        except ValueError:
            name = f"signal {-child.returncode}"
        return (
            None,
            EXIT_ERROR,
            (f"{what}: isolation: the HDF5 library crashed while reading this file ({name})"),
        )
    stderr = child.stderr
    at = 0 if stderr.startswith("error: ") else stderr.find("\nerror: ") + 1
    if at >= 0 and stderr.startswith("error: ", at):
        return None, EXIT_ERROR, stderr[at + len("error: ") :].rstrip()
    error = stderr.strip().splitlines()
    if "MemoryError" in child.stderr:
        return None, EXIT_ERROR, f"{what}: isolation: reading exceeded {args.memory_limit} MB"
    tail = error[-1] if error else f"exit status {child.returncode}"
    return None, EXIT_ERROR, f"{what}: isolation: the reading process failed: {tail}"


def _inspect(args: argparse.Namespace) -> int:
    from pytest_kerasmodel.errors import ArtifactError
    from pytest_kerasmodel.structure.describe import describe_artifact, render_description

    if args.html and not args.output:
        print("error: inspect --html needs -o OUT.html", file=sys.stderr)
        return EXIT_ERROR
    if args.html and Path(args.output).resolve() == Path(args.path).resolve():
        print(f"error: inspect --html: -o {args.output} is the artifact itself", file=sys.stderr)
        return EXIT_ERROR
    page = args.html or args.page_data
    if args.no_isolation:
        try:
            if page:
                from pytest_kerasmodel.structure.page import page_data

                result = page_data(args.path)
            else:
                result = describe_artifact(args.path, scan_values=args.scan_values)
        except ArtifactError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_ERROR
    else:
        command = ["inspect", "--no-isolation"]
        command += ["--page-data"] if page else ["--json"]
        if args.scan_values:
            command.append("--scan-values")
        isolated, _, reason = _run_isolated(args, [*command, args.path], args.path)
        if isolated is None:
            print(f"error: {reason}", file=sys.stderr)
            return EXIT_ERROR
        result = isolated
    if args.html:
        from pytest_kerasmodel.golden import write_text_atomic
        from pytest_kerasmodel.structure.html import render_page

        write_text_atomic(Path(args.output), render_page(result))
        print(f"wrote {args.output}")
        return EXIT_OK
    if args.json or args.page_data:
        print(json.dumps(result, indent=2))
    elif args.tree:
        from pytest_kerasmodel.structure.tree import render_tree

        title = f"{result['file']} ({result['format']}): HDF5 tree, each node's Keras meaning"
        print(render_tree(result["tree"], title=title))
    else:
        print(render_description(result))
    return EXIT_OK


def _diff(args: argparse.Namespace) -> int:
    from pytest_kerasmodel.errors import ArtifactError

    if args.no_isolation:
        from pytest_kerasmodel.structure.match import artifacts_diff

        try:
            diff = artifacts_diff(
                args.expected,
                args.actual,
                rtol=args.rtol,
                atol=args.atol,
                check_optimizer=args.optimizer,
            )
        except ArtifactError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_ERROR
        data = diff.to_dict()
        text = diff.render()
        status = EXIT_DIFFER if diff else EXIT_OK
    else:
        command = ["diff", "--no-isolation", "--json"]
        for flag, value in (("--rtol", args.rtol), ("--atol", args.atol)):
            if value is not None:
                command += [flag, repr(value)]
        if args.optimizer:
            command.append("--optimizer")
        what = f"{args.expected} vs {args.actual}"
        result, status, reason = _run_isolated(
            args, [*command, "--", args.expected, args.actual], what, ok=(0, 1)
        )
        if result is None:
            print(f"error: {reason}", file=sys.stderr)
            return EXIT_ERROR
        data, text = result, ""
        if not args.json:
            from pytest_kerasmodel.structure.match import ArtifactDiff

            text = ArtifactDiff.from_dict(data).render()
    print(json.dumps(data, indent=2) if args.json else text)
    return status


def _gate(args: argparse.Namespace) -> int:
    import pytest

    from pytest_kerasmodel.gate import standalone
    from pytest_kerasmodel.gate.session import provenance_checks
    from pytest_kerasmodel.gate.usercode import problems
    from pytest_kerasmodel.options import (
        Settings,
        _words,
        golden_dir_problem,
        memory_problem,
        parse_size,
        timeout_problem,
        writable_file_problem,
    )
    from pytest_kerasmodel.provenance import command as provenance

    try:
        selected = standalone.parse_checks(args.checks)
        settings = Settings(
            rtol=args.rtol,
            atol=args.atol,
            update_golden=args.update_golden,
            golden_dir=Path(os.path.abspath(args.golden_dir)) if args.golden_dir else None,
            timeout=args.timeout,
            memory_limit_mb=args.memory_limit,
            isolate=not args.no_isolation,
            allowed_modules=tuple(_words(args.allowed_modules)),
            allowed_classes=tuple(_words(args.allowed_classes)),
            max_file_size=parse_size(args.max_file_size) if args.max_file_size else None,
            max_params=args.max_params,
            allowed_versions=tuple(_words(args.allowed_versions)),
            strict=args.strict,
            cache=not args.no_cache,
            workers=args.workers,
            fork_workers=not args.no_fork,
            imports=tuple(dict.fromkeys(_words(args.imports))),
            custom_objects=tuple(dict.fromkeys(_words(args.custom_objects))),
            **provenance.gate_settings(args),
        )
        if not args.checks:  # the provenance checks configured join the default ones
            selected += [c for c in provenance_checks(settings) if c not in selected]
        # every input checked before any work: one error listing each bad one
        found = [
            timeout_problem(settings.timeout, "--timeout"),
            memory_problem(settings.memory_limit_mb, "--memory-limit"),
            writable_file_problem(args.json, "--json"),
            writable_file_problem(args.junitxml, "--junitxml"),
            writable_file_problem(args.sarif, "--sarif"),
            golden_dir_problem(settings.golden_dir, "--golden-dir", settings.update_golden),
        ]
        if args.workers is not None and args.workers < 1:
            found.append(f"--workers: expected >= 1, got {args.workers}")
        if settings.imports or settings.custom_objects:
            path = [os.getcwd(), *sys.path]
            flags = ("--import", "--custom-objects")
            found += problems(settings.imports, settings.custom_objects, path, flags)
        if any(found):
            raise standalone.UsageError("\n".join(p for p in found if p))
        return standalone.run_gate(
            args.paths,
            settings,
            selected,
            root=Path(os.path.abspath(args.root or os.getcwd())),
            verbose=args.verbose,
            json_path=args.json,
            junit_path=args.junitxml,
            sarif_path=args.sarif,
            colour=args.color,
        )
    except (standalone.UsageError, pytest.UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR


def main(argv: Sequence[str] | None = None, prog: str = "kerasmodel") -> int:
    try:
        args = _parser(prog).parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    if args.command == "inspect":
        return _inspect(args)
    if args.command == "diff":
        return _diff(args)
    if args.command in ("sign", "lock"):
        from pytest_kerasmodel.gate.standalone import plan
        from pytest_kerasmodel.provenance import command as provenance

        return provenance.run(args, lambda paths: sorted(plan(paths).artifacts))
    try:
        return _gate(args)
    except Exception as exc:  # an internal error: exit 2, not a traceback that says "1"
        import traceback

        traceback.print_exc()
        print(f"error: kerasmodel gate failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR


def console_main(prog: str = "kerasmodel") -> None:
    """The ``kerasmodel`` console script (and ``python -m pytest_kerasmodel``): a reader that
    leaves early (``| head``) ends it quietly."""
    try:
        status = main(prog=prog)
        sys.stdout.flush()
    except BrokenPipeError:  # `kerasmodel diff A B | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = EXIT_OK
    sys.exit(status)
