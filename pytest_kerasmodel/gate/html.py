"""The gate's summary table as HTML, for pytest-html's report (``pytest_html_results_summary``).

The same rows, columns and root causes as the terminal summary (:mod:`.report`), every cell
escaped: artifact names and messages come from the files under check.
"""

from __future__ import annotations

from html import escape
from typing import Any

from pytest_kerasmodel.gate.report import root_cause, table_rows

#: the CSS class of each cell (pytest-html styles ``passed``, ``failed`` and ``skipped``)
_CELL_CLASS = {"ok": "passed", "FAIL": "failed", "skip": "skipped"}


def summary_html(rows: dict[str, dict[str, Any]]) -> str:
    header, *body = table_rows(rows)
    failing = sum(1 for row in body if "FAIL" in row[5:])
    lines = [
        '<div id="kerasmodel-gate">',
        "<h2>Keras artifacts</h2>",
        f"<p>{len(body)} artifact(s), {failing} failing at least one check</p>",
        '<table class="kerasmodel-gate">',
        "<tr>" + "".join(f"<th>{escape(cell)}</th>" for cell in header) + "</tr>",
    ]
    for row in body:
        cells = [f"<td>{escape(cell)}</td>" for cell in row[:5]]
        cells += [
            f'<td class="{_CELL_CLASS.get(cell.split(" ", 1)[0], "")}">{escape(cell)}</td>'
            for cell in row[5:]
        ]
        lines.append("<tr>" + "".join(cells) + "</tr>")
    lines.append("</table>")
    causes = [(name, cause) for name in sorted(rows) if (cause := root_cause(rows[name]))]
    if causes:
        lines.append("<p>Failing artifacts, by root cause:</p><ul>")
        lines += [
            f"<li>{escape(name)}: {escape(c['check'])} ({escape(c['reason'])})</li>"
            for name, c in causes
        ]
        lines.append("</ul>")
    lines.append("</div>")
    return "\n".join(lines)
