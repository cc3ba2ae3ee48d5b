"""``kerasmodel inspect --html``: one self-contained HTML page of an artifact.

A renderer only: it takes :func:`~pytest_kerasmodel.structure.page.page_data` and computes
nothing. The page needs no network: the CSS is inline, there is no script, font or image, so it
can be attached to a CI run or a ticket and opened anywhere. Every text from the file is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from pytest_kerasmodel.structure.tree import explain_tree

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #1b1b1b; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
th { background: #f0f0f0; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.bad { color: #a00; font-weight: bold; } .ok { color: #070; }
ul.tree, ul.tree ul { list-style: none; padding-left: 1.3em; margin: 0; }
ul.tree { padding-left: 0; font-family: ui-monospace, monospace; font-size: 0.88em; }
.node { margin: 0.1em 0; } .name { font-weight: bold; }
.group > .name { color: #0b4f8a; } .attribute > .name { color: #7a4b00; }
.meta { color: #555; } .meaning { color: #2d5e2d; font-family: system-ui, sans-serif; }
.meaning::before { content: " \\2014  "; color: #999; }
.unread .meaning { color: #a00; }
"""


def render_page(data: dict[str, Any]) -> str:
    """The whole page: summary, safety findings, layers, weight statistics, notes, HDF5 tree."""
    description = data["description"]
    title = f"{description.get('file')}: {description.get('format_title')}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        _summary(description),
        _findings(data.get("findings") or []),
        _layers(description),
        _statistics(data.get("statistics") or {}, data.get("statistics_unread")),
        _notes(description.get("notes") or []),
        _tree(description),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _summary(description: dict[str, Any]) -> str:
    model = description.get("model") or {}
    rows = [
        ("format", description.get("format")),
        ("written by Keras", description.get("keras_version")),
        ("backend", description.get("backend")),
        ("model", f"{model.get('class_name')} {model.get('name')!r}" if model else None),
        ("parameters", f"{description.get('params'):,}" if description.get("params") else 0),
        ("file size", f"{description.get('file_size'):,} bytes"),
        ("optimizer", (description.get("optimizer") or {}).get("class_name")),
    ]
    cells = "".join(
        f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in rows if v is not None
    )
    return f'<table id="summary">{cells}</table>'


def _findings(findings: list[dict[str, Any]]) -> str:
    if not findings:
        return '<h2>Safety scan</h2><p id="findings" class="ok">no findings</p>'
    items = "".join(
        f'<li class="finding bad">[{escape(f["check"])}] {escape(f["where"])}: '
        f"{escape(f['reason'])}</li>"
        for f in findings
    )
    return f'<h2>Safety scan</h2><ul id="findings">{items}</ul>'


def _layers(description: dict[str, Any]) -> str:
    layers = description.get("layers") or []
    if not layers:
        return '<h2>Layers</h2><p id="layers">no layer config in the artifact</p>'
    rows = "".join(
        f'<tr class="layer" data-layer="{escape(str(layer.get("name")))}">'
        f"<td>{escape(str(layer.get('name')))}</td><td>{escape(str(layer.get('class_name')))}</td>"
        f'<td class="num">{escape(str(layer.get("params", "")))}</td>'
        f"<td>{escape(', '.join(layer.get('weights') or []))}</td></tr>"
        for layer in layers
    )
    head = "<tr><th>layer</th><th>class</th><th>parameters</th><th>weights</th></tr>"
    return f'<h2>Layers</h2><table id="layers">{head}{rows}</table>'


def _statistics(statistics: dict[str, dict[str, Any]], unread: str | None) -> str:
    if not statistics:
        why = unread or "no weights in the artifact"
        return f'<h2>Weight statistics</h2><p id="statistics">{escape(why)}</p>'
    columns = ("size", "min", "max", "mean", "std", "nan", "inf", "zeros")
    head = "<tr><th>weight</th><th>dtype</th>" + "".join(f"<th>{c}</th>" for c in columns)
    rows = []
    for name, stats in statistics.items():
        bad = stats.get("nan") or stats.get("inf")
        cells = "".join(
            f'<td class="num{" bad" if c in ("nan", "inf") and stats.get(c) else ""}">'
            f"{escape(_number(stats.get(c)))}</td>"
            for c in columns
        )
        rows.append(
            f'<tr class="weight{" bad" if bad else ""}" data-weight="{escape(name)}">'
            f"<td>{escape(name)}</td><td>{escape(str(stats.get('dtype')))}</td>{cells}</tr>"
        )
    return f'<h2>Weight statistics</h2><table id="statistics">{head}</tr>{"".join(rows)}</table>'


def _notes(notes: list[str]) -> str:
    if not notes:
        return ""
    items = "".join(f"<li>{escape(n)}</li>" for n in notes)
    return f'<h2>Notes</h2><ul id="notes">{items}</ul>'


def _tree(description: dict[str, Any]) -> str:
    nodes = description.get("tree")
    if nodes is None:  # a description from before the tree existed
        nodes = explain_tree(description)
    if not nodes:
        return '<h2>HDF5 tree</h2><p id="tree">no HDF5 tree in this artifact</p>'
    out = ['<h2>HDF5 tree, explained</h2><ul class="tree" id="tree">']
    open_groups: list[int] = []
    for node in nodes:
        while open_groups and open_groups[-1] >= node["depth"]:
            out.append("</ul></li>")
            open_groups.pop()
        kind = node["kind"]
        unread = " unread" if node["meaning"].startswith("not interpreted") else ""
        attrs = (
            f'class="node {escape(kind)}{unread}" data-path="{escape(node["path"])}" '
            f'data-kind="{escape(kind)}"'
        )
        if node.get("weight"):
            attrs += f' data-weight="{escape(node["weight"])}"'
        if kind == "attribute":
            meta = f" = {_value(node.get('value'))}"
        elif kind == "dataset":
            meta = f" {node.get('shape')} {node.get('dtype')}"
        elif kind == "softlink":
            meta = f" -> {node.get('value')}"
        else:
            meta = "/" if node["path"] else ""
        body = (
            f'<span class="name">{escape(node["name"])}</span>'
            f'<span class="meta">{escape(meta)}</span>'
            f'<span class="meaning">{escape(node["meaning"])}</span>'
        )
        if kind == "group":
            out.append(f"<li {attrs}>{body}<ul>")
            open_groups.append(node["depth"])
        else:
            out.append(f"<li {attrs}>{body}</li>")
    out.extend("</ul></li>" for _ in open_groups)
    out.append("</ul>")
    return "\n".join(out)


def _value(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return f"{value:,}" if isinstance(value, int) else str(value)
