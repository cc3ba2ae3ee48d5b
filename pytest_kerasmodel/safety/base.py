"""What a safety finding is: which check, where, and why."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    """One reason not to deserialise an artifact: which check, where, and why."""

    check: str
    where: str
    reason: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.where}: {self.reason}"


def _prefixed(findings: list[Finding], source: str) -> list[Finding]:
    return [Finding(f.check, f"{source} {f.where}", f.reason) for f in findings]


@dataclass(frozen=True)
class Allowed:
    """What the user allowed beyond what Keras defines: module prefixes
    (``keras_allowed_modules``) and bare class or registered names (``keras_allowed_classes``)."""

    modules: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
