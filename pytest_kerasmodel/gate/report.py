"""The gate's terminal summary table and ``--keras-report`` JSON.

Both are built from the per-item records that :class:`~pytest_kerasmodel.gate.collect.CheckItem`
puts in ``report.user_properties``: pytest-xdist carries them to the controller, so the summary
is complete whichever worker checked which artifact.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_kerasmodel.gate.progress import CELL, Paint, no_paint, paint_cell, pytest_paint
from pytest_kerasmodel.gate.protocol import CHECKS, FAILED, PASSED, SKIPPED, skip_label
from pytest_kerasmodel.gate.session import REPORT_PROPERTY, GateState
from pytest_kerasmodel.golden import write_json_atomic

REPORT_VERSION = 1
#: the first column of the table that holds a check's status (after artifact .. size)
STATUS_COLUMN = 5


@functools.lru_cache(maxsize=16)
def _record_of(value: str) -> dict[str, Any]:
    """An item's record, parsed once: its call and teardown reports and its verbose status
    all carry the same text (read-only: the dict is shared)."""
    data: dict[str, Any] = json.loads(value)
    return data


def record(state: GateState, report: pytest.TestReport) -> None:
    for name, value in report.user_properties:
        if name != REPORT_PROPERTY:
            continue
        data = _record_of(str(value))
        row = state.rows.setdefault(data["artifact"], {"info": {}, "checks": {}})
        if data.get("info"):
            row["info"] = data["info"]
        if data.get("stored"):
            row["stored"] = True  # its verdicts were written to the verdict cache
        row["checks"][data["check"]] = {
            **check_entry(
                data["status"], data["message"], data.get("blocked_by"), bool(data.get("cached"))
            ),
            **{k: data[k] for k in PROVENANCE_KEYS if k in data},
        }


def check_entry(status: str, message: str, blocked_by: str | None, cached: bool) -> dict[str, Any]:
    """One check of a row (the summary table, ``--keras-report``, ``kerasmodel gate``): a
    skipped one also carries its short ``reason`` (:func:`skip_label`)."""
    entry: dict[str, Any] = {
        "status": status,
        "message": message,
        "blocked_by": blocked_by,
        "cached": cached,
    }
    if status == SKIPPED:
        entry["reason"] = skip_label(message)
    return entry


#: what the provenance checks add to a row's check (gate.provenance): the verdict, signer and
#: changed files, and under --keras-update-lock the parts to record
PROVENANCE_KEYS = ("provenance", "parts")


def provenance_record(result: dict[str, Any]) -> dict[str, Any]:
    """The provenance keys of a check's result, for its record (empty for other checks)."""
    details = result.get("details", {})
    return {k: details[k] for k in PROVENANCE_KEYS if k in details}


def teststatus(report: pytest.TestReport) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
    """The verbose word of a gate item the verdict cache served (``PASSED (cached)``).

    A skip keeps pytest's plain ``SKIPPED``: ``-rs`` prints the first skip's word before every
    reason, so a word carrying one skip's reason would mislabel the others; the reason follows
    the word in ``-v`` and in ``-rs`` (it begins with what the table shows, e.g. ``no golden``).
    """
    if report.when != "call":
        return None
    for name, value in report.user_properties:
        if name == REPORT_PROPERTY and _record_of(str(value)).get("cached"):
            word = report.outcome.upper()
            markup = {"green": report.passed, "red": report.failed, "yellow": report.skipped}
            letter = {"passed": ".", "failed": "F", "skipped": "s"}[report.outcome]
            return report.outcome, letter, (f"{word} (cached)", markup)
    return None


def _size(size: Any) -> str:
    if not isinstance(size, int):
        return "?"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return "?"


def ordered(names: Any) -> list[str]:
    """Check names in check order, then the checks run under other backends (``load[jax]``,
    from --keras-backends) in the order they came."""
    names = list(dict.fromkeys(names))
    return [c for c in CHECKS if c in names] + [n for n in names if n not in CHECKS]


def table(rows: dict[str, dict[str, Any]], paint: Paint = no_paint) -> list[str]:
    """The summary table's lines; ``paint`` colours the status cells (aligned on their plain
    text)."""
    lines = table_rows(rows)
    widths = [max(len(row[i]) for row in lines) for i in range(len(lines[0]))]
    return [
        "  ".join(
            (paint_cell(cell, paint) if i >= STATUS_COLUMN else cell) + " " * (w - len(cell))
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in lines
    ]


def table_rows(rows: dict[str, dict[str, Any]]) -> list[list[str]]:
    """The summary table's cells, its header first (the terminal and the HTML report)."""
    # a column for each check some artifact has an item for (none for budgets when none is set)
    shown = ordered(name for row in rows.values() for name in row["checks"])
    header = ["artifact", "format", "writer", "params", "size", *shown]
    lines = [header]
    for artifact in sorted(rows):
        info, checks = rows[artifact]["info"], rows[artifact]["checks"]
        params = info.get("params")
        lines.append(
            [
                artifact,
                str(info.get("format") or "?"),
                str(info.get("writer") or "?"),
                f"{params:,}" if isinstance(params, int) else "?",
                _size(info.get("size")),
                *(cell(checks.get(c)) for c in shown),
            ]
        )
    return lines


def cell(check: dict[str, Any] | None) -> str:
    """A check's cell: ``ok``, ``FAIL``, ``skip (no golden)`` with the skip's short reason, or
    ``-`` for a check with no item."""
    if check is None:
        return "-"
    text = CELL.get(check.get("status", ""), "-")
    if check.get("status") == SKIPPED:
        text += f" ({check.get('reason') or skip_label(str(check.get('message', '')))})"
    return text


# Past this many artifacts the table lists the failing ones only, unless -v is given.
FULL_TABLE_ROWS = 50


def _failing(row: dict[str, Any]) -> bool:
    return any(c["status"] == FAILED for c in row["checks"].values())


#: how many unchecked files the terminal summary names (the JSON report has them all)
SHOWN_UNCHECKED = 10


def not_checked(state: GateState, config: pytest.Config) -> list[str]:
    """The files under the model folders that no artifact holds, as paths from the rootdir."""
    found = state.discovery(config).unchecked
    return [os.path.relpath(os.path.abspath(p), config.rootpath) for p in found]


def _unchecked_lines(state: GateState, config: pytest.Config) -> list[str]:
    lines = []
    unchecked = not_checked(state, config)
    if unchecked:
        shown = ", ".join(unchecked[:SHOWN_UNCHECKED])
        more = (
            f", ... ({len(unchecked) - SHOWN_UNCHECKED} more)"
            if len(unchecked) > SHOWN_UNCHECKED
            else ""
        )
        how = (
            "each fails its ::recognised item"
            if state.settings.strict
            else "no Keras artifact holds them; --keras-strict fails each"
        )
        lines.append(f"not checked: {len(unchecked)} file(s) ({how}): {shown}{more}")
    found = state.discovery(config).artifacts
    for folder in state.settings.model_dirs:
        if folder.is_dir() and not any(a == folder or folder in a.parents for a in found):
            lines.append(
                f"no Keras artifact under {os.path.relpath(folder, config.rootpath)}: nothing "
                "there was gated (artifacts are recognised by content: .keras, HDF5, "
                ".weights.json, model, preset, SavedModel and Orbax folders)"
            )
    return lines


def root_cause(row: dict[str, Any]) -> dict[str, str] | None:
    """The first failing check (in check order) that is not the consequence of another one's
    failure, with a short reason; None when nothing failed."""
    checks = row["checks"]
    failing = [c for c in ordered(checks) if checks[c].get("status") == FAILED]
    causes = [c for c in failing if not checks[c].get("blocked_by")] or failing
    if not causes:
        return None
    check = causes[0]
    return {"check": check, "reason": short_reason(check, checks[check]["message"])}


SHORT_REASON_CHARS = 100


def short_reason(check: str, message: str) -> str:
    """One line saying why a check failed: the count of safety findings, the ``why:`` of a
    load failure (else what Keras said), or the message's first line, shortened."""
    lines = [line.strip() for line in message.splitlines() if line.strip()] or [""]
    text = lines[0]
    findings = re.match(r"(\d+) finding\(s\)", text)
    if check == "safety" and findings:
        count = int(findings.group(1))
        text = f"{count} finding{'s' if count != 1 else ''}"
    elif check.split("[")[0] in ("load", "predictions") and text.startswith("load_model failed"):
        why = [line for line in lines if line.startswith("why: ")]
        said = [line for line in lines if line.startswith("Keras said: ")]
        text = why[0][len("why: ") :] if why else said[0] if said else text
    elif text.endswith(":") and len(lines) > 1:  # a heading: the first item says more
        text = f"{text} {lines[1].lstrip('- ')}"
    if len(text) > SHORT_REASON_CHARS:
        text = text[: SHORT_REASON_CHARS - 3].rstrip() + "..."
    return text


def terminal_summary(state: GateState, terminalreporter: Any) -> None:
    extra = _unchecked_lines(state, terminalreporter.config) if state.settings.model_dirs else []
    extra += state.lock_lines
    if not state.rows and not extra:
        return
    terminalreporter.write_sep("=", "keras artifacts")
    config = terminalreporter.config
    verbose = config.get_verbosity() > 0
    paint = pytest_paint(config.get_terminal_writer())
    for line in summary_lines(
        state.rows, verbose, extra, writes=writes(state, config), paint=paint
    ):
        terminalreporter.write_line(line)


def writes(state: GateState, config: pytest.Config) -> list[str]:
    """What this session wrote besides goldens (listed by plugin._GoldenWrites): the reports
    and the verdict cache's entries, on the xdist controller too (from the items' records)."""
    lines = []
    if state.settings.report is not None:
        lines.append(f"report written to {state.settings.report}")
    if state.settings.sarif is not None:
        lines.append(f"SARIF written to {state.settings.sarif}")
    stored = sum(bool(row.get("stored")) for row in state.rows.values())
    if stored and getattr(config, "cache", None) is not None:
        from pytest_kerasmodel.gate.verdicts import CACHE_FOLDER

        folder = os.path.relpath(config.cache.mkdir(CACHE_FOLDER), config.rootpath)
        lines.append(verdicts_written(stored, folder))
    return lines


def verdicts_written(count: int, folder: str) -> str:
    return f"verdicts of {count} artifact(s) written to the verdict cache ({folder})"


def summary_lines(
    all_rows: dict[str, dict[str, Any]],
    verbose: bool,
    extra: list[str],
    report_flag: str = "--keras-report PATH",
    *,
    writes: Sequence[str] = (),
    paint: Paint = no_paint,
    no_cache_flag: str = "--keras-no-cache",
) -> list[str]:
    """The summary under the ``keras artifacts`` heading: the table, the counts, the root
    causes, ``extra`` lines (what was not checked) and ``writes`` (what was written). Shared by
    pytest's terminal summary and ``kerasmodel gate``, which prints the same lines with its own
    flags (``report_flag``, ``no_cache_flag``)."""
    lines: list[str] = []
    if not all_rows:
        return [*extra, *writes]
    rows = all_rows
    failed = sum(_failing(row) for row in rows.values())
    if len(rows) > FULL_TABLE_ROWS and not verbose:
        rows = {name: row for name, row in rows.items() if _failing(row)}
    if rows:
        lines.extend(table(rows, paint))
    if len(rows) < len(all_rows):
        lines.append(
            f"({len(all_rows) - len(rows)} artifact(s) passing every check not listed: "
            f"-v lists them, {report_flag} writes every row)"
        )
    lines.append(f"{len(all_rows)} artifact(s), {failed} failing at least one check")
    served = sum(all(c.get("cached") for c in row["checks"].values()) for row in all_rows.values())
    if served:
        lines.append(
            f"{served} unchanged artifact(s) not read again: their verdicts came from the "
            f"verdict cache ({no_cache_flag} checks them again)"
        )
    causes = [(name, cause) for name in sorted(all_rows) if (cause := root_cause(all_rows[name]))]
    if causes:
        lines.append(
            f"{len(causes)} failing artifact{'s' if len(causes) != 1 else ''}, by root cause:"
        )
        shown = causes if verbose else causes[:FULL_TABLE_ROWS]
        for name, cause in shown:
            lines.append(f"  {name}: {cause['check']} ({cause['reason']})")
        if len(shown) < len(causes):
            lines.append(
                f"  ... {len(causes) - len(shown)} more (-v lists them, {report_flag} "
                "writes every root_cause)"
            )
    lines.extend(extra)
    lines.extend(writes)
    return lines


def report_data(state: GateState, config: pytest.Config | None = None) -> dict[str, Any]:
    return rows_report(state.rows, not_checked(state, config) if config is not None else [])


def rows_report(rows: dict[str, dict[str, Any]], unchecked: list[str]) -> dict[str, Any]:
    """The JSON report of the gate's rows (``--keras-report``, ``kerasmodel gate --json``)."""
    from pytest_kerasmodel.frameworks import keras3

    artifacts = []
    for artifact in sorted(rows):
        row = rows[artifact]
        statuses = [c["status"] for c in row["checks"].values()]
        artifacts.append(
            {
                "artifact": artifact,
                **row["info"],
                "result": FAILED if FAILED in statuses else PASSED,
                "root_cause": root_cause(row),
                "checks": {
                    c: {
                        k: v
                        for k, v in row["checks"][c].items()
                        if k not in ("blocked_by", "parts")
                    }
                    for c in ordered(row["checks"])
                },
            }
        )
    return {
        "kerasmodel_report": REPORT_VERSION,
        "keras_version": keras3.keras_version(),
        "artifacts": artifacts,
        "failed": sum(a["result"] == FAILED for a in artifacts),
        "not_checked": unchecked,
    }


def write_report(state: GateState, path: Path, config: pytest.Config | None = None) -> None:
    write_json_atomic(path, report_data(state, config))
