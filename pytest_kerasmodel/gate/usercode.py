"""The team's own code in the gate: ``--keras-import MODULE`` and ``--keras-custom-objects
MODULE:NAME`` (``kerasmodel gate --import`` / ``--custom-objects``).

Trusted code from the repository, never from an artifact: the modules are named on the command
line or in the ini file, and imported by the checking worker (the pytest process itself only under
``--keras-no-isolation``) before it loads anything, on the ``sys.path`` the pytest process has,
so that ``import mymodels`` works in the worker as it does in the project's own tests.

What the safety scan then allows, exactly: the worker reads Keras's registry of custom objects
(``keras.saving.get_custom_objects()``) before and after the imports. Every object the imports
registered, and every value of the ``--keras-custom-objects`` dicts, adds the module it is
defined in (``__module__``, e.g. ``mymodels.layers``, which the saved config names as its
``module``) to the scan's allowed modules; nothing else (not the package of its registered name,
which would vouch for every module under it). The
pytest process never imports the modules (nor Keras): it only checks that the top-level packages
can be found (:func:`problems`) and digests their source files (:func:`source_digest`), so that
a changed layer invalidates the verdict cache.

Two sides: :func:`parse_custom_objects`, :func:`problems` and :func:`source_digest` run in the
pytest process (file reads only); :func:`load` runs in the worker.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: how each option is spelled, for messages (pytest flag, ini key, kerasmodel gate flag)
IMPORT_FLAGS = "--keras-import MODULE (ini keras_imports; kerasmodel gate --import)"
CUSTOM_FLAGS = (
    "--keras-custom-objects MODULE:NAME (ini keras_custom_objects; kerasmodel gate "
    "--custom-objects)"
)
HOW_TO_PROVIDE = (
    f"make it available with {IMPORT_FLAGS}, naming the module of your code that registers it "
    "(@keras.saving.register_keras_serializable), or with "
    f"{CUSTOM_FLAGS}, naming a dict of your classes"
)


class UserCodeError(Exception):
    """The team's code could not be imported or does not hold what an option names."""


def _is_module_name(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))


def parse_custom_objects(specs: Iterable[str], flag: str) -> list[tuple[str, str]]:
    """``MODULE:NAME`` specs as (module, name) pairs; a malformed one is a ValueError naming
    ``flag``."""
    pairs = []
    for spec in specs:
        module, sep, name = spec.partition(":")
        if not sep or not _is_module_name(module) or not name.isidentifier():
            raise ValueError(
                f"{flag}: expected MODULE:NAME (a module of your code and the name of a dict of "
                f"custom objects in it, e.g. mymodels.layers:CUSTOM_OBJECTS), got {spec!r}"
            )
        pairs.append((module, name))
    return pairs


def problems(
    imports: Sequence[str],
    custom_objects: Sequence[str],
    path: Sequence[str],
    flags: tuple[str, str],
) -> list[str]:
    """What is wrong with the options before anything runs: a malformed name, or a top-level
    package that cannot be found on ``path`` (found without importing anything). ``flags``: how
    the user spelled the import and custom-objects options."""
    found: list[str] = []
    import_flag, custom_flag = flags
    modules = []
    for name in imports:
        if not _is_module_name(name):
            found.append(f"{import_flag}: {name!r} is not a module name (e.g. mymodels.layers)")
        else:
            modules.append((import_flag, name))
    try:
        modules += [(custom_flag, m) for m, _ in parse_custom_objects(custom_objects, custom_flag)]
    except ValueError as exc:
        found.append(str(exc))
    for flag, name in modules:
        top = name.split(".")[0]
        if top in sys.builtin_module_names:
            continue
        if importlib.machinery.PathFinder.find_spec(top, list(path)) is None:
            found.append(
                f"{flag}: no module {top!r} on the Python path of this process (the folders "
                "pytest puts on sys.path: rootdir, pythonpath ini, installed packages)"
            )
    return found


def source_digest(names: Iterable[str], path: Sequence[str]) -> str:
    """A SHA-256 over the source files of the top-level packages of ``names`` (every ``.py``
    under a package's folder), read without importing them: the verdict cache's key changes
    when the team's code does. Empty when no name is given."""
    tops = sorted({n.split(":")[0].split(".")[0] for n in names if n})
    if not tops:
        return ""
    digest = hashlib.sha256()
    for top in tops:
        spec = importlib.machinery.PathFinder.find_spec(top, list(path))
        # (name within the package, file): the digest does not depend on the checkout's place
        files: list[tuple[str, Path]] = []
        if spec is not None and spec.submodule_search_locations:
            for folder in spec.submodule_search_locations:
                found = sorted(Path(folder).rglob("*.py"))
                files += [(f.relative_to(folder).as_posix(), f) for f in found]
        elif spec is not None and spec.origin:
            files.append((Path(spec.origin).name, Path(spec.origin)))
        digest.update(f"{top}\0".encode())
        for name, file in files:
            try:
                digest.update(f"{name}\0".encode() + file.read_bytes() + b"\0")
            except OSError:
                digest.update(f"{name}\0unreadable\0".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class UserCode:
    """What the team's code provides in this process: the modules the safety scan allows and
    the ``custom_objects`` dict handed to ``load_model``."""

    allowed_modules: tuple[str, ...] = ()
    custom_objects: dict[str, Any] = field(default_factory=dict)
    registered: tuple[str, ...] = ()


_LOADED: dict[tuple[tuple[str, ...], tuple[str, ...]], UserCode] = {}


def _registry(keras: Any) -> dict[str, Any]:
    saving = getattr(keras, "saving", None)
    getter = getattr(saving, "get_custom_objects", None) or keras.utils.get_custom_objects
    return dict(getter())


def load(
    imports: Sequence[str], custom_objects: Sequence[str], path: Sequence[str] = ()
) -> UserCode:
    """Import the team's modules in this process (once per set of options) and say what they
    provide; a module that fails to import, or a NAME that is not a dict, is a
    :class:`UserCodeError` naming the option."""
    key = (tuple(imports), tuple(custom_objects))
    if not any(key):
        return UserCode()
    known = _LOADED.get(key)
    if known is not None:
        return known
    from pytest_kerasmodel.frameworks import loader

    for entry in path:  # the pytest process's path, after this process's own entries
        if entry and entry not in sys.path and os.path.isdir(entry):
            sys.path.append(entry)
    keras = loader().keras()
    before = _registry(keras)

    def imported(module: str, flag: str) -> Any:
        try:
            return importlib.import_module(module)
        except Exception as exc:
            raise UserCodeError(
                f"{flag}: importing {module!r} failed: {type(exc).__name__}: {exc}"
            ) from None

    for module in imports:
        imported(module, "--keras-import")
    objects: dict[str, Any] = {}
    for module, name in parse_custom_objects(custom_objects, "--keras-custom-objects"):
        value = getattr(imported(module, "--keras-custom-objects"), name, None)
        if not isinstance(value, dict):
            raise UserCodeError(
                f"--keras-custom-objects: {module}:{name} is "
                f"{'missing' if value is None else type(value).__name__}, not a dict of "
                "custom objects (name -> class or function)"
            )
        objects.update(value)
    after = _registry(keras)
    registered = {k: v for k, v in after.items() if k not in before or before[k] is not v}
    allowed: set[str] = set()
    for obj in registered.values():
        allowed.add(str(getattr(obj, "__module__", "") or ""))
    for obj in objects.values():
        allowed.add(str(getattr(obj, "__module__", "") or ""))
    allowed.discard("")
    allowed.discard("builtins")
    code = UserCode(tuple(sorted(allowed)), objects, tuple(sorted(registered)))
    _LOADED[key] = code
    return code
