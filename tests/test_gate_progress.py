"""Progress and colour: ``kerasmodel gate``'s progress line on a terminal (a real pty), and ok /
FAIL / skip coloured in both summary tables, honouring ``--color``, ``NO_COLOR`` and piped
output. Also the command's small untruths: its ``--help``, a reader that leaves early, and a
message with a placeholder."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from builders.gate_artifacts import stage

KERASMODEL = Path(sys.executable).with_name("kerasmodel")
ESC = "\x1b["


@pytest.fixture
def models(pytester: pytest.Pytester, keras3_files: dict[str, Path]) -> pytest.Pytester:
    stage(pytester.path / "models", {"clf.keras": keras3_files["keras"]}, ["clf.keras"])
    # a truncated copy: integrity FAILs; structure has no golden: skip
    data = keras3_files["keras"].read_bytes()
    (pytester.path / "models" / "truncated.keras").write_bytes(data[: len(data) // 2])
    return pytester


def _gate(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KERASMODEL), "gate", "models", "--checks", "integrity,structure", "--no-cache", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


def _env(**changes: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "PY_COLORS")}
    for key, value in changes.items():
        if value is not None:
            env[key] = value
    return env


@pytest.mark.parametrize(
    ("args", "env", "coloured"),
    [
        (("--color=yes",), _env(), True),
        (("--color=no",), _env(FORCE_COLOR="1"), False),
        (("--color=yes",), _env(NO_COLOR="1"), True),  # an explicit choice wins, as in pytest
        ((), _env(), False),  # piped: no escape codes
        ((), _env(NO_COLOR="1", FORCE_COLOR="1"), False),
    ],
)
def test_pytest_summary_table_colours_ok_fail_skip(
    models: pytest.Pytester, args: tuple[str, ...], env: dict[str, str], coloured: bool
) -> None:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--keras-model-dir",
        "models",
        "-p",
        "no:cacheprovider",
    ]
    run = subprocess.run(
        [*command, "--keras-checks", "integrity,structure", *args],
        cwd=models.path,
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    table = run.stdout[run.stdout.index("keras artifacts") :]
    if coloured:
        assert f"{ESC}32mok{ESC}0m" in table
        assert f"FAIL{ESC}0m" in table and f"{ESC}31m" in table
        assert f"{ESC}33mskip{ESC}0m" in table
    else:
        assert ESC not in run.stdout
        assert "FAIL" in table and "skip" in table


@pytest.mark.parametrize(
    ("args", "env", "coloured"),
    [
        (("--color", "yes"), _env(), True),
        (("--color", "no"), _env(FORCE_COLOR="1"), False),
        ((), _env(), False),  # piped
        ((), _env(FORCE_COLOR="1"), True),
        ((), _env(NO_COLOR="1", FORCE_COLOR="1"), False),
    ],
)
def test_kerasmodel_gate_colours_its_table_and_failures(
    models: pytest.Pytester, args: tuple[str, ...], env: dict[str, str], coloured: bool
) -> None:
    run = _gate(models.path, *args, env=env)
    assert run.returncode == 1, run.stdout + run.stderr
    if coloured:
        assert f"{ESC}32mok{ESC}0m" in run.stdout
        assert f"{ESC}1;31mFAIL{ESC}0m" in run.stdout
        assert f"{ESC}1;31mFAILED{ESC}0m models/truncated.keras::integrity" in run.stdout
        assert f"{ESC}33mskip{ESC}0m" in run.stdout
    else:
        assert ESC not in run.stdout
    assert "\r" not in run.stderr  # stderr is a pipe: no progress line


def test_kerasmodel_gate_shows_progress_on_a_terminal_only(models: pytest.Pytester) -> None:
    master, slave = pty.openpty()
    try:
        run = subprocess.run(
            [str(KERASMODEL), "gate", "models", "--checks", "integrity", "--no-cache"],
            cwd=models.path,
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
            check=False,
            env=_env(),
        )
        os.close(slave)
        slave = -1
        shown = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    text = shown.decode()
    assert run.returncode == 1
    # artifacts done of the total, the current file, elapsed seconds; erased at the end
    assert "[0/2]" in text and "models/clf.keras" in text
    assert "[2/2]" in text and "s " in text
    assert text.endswith("\r")
    assert "[0/2]" not in run.stdout  # the summary on stdout holds no progress


def test_gate_help_lists_the_default_checks_without_compile() -> None:
    run = subprocess.run(
        [str(KERASMODEL), "gate", "--help"], capture_output=True, text=True, check=False
    )
    flat = " ".join(run.stdout.split())
    assert "default: integrity, safety, load, finite, structure, predictions, budgets;" in flat
    assert "compile only when named" in flat


@pytest.mark.parametrize(
    "command",
    [[sys.executable, "-m", "pytest_kerasmodel"], [str(KERASMODEL)]],
    ids=["python-m", "console-script"],
)
def test_a_reader_that_leaves_early_ends_inspect_quietly(
    command: list[str], keras3_files: dict[str, Path]
) -> None:
    """``... inspect X | head``: the reader is gone before anything is written."""
    read, write = os.pipe()
    os.close(read)  # as `head` after its lines: every write now fails with EPIPE
    try:
        run = subprocess.run(
            [*command, "inspect", str(keras3_files["keras"])],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    finally:
        os.close(write)
    assert "Traceback" not in run.stderr and "BrokenPipeError" not in run.stderr, run.stderr
    assert run.returncode == 0


def test_a_missing_torch_backend_message_has_no_placeholder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pytest_kerasmodel.frameworks import BackendError, parse_backends

    monkeypatch.setitem(sys.modules, "torch", None)  # blocked: find_spec raises, not installed
    with pytest.raises(BackendError) as caught:
        parse_backends(["torch"], source="--keras-backends")
    text = str(caught.value)
    assert "<" not in text and ">" not in text, text
    assert "pip install 'torch'" in text and "download.pytorch.org/whl/cpu" in text
