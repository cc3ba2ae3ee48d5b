"""The pre-commit hook (.pre-commit-hooks.yaml), run by the real ``pre-commit try-repo``.

pre-commit builds the hook's own virtual environment from this repository (``pip install .``,
TensorFlow and Keras included: about two minutes from a PyPI mirror or pip's cache), so the
test is opt-in: ``PYTEST_KERASMODEL_PRECOMMIT=1 pytest tests/test_precommit.py``. It needs git
and PyPI (or a mirror); nothing else from the internet.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.precommit,
    pytest.mark.skipif(
        os.environ.get("PYTEST_KERASMODEL_PRECOMMIT") != "1",
        reason="builds the hook's environment with pip (~2 min): PYTEST_KERASMODEL_PRECOMMIT=1",
    ),
    pytest.mark.skipif(shutil.which("git") is None, reason="needs git"),
]


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _hook_repository(target: Path) -> Path:
    """This working tree as it is (tracked and new files), committed in a repository of its own,
    so that pre-commit builds one environment for every run below."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    for name in listed:
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    _git(target, "init", "-q")
    _git(target, "add", "-A")
    _git(target, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "hooks")
    return target


def test_the_hook_gates_the_model_files_a_commit_adds(
    gate_files: dict[str, Path], layout_files: dict[str, Path], tmp_path: Path
) -> None:
    pytest.importorskip("pre_commit")
    hooks = _hook_repository(tmp_path / "hooks")
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    env = dict(os.environ, PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"))

    def try_repo() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pre_commit", "try-repo", str(hooks), "kerasmodel-gate", "-v"],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    # a healthy model and an unzipped model folder: the hook passes
    shutil.copyfile(gate_files["clf.keras"], repo / "clf.keras")
    shutil.copytree(layout_files["mlp_dir"], repo / "mlp_dir")
    (repo / "notes.txt").write_text("not a model\n")
    _git(repo, "add", "-A")
    first = try_repo()
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Keras model files (kerasmodel gate, file-only checks)" in first.stdout
    assert "2 artifact(s), 0 failing at least one check" in first.stdout
    assert "mlp_dir  " in first.stdout  # the folder its config.json belongs to, gated once
    assert "load" not in first.stdout.split("keras artifacts")[1].splitlines()[1]  # file-only
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "ok", "--no-verify")

    # the next commit adds a model with a Lambda layer: only that file is gated, and it fails
    shutil.copyfile(gate_files["lambda.keras"], repo / "lambda.keras")
    _git(repo, "add", "lambda.keras")
    second = try_repo()
    assert second.returncode == 1, second.stdout + second.stderr
    assert "lambda.keras: safety: 1 finding(s):" in second.stdout
    assert "[lambda]" in second.stdout
    assert "1 artifact(s), 1 failing at least one check" in second.stdout
    assert "clf.keras" not in second.stdout  # committed already: not gated again
