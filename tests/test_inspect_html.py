"""``kerasmodel inspect --html FILE -o OUT.html``: one self-contained page (no network) with the
explained HDF5 tree, the layer table, weight statistics and the safety findings, loaded in a
real headless Chromium (Debian's, driven by selenium) and checked on its DOM and screenshot."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_kerasmodel.structure.page import weight_statistics

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _inspect_html(artifact: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest_kerasmodel", "inspect", "--html", str(artifact)]
    return subprocess.run(
        [*command, "-o", str(out), *extra],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def pages(
    keras3_files: dict[str, Path],
    tf_keras_files: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Path]:
    """The pages of a legacy .h5 by tf-keras and of a .keras, written once."""
    folder = tmp_path_factory.mktemp("pages")
    written = {}
    for name, artifact in (("tfk.h5", tf_keras_files["h5"]), ("k3.keras", keras3_files["keras"])):
        out = folder / f"{name}.html"
        done = _inspect_html(artifact, out)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"wrote {out}"
        written[name] = out
    return written


def test_the_page_is_self_contained(pages: dict[str, Path]) -> None:
    for page in pages.values():
        html = page.read_text()
        assert html.startswith("<!DOCTYPE html>")
        assert "<script" not in html and "<link" not in html and "@import" not in html
        assert not re.search(r"""(src|href)\s*=|url\(|https?://""", html), page


def test_weight_statistics_count_what_is_not_finite() -> None:
    stats = weight_statistics(np.array([[0.0, 1.0], [np.nan, np.inf]], dtype="float32"))
    assert stats["size"] == 4 and stats["nan"] == 1 and stats["inf"] == 1 and stats["zeros"] == 1
    assert stats["min"] == 0.0 and stats["max"] == 1.0 and stats["mean"] == 0.5
    empty = weight_statistics(np.zeros((0, 3), "float32"))
    assert empty["min"] is None and empty["size"] == 0


def test_html_needs_an_output_and_never_overwrites_the_artifact(
    keras3_files: dict[str, Path], tmp_path: Path
) -> None:
    artifact = tmp_path / "tiny.keras"
    shutil.copyfile(keras3_files["keras"], artifact)
    before = artifact.read_bytes()
    same = _inspect_html(artifact, artifact)
    assert same.returncode == 2 and "is the artifact itself" in same.stderr
    assert artifact.read_bytes() == before
    missing = subprocess.run(
        [sys.executable, "-m", "pytest_kerasmodel", "inspect", "--html", str(artifact)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 2 and "needs -o" in missing.stderr


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip(
            "no chromium/chromedriver on PATH: apt-get install chromium chromium-driver "
            "(as .ci/run does) to check the page in a real browser"
        )
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium ([test])")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument("--window-size=1280,900")
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def test_the_page_in_a_real_browser(
    browser: Any, pages: dict[str, Path], tmp_path: Path, tf_keras_files: dict[str, Path]
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(pages["tfk.h5"].as_uri())
    assert browser.title == "tiny_tfk.h5: " + browser.title.split(": ", 1)[1]

    def meaning(path: str) -> str:
        selector = f'li.node[data-path="{path}"] > .meaning'
        return str(browser.find_element(By.CSS_SELECTOR, selector).text)

    # the question the project began from, answered in the tree
    assert meaning("model_weights/hidden/hidden/kernel:0") == (
        "variable 'hidden/kernel' of layer 'hidden' (Dense), shape [6, 4]"
    )
    assert "the layer's name again" in meaning("model_weights/hidden/hidden")
    assert "outside any layer" in meaning("model_weights/top_level_model_weights")
    assert meaning("optimizer_weights/Adam/m/hidden/kernel:0") == (
        "optimizer slot 'm' of weight 'hidden/kernel'"
    )
    assert "Keras version" in meaning("model_weights@keras_version")
    # the tree nests: the kernel is inside the doubled group inside the layer's group
    kernel = browser.find_element(
        By.CSS_SELECTOR,
        'li[data-path="model_weights"] li[data-path="model_weights/hidden"] '
        'li[data-path="model_weights/hidden/hidden"] li[data-weight="hidden/kernel"]',
    )
    assert kernel.is_displayed()
    nodes = browser.find_elements(By.CSS_SELECTOR, "#tree li.node")
    from pytest_kerasmodel import describe_artifact

    assert len(nodes) == len(describe_artifact(tf_keras_files["h5"])["tree"])
    # the layer table, the weight statistics and the safety scan
    layers = [
        r.get_attribute("data-layer")
        for r in browser.find_elements(By.CSS_SELECTOR, "#layers tr.layer")
    ]
    assert layers == ["x", "hidden", "bn", "reshape", "bi", "out"]
    row = browser.find_element(By.CSS_SELECTOR, '#statistics tr[data-weight="hidden/kernel"]')
    cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
    assert cells[:3] == ["hidden/kernel", "float32", "24"]
    assert browser.find_element(By.ID, "findings").text == "no findings"

    shot = tmp_path / "page.png"
    png = browser.get_screenshot_as_png()
    shot.write_bytes(png)
    assert png.startswith(PNG_SIGNATURE) and len(png) > 10_000
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width >= 1000 and height >= 600


def test_a_hostile_file_shows_its_findings(
    browser: Any, tmp_path: Path, gate_files: dict[str, Path]
) -> None:
    """The lambda.keras of the gate's files: the safety finding is on the page, and the names
    the file chose are text, never markup."""
    from selenium.webdriver.common.by import By

    out = tmp_path / "lambda.html"
    done = _inspect_html(gate_files["lambda.keras"], out)
    assert done.returncode == 0, done.stderr
    browser.get(out.as_uri())
    findings = browser.find_elements(By.CSS_SELECTOR, "#findings li.finding")
    assert findings and any("lambda" in f.text.lower() for f in findings)
