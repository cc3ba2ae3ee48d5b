"""The options and CLI references of the docs site, generated from the code's own definitions.

``docs/reference/options.md`` and ``docs/reference/cli.md`` hold a marker line; this MkDocs hook
(``hooks:`` in mkdocs.yml) replaces it with tables built from :func:`pytest_kerasmodel.options.
add_options` (every ``--keras-*`` flag and ``keras_*`` ini key, declared on a real pytest parser)
and from the ``kerasmodel`` command's argparse parser, so an option added to the code is in the
docs at the next build, and none can go missing. ``tests/test_docs.py`` checks the generated text
against ``pytest --help`` and ``kerasmodel ... --help``.

Run directly (``python docs/hooks/reference.py options|cli``) it prints the generated Markdown.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

OPTIONS_MARKER = "<!-- generated: options -->"
CLI_MARKER = "<!-- generated: cli -->"


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def options_markdown() -> str:
    """Two tables: the command-line flags of the ``kerasmodel`` group, then the ini keys."""
    from _pytest.config.argparsing import Parser

    from pytest_kerasmodel.options import add_options

    parser = Parser(_ispytest=True)
    add_options(parser)
    group = parser.getgroup("kerasmodel")
    ini: dict[str, tuple[str, str, Any]] = {}
    for name in parser._inidict:
        help_, type_, default = parser._inidict[name][:3]
        ini[name] = (help_, type_ or "string", default)
    lines = [
        "### Command-line flags",
        "",
        "| flag | ini key | value | what it does |",
        "| --- | --- | --- | --- |",
    ]
    for option in group.options:
        attrs = option.attrs()
        flag = ", ".join(f"`{n}`" for n in option.names())
        dest = attrs.get("dest", "")
        value = attrs.get("metavar") or ("" if attrs.get("nargs") == 0 else "VALUE")
        key = f"`{dest}`" if dest in ini else "-"
        lines.append(f"| {flag} | {key} | {_cell(value)} | {_cell(attrs.get('help', ''))} |")
    lines += [
        "",
        "### ini keys",
        "",
        "Set in `pytest.ini`, `tox.ini`, `setup.cfg` or `[tool.pytest.ini_options]` of",
        "`pyproject.toml`; a flag given on the command line wins over its key.",
        "",
        "| ini key | type | default | what it does |",
        "| --- | --- | --- | --- |",
    ]
    for name, (help_, type_, default) in ini.items():
        shown = "" if default in (None, "", []) else f"`{default!r}`"
        lines.append(f"| `{name}` | {type_} | {shown} | {_cell(help_)} |")
    return "\n".join(lines) + "\n"


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _help(action: argparse.Action, prog: str) -> str:
    text = action.help or ""
    if "%(" in text:
        text = text % {**vars(action), "prog": prog}
    return text


def cli_markdown() -> str:
    """One section per ``kerasmodel`` subcommand: its usage line, then its arguments."""
    from pytest_kerasmodel.cli import _parser

    parser = _parser("kerasmodel")
    lines: list[str] = []
    for name, command in _subcommands(parser).items():
        lines += [f"### kerasmodel {name}", ""]
        if command.description:
            lines += [_cell(command.description), ""]
        usage = command.format_usage().removeprefix("usage: ").strip()
        lines += ["```text", usage, "```", ""]
        lines += ["| argument | value | what it does |", "| --- | --- | --- |"]
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            names = ", ".join(f"`{s}`" for s in action.option_strings) or f"`{action.dest}`"
            value = action.metavar or (
                "" if action.nargs == 0 else (action.dest.upper() if action.option_strings else "")
            )
            lines.append(f"| {names} | {_cell(value)} | {_cell(_help(action, name))} |")
        lines.append("")
    return "\n".join(lines)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """MkDocs hook: fill the references' markers."""
    if OPTIONS_MARKER in markdown:
        markdown = markdown.replace(OPTIONS_MARKER, options_markdown())
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_markdown())
    return markdown


if __name__ == "__main__":  # pragma: no cover - a developer's look at the output
    print(options_markdown() if sys.argv[1:] == ["options"] else cli_markdown())
