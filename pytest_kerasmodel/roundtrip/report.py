"""What a roundtrip changed, as data, and its text: a :class:`FormatDiff` per format, the
:class:`RoundtripDiff` of them all and the :class:`RoundtripResult` a passing call returns.
Renderers only: every value here was computed by :mod:`.state`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pytest_kerasmodel.compare import ArrayDiff, ConfigChange
from pytest_kerasmodel.diff import Diff, capped, indent, indent_rest, short, short_text

#: the checks, in the order a report shows them
CHECKS = (
    "load",
    "outputs",
    "weights",
    "variables",
    "vocabulary",
    "optimizer",
    "compile",
    "config",
    "layers",
)


_STAGE_FAILED = {"save": "saving", "load": "reloading", "call": "calling the reloaded model"}


@dataclass
class LoadFailure:
    """Saving, reloading or calling the reloaded model raised: Keras's message and a hint."""

    stage: str
    error_type: str
    message: str
    hint: str | None = None
    missing_class: str | None = None

    def render(self) -> str:
        first = {stage: f"{word} failed" for stage, word in _STAGE_FAILED.items()}
        message = "\n".join(
            short_text(line, 240) for line in self.message.strip().splitlines() if line.strip()
        )
        text = f"{first.get(self.stage, self.stage)}: {self.error_type}: {message}"
        lines = [indent_rest(text, "      ")]
        if self.missing_class:
            lines.append(f"    class not found: {self.missing_class}")
        if self.hint:
            lines.append(f"    hint: {self.hint}")
        return "\n".join(lines)


@dataclass
class AttributeChange:
    """A layer attribute that differs between the original and the reloaded layer."""

    layer: str
    class_name: str
    attribute: str
    old: Any
    new: Any
    constructor_argument: bool
    in_config: bool

    @property
    def reason(self) -> str:
        if self.constructor_argument and not self.in_config:
            return (
                f"{self.attribute!r} is a constructor argument of {self.class_name} that "
                "get_config() does not return: add it to get_config()"
            )
        if self.constructor_argument:
            return (
                f"get_config() returns {self.attribute!r} but the reloaded layer does not "
                "use it: check from_config() and __init__"
            )
        return (
            f"{self.attribute!r} is state kept outside Keras variables and the config: "
            "store it with add_weight(trainable=False) or return it from get_config()"
        )

    def render(self) -> str:
        return (
            f"{self.layer} ({self.class_name}).{self.attribute}: "
            f"{short(self.old)} -> {short(self.new)}\n      {self.reason}"
        )


@dataclass
class MetricNamesChange:
    """The names ``fit`` and ``evaluate`` log the metrics under changed on reload."""

    old: list[str]
    new: list[str]

    @property
    def renamed(self) -> list[tuple[str, str]]:
        gone = [n for n in self.old if n not in self.new]
        came = [n for n in self.new if n not in self.old]
        return list(zip(gone, came, strict=False))

    def render(self) -> str:
        text = f"metric names: {self.old} -> {self.new}"
        renamed = self.renamed
        if renamed:
            old, new = renamed[0]
            text += (
                f"\n      history keys and logs change ({old!r} becomes {new!r}): callbacks "
                f"monitoring 'val_{old}' or {old!r} (EarlyStopping, ModelCheckpoint, "
                "ReduceLROnPlateau) no longer find it; compile with a metric object named "
                f"explicitly (name={old!r}) or save as .keras"
            )
        return text


@dataclass
class VocabularyChange:
    """A lookup layer's vocabulary (``StringLookup``, ``IntegerLookup``, ``TextVectorization``)
    changed or was lost on reload; ``new_size`` is ``None`` when the reloaded layer cannot give
    one (its lookup table was never filled)."""

    layer: str
    class_name: str
    old_size: int
    new_size: int | None
    #: the first token that differs, as ``(index, old, new)``; ``None`` when the vocabulary was lost
    first_difference: tuple[int, str, str] | None
    #: why, for a format known to drop vocabularies; empty otherwise
    reason: str = ""

    @property
    def lost(self) -> bool:
        return self.first_difference is None

    def render(self) -> str:
        if self.lost:
            got = "none" if self.new_size is None else f"{self.new_size}"
            text = (
                f"{self.layer} ({self.class_name}): vocabulary lost on reload "
                f"({self.old_size} tokens -> {got})"
            )
        else:
            i, old, new = self.first_difference or (0, "", "")
            text = (
                f"{self.layer} ({self.class_name}): vocabulary changed ({self.old_size} -> "
                f"{self.new_size} tokens; first at index {i}: {old!r} -> {new!r})"
            )
        return text + (f"\n      {self.reason}" if self.reason else "")


@dataclass
class ForeignOptimizer:
    """The file names a backend's own optimizer class, and another backend reloaded it."""

    module: str
    class_name: str
    saved_under: str
    reloaded_under: str

    def render(self) -> str:
        return (
            f"optimizer: the reloaded optimizer is {self.module}.{self.class_name}, the "
            f"{self.saved_under} backend's own class, under {self.reloaded_under}: training the "
            f"reloaded model fails (its update step uses {self.saved_under} ops on "
            f"{self.reloaded_under} variables), and where {self.saved_under} is not installed "
            "the file does not load compiled at all\n"
            f"      Keras saved the {self.saved_under} optimizer's module into the file (a Keras "
            f"bug)\n      hint: under {self.reloaded_under}, reload with compile=False and "
            "compile again (the optimizer's slots are then not restored)"
        )


@dataclass
class FormatDiff(Diff):
    """What changed when the model went through one format, grouped by check."""

    format: str
    file: str
    failure: LoadFailure | None = None
    #: the backend a child process reloaded the file under; ``None``: in this process
    backend: str | None = None
    outputs: list[ArrayDiff] = field(default_factory=list)
    weights: list[ArrayDiff] = field(default_factory=list)
    variables: list[ArrayDiff] = field(default_factory=list)
    vocabulary: list[VocabularyChange] = field(default_factory=list)
    optimizer: list[ArrayDiff] = field(default_factory=list)
    optimizer_name: str | None = None
    compile: list[ConfigChange] = field(default_factory=list)
    metric_names: MetricNamesChange | None = None
    #: the reloaded optimizer is another backend's own class (torch's Adam under JAX)
    foreign_optimizer: ForeignOptimizer | None = None
    config: list[ConfigChange] = field(default_factory=list)
    layers: list[AttributeChange] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: what changed that is no difference in the model (seed-generator state Keras never saves)
    notes: list[str] = field(default_factory=list)
    #: what to do about a known limitation of the format that caused a difference
    hints: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        return self.failure is None and not self.failed_checks

    @property
    def failed_checks(self) -> list[str]:
        failed = ["load"] if self.failure else []
        for check in CHECKS[1:]:
            extra = check == "compile" and (self.metric_names or self.foreign_optimizer)
            if getattr(self, check) or extra:
                failed.append(check)
        return failed

    @property
    def label(self) -> str:
        """``keras``, or ``keras -> jax`` for the file reloaded under another backend."""
        return self.format if self.backend is None else f"{self.format} -> {self.backend}"

    def render(self) -> str:
        head = f"[{self.label}] {self.file}"
        if self.is_empty():
            return f"{head}: ok"
        parts = []
        if self.failure:
            parts.append(_STAGE_FAILED.get(self.failure.stage, self.failure.stage) + " failed")
        differ = [c for c in self.failed_checks if c != "load"]
        if differ:
            parts.append(f"{', '.join(differ)} differ")
        lines = [f"{head}: {'; '.join(parts)}"]
        if self.failure:
            lines.append(f"  load: {self.failure.render()}")
        if self.outputs:
            lines.append(f"  outputs: {len(self.outputs)} output(s) differ")
            lines += capped([d.render() for d in self.outputs])
        if self.weights:
            lines.append(f"  weights: {len(self.weights)} weight(s) differ")
            lines += capped([d.render() for d in self.weights])
        if self.variables:
            lines.append(f"  variables: {len(self.variables)} variable(s) differ")
            lines += capped([d.render() for d in self.variables])
        if self.vocabulary:
            gone = sum(1 for v in self.vocabulary if v.lost)
            lines.append(
                f"  vocabulary: {len(self.vocabulary)} lookup layer(s) differ, {gone} lost"
            )
            lines += capped([v.render() for v in self.vocabulary])
        if self.optimizer:
            lost = [d for d in self.optimizer if d.kind == "missing"]
            name = self.optimizer_name or "optimizer"
            summary = f"{len(self.optimizer)} variable(s) differ"
            if lost:
                summary += f", {len(lost)} lost on reload"
            lines.append(f"  optimizer: {name}: {summary}")
            lines += capped([_optimizer_line(d) for d in self.optimizer])
        if self.compile or self.metric_names or self.foreign_optimizer:
            count = len(self.compile) + sum(
                1 for extra in (self.metric_names, self.foreign_optimizer) if extra
            )
            lines.append(f"  compile: {count} difference(s)")
            if self.foreign_optimizer:
                lines.append(indent(self.foreign_optimizer.render(), "    "))
            lines += capped([c.render() for c in self.compile])
            if self.metric_names:
                lines.append(indent(self.metric_names.render(), "    "))
        if self.config:
            lines.append(f"  config: {len(self.config)} difference(s)")
            lines += capped([c.render() for c in self.config])
        if self.layers:
            lines.append(f"  layers: {len(self.layers)} attribute(s) differ after reload")
            lines += capped([c.render() for c in self.layers])
        if self.notes:
            lines.append("  notes (not differences in the model):")
            lines += capped(self.notes)
        lines += [indent_rest(f"  hint: {h}", "    ") for h in self.hints]
        if self.warnings:
            lines.append("  Keras warned while reloading:")
            lines += [f"    {short_text(w)}" for w in self.warnings[:5]]
        return "\n".join(lines)


@dataclass
class RoundtripDiff(Diff):
    """Everything that changed, per format: the ``.diff`` of :class:`RoundtripError`."""

    formats: list[FormatDiff]
    rtol: float
    atol: float
    folder: str | None = None
    #: the backend the model was saved under (this process's)
    backend: str = ""

    def is_empty(self) -> bool:
        return all(f.is_empty() for f in self.formats)

    def render(self) -> str:
        changed = [f for f in self.formats if not f.is_empty()]
        names = ", ".join(repr(f.label) for f in changed)
        crossed = self.backend and any(f.backend for f in self.formats)
        saved = f"saved under {self.backend}, " if crossed else ""
        lines = [
            f"assert_roundtrip: the model changed when saved and reloaded as {names} "
            f"({saved}rtol={self.rtol:g}, atol={self.atol:g})"
        ]
        lines += [f.render() for f in self.formats]
        if self.folder:
            lines.append(f"saved files kept in {self.folder}")
        return "\n".join(lines)


@dataclass
class RoundtripResult:
    """What :func:`assert_roundtrip` returns: the reloaded model per format, for more asserts."""

    models: dict[str, Any]
    diff: RoundtripDiff
    inputs: Any
    outputs: Any

    def __getitem__(self, fmt: str) -> Any:
        return self.models[fmt]

    @property
    def formats(self) -> tuple[str, ...]:
        return tuple(self.models)


def _optimizer_line(diff: ArrayDiff) -> str:
    if diff.kind == "missing":
        return f"{diff.name}: lost on reload (expected shape {tuple(diff.expected_shape or ())})"
    return diff.render()
