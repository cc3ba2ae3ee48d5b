"""frameworks.versions: the direction of a Keras version gap and the advice for each side."""

from __future__ import annotations

import pytest

from pytest_kerasmodel.frameworks import versions


@pytest.mark.parametrize(
    ("writer", "installed", "direction"),
    [
        ("3.15.1", "3.12.4", versions.NEWER_WRITER),
        ("3.12.4", "3.15.1", versions.OLDER_WRITER),
        ("3.10.0", "3.9.2", versions.NEWER_WRITER),  # numbers, not text: 10 > 9
        ("2.21.0", "3.15.1", versions.OLDER_WRITER),
        ("3.15", "3.15.0", versions.SAME),
        ("3.13.0.dev2025", "3.13.0", versions.SAME),
        ("", "3.15.1", versions.UNKNOWN),
        ("unknown", "3.15.1", versions.UNKNOWN),
    ],
)
def test_gap_compares_release_numbers(writer: str, installed: str, direction: str) -> None:
    assert versions.gap(writer, installed) == direction


def test_a_newer_writer_is_told_to_upgrade_to_at_least_its_version() -> None:
    text = versions.advice("3.15.1", "3.12.4")
    assert text == (
        "the file was written by Keras 3.15.1, newer than the installed Keras 3.12.4: upgrade "
        "Keras to at least 3.15.1 (pip install 'keras>=3.15.1'), or re-save the model with "
        "Keras 3.12.4"
    )


def test_an_older_writer_is_told_to_re_save_never_to_upgrade() -> None:
    text = versions.advice("3.12.4", "3.15.1")
    assert text.startswith(
        "the file was written by Keras 3.12.4, older than the installed Keras 3.15.1: re-save "
        "the model with Keras 3.15.1"
    )
    assert "upgrade" not in text
    assert "pip install 'keras==3.12.4'" in text


def test_tf_keras_advice_names_its_own_package() -> None:
    assert "pip install 'tf-keras>=2.22.0'" in versions.advice("2.22.0", "2.21.0", "tf-keras")


def test_same_and_unknown_writers_do_not_claim_a_direction() -> None:
    for writer in ("3.15.1", ""):
        text = versions.advice(writer, "3.15.1")
        assert "newer" not in text and "older" not in text
    assert "not a version gap" in versions.advice("3.15.1", "3.15.1")
    assert "does not say which Keras wrote it" in versions.advice("", "3.15.1")
