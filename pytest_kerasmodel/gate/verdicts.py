"""The gate's verdict cache: a check whose result cannot have changed is not run again.

An entry is kept per artifact (and backend) in pytest's own cache folder (``config.cache``, so
``--cache-clear`` empties it and ``-p no:cacheprovider`` turns it off). It holds the worker's
whole response for the artifact and the *key* it was computed under: a SHA-256 over everything
the verdicts depend on -

- the bytes of every file the artifact is made of (the file, every file of a folder layout, the
  shards a manifest names), streamed;
- the golden and sidecar files the checks read (their bytes, or that they are absent);
- the request itself: the checks asked for and every option that changes one (tolerances,
  budgets, allowed modules, memory limit, ...), with paths under the rootdir made relative so a
  checkout elsewhere shares its entries;
- the plugin's version and a digest of its own source files, the installed Keras, TensorFlow,
  tf-keras, KerasHub, JAX, torch, h5py and numpy versions, the Python version and the backend.

A cache in the working tree must not be able to vouch for an artifact it did not see: a pull
request can commit a ``.pytest_cache`` with a forged entry saying a hostile file passed. Every
entry is therefore authenticated with HMAC-SHA256 under a key that never lives in the working
tree: ``KERAS_GATE_CACHE_KEY`` from the environment (a CI secret, which forks cannot read) or a
random key created once in the user's cache folder. An entry whose tag does not verify - committed,
copied from another machine, written under another key, truncated, or of another cache format -
is ignored and the checks run.

Not cached: runs that record goldens (``--keras-update-golden`` writes files), and responses in
which the worker timed out or failed internally (those say more about the machine than about the
artifact). A failing verdict is cached like a passing one: an unchanged broken artifact still
fails, without being read again.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
import platform
import secrets
import stat
import tempfile
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

#: bumped whenever an entry's layout or the key's material changes
CACHE_FORMAT = 1
KEY_ENV = "KERAS_GATE_CACHE_KEY"
#: the folder under pytest's cache (``.pytest_cache/d/...``)
CACHE_FOLDER = "kerasmodel-verdicts"
#: the distributions whose versions a verdict depends on (absent ones count as absent)
DEPENDENCIES = (
    "pytest-kerasmodel",
    "keras",
    "tensorflow",
    "tensorflow-cpu",
    "tf-keras",
    "keras-hub",
    "jax",
    "jaxlib",
    "torch",
    "h5py",
    "numpy",
)
_CHUNK = 1 << 20


def _file_digest(path: Path) -> str:
    """The SHA-256 of a regular file's bytes, read in chunks (memory bounded by one chunk).

    Anything else (a FIFO, a device, a socket, through a link or not) raises OSError without
    blocking: such an artifact gets no key, and the gate's integrity check says what it is.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"not a regular file: {path}")
        digest = hashlib.sha256()
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _files_of(artifact: Path, depth: int = 0) -> list[Path]:
    """Every file an artifact's verdict reads: the file itself, every file of a folder layout
    (links not followed into folders), the files its layout says it is made of, and for an
    exported artifact its ``.source`` sidecar and the Keras artifact that names."""
    from pytest_kerasmodel import artifacts

    found: dict[Path, None] = {}
    if artifact.is_dir():
        for folder, dirs, files in os.walk(artifact):
            dirs.sort()
            for name in sorted(files):
                found[Path(folder) / name] = None
    else:
        found[artifact] = None
    for part in artifacts.owned_files(artifact):
        if part.is_file():
            found[part] = None
        elif part.is_dir() and part != artifact:
            found.update((p, None) for p in sorted(part.rglob("*")) if p.is_file())
    # an exported artifact's predictions come from the Keras artifact its .source sidecar names
    from pytest_kerasmodel.gate.exported import source_sidecar

    sidecar = source_sidecar(artifact)
    if sidecar.is_file():
        found[sidecar] = None
        name = sidecar.read_text(encoding="utf-8", errors="replace").strip()
        source = artifact.parent / name
        if name and source.exists() and source != artifact and depth < 1:
            found.update((p, None) for p in _files_of(source, depth + 1) if p not in found)
    return list(found)


class _Relative:
    """Paths under the rootdir written relative to it, so that another checkout of the same
    repository (a CI runner's workspace) computes the same key."""

    def __init__(self, root: Path) -> None:
        self.root = str(root).rstrip(os.sep) + os.sep

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str) and value.startswith(self.root):
            return "<root>/" + value[len(self.root) :].replace(os.sep, "/")
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        return value


@functools.lru_cache(maxsize=1)
def environment() -> dict[str, Any]:
    """What a verdict depends on besides the artifact and the request: versions, the backend,
    and a digest of the plugin's own source and data (an editable install keeps its version while
    its code or its safety allowlist, ``keras_names.json``, changes)."""
    versions: dict[str, str | None] = {}
    for name in DEPENDENCIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    source = hashlib.sha256()
    package = Path(__file__).resolve().parent.parent
    for path in sorted([*package.rglob("*.py"), *package.rglob("*.json")]):
        source.update(str(path.relative_to(package)).encode() + b"\0")
        source.update(path.read_bytes())
    return {
        "versions": versions,
        "plugin_source": source.hexdigest(),
        "python": platform.python_version(),
        "backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
    }


#: request fields naming files that the provenance checks' verdicts depend on
PROVENANCE_FILES = (
    "signature_file",
    "signature_key",
    "signature_certificates",
    "sigstore_trust_config",
    "lock_file",
)


def verdict_key(
    request: Mapping[str, Any], root: Path, env: Mapping[str, Any] | None = None
) -> str | None:
    """The key of a request's verdict, or None when a file it depends on cannot be read."""
    relative = _Relative(root)
    artifact = Path(request["path"])
    try:
        files = {relative(str(p)): _file_digest(p) for p in _files_of(artifact)}
        sidecars = {}
        for field in ("golden_structure", "golden_predictions", "inputs_file", "budget_file"):
            value = request.get(field)
            path = Path(value) if value else None
            sidecars[field] = _file_digest(path) if path is not None and path.is_file() else None
        # the provenance checks' signature, keys, trust root and lock (gate.provenance)
        for field in PROVENANCE_FILES:
            value = request.get(field)
            for text in value if isinstance(value, list) else [value]:
                path = Path(text) if text else None
                key = f"{field}:{text}"
                sidecars[key] = _file_digest(path) if path is not None and path.is_file() else None
    except OSError:
        return None
    material = {
        "cache_format": CACHE_FORMAT,
        "request": relative(dict(request)),
        "files": files,
        "sidecars": sidecars,
        "environment": dict(env if env is not None else environment()),
    }
    text = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def user_key_file() -> Path:
    """Where this machine's own cache key lives: the user's cache folder, never the project."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pytest-kerasmodel" / "gate-cache-key"


def secret_key(root: Path) -> bytes | None:
    """The key entries are authenticated with; None (no cache) when the only place for it
    would be inside the working tree (``root``), where a commit could plant it."""
    given = os.environ.get(KEY_ENV)
    if given:
        return given.encode()
    path = user_key_file()
    if Path(os.path.abspath(path)).is_relative_to(root):
        return None
    try:
        return path.read_bytes().strip() or None
    except FileNotFoundError:
        pass
    except OSError:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".key-")
        try:
            os.write(fd, secrets.token_hex(32).encode())
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # created whole or not at all; another process may have won
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
        return path.read_bytes().strip() or None
    except OSError:
        return None


def _tag(secret: bytes, key: str, response_text: str) -> str:
    message = f"{CACHE_FORMAT}\0{key}\0{response_text}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def cacheable(response: Mapping[str, Any]) -> bool:
    """Whether a response is a verdict on the artifact (not on the machine's state)."""
    for result in response.get("checks", {}).values():
        message = str(result.get("message", ""))
        if "timed out" in message or "the gate's worker failed" in message:
            return False
    return bool(response.get("checks"))


class VerdictCache:
    """Verdicts kept in ``folder``, one authenticated entry per artifact, backend and checks."""

    def __init__(self, folder: Path, secret: bytes, root: Path) -> None:
        self.folder = folder
        self.secret = secret
        self.root = root
        self.served = 0
        self.stored = 0

    def empty(self) -> bool:
        """Whether the cache holds no entry (a first run: every artifact will be checked)."""
        try:
            with os.scandir(self.folder) as entries:
                return not any(e.name.endswith(".json") for e in entries)
        except OSError:
            return True

    def _entry_path(self, request: Mapping[str, Any]) -> Path:
        """One entry per artifact, backend and selection of checks (a run with ``-k load`` does
        not overwrite the full run's entry)."""
        backend = request.get("backend") or environment()["backend"]
        checks = sorted(request.get("checks", []))
        identity = json.dumps([_Relative(self.root)(request["path"]), backend, checks])
        return self.folder / (hashlib.sha256(identity.encode()).hexdigest()[:40] + ".json")

    def get(self, request: Mapping[str, Any], key: str) -> dict[str, Any] | None:
        """The cached response for ``request`` if an authentic entry has exactly this key."""
        try:
            entry = json.loads(self._entry_path(request).read_text(encoding="utf-8"))
            if not isinstance(entry, dict) or entry.get("cache_format") != CACHE_FORMAT:
                return None
            text, tag = entry["response"], entry["tag"]
            if not (isinstance(text, str) and isinstance(tag, str)) or entry.get("key") != key:
                return None
            if not hmac.compare_digest(tag, _tag(self.secret, key, text)):
                return None  # forged, copied from elsewhere, or written under another key
            response = json.loads(text)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not isinstance(response, dict) or not isinstance(response.get("checks"), dict):
            return None
        # every requested check, and maybe those they need, which ran without items (-k load)
        if not set(request["checks"]) <= set(response["checks"]):
            return None
        self.served += 1
        return {**response, "path": request["path"], "cached": True}

    def put(self, request: Mapping[str, Any], key: str, response: Mapping[str, Any]) -> bool:
        """Store a response (atomically: a reader sees the old entry or the new one whole);
        whether it was stored (the summary lists the writes)."""
        if not cacheable(response):
            return False
        text = json.dumps(
            {k: v for k, v in response.items() if k not in ("cached", "stored")}, sort_keys=True
        )
        entry = {
            "cache_format": CACHE_FORMAT,
            "artifact": _Relative(self.root)(request["path"]),
            "key": key,
            "response": text,
            "tag": _tag(self.secret, key, text),
        }
        path = self._entry_path(request)
        try:
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".entry-")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(entry, f)
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError:
            return False  # a cache that cannot be written only costs the next run its time
        self.stored += 1
        return True


def open_folder_cache(root: Path) -> VerdictCache | None:
    """The verdict cache of ``kerasmodel gate`` (no pytest session): the same folder pytest's
    cache uses under ``root``, so both commands share their entries."""
    secret = secret_key(root)
    if secret is None:
        return None
    cache_dir = root / ".pytest_cache"
    try:
        if not cache_dir.exists():  # made as pytest makes it: ignored by git
            cache_dir.mkdir(parents=True)
            (cache_dir / ".gitignore").write_text("# Created by pytest-kerasmodel.\n*\n")
        folder = cache_dir / "d" / CACHE_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return VerdictCache(folder, secret, root)


def open_cache(config: Any, root: Path) -> VerdictCache | None:
    """The session's verdict cache, or None: no pytest cache (``-p no:cacheprovider``) or no key."""
    cache = getattr(config, "cache", None)
    if cache is None:
        return None
    secret = secret_key(root)
    if secret is None:
        return None
    try:
        folder = Path(cache.mkdir(CACHE_FOLDER))
    except OSError:
        return None
    return VerdictCache(folder, secret, root)


__all__ = [
    "CACHE_FORMAT",
    "KEY_ENV",
    "VerdictCache",
    "environment",
    "open_cache",
    "secret_key",
    "verdict_key",
]
