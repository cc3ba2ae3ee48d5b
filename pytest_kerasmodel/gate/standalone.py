"""``kerasmodel gate PATH...``: the gate's checks on files and folders, without pytest.

The same engine as ``pytest --keras-model-dir``: discovery (:mod:`.discover`), the requests
(:class:`~.session.GateState`), the isolated worker with its time and memory limits
(:mod:`.isolation`), the goldens beside each artifact, and the summary, JSON report and SARIF
built from the same rows (:mod:`.report`, :mod:`.sarif`). No pytest session runs: there is no
collection, no item per check and no report hooks, so each artifact costs one worker request
and a few lines of bookkeeping. While one artifact's results print, the pool of workers
(:mod:`.pool`) checks the next ones; unchanged artifacts' verdicts come from the verdict cache
(:mod:`.verdicts`), in the same folder pytest's cache keeps them (``ROOT/.pytest_cache``).

Exit status: 0 every check passed (or was skipped), 1 a check failed, 2 usage or internal error.
"""

from __future__ import annotations

import os
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pytest_kerasmodel import artifacts
from pytest_kerasmodel.gate import discover
from pytest_kerasmodel.gate.goldens import budget_sidecar
from pytest_kerasmodel.gate.progress import Paint, no_paint
from pytest_kerasmodel.gate.protocol import (
    CHECKS,
    FAILED,
    PASSED,
    SKIPPED,
    select_checks,
    skip_label,
)
from pytest_kerasmodel.options import Settings

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2


class UsageError(Exception):
    """A bad command line: exit status 2, the message on stderr."""


@dataclass
class Plan:
    """What ``kerasmodel gate`` checks: artifacts (path -> the folder it was found under, for
    goldens under ``--golden-dir``) and the files given or found that no artifact holds."""

    artifacts: dict[Path, Path] = field(default_factory=dict)
    unchecked: list[Path] = field(default_factory=list)


def plan(paths: Sequence[str]) -> Plan:
    """The artifacts among ``paths`` (files and folders, walked the way the gate walks a model
    folder); a path that does not exist is a usage error."""
    found = Plan()
    for given in paths:
        path = Path(os.path.abspath(given))  # absolute, links kept (as --keras-model-dir)
        if not path.exists() and not path.is_symlink():
            raise UsageError(f"no such file or folder: {given}")
        if path.is_dir() and artifacts.layout_of(path) is None:
            for entry in discover.walk([path]):
                if entry.kind == discover.ARTIFACT:
                    found.artifacts.setdefault(entry.path, path)
                else:
                    found.unchecked.append(entry.path)
        elif discover.is_gate_file(path):
            continue  # a golden or sidecar: read with its artifact
        elif (owner := _owner(path)) is not None:
            found.artifacts.setdefault(owner, owner.parent)
        elif path.is_dir() or _is_artifact_file(path):
            found.artifacts.setdefault(path, path.parent)
        else:
            found.unchecked.append(path)
    return found


def _owner(path: Path) -> Path | None:
    """The artifact a given file is part of (an unzipped model or preset folder, the manifest
    of a shard), for the file pre-commit passes when a commit changes it; None otherwise."""
    if path.is_dir():
        return None
    folder = path.parent
    if artifacts.layout_of(folder) is not None:
        return folder
    if path.name.lower().endswith(".h5"):
        try:
            manifests = [p for p in folder.iterdir() if artifacts.sharded.claims(p)]
        except OSError:
            return None
        for manifest in manifests:
            if manifest != path and path in artifacts.owned_files(manifest):
                return manifest
    return None


def _is_artifact_file(path: Path) -> bool:
    try:
        artifacts.check_path_kind(path)
    except artifacts.ArtifactError:
        return True  # a broken link or a FIFO: an artifact whose integrity check says why
    return path.name.lower().endswith(artifacts.ARTIFACT_SUFFIXES) or (
        artifacts.layout_of(path) is not None
    )


def checks_for(settings: Settings, artifact: Path, selected: Sequence[str]) -> list[str]:
    """The checks an artifact gets: those selected, budgets only when a budget applies (as
    the pytest collector does)."""
    budgets = (
        settings.max_file_size is not None
        or settings.max_params is not None
        or bool(settings.allowed_versions)
        or budget_sidecar(artifact).is_file()
    )
    return [c for c in CHECKS if c in selected and (c != "budgets" or budgets)]


def parse_checks(text: str | None) -> list[str]:
    """The checks ``--checks`` names; by default every check but the optional ones (``compile``,
    which --checks can name)."""
    try:
        return select_checks(w for w in (text or "").replace(",", " ").split() if w)
    except ValueError as exc:
        raise UsageError(f"--checks: {exc}") from None


def artifact_id(path: Path, root: Path) -> str:
    """How the summary and the reports name an artifact: its path from ``root`` (as pytest's
    node ids are from its rootdir), or the absolute path when it lies outside."""
    rel = os.path.relpath(path, root)
    return Path(path).as_posix() if rel.startswith("..") else Path(rel).as_posix()


def run_gate(
    paths: Sequence[str],
    settings: Settings,
    selected: Sequence[str],
    *,
    root: Path,
    out: IO[str] = sys.stdout,
    verbose: bool = False,
    json_path: Path | None = None,
    junit_path: Path | None = None,
    sarif_path: Path | None = None,
    colour: str = "auto",
    progress_stream: IO[str] | None = None,
) -> int:
    """Check every artifact under ``paths``; print failures and the summary; write the reports.
    Returns the exit status. ``colour``: ``auto`` / ``yes`` / ``no`` for ``out``; a progress
    line goes to ``progress_stream`` (default stderr) when it is a terminal."""
    from pytest_kerasmodel.gate.progress import Progress, painter
    from pytest_kerasmodel.gate.provenance import finish_lock
    from pytest_kerasmodel.gate.report import (
        check_entry,
        provenance_record,
        rows_report,
        summary_lines,
        verdicts_written,
    )
    from pytest_kerasmodel.gate.session import GateState

    found = plan(paths)
    state = GateState(settings, root=root)
    ids = {a: artifact_id(a, root) for a in found.artifacts}
    order = sorted(found.artifacts, key=lambda a: ids[a])
    state.selected = {a: (found.artifacts[a], checks_for(settings, a, selected)) for a in order}
    state.order = order
    rows: dict[str, dict[str, Any]] = {}
    paint = painter(out, colour)
    progress = Progress(progress_stream or sys.stderr, len(order))
    goldens: list[str] = []
    start = time.perf_counter()
    try:
        for done, artifact in enumerate(order):
            progress.update(done, ids[artifact])
            response = state.response(artifact)  # the pool checks the next ones meanwhile
            state.results.pop(artifact)  # printed below: nothing keeps it
            row = {
                "info": {**response.get("info", {}), "seconds": response.get("elapsed")},
                "checks": {},
            }
            for check in state.selected[artifact][1]:
                result = response["checks"].get(check)
                if result is None:
                    continue
                row["checks"][check] = {
                    **check_entry(
                        result["status"],
                        result["message"],
                        result.get("details", {}).get("blocked_by"),
                        bool(response.get("cached")),
                    ),
                    **provenance_record(result),
                }
                for written in result.get("details", {}).get("written", []):
                    goldens.append(f"{written} ({check} of {ids[artifact]})")
                if verbose or result["status"] == FAILED:
                    progress.clear()
                    _print_result(out, ids[artifact], check, result, paint)
            rows[ids[artifact]] = row
        progress.update(len(order), "", force=True)
    finally:
        progress.clear()
        state.close()
    elapsed = time.perf_counter() - start

    unchecked = [artifact_id(p, root) for p in found.unchecked]
    extra = []
    if unchecked:
        shown = ", ".join(unchecked[:10]) + (
            f", ... ({len(unchecked) - 10} more)" if len(unchecked) > 10 else ""
        )
        how = (
            "each fails" if settings.strict else "no Keras artifact holds them; --strict fails each"
        )
        extra.append(f"not checked: {len(unchecked)} file(s) ({how}): {shown}")
    if not rows and not unchecked:
        extra.append("no Keras artifact in the given paths: nothing was gated")
    extra += finish_lock(settings.lock, settings.update_lock, rows, root)
    writes = []
    if json_path is not None:
        from pytest_kerasmodel.golden import write_json_atomic

        write_json_atomic(json_path, rows_report(rows, unchecked))
        writes.append(f"report written to {json_path}")
    if sarif_path is not None:
        from pytest_kerasmodel.gate.sarif import write_sarif

        write_sarif(sarif_path, rows, root)
        writes.append(f"SARIF written to {sarif_path}")
    if junit_path is not None:
        write_junit(junit_path, rows, elapsed, unchecked if settings.strict else [])
        writes.append(f"JUnit XML written to {junit_path}")
    if state.verdicts is not None and state.verdicts.stored:
        folder = os.path.relpath(state.verdicts.folder, root)
        writes.append(verdicts_written(state.verdicts.stored, folder))
    if goldens:
        writes.append(f"keras goldens written: {len(goldens)}")
        writes.extend(f"  {line}" for line in sorted(dict.fromkeys(goldens)))
    print("=" * 24 + " keras artifacts " + "=" * 24, file=out)
    lines = summary_lines(
        rows,
        verbose,
        extra,
        report_flag="--json PATH",
        writes=writes,
        paint=paint,
        no_cache_flag="--no-cache",
    )
    for line in lines:
        print(line, file=out)
    failed = any(c["status"] == FAILED for row in rows.values() for c in row["checks"].values())
    return EXIT_FAILED if failed or (settings.strict and unchecked) else EXIT_OK


def _print_result(
    out: IO[str], artifact: str, check: str, result: dict[str, Any], paint: Paint = no_paint
) -> None:
    word = {PASSED: "PASSED", FAILED: "FAILED", SKIPPED: "SKIPPED"}[result["status"]]
    if result["status"] == SKIPPED:  # the short reason, then the whole one
        shown = f"{paint(word, result['status'])} ({skip_label(result['message'])})"
        print(f"{shown} {artifact}::{check}: {result['message']}", file=out)
        return
    print(f"{paint(word, result['status'])} {artifact}::{check}", file=out)
    if result["status"] == FAILED:
        from pytest_kerasmodel.gate.sarif import item_text

        for line in item_text(artifact, check, result["message"]).splitlines():
            print(f"    {line}", file=out)


def write_junit(
    path: Path, rows: dict[str, dict[str, Any]], elapsed: float, unchecked: list[str]
) -> None:
    """A JUnit XML report in pytest's shape (one testcase per artifact and check), atomically."""
    from pytest_kerasmodel.gate.sarif import item_text
    from pytest_kerasmodel.golden import write_text_atomic

    suite = ET.Element("testsuite", name="kerasmodel")
    counts = {"tests": 0, "failures": 0, "skipped": 0}
    for artifact in sorted(rows):
        row = rows[artifact]
        seconds = row["info"].get("seconds") or 0.0
        for check in CHECKS:
            entry = row["checks"].get(check)
            if entry is None:
                continue
            counts["tests"] += 1
            case = ET.SubElement(
                suite,
                "testcase",
                classname=artifact.replace("/", "."),  # as pytest names a non-Python item
                name=check,
                time=f"{seconds / max(1, len(row['checks'])):.3f}",
            )
            if entry.get("provenance"):  # the signature or lock verdict, signer, changed files
                props = ET.SubElement(case, "properties")
                for key, value in sorted(entry["provenance"].items()):
                    text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
                    ET.SubElement(props, "property", name=f"{check}.{key}", value=text)
            if entry["status"] == FAILED:
                counts["failures"] += 1
                text = item_text(artifact, check, entry["message"])
                failure = ET.SubElement(case, "failure", message=text.splitlines()[0])
                failure.text = text
            elif entry["status"] == SKIPPED:
                counts["skipped"] += 1
                ET.SubElement(case, "skipped", type="pytest.skip", message=entry["message"])
    for name in unchecked:
        counts["tests"] += 1
        counts["failures"] += 1
        case = ET.SubElement(
            suite, "testcase", classname=name.replace("/", "."), name="recognised", time="0"
        )
        text = f"{name}: recognised: no Keras artifact holds this file, so nothing checked it"
        ET.SubElement(case, "failure", message=text).text = text
    suite.set("tests", str(counts["tests"]))
    suite.set("failures", str(counts["failures"]))
    suite.set("skipped", str(counts["skipped"]))
    suite.set("errors", "0")
    suite.set("time", f"{elapsed:.3f}")
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    text = ET.tostring(root, encoding="unicode", xml_declaration=True)
    write_text_atomic(path, text + "\n")
