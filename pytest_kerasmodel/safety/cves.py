"""What a finding means for which Keras: the published Keras vulnerabilities a finding matches.

A finding says what is in the file; this table says which Keras versions a file like it attacks.
Each entry names the CVE, the finding kinds that match it (and, where it matters, the artifact
kinds), the Keras versions that would run it, and what those versions do. Whether the INSTALLED
Keras is among them is read from its distribution metadata (``importlib.metadata``), never by
importing Keras.

Ranges come from the GitHub advisories (GHSA), NVD and Keras's release notes, as of 2026-12; where
the sources disagree or a range could not be confirmed, ``note`` says so.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from pytest_kerasmodel.safety.base import Finding

__all__ = ["CVES", "Cve", "affected", "annotate", "installed_keras"]

Version = tuple[int, ...]


@dataclass(frozen=True)
class Cve:
    """One published Keras vulnerability and the findings that match it."""

    id: str
    advisory: str  # GHSA id, "" when none was confirmed
    summary: str
    #: half-open version ranges [introduced, fixed) of the ``keras`` package that are affected
    ranges: tuple[tuple[str, str], ...]
    checks: frozenset[str]
    #: artifact kinds the CVE applies to ("" = any): "keras", "h5", "savedmodel"
    kinds: frozenset[str] = frozenset()
    note: str = ""

    def affects(self, version: str) -> bool:
        """Whether Keras ``version`` is in one of the affected ranges."""
        have = _parse(version)
        return any(_parse(low) <= have < _parse(high) for low, high in self.ranges)

    def versions(self) -> str:
        """The affected ranges in words: ``Keras 3.0.0 to before 3.9.0``."""
        return " and ".join(
            f"before {high}" if low in ("0", "0.0.0") else f"{low} to before {high}"
            for low, high in self.ranges
        )


_LAMBDA = frozenset({"lambda"})
_REFERENCE = frozenset({"foreign-module", "module", "unknown-class"})

#: The Keras vulnerabilities the scan's findings match.
CVES: tuple[Cve, ...] = (
    Cve(
        "CVE-2024-3660",
        "",
        "a Lambda layer's Python code runs on load; safe_mode (2.13+, .keras only) stops it",
        (("0", "2.13.0"),),
        _LAMBDA,
        note="NVD and CERT VU#253266: Keras < 2.13; no GHSA range confirmed",
    ),
    Cve(
        "CVE-2025-9905",
        "",
        "load_model ignores safe_mode for legacy HDF5, so a Lambda in an .h5 file runs",
        (("3.0.0", "3.11.3"),),
        _LAMBDA,
        frozenset({"h5"}),
        note="fixed in 3.11.3 per the advisories' reporters; GHSA id not confirmed",
    ),
    Cve(
        "CVE-2025-1550",
        "GHSA-48g7-3x6r-xfhp",
        "config.json names arbitrary modules and functions, imported even with safe_mode=True",
        (("3.0.0", "3.9.0"),),
        _REFERENCE,
    ),
    Cve(
        "CVE-2025-8747",
        "GHSA-c9rc-mg46-23w3",
        "config.json calls Keras's own non-modelling functions (get_file ...) as gadgets",
        (("3.0.0", "3.11.0"),),
        frozenset({"dangerous-function"}),
    ),
    Cve(
        "CVE-2025-9906",
        "GHSA-36fq-jgmw-4r9c",
        "config.json calls enable_unsafe_deserialization, turning safe_mode off mid-load",
        (("3.0.0", "3.11.0"),),
        frozenset({"unsafe-switch"}),
    ),
    Cve(
        "CVE-2025-49655",
        "",
        "TorchModuleWrapper.from_config calls torch.load on the payload, even in safe_mode",
        (("3.11.0", "3.11.3"),),
        frozenset({"torch-module"}),
        note="GHSA id not confirmed",
    ),
    Cve(
        "CVE-2026-0897",
        "GHSA-xfhx-r7ww-5995",
        "a model.weights.h5 dataset declaring a huge shape exhausts memory on load",
        (("3.0.0", "3.12.1"), ("3.13.0", "3.13.2")),
        frozenset({"h5-shape-bomb"}),
        frozenset({"keras"}),
        note="NVD says 3.0.0-3.13.0; the advisory was corrected: fixed in 3.12.1 and 3.13.2",
    ),
    Cve(
        "CVE-2026-1669",
        "GHSA-3m4q-jmj6-r34q",
        "HDF5 external dataset storage or links make load_model read any local file",
        (("3.0.0", "3.13.2"),),
        frozenset({"h5-external-storage", "h5-external-link"}),
        frozenset({"keras"}),
        note="NVD: 3.0.0-3.13.1; a backport to a 3.12.x release could not be confirmed",
    ),
)


def _parse(version: str) -> Version:
    """``3.11.3`` -> (3, 11, 3); a suffix (``rc1``, ``.dev0``, ``+local``) is dropped."""
    parts: list[int] = []
    for piece in version.split("+")[0].split("."):
        digits = re.match(r"\d+", piece)
        if digits is None:
            break
        parts.append(int(digits.group()))
        if digits.group() != piece:
            break
    while len(parts) < 3:
        parts.append(0)
    return tuple(parts)


@lru_cache(maxsize=1)
def installed_keras() -> str | None:
    """The installed ``keras`` distribution's version, or None; Keras is not imported."""
    from importlib import metadata

    try:
        return metadata.version("keras")
    except metadata.PackageNotFoundError:
        return None


def affected(finding: Finding, kind: str = "") -> list[Cve]:
    """The CVEs a finding matches, for an artifact of ``kind`` ("keras", "h5", "savedmodel")."""
    return [
        cve for cve in CVES if finding.check in cve.checks and (not cve.kinds or kind in cve.kinds)
    ]


def _verdict(cve: Cve, installed: str | None) -> str:
    if installed is None:
        return "Keras is not installed here"
    return f"the installed Keras {installed} is {'' if cve.affects(installed) else 'not '}affected"


def annotate(
    findings: Iterable[Finding], kind: str = "", installed: str | None = ""
) -> list[Finding]:
    """The findings, each matching a CVE carrying it in ``cve``: which CVE, which Keras versions
    run such a file, and whether the installed Keras (``installed``; by default read from its
    metadata) would."""
    out = []
    for finding in findings:
        matches = affected(finding, kind)
        if not matches:
            out.append(finding)
            continue
        version = installed_keras() if installed == "" else installed
        text = "; ".join(
            f"{cve.id}: Keras {cve.versions()} is affected, {_verdict(cve, version)}"
            for cve in matches
        )
        out.append(dataclasses.replace(finding, cve=text))
    return out
