"""The gate's results as SARIF 2.1.0, for GitHub code scanning and other SARIF consumers.

Built from the same rows as the summary table and the JSON report (:mod:`.report`), so pytest's
``--keras-sarif`` (on the xdist controller too) and ``kerasmodel gate --sarif`` write the same
log for the same results. Deterministic: no timestamps, results sorted by artifact and check,
so two runs over the same files give the same bytes.

- one result per failing check; the safety check gives one result per kind of finding
  (``[lambda]``, ``[module]``, ...) so that each kind has a rule of its own;
- ``ruleId``: ``kerasmodel/<check>`` and ``kerasmodel/safety/<finding kind>``, stable;
- ``level``: ``error`` for unsafe or broken artifacts, ``warning`` for budgets;
- the artifact as ``physicalLocation``, its path relative to the repository root
  (``%SRCROOT%``: pytest's rootdir, or ``kerasmodel gate --root``);
- ``message``: what the failing item prints (``models/x.keras: integrity: ...``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pytest_kerasmodel.gate.protocol import CHECKS, FAILED

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://pypi.org/project/pytest-kerasmodel/"
ROOT_BASE_ID = "%SRCROOT%"

#: check -> (short description, help text)
CHECK_RULES: dict[str, tuple[str, str]] = {
    "integrity": (
        "The artifact is not a readable Keras artifact",
        "The file or folder is damaged, truncated, or not what its name says (its zip CRCs, "
        "HDF5 tree or JSON do not read). Re-save the model, or restore the file from where it "
        "was published.",
    ),
    "safety": (
        "Loading the artifact could run code or read files",
        "The safety scan found something that deserialising the model would execute or follow "
        "(Lambda bytecode, a function or module outside Keras, HDF5 links, pickles). Do not "
        "load it; if it is yours and intended, pass the module with --keras-allowed-modules.",
    ),
    "load": (
        "Keras cannot load the model",
        "keras.saving.load_model failed on the artifact (in safe mode). The message says what "
        "Keras said and, where it can, why: a custom class not registered, another Keras era.",
    ),
    "finite": (
        "The weights hold NaN or infinite values",
        "Some saved variables hold NaN or infinite values: training diverged or the file was "
        "written from a broken model. Re-train or re-export the model.",
    ),
    "structure": (
        "The artifact's structure differs from its golden",
        "Layers, weights or the HDF5 tree changed since the golden was recorded. If the change "
        "is intended, re-record with --keras-update-golden.",
    ),
    "predictions": (
        "The model's predictions differ from its golden",
        "On the golden inputs, the model's outputs are no longer within rtol/atol of the "
        "recorded ones. If the change is intended, re-record with --keras-update-golden.",
    ),
    "compile": (
        "The model cannot be reloaded compiled",
        "keras.saving.load_model with compile=True failed (--keras-load-compile): the artifact "
        "cannot resume training here, for instance because its optimizer is another backend's "
        "own class (a model compiled under torch). Re-save it compiled under the backend that "
        "will train it, or load it with compile=False to serve.",
    ),
    "signature": (
        "The artifact is not the one that was signed",
        "Its OMS signature is missing where one is required, does not verify with the trusted "
        "key, certificate or Sigstore identity, is malformed, or parts of the artifact changed, "
        "were added or removed since signing (the properties name them). Restore the artifact "
        "from where it was published, or re-sign it (kerasmodel sign) if the change is approved.",
    ),
    "lock": (
        "The artifact is not the one that was approved in the lock",
        "The artifact is not in the lock file (--keras-lock) or some of its parts changed since "
        "it was recorded (the properties name them). Restore it, or update the lock "
        "(--keras-update-lock, kerasmodel lock) if the change is approved.",
    ),
    "budgets": (
        "The artifact exceeds a budget",
        "The artifact is larger, has more parameters, or was written by another Keras version "
        "than the budgets (keras_max_file_size, keras_max_params, keras_allowed_versions) allow.",
    ),
}

#: safety finding kind -> help text (a kind not listed gets a rule with the generic help)
FINDING_HELP: dict[str, str] = {
    "lambda": "A Lambda layer stores Python bytecode or source; loading it runs that "
    "code (Keras refuses it unless safe_mode=False).",
    "module": "The config names a module outside Keras; deserialising it imports that module.",
    "foreign-module": "The config names a module outside Keras; deserialising it imports it.",
    "unknown-class": "The config names a class or function Keras does not define; building it "
    "needs code from outside the file (allow it with keras_allowed_classes if you trust it).",
    "suspicious-reference": "The config names a Python module or callable that runs code "
    "(os, subprocess, builtins.exec, ...), in a key a loader may read.",
    "dangerous-function": "The config names a Keras function that is no modelling code "
    "(downloads, file reads, loading other models, global switches).",
    "unsafe-switch": "The config flips a global switch such as enable_unsafe_deserialization.",
    "file-reference": "The config names a file or URL that a loader would read.",
    "tf-op": "The config calls a TensorFlow operation by name, outside the layers Keras knows.",
    "torch-module": "A TorchModuleWrapper wraps torch code; its payload is a pickle that "
    "loading runs.",
    "pickle": "The artifact holds pickled data; unpickling it runs code.",
    "h5-soft-link": "The HDF5 file holds links, which a reader follows to other objects or files.",
    "h5-object-data": "An HDF5 dataset holds object, opaque or reference data.",
    "h5-filter": "An HDF5 dataset needs a filter plugin, which loads native code.",
    "h5-shape-bomb": "An HDF5 dataset declares far more bytes than it stores (a memory bomb).",
    "h5-unreadable": "Part of the HDF5 file cannot be read, so it cannot be vouched for.",
    "zip-bomb": "A zip member expands far beyond its compressed size (a decompression bomb).",
    "zip-path": "A zip member's name leads outside the archive (an absolute path or '..').",
    "zip-duplicate": "The archive holds two members of one name.",
    "zip-encrypted": "A member is encrypted: nothing in it could be scanned.",
    "zip-overlap": "Zip members overlap in the file: a crafted archive.",
    "zip-compressed": "A member Keras stores uncompressed is compressed.",
    "zip-unexpected-member": "The archive holds a member Keras does not write.",
    "zip-header-mismatch": "A member's local header disagrees with the central directory.",
    "zip-member-count": "The archive holds more members than a Keras artifact has.",
    "unreviewed-op": "A SavedModel graph holds an operation outside the allowlist of pure "
    "computation: it reads or writes files, reaches the network, runs Python, maps a file into "
    "memory, prints to a file, or is a custom op (see the message for which).",
    "unreadable": "Part of the artifact cannot be read, so it cannot be vouched for.",
    "unreadable-config": "A config cannot be read or parsed, so it cannot be vouched for.",
}
_GENERIC_FINDING_HELP = "The safety scan refuses this; see the message for where and why."
#: A finding that matches a published Keras vulnerability ends with ``[CVE-...: Keras ... is
#: affected, the installed Keras ... is (not) affected]`` (safety/cves.py); the result's
#: ``properties.cves`` lists those CVE ids.
_CVE = re.compile(r"CVE-\d{4}-\d{4,}")
_CVE_HELP = (
    " A finding that matches a published Keras vulnerability names the CVE, the Keras versions "
    "it affects and whether the installed Keras is one of them."
)
_FINDING = re.compile(r"^\s*- \[([A-Za-z0-9_.-]+)\] ")


def base_check(check: str) -> str:
    """``load`` for ``load[jax]``: a check under another backend shares the check's rule."""
    return check.split("[", 1)[0]


def rule_id(check: str, kind: str | None = None) -> str:
    check = base_check(check)
    return f"kerasmodel/{check}" if kind is None else f"kerasmodel/{check}/{kind}"


def level_of(check: str) -> str:
    return "warning" if base_check(check) == "budgets" else "error"


def _check_rule(check: str) -> dict[str, Any]:
    short, help_text = CHECK_RULES[check]
    return {
        "id": rule_id(check),
        "name": check,
        "shortDescription": {"text": short},
        "fullDescription": {"text": help_text},
        "help": {"text": help_text},
        "defaultConfiguration": {"level": level_of(check)},
    }


def _finding_rule(kind: str) -> dict[str, Any]:
    help_text = FINDING_HELP.get(kind, _GENERIC_FINDING_HELP) + _CVE_HELP
    return {
        "id": rule_id("safety", kind),
        "name": f"safety/{kind}",
        "shortDescription": {"text": f"Safety finding: {kind}"},
        "fullDescription": {"text": help_text},
        "help": {"text": help_text},
        "defaultConfiguration": {"level": "error"},
    }


def findings_by_kind(message: str) -> dict[str, list[str]]:
    """A failing safety check's finding lines (``  - [kind] where: reason``) by kind."""
    kinds: dict[str, list[str]] = {}
    for line in message.splitlines():
        match = _FINDING.match(line)
        if match:
            kinds.setdefault(match.group(1), []).append(line.strip())
    return kinds


def _findings_text(lines: list[str]) -> str:
    """The safety item's message for some of its findings (those of one kind)."""
    return f"{len(lines)} finding(s):\n" + "\n".join(f"  {line}" for line in lines)


def item_text(artifact: str, check: str, message: str) -> str:
    """What the failing item prints (an ArtifactError's text)."""
    return f"{artifact}: {check}: {message}"


def sarif_log(
    rows: dict[str, dict[str, Any]], root: Path, paths: dict[str, str] | None = None
) -> dict[str, Any]:
    """The SARIF log of the gate's rows (see :mod:`.report`).

    ``root``: the repository root that locations are relative to. ``paths``: artifact id ->
    its path relative to ``root`` (default: the id itself, pytest's rootdir-relative node id).
    """
    from pytest_kerasmodel import __version__

    rules: list[dict[str, Any]] = [_check_rule(c) for c in CHECKS]
    index = {r["id"]: i for i, r in enumerate(rules)}
    results: list[dict[str, Any]] = []
    for artifact in sorted(rows):
        where = Path((paths or {}).get(artifact, artifact))
        # outside the repository (an absolute id): a file URI of its own, no base
        place = (
            {"uri": where.as_uri()}
            if where.is_absolute()
            else {"uri": where.as_posix(), "uriBaseId": ROOT_BASE_ID}
        )
        location = {"physicalLocation": {"artifactLocation": place}}
        checks = rows[artifact]["checks"]
        for check in CHECKS:
            entry = checks.get(check)
            if entry is None or entry["status"] != FAILED:
                continue
            properties: dict[str, Any] = {"check": check}
            if entry.get("blocked_by"):
                properties["blocked_by"] = entry["blocked_by"]
            if entry.get("provenance"):  # the signature or lock verdict, signer, changed files
                properties["provenance"] = entry["provenance"]
            kinds = findings_by_kind(entry["message"]) if check == "safety" else {}
            parts = (
                [(rule_id("safety", k), item_text(artifact, check, _findings_text(v)), k)
                 for k, v in sorted(kinds.items())]
                if kinds
                else [(rule_id(check), item_text(artifact, check, entry["message"]), None)]
            )  # fmt: skip
            for rid, text, kind in parts:
                if rid not in index:
                    index[rid] = len(rules)
                    rules.append(_finding_rule(str(kind)))
                extra: dict[str, Any] = {"finding": kind} if kind else {}
                cves = sorted(set(_CVE.findall(text)))
                if cves:  # the published Keras vulnerabilities these findings match
                    extra["cves"] = cves
                results.append(
                    {
                        "ruleId": rid,
                        "ruleIndex": index[rid],
                        "level": level_of(check),
                        "message": {"text": text},
                        "locations": [location],
                        "properties": dict(properties, **extra),
                    }
                )
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "pytest-kerasmodel",
                        "version": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {ROOT_BASE_ID: {"uri": root.resolve().as_uri() + "/"}},
                "results": results,
            }
        ],
    }


def write_sarif(
    path: Path, rows: dict[str, dict[str, Any]], root: Path, paths: dict[str, str] | None = None
) -> None:
    """Write the SARIF log atomically (temp file + os.replace)."""
    from pytest_kerasmodel.golden import write_json_atomic

    write_json_atomic(path, sarif_log(rows, root, paths))
