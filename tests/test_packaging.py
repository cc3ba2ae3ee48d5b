"""The package's metadata as a user's pip reads it: what the core installs, the extras, the Python
versions, and what the sdist carries. .ci/wheel installs the built wheel next to an existing
TensorFlow and checks that it stays the only one; these tests keep setup.cfg from drifting."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: every distribution that installs the ``tensorflow`` package into site-packages
TENSORFLOW_DISTS = {
    "tensorflow",
    "tensorflow-cpu",
    "tensorflow-gpu",
    "tensorflow-intel",
    "tensorflow-macos",
    "tf-nightly",
}


def _setup() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return parser


def _names(requirements: str) -> list[str]:
    return [
        re.split(r"[\s\[<>=!~;]", line.strip(), maxsplit=1)[0].lower()
        for line in requirements.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def test_the_core_installs_no_backend_and_declares_what_it_imports() -> None:
    core = _names(_setup()["options"]["install_requires"])
    assert not TENSORFLOW_DISTS & set(core), core
    assert not {"jax", "torch"} & set(core), core
    assert {"pytest", "numpy", "h5py", "keras", "protobuf"} <= set(core)


def test_each_backend_and_capability_is_an_extra_with_a_comment() -> None:
    extras = _setup()["options.extras_require"]
    expected = {"tensorflow", "jax", "torch", "hub", "tf-keras", "export", "test", "docs", "dev"}
    assert expected <= set(extras), sorted(extras)
    assert _names(extras["tensorflow"]) == ["tensorflow"]
    if (ROOT / "PKG-INFO").exists():
        pytest.skip("an unpacked sdist: setuptools rewrote its setup.cfg without the comments")
    text = (ROOT / "setup.cfg").read_text()
    for name in extras:
        before = text[: text.index(f"\n{name} =\n")].rstrip().splitlines()[-1]
        assert before.startswith("#"), f"extra [{name}] has no comment saying what it is for"


def test_the_test_extra_is_built_from_the_others() -> None:
    test = _setup()["options.extras_require"]["test"]
    (own,) = [line for line in test.splitlines() if line.strip().startswith("pytest-kerasmodel[")]
    named = set(own.strip()[len("pytest-kerasmodel[") : -1].split(","))
    assert {"tensorflow", "jax", "hub", "tf-keras", "export", "docs"} <= named


def test_the_python_versions_said_are_the_classifiers() -> None:
    metadata = _setup()["metadata"]
    oldest = _setup()["options"]["python_requires"].removeprefix(">=")
    said = re.findall(r"Programming Language :: Python :: (3\.\d+)$", metadata["classifiers"], re.M)
    assert said[0] == oldest, (said, oldest)
    assert said == [f"3.{m}" for m in range(int(oldest.split(".")[1]), 14)]


def test_the_sdist_carries_what_its_tests_need() -> None:
    manifest = (ROOT / "MANIFEST.in").read_text()
    for line in ("graft tests", "graft examples", "graft benchmarks", "graft docs"):
        assert line in manifest
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert _setup()["metadata"]["license_files"] == "LICENSE"
