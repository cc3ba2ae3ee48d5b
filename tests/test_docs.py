"""The docs site: every code example in docs/*.md runs, and the generated references are complete.

A page's examples run in a fresh folder holding a copy of ``examples/models/`` as ``models/``:
blocks with a ``title="file"`` (```python title="test_x.py"```, ```toml title="pyproject.toml"```)
are written as that file; the untitled ``python`` blocks run in order, as one script, in one
process; then, when the page wrote a test module or a pytest configuration, ``pytest`` runs in that
folder and must pass: once, or once per ``<!-- pytest-args: ... -->`` line of the page, in order,
with those arguments (``--keras-update-golden``, then none: the golden is recorded, then held).
A block in another language (bash, yaml, text) is shown, not run.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BLOCK = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```[ \t]*$", re.S | re.M)
TITLE = re.compile(r'title="([^"]+)"')
PYTEST_ARGS = re.compile(r"^<!-- pytest-args:(.*?) ?-->$", re.M)
#: what a page's examples need beyond the core and TensorFlow
NEEDS = {"backends.md": ("jax",)}

sys.path.insert(0, str(DOCS / "hooks"))
import reference  # noqa: E402  (docs/hooks/reference.py, the MkDocs hook)


def _pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "hooks" not in p.parts)


def _blocks(page: Path) -> list[tuple[str, str | None, str]]:
    """(language, title or None, code) of each fenced block of ``page``, in order."""
    found = []
    for match in BLOCK.finditer(page.read_text()):
        title = TITLE.search(match.group(2))
        found.append((match.group(1), title.group(1) if title else None, match.group(3)))
    return found


def _runnable(page: Path) -> bool:
    return any(lang == "python" or title for lang, title, _ in _blocks(page))


RUNNABLE = [p.relative_to(DOCS).as_posix() for p in _pages() if _runnable(p)]


def test_the_pages_with_examples_are_found() -> None:
    # a change to the fence syntax must not silently leave every example unrun
    assert {"getting-started.md", "inside-a-keras-file.md", "roundtrip.md", "safety.md"} <= set(
        RUNNABLE
    )
    blocks = _blocks(DOCS / "inside-a-keras-file.md")
    assert [lang for lang, _, _ in blocks].count("python") >= 5


@pytest.mark.parametrize("name", RUNNABLE)
def test_every_code_example_of_the_page_runs(name: str, tmp_path: Path) -> None:
    for module in NEEDS.get(name, ()):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{name}'s examples need {module}")
    page = DOCS / name
    shutil.copytree(ROOT / "examples" / "models", tmp_path / "models")
    script: list[str] = []
    wrote_tests = False
    for lang, title, code in _blocks(page):
        if title:
            assert not (tmp_path / title).exists(), f"{name}: two blocks write {title}"
            (tmp_path / title).write_text(code)
            wrote_tests |= title.startswith("test_") or title in ("pyproject.toml", "pytest.ini")
        elif lang == "python":
            script.append(code)
    if script:
        (tmp_path / "doc_examples.py").write_text("\n\n".join(script))
        done = subprocess.run(
            [sys.executable, "doc_examples.py"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"{name}'s examples failed:\n{done.stdout}\n{done.stderr}"
    if wrote_tests:
        runs = [shlex.split(args) for args in PYTEST_ARGS.findall(page.read_text())] or [[]]
        for args in runs:
            done = subprocess.run(
                [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert done.returncode == 0, (
                f"{name}'s tests failed (pytest {' '.join(args)}):\n{done.stdout}\n{done.stderr}"
            )


def test_the_options_reference_lists_every_flag_and_ini_key(pytester: pytest.Pytester) -> None:
    """Compared with what pytest itself prints, so a flag declared anywhere is caught."""
    help_text = pytester.runpytest("--help").stdout.str()
    flags = {
        line.split()[0].split("=")[0].rstrip(",")
        for line in help_text.splitlines()
        if line.strip().startswith("--keras-")
    }
    keys = set(re.findall(r"^  (keras_\w+)", help_text, re.M))
    assert flags and keys, help_text
    generated = reference.options_markdown()
    for flag in flags:
        assert f"`{flag}`" in generated, f"{flag} is missing from the options reference"
    for key in keys:
        assert f"| `{key}` |" in generated, f"ini key {key} is missing from the options reference"
    page = (DOCS / "reference" / "options.md").read_text()
    assert reference.OPTIONS_MARKER in page


def test_the_cli_reference_lists_every_argument_of_every_subcommand() -> None:
    from pytest_kerasmodel.cli import _parser

    generated = reference.cli_markdown()
    subcommands = reference._subcommands(_parser("kerasmodel"))
    assert {"inspect", "diff", "gate"} <= set(subcommands)
    for name, command in subcommands.items():
        assert f"### kerasmodel {name}" in generated
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            for shown in action.option_strings or [action.dest]:
                assert f"`{shown}`" in generated, f"kerasmodel {name} {shown} is not documented"
    assert reference.CLI_MARKER in (DOCS / "reference" / "cli.md").read_text()


def test_the_docs_build_with_warnings_as_errors(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    options = (tmp_path / "site" / "reference" / "options" / "index.html").read_text()
    assert "--keras-no-fork" in options and "keras_fork_workers" in options
    assert (
        "--allowed-modules" in (tmp_path / "site" / "reference" / "cli" / "index.html").read_text()
    )


def test_the_readme_is_short_and_ci_runs_its_quick_start() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 200
    quick = readme.split("## Quick start", 1)[1]
    commands = BLOCK.search(quick)
    assert commands and commands.group(1) == "bash"
    lines = commands.group(3).strip().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith('pip install ".[tensorflow]" && ')  # installs the extra it needs
    ci = (ROOT / ".ci" / "run").read_text()
    for line in lines:
        test_command = line.split(" && ", 1)[1]
        assert f"python -m {test_command}" in ci, f".ci/run does not run {test_command!r}"
