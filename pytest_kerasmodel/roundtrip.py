"""Save a model, reload it, compare everything, and name what changed.

:func:`assert_roundtrip` saves a model in each requested format into a temporary folder,
reloads it and compares the reloaded model with the original:

- ``outputs``: predictions on the same inputs with ``training=False``, every output;
- ``weights``: every weight, trainable and non-trainable, by its path;
- ``variables``: every other variable of ``model.variables`` (seed-generator states), by place.
  Keras never saves a seed generator's state, so a difference there is a note (the random
  stream of a Dropout restarts on reload), not a failure;
- ``config``: the model's serialized config (what ``config.json`` holds), except the keys in
  :data:`IGNORED_CONFIG_KEYS`;
- ``optimizer`` and ``compile``: the optimizer's class, hyperparameters and variables (step
  counter and slots, matched so that Keras renaming them on reload does not matter), the
  loss (with the arguments a loss object calls its function with) and the metrics, by what
  they compute and by the names ``fit``/``evaluate`` logs give them (history keys). An
  optimizer the original never built (compiled, never trained) has no state to lose: its
  variables are not compared;
- ``layers``: the simple public attributes of every layer, to name a constructor argument
  that ``get_config`` forgot or state kept outside Keras variables.

Config keys ignored on reload (:data:`IGNORED_CONFIG_KEYS`), at any depth of the config:

- ``compile_config`` of the model: compared by the ``compile`` and ``optimizer`` checks, with
  losses and metrics by what they compute (``"mse"`` equals ``"mean_squared_error"``);
- ``build_config`` under the ``h5`` and (tf-keras) ``savedmodel`` formats only: they store
  none, so Keras rebuilds layers from the model's input shapes and a batch size a layer
  recorded when it was built (e.g. by ``Normalization.adapt()``) comes back as ``None``.

The ``layers`` check does not compare a layer's ``name`` (auto-generated names such as
``dense_3`` change on reload; the names that matter are in the config), nor a model's
training-loop state and compile arguments (``_keras.IGNORED_MODEL_ATTRIBUTES``), which the
``compile`` check compares, nor attributes a backend puts on every layer
(``_keras.BACKEND_LAYER_ATTRIBUTES``: torch's ``nn.Module.training`` mode).

Nothing else is ignored. Numbers in configs compare with a relative tolerance of 1e-6 (a
hyperparameter read back from a float32 variable differs in its last digits).

A tf-keras (Keras 2) model is saved and reloaded with tf-keras's own API, in its formats
``keras``, ``h5``, ``weights`` and ``savedmodel`` (:mod:`pytest_kerasmodel._tfkeras`), and
goes through the same checks and report.

The data flows one way: model -> plain data (:mod:`pytest_kerasmodel._keras` or
:mod:`pytest_kerasmodel._tfkeras`) ->
comparisons (:mod:`pytest_kerasmodel.compare`) -> :class:`RoundtripDiff` -> text.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from pytest_kerasmodel.compare import (
    ArrayDiff,
    ConfigChange,
    compare_arrays,
    compare_configs,
    compare_named_arrays,
    compare_outputs,
)
from pytest_kerasmodel.diff import Diff
from pytest_kerasmodel.errors import RoundtripError
from pytest_kerasmodel.options import DEFAULT_ATOL, DEFAULT_FORMATS, DEFAULT_RTOL, KNOWN_FORMATS

#: config keys ignored at every depth when comparing a model's config with its reloaded twin
IGNORED_CONFIG_KEYS: tuple[str, ...] = ("compile_config",)
#: extra keys ignored for formats that do not store a ``build_config``
IGNORED_CONFIG_KEYS_BY_FORMAT: dict[str, tuple[str, ...]] = {
    "h5": ("build_config",),
    "savedmodel": ("build_config",),  # tf-keras's SavedModel stores none either
}

#: the checks, in the order a report shows them
CHECKS = ("load", "outputs", "weights", "variables", "optimizer", "compile", "config", "layers")


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
            _short_text(line, 240) for line in self.message.strip().splitlines() if line.strip()
        )
        text = f"{first.get(self.stage, self.stage)}: {self.error_type}: {message}"
        lines = [_indent_rest(text, "      ")]
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
            f"{_short(self.old)} -> {_short(self.new)}\n      {self.reason}"
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
            lines += _capped([d.render() for d in self.outputs])
        if self.weights:
            lines.append(f"  weights: {len(self.weights)} weight(s) differ")
            lines += _capped([d.render() for d in self.weights])
        if self.variables:
            lines.append(f"  variables: {len(self.variables)} variable(s) differ")
            lines += _capped([d.render() for d in self.variables])
        if self.optimizer:
            lost = [d for d in self.optimizer if d.kind == "missing"]
            name = self.optimizer_name or "optimizer"
            summary = f"{len(self.optimizer)} variable(s) differ"
            if lost:
                summary += f", {len(lost)} lost on reload"
            lines.append(f"  optimizer: {name}: {summary}")
            lines += _capped([_optimizer_line(d) for d in self.optimizer])
        if self.compile or self.metric_names or self.foreign_optimizer:
            count = len(self.compile) + sum(
                1 for extra in (self.metric_names, self.foreign_optimizer) if extra
            )
            lines.append(f"  compile: {count} difference(s)")
            if self.foreign_optimizer:
                lines.append(_indent(self.foreign_optimizer.render(), "    "))
            lines += _capped([c.render() for c in self.compile])
            if self.metric_names:
                lines.append(_indent(self.metric_names.render(), "    "))
        if self.config:
            lines.append(f"  config: {len(self.config)} difference(s)")
            lines += _capped([c.render() for c in self.config])
        if self.layers:
            lines.append(f"  layers: {len(self.layers)} attribute(s) differ after reload")
            lines += _capped([c.render() for c in self.layers])
        if self.notes:
            lines.append("  notes (not differences in the model):")
            lines += _capped(self.notes)
        lines += [_indent_rest(f"  hint: {h}", "    ") for h in self.hints]
        if self.warnings:
            lines.append("  Keras warned while reloading:")
            lines += [f"    {_short_text(w)}" for w in self.warnings[:5]]
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


#: how many items of one check a report lists before "... N more"
MAX_LISTED = 10


def _capped(items: list[str], prefix: str = "    ") -> list[str]:
    lines = [_indent(item, prefix) for item in items[:MAX_LISTED]]
    if len(items) > MAX_LISTED:
        lines.append(f"{prefix}... {len(items) - MAX_LISTED} more (see the error's .diff)")
    return lines


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def _indent_rest(text: str, prefix: str) -> str:
    first, *rest = text.splitlines() or [""]
    return "\n".join([first, *(prefix + line for line in rest)])


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short_text(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _optimizer_line(diff: ArrayDiff) -> str:
    if diff.kind == "missing":
        return f"{diff.name}: lost on reload (expected shape {tuple(diff.expected_shape or ())})"
    return diff.render()


_CLASS_PATTERNS = (
    re.compile(r"Could not locate (?:class|function) '([^']+)'"),
    re.compile(r"Unknown (?:layer|object|class|optimizer|loss|metric)[^'\"]*['\"]([^'\"]+)['\"]"),
    re.compile(r"Could not deserialize '([^']+)'"),
)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: a backend's own module in Keras's message (``keras.src.backend.torch.optimizers.torch_adam``)
_BACKEND_MODULE = re.compile(r"keras\.src\.backend\.(torch|jax|tensorflow|numpy)(?:\.\w+)+")


def _plain(message: str) -> str:
    """Keras's message without the terminal colour codes TensorFlow puts in some."""
    return _ANSI.sub("", message)


def failure_of(stage: str, exc: BaseException, framework: ModuleType | None = None) -> LoadFailure:
    """Describe an exception from saving, reloading or calling, with a hint where known
    (``framework``: the module of the model's Keras, :mod:`pytest_kerasmodel._keras` when
    ``None``)."""
    message = str(exc)
    missing = None
    for pattern in _CLASS_PATTERNS:
        match = pattern.search(message)
        if match:
            missing = match.group(1)
            break
    hint = None
    registered = None
    backend_module = _BACKEND_MODULE.search(message)
    if backend_module:
        hint = (
            f"the file names {backend_module.group(0)!r}, a class of the "
            f"{backend_module.group(1)} backend that Keras cannot import under another backend "
            "(a Keras bug: it saves the backend's own optimizer class): reload with "
            "compile=False and compile again, or reload under the backend that saved it"
        )
        return LoadFailure(stage, type(exc).__name__, _plain(message), hint, missing)
    if missing == "Functional" and stage == "load":
        hint = (
            "'Functional' is the class tf-keras (Keras 2) names a Functional model by in the "
            "config it saves, which Keras 3 does not find: Keras 3 cannot load this file. Save "
            "the model as .h5 with tf-keras (Keras 3 reads tf-keras's legacy HDF5) or rebuild "
            "it with Keras 3"
        )
        return LoadFailure(stage, type(exc).__name__, _plain(message), hint, missing)
    if "is_legacy_optimizer" in message and stage == "load":
        hint = (
            "the optimizer config tf-keras (Keras 2) saved has arguments Keras 3's optimizers "
            "do not take (is_legacy_optimizer, jit_compile): in Keras 3, reload with "
            "compile=False and compile again (the optimizer's slots are then not restored)"
        )
        return LoadFailure(stage, type(exc).__name__, _plain(message), hint, missing)
    if missing and missing.startswith("keras."):
        alias = missing.rsplit(".", 1)[-1]
        hint = (
            f"{missing!r} is Keras's own name, which Keras cannot load back from this format "
            f"(a Keras limitation, not your code): compile with the full name instead of the "
            f"alias {alias!r} (e.g. loss='mean_squared_error') or a loss/metric object, or "
            "save as .keras"
        )
        return LoadFailure(stage, type(exc).__name__, _plain(message), hint, missing)
    if framework is None:
        from pytest_kerasmodel import _keras

        framework = _keras
    register = framework.REGISTER
    if missing and stage == "load":
        short = missing.rsplit(".", 1)[-1].rsplit(">", 1)[-1]
        registered = framework.registered_name(short)
    if missing and registered:
        hint = (
            f"{short!r} is registered as {registered!r}, but this format looks classes up by "
            f"their bare name (the legacy HDF5 writer stores only {short!r}): pass "
            f"custom_objects={{{short!r}: {short}}} or save as .keras"
        )
    elif missing and stage == "load":
        hint = (
            f"Keras cannot find {missing!r}: decorate the class with "
            f"{register} or pass "
            f"custom_objects={{{short!r}: {short}}}"
        )
    elif "lambda" in message.lower() and ("safe_mode" in message or "unsafe" in message):
        hint = (
            "the model holds a Lambda layer, whose Python bytecode Keras refuses to load in "
            "safe mode: replace the Lambda with a registered custom layer (only for a file you "
            "trust: keras.config.enable_unsafe_deserialization())"
        )
    elif "requires the model to be a Functional" in message:
        hint = (
            "the legacy HDF5 format cannot save a subclassed model: save it as .keras, or "
            "its weights (the 'weights' format)"
        )
    elif "expected 0 layers" in message:
        hint = (
            "the legacy HDF5 format cannot rebuild a subclassed model before loading its "
            "weights: save it as .keras (or .weights.h5 into a model built from its config)"
        )
    elif stage == "save" and ("get_config" in message or isinstance(exc, NotImplementedError)):
        hint = "implement get_config() returning every constructor argument"
    elif stage == "load" and "__init__" in message and "argument" in message:
        hint = "get_config() and __init__() disagree: get_config() must return every argument"
    return LoadFailure(stage, type(exc).__name__, _plain(message), hint, missing)


@dataclass
class ModelState:
    """A model as plain data (arrays, dicts, strings), taken once from the original and once
    from each reloaded model, here or in a child process under another backend
    (:mod:`pytest_kerasmodel.backends`), then compared by :func:`compare_states`."""

    outputs: Any
    output_names: list[str] | None
    weights: dict[str, Any]
    weight_labels: dict[str, str]
    variables: dict[str, Any]
    variable_labels: dict[str, str]
    variable_kinds: dict[str, str]
    config: Any
    compile: dict[str, Any] | None
    optimizer: dict[str, Any] | None
    metric_names: list[str] | None
    layers: dict[str, dict[str, Any]]
    backend: str = ""


def model_state(
    model: Any, inputs: Any, *, with_compile: bool, call: bool = True
) -> tuple[ModelState, LoadFailure | None]:
    """``model`` as a :class:`ModelState`, and how calling it failed (its other state is
    taken all the same, so that a layer that lost its vocabulary is named even when the call
    fails). ``call=False`` raises what the call raised (the original model must work).
    A tf-keras model is read by :mod:`pytest_kerasmodel._tfkeras`, into the same state."""
    from pytest_kerasmodel.frameworks import module_for

    framework = module_for(model)
    failure = None
    try:
        outputs = framework.call_model(model, inputs)
    except Exception as exc:
        if not call:
            raise
        failure, outputs = failure_of("call", exc), None
    weights, labels = framework.weight_arrays(model)
    variables, variable_labels, kinds = framework.state_variables(model)
    state = ModelState(
        outputs=outputs,
        output_names=framework.output_names(model),
        weights=weights,
        weight_labels=labels,
        variables=variables,
        variable_labels=variable_labels,
        variable_kinds=kinds,
        config=framework.model_config(model),
        compile=framework.compile_config(model) if with_compile else None,
        optimizer=framework.optimizer_state(model) if with_compile else None,
        metric_names=framework.metric_names(model, outputs) if with_compile else None,
        layers=framework.layer_attributes(model),
        backend=framework.backend(),
    )
    return state, failure


def _values_equal(old: Any, new: Any, rtol: float, atol: float) -> bool:
    if isinstance(old, np.ndarray) or isinstance(new, np.ndarray):
        return compare_arrays("", old, new, rtol, atol) is None
    if isinstance(old, float) and isinstance(new, (int, float)) and not isinstance(new, bool):
        return bool(np.isclose(new, old, rtol=rtol, atol=atol, equal_nan=True))
    return bool(old == new) and type(old) is type(new)


def _describe_value(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return f"array(shape={value.shape}, dtype={value.dtype})"
    return value


def _compare_layers(
    expected: dict[str, dict[str, Any]],
    actual: dict[str, dict[str, Any]],
    rtol: float,
    atol: float,
) -> list[AttributeChange]:
    changes = []
    for key, old in expected.items():
        new = actual.get(key)
        if new is None or new["class_name"] != old["class_name"]:
            continue  # structural changes show in the config and weights checks
        for attr, value in old["attributes"].items():
            if attr not in new["attributes"]:
                continue
            other = new["attributes"][attr]
            if _values_equal(value, other, rtol, atol):
                continue
            changes.append(
                AttributeChange(
                    layer=old["name"],
                    class_name=old["class_name"],
                    attribute=attr,
                    old=_describe_value(value),
                    new=_describe_value(other),
                    constructor_argument=attr in old["constructor_args"],
                    in_config=attr in old["config_keys"],
                )
            )
    return changes


def _compare_variables(
    original: ModelState, new: ModelState, rtol: float, atol: float, result: FormatDiff
) -> None:
    diffs = compare_named_arrays(
        original.variables,
        new.variables,
        rtol,
        atol,
        labels=original.variable_labels,
        actual_labels=new.variable_labels,
    )
    for diff in diffs:
        key = next((k for k, v in original.variable_labels.items() if v == diff.name), None)
        kind = original.variable_kinds.get(key or "", "") or (
            "seed_generator" if diff.name.endswith("seed_generator_state") else ""
        )
        if kind == "seed_generator":
            result.notes.append(
                f"{diff.name}: seed-generator state differs ({diff.kind}); Keras does not save "
                "seed-generator state, so a random layer (Dropout, noise, augmentation) draws "
                "a new random stream after reload"
            )
        else:
            result.variables.append(diff)


def _integers_as(expected: dict[str, Any], actual: dict[str, Any]) -> dict[str, Any]:
    """``actual`` with each integer array cast to the integer dtype of its ``expected`` twin.

    Across backends, integer state compares by value: JAX (without x64) keeps an optimizer's
    step counter as int32 and a seed generator's state as uint32, torch as int32, where
    TensorFlow keeps int64.
    """
    aligned = dict(actual)
    for key, new in actual.items():
        old = expected.get(key)
        if (
            isinstance(old, np.ndarray)
            and isinstance(new, np.ndarray)
            and old.dtype.kind in "iu"
            and new.dtype.kind in "iu"
            and old.dtype != new.dtype
        ):
            aligned[key] = new.astype(old.dtype)
    return aligned


#: compile arguments whose default each backend resolves its own way, not compared across
#: backends: ``jit_compile="auto"`` is True under JAX and False under TensorFlow (CPU) and torch
BACKEND_COMPILE_DEFAULTS = ("jit_compile",)


def _without_backend_defaults(state: ModelState) -> ModelState:
    from dataclasses import replace

    if state.compile is None:
        return state
    kept = {k: v for k, v in state.compile.items() if k not in BACKEND_COMPILE_DEFAULTS}
    return replace(state, compile=kept)


def _across_backends(original: ModelState, new: ModelState) -> ModelState:
    """``new`` with the integer widths of ``original`` (see :func:`_integers_as`)."""
    from dataclasses import replace

    optimizer = new.optimizer
    if optimizer is not None and original.optimizer is not None:
        variables = _integers_as(original.optimizer["variables"], optimizer["variables"])
        optimizer = {**optimizer, "variables": variables}
    return replace(
        _without_backend_defaults(new),
        weights=_integers_as(original.weights, new.weights),
        variables=_integers_as(original.variables, new.variables),
        optimizer=optimizer,
    )


def _compare_compile(
    original: ModelState, new: ModelState, rtol: float, atol: float, result: FormatDiff
) -> None:
    old_opt = original.optimizer
    if original.compile is None and old_opt is None:
        return
    new_compile, new_opt = new.compile, new.optimizer
    if new_compile is None and new_opt is None:
        result.compile.append(ConfigChange("compiled", True, False))
        return
    result.compile += compare_configs(original.compile, new_compile, path="compile")
    if (
        original.metric_names is not None
        and new.metric_names is not None
        and original.metric_names != new.metric_names
    ):
        result.metric_names = MetricNamesChange(original.metric_names, new.metric_names)
    if old_opt is None:
        return
    result.optimizer_name = f"{old_opt['class_name']} {old_opt['name']!r}"
    if new_opt is None:
        result.compile.append(ConfigChange("optimizer", old_opt["class_name"], "<missing>"))
        return
    result.compile += compare_configs(old_opt["config"], new_opt["config"], path="optimizer")
    module = new_opt.get("backend_module")
    owner = _BACKEND_MODULE.match(module or "")
    if module and owner and owner.group(1) != new.backend:
        result.foreign_optimizer = ForeignOptimizer(
            module, new_opt["class_name"], owner.group(1), new.backend
        )
    if old_opt["built"]:
        # Keras names slots after the weight's path, which changes on reload: both sides
        # are keyed by the weight's structural key instead (see _keras.optimizer_state).
        result.optimizer = compare_named_arrays(
            old_opt["variables"],
            new_opt["variables"],
            rtol,
            atol,
            labels=old_opt["labels"],
            actual_labels=new_opt["labels"],
        )


def compare_states(
    original: ModelState,
    new: ModelState,
    result: FormatDiff,
    *,
    fmt: str,
    rtol: float,
    atol: float,
    compile: bool,
) -> FormatDiff:
    """Fill ``result`` with every difference between the original and a reloaded model."""
    if original.backend == TF_KERAS != new.backend:
        return _compare_across_kerases(original, new, result, rtol=rtol, atol=atol, compile=compile)
    if new.backend != original.backend:
        original, new = _without_backend_defaults(original), _across_backends(original, new)
    _compare_outputs_and_weights(original, new, result, rtol, atol)
    _compare_variables(original, new, rtol, atol, result)
    ignored = IGNORED_CONFIG_KEYS + IGNORED_CONFIG_KEYS_BY_FORMAT.get(fmt, ())
    result.config = compare_configs(original.config, new.config, ignore_keys=ignored)
    result.layers = _compare_layers(original.layers, new.layers, rtol, atol)
    if compile:
        _compare_compile(original, new, rtol, atol, result)
    if result.is_empty():
        result.warnings = []
    return result


def _compare_outputs_and_weights(
    original: ModelState, new: ModelState, result: FormatDiff, rtol: float, atol: float
) -> None:
    """The outputs (when the reloaded model could be called) and the weights, matched by place."""
    if new.outputs is not None:
        result.outputs = compare_outputs(
            original.outputs, new.outputs, rtol, atol, names=original.output_names
        )
    result.weights = compare_named_arrays(
        original.weights,
        new.weights,
        rtol,
        atol,
        labels=original.weight_labels,
        actual_labels=new.weight_labels,
    )


#: the name a tf-keras model's state is taken under (``ModelState.backend``)
TF_KERAS = "tf_keras"
#: tf-keras's optimizer slot names and Keras 3's for the same slot (Adam's ``m`` is ``momentum``)
KERAS3_SLOTS = {"m": "momentum", "v": "velocity", "vhat": "velocity_hat"}
#: what is not compared between a tf-keras model and its file reloaded by Keras 3
NOT_COMPARED_ACROSS_KERASES = (
    "config, layer attributes and compile arguments are not compared between tf-keras and "
    "Keras 3 (each serializes them its own way); outputs, weights, the optimizer's step counter "
    "and slots, and the metric names are"
)


def _compare_across_kerases(
    original: ModelState,
    new: ModelState,
    result: FormatDiff,
    *,
    rtol: float,
    atol: float,
    compile: bool,
) -> FormatDiff:
    """A tf-keras model's file reloaded by Keras 3 (``backends=`` with a tf-keras model): what
    a migration keeps. Weights match by place as within one Keras; optimizer slots are renamed
    to Keras 3's (``m`` is ``momentum``), and Keras 3's own ``learning_rate`` variable, a
    hyperparameter, is left out."""
    aligned = _across_backends(original, new)
    _compare_outputs_and_weights(original, aligned, result, rtol, atol)
    old_opt, new_opt = original.optimizer, aligned.optimizer
    if compile and old_opt is not None and old_opt["built"]:
        result.optimizer_name = f"{old_opt['class_name']} {old_opt['name']!r}"
        expected: dict[str, Any] = {}
        labels: dict[str, str] = {}
        for key, value in old_opt["variables"].items():
            slot, sep, owner = key.partition(" of ")
            renamed = f"{KERAS3_SLOTS.get(slot, slot)}{sep}{owner}" if sep else key
            expected[renamed] = value
            labels[renamed] = old_opt["labels"][key]
        got = dict(new_opt["variables"]) if new_opt is not None else {}
        got = {k: v for k, v in got.items() if k != "learning_rate"}
        got = _integers_as(expected, got)
        result.optimizer = compare_named_arrays(expected, got, rtol, atol, labels=labels)
    if (
        compile
        and original.metric_names is not None
        and new.metric_names is not None
        and original.metric_names != new.metric_names
    ):
        result.metric_names = MetricNamesChange(original.metric_names, new.metric_names)
    if any(d.kind == "missing" for d in result.optimizer):
        result.hints.append(
            "Keras 3 rebuilds the optimizer of a tf-keras file without the slots the file holds "
            "(legacy .h5: under optimizer_weights/): after a migration, training resumes from "
            "fresh slots; the step counter and the weights are kept"
        )
    result.notes.append(NOT_COMPARED_ACROSS_KERASES)
    if result.is_empty():
        result.warnings = []
    return result


def _check_format(
    model: Any,
    fmt: str,
    folder: Path,
    inputs: Any,
    original: ModelState,
    *,
    rtol: float,
    atol: float,
    custom_objects: dict[str, Any] | None,
    compile: bool,
    on_saved: Callable[[str], None] | None = None,
) -> tuple[FormatDiff, Any, str | None]:
    """Save ``model`` as ``fmt`` and check it here; returns the diff, the reloaded model and
    the saved file's path (``None`` when saving failed). ``on_saved(path)`` runs as soon as
    the file is written (the other backends start reloading it while this process does)."""
    from pytest_kerasmodel.frameworks import module_for

    framework = module_for(model)

    result = FormatDiff(format=fmt, file=framework.FORMAT_FILES[fmt])
    try:
        path = framework.save(model, fmt, folder)
    except Exception as exc:
        result.failure = failure_of("save", exc, framework)
        return result, None, None
    if on_saved is not None:
        on_saved(path)
    try:
        reloaded, result.warnings = framework.load(
            fmt, path, custom_objects=custom_objects, compile=compile
        )
    except Exception as exc:
        result.failure = failure_of("load", exc, framework)
        if result.failure.missing_class is None:
            missing = framework.unregistered_classes(model, custom_objects)
            if missing:
                result.failure.missing_class = ", ".join(missing)
                result.failure.hint = result.failure.hint or (
                    f"Keras may not find {missing[0]!r}: decorate it with "
                    f"{framework.REGISTER} or pass "
                    f"custom_objects={{{missing[0]!r}: {missing[0]}}}"
                )
        return result, None, path
    new, result.failure = model_state(reloaded, inputs, with_compile=compile)
    compare_states(original, new, result, fmt=fmt, rtol=rtol, atol=atol, compile=compile)
    result.hints = framework.hints_for(result, original)
    return result, reloaded, path


@dataclass
class _Pending:
    """Requests sent to the backends' children for one saved file, answers not read yet."""

    results: list[FormatDiff]
    sent: list[tuple[FormatDiff, Any]]


def _send_to_backends(
    model: Any,
    fmt: str,
    path: str,
    inputs: Any,
    targets: list[str],
    *,
    custom_objects: dict[str, Any] | None,
    compile: bool,
) -> _Pending:
    """Ask each backend's child process to reload the saved file (they all work at once)."""
    from pytest_kerasmodel import _keras
    from pytest_kerasmodel import backends as other_backends

    request = {
        "format": fmt,
        "path": path,
        "inputs": inputs,
        "compile": compile,
        "custom_objects": other_backends.class_locations(custom_objects),
        "modules": other_backends.model_modules(model),
        "sys_path": [p for p in sys.path if p],  # where those modules are, as of now
    }
    from pytest_kerasmodel.frameworks import module_for

    pending = _Pending([], [])
    for backend in targets:
        result = FormatDiff(format=fmt, file=module_for(model).FORMAT_FILES[fmt], backend=backend)
        pending.results.append(result)
        if fmt not in _keras.FORMATS:  # a tf-keras SavedModel
            result.failure = LoadFailure(
                "load",
                "NotAKerasFile",
                "Keras 3's load_model cannot load a SavedModel as a Keras model (only tf-keras "
                "can); keras.layers.TFSMLayer(folder) wraps it for inference only",
                hint="to move to Keras 3, save the model as .keras or .h5 with tf-keras and "
                "check those (formats=('keras', 'h5'))",
            )
            continue
        worker = other_backends.child(backend)
        try:
            worker.send(request)
        except other_backends.ChildDied as exc:
            result.failure = LoadFailure("load", "ChildDied", str(exc))
            continue
        pending.sent.append((result, worker))
    return pending


def _receive_from_backends(
    pending: _Pending,
    original: ModelState,
    *,
    fmt: str,
    rtol: float,
    atol: float,
    compile: bool,
) -> list[FormatDiff]:
    """Read each child's answer and compare the model it reloaded with the original."""
    from pytest_kerasmodel import backends as other_backends

    for result, worker in pending.sent:
        try:
            answer = worker.receive()
        except other_backends.ChildDied as exc:
            result.failure = LoadFailure("load", "ChildDied", str(exc))
            continue
        if "error" in answer:
            result.failure = LoadFailure(
                "load", "ChildError", f"{answer['error']}\n{answer.get('traceback', '')}"
            )
            continue
        result.warnings = list(answer.get("warnings") or [])
        if answer.get("failure"):
            result.failure = LoadFailure(**answer["failure"])
        if "state" in answer:
            new = ModelState(**answer["state"])
            compare_states(original, new, result, fmt=fmt, rtol=rtol, atol=atol, compile=compile)
    return pending.results


def _formats(formats: str | Iterable[str] | None, framework: ModuleType) -> tuple[str, ...]:
    """The formats asked for, checked against those the model's Keras can save in: Keras 3's
    (``keras``, ``h5``, ``weights``) or tf-keras's (those and ``savedmodel``)."""
    if formats is None:
        return tuple(getattr(framework, "DEFAULT_FORMATS", DEFAULT_FORMATS))
    if isinstance(formats, str):
        formats = formats.replace(",", " ").split()
    chosen = tuple(dict.fromkeys(formats))
    allowed = framework.FORMATS
    unknown = [f for f in chosen if f not in allowed]
    if unknown or not chosen:
        other = [f for f in unknown if f in KNOWN_FORMATS]
        why = (
            f" ({', '.join(other)}: a tf-keras (Keras 2) format; Keras 3 writes no SavedModel "
            "that load_model reloads, use assert_export for model.export)"
            if other
            else ""
        )
        raise ValueError(
            f"assert_roundtrip: unknown format(s) {unknown} for a {framework.LABEL} model{why}; "
            f"choose from {list(allowed)}"
        )
    return chosen


def assert_roundtrip(
    model: Any,
    inputs: Any = None,
    *,
    formats: str | Sequence[str] | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    custom_objects: dict[str, Any] | None = None,
    compile: bool = True,
    folder: str | Path | None = None,
    backends: str | Sequence[str] | None = None,
) -> RoundtripResult:
    """Save ``model`` in each format, reload it, and assert nothing changed.

    Args:
        model: a built Keras model (Sequential, Functional or subclassed).
        inputs: samples to predict on (an array, a list or a dict, as the model takes them);
            generated deterministically from the model's input specs when ``None``.
        formats: any of ``"keras"`` (the ``.keras`` zip), ``"h5"`` (legacy HDF5) and
            ``"weights"`` (``.weights.h5`` loaded into a model rebuilt from the config);
            default ``("keras",)``.
        rtol, atol: tolerances for outputs, weights and optimizer variables, with
            ``np.allclose`` semantics (defaults 1e-5 and 1e-6).
        custom_objects: passed to ``keras.models.load_model``.
        compile: reload compiled and compare the compile state (optimizer, loss, metrics).
        folder: where to save (a fresh sub-folder is made and removed on success); a private
            temporary folder when ``None``.
        backends: also reload each saved file under these Keras backends (``"jax"``,
            ``["jax", "torch"]``, ``"all"`` for every installed one), each in a child process
            kept for the session (:mod:`pytest_kerasmodel.backends`), and compare what it
            gives back with the original in the same report (``[keras -> jax]``). This
            process's own backend is always checked here. A backend not installed is a
            :class:`~pytest_kerasmodel.backends.BackendError` naming the package to install.

    Returns:
        A :class:`RoundtripResult` with the reloaded model of each format.

    Raises:
        RoundtripError: the reloaded model differs, or saving / reloading / calling failed;
            its ``.diff`` is a :class:`RoundtripDiff`.
    """
    __tracebackhide__ = True
    from pytest_kerasmodel import backends as other_backends
    from pytest_kerasmodel.frameworks import module_for
    from pytest_kerasmodel.inputs import make_inputs

    try:
        framework = module_for(model)
    except ValueError as exc:
        raise ValueError(f"assert_roundtrip: {exc}") from None
    chosen = _formats(formats, framework)
    here = framework.backend()
    targets = [
        b
        for b in other_backends.parse_backends(backends, source="assert_roundtrip: backends")
        if b != here
    ]
    if other_backends.TF_KERAS in targets:
        raise other_backends.BackendError(
            f"assert_roundtrip: backends={targets}: {other_backends.TF_KERAS!r} is the gate's "
            "Keras 2 loader (--keras-backends tf_keras), not a Keras 3 backend a Keras 3 "
            "model's files are reloaded under; a tf-keras model passed to assert_roundtrip is "
            "checked with tf-keras itself"
        )
    rtol = DEFAULT_RTOL if rtol is None else float(rtol)
    atol = DEFAULT_ATOL if atol is None else float(atol)
    if not getattr(model, "built", False):
        raise ValueError(
            "assert_roundtrip: the model is not built; call it on data or call build() first"
        )
    for backend in targets:  # they import Keras while this process saves and compares
        other_backends.child(backend).start()
    keep_on_failure = folder is not None
    if folder is None:
        workdir = Path(tempfile.mkdtemp(prefix="kerasmodel-roundtrip-"))
    else:
        Path(folder).mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix="roundtrip-", dir=folder))
    models: dict[str, Any] = {}
    diffs: list[FormatDiff] = []
    try:
        with framework.preserved_global_state():
            if inputs is None:
                inputs = make_inputs(model)
            original, _ = model_state(model, inputs, with_compile=compile, call=False)
            for fmt in chosen:
                fmt_dir = workdir / fmt
                fmt_dir.mkdir()
                pending: list[_Pending] = []

                def send(path: str, fmt: str = fmt, pending: list[_Pending] = pending) -> None:
                    if targets:
                        pending.append(
                            _send_to_backends(
                                model,
                                fmt,
                                path,
                                inputs,
                                targets,
                                custom_objects=custom_objects,
                                compile=compile,
                            )
                        )

                diff, reloaded, _path = _check_format(
                    model,
                    fmt,
                    fmt_dir,
                    inputs,
                    original,
                    rtol=rtol,
                    atol=atol,
                    custom_objects=custom_objects,
                    compile=compile,
                    on_saved=send,
                )
                diffs.append(diff)
                if reloaded is not None:
                    models[fmt] = reloaded
                for sent in pending:
                    diffs += _receive_from_backends(
                        sent, original, fmt=fmt, rtol=rtol, atol=atol, compile=compile
                    )
        roundtrip = RoundtripDiff(diffs, rtol=rtol, atol=atol, backend=here)
        if roundtrip:
            if keep_on_failure:
                roundtrip.folder = str(workdir)
            raise RoundtripError(roundtrip)
    except BaseException:
        if not keep_on_failure:
            shutil.rmtree(workdir, ignore_errors=True)
        raise
    shutil.rmtree(workdir, ignore_errors=True)
    return RoundtripResult(models=models, diff=roundtrip, inputs=inputs, outputs=original.outputs)
