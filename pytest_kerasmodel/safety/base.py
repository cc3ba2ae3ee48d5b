"""What a safety finding is: which check, where, and why."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    """One reason not to deserialise an artifact: which check, where, and why; ``cve`` says which
    published Keras vulnerability it matches, for which Keras versions, and whether the installed
    Keras is one of them (:mod:`pytest_kerasmodel.safety.cves`), empty when none."""

    check: str
    where: str
    reason: str
    cve: str = ""

    def __str__(self) -> str:
        text = f"[{self.check}] {self.where}: {self.reason}"
        return f"{text} [{self.cve}]" if self.cve else text


def _prefixed(findings: list[Finding], source: str) -> list[Finding]:
    return [dataclasses.replace(f, where=f"{source} {f.where}") for f in findings]


@dataclass(frozen=True)
class Allowed:
    """What the user allowed beyond what Keras defines: module prefixes
    (``keras_allowed_modules``) and bare class or registered names (``keras_allowed_classes``)."""

    modules: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()


#: nothing allowed beyond what Keras defines (the default of the scanners)
NOTHING_ALLOWED = Allowed()
