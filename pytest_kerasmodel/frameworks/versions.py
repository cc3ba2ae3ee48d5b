"""Which side of a Keras version gap is newer, and what to do about it, in one sentence.

A file records the Keras that wrote it (``metadata.json``'s ``keras_version``, the HDF5 root's
``keras_version`` attribute); a load that fails on a saved argument or class is most often a gap
between that writer and the installed Keras. The advice depends on the direction: a file written
by a *newer* Keras needs the installed Keras upgraded to at least the writer's version (or the
model re-saved with the installed one); a file written by an *older* Keras holds something the
installed Keras dropped, so the model is re-saved with the installed Keras (or served with the
writer's). Every message about a gap is built here, so none can get the direction backwards.

Pure string work: no Keras is imported.
"""

from __future__ import annotations

import re

#: the direction of a gap, as :func:`gap` returns it
NEWER_WRITER = "newer"
OLDER_WRITER = "older"
SAME = "same"
UNKNOWN = "unknown"


def parse(version: str) -> tuple[int, ...] | None:
    """``"3.15.1"`` -> ``(3, 15, 1)``; the release part only (``"3.13.0.dev2025"`` -> ``(3, 13,
    0)``); ``None`` for a text with no leading number (``""``, ``"unknown"``)."""
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", version or "")
    if not match:
        return None
    parts = [int(p) for p in match.group(1).split(".")]
    while len(parts) > 1 and parts[-1] == 0:  # 3.15 == 3.15.0
        parts.pop()
    return tuple(parts)


def gap(writer: str, installed: str) -> str:
    """Whether the writer's Keras is :data:`NEWER_WRITER`, :data:`OLDER_WRITER` or the
    :data:`SAME` release as the installed one, or :data:`UNKNOWN` when either is not a
    version."""
    w, i = parse(writer), parse(installed)
    if w is None or i is None:
        return UNKNOWN
    if w > i:
        return NEWER_WRITER
    if w < i:
        return OLDER_WRITER
    return SAME


def advice(writer: str, installed: str, name: str = "Keras") -> str:
    """What the gap between ``writer`` (the Keras that wrote the file) and ``installed`` (the
    ``name`` installed here, ``"Keras"`` or ``"tf-keras"``) means and what to do, as a sentence
    fragment that names the newer side."""
    direction = gap(writer, installed)
    if direction == NEWER_WRITER:
        return (
            f"the file was written by Keras {writer}, newer than the installed {name} "
            f"{installed}: upgrade {name} to at least {writer} "
            f"(pip install '{_package(name)}>={writer}'), or re-save the model with "
            f"{name} {installed}"
        )
    if direction == OLDER_WRITER:
        return (
            f"the file was written by Keras {writer}, older than the installed {name} "
            f"{installed}: re-save the model with {name} {installed} (build it in code and "
            f"load_weights from the file, then save), or load it with {name} {writer} "
            f"(pip install '{_package(name)}=={writer}')"
        )
    if direction == SAME:
        return (
            f"the file was written by the installed {name} {installed} itself, so this is not "
            "a version gap: the saved config holds what this Keras never wrote (edited by "
            "hand, or saved from a patched class)"
        )
    return (
        f"the file does not say which Keras wrote it (installed: {name} {installed}): re-save "
        f"the model with {name} {installed}, or load it with the Keras that wrote it"
    )


def _package(name: str) -> str:
    return "tf-keras" if name == "tf-keras" else "keras"
