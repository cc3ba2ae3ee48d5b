"""A model as plain data (:class:`ModelState`: outputs, every weight and variable, optimizer and
compile state, metric names, config, layer attributes), and two of them compared into a
:class:`~.report.FormatDiff`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pytest_kerasmodel.compare import (
    ArrayDiff,
    ConfigChange,
    compare_arrays,
    compare_configs,
    compare_named_arrays,
    compare_outputs,
)
from pytest_kerasmodel.frameworks import TF_KERAS
from pytest_kerasmodel.roundtrip.hints import _BACKEND_MODULE, failure_of
from pytest_kerasmodel.roundtrip.report import (
    AttributeChange,
    ForeignOptimizer,
    FormatDiff,
    LoadFailure,
    MetricNamesChange,
    VocabularyChange,
)

if TYPE_CHECKING:  # pragma: no cover
    from pytest_kerasmodel.frameworks.base import KerasAdapter

#: config keys ignored at every depth when comparing a model's config with its reloaded twin
IGNORED_CONFIG_KEYS: tuple[str, ...] = ("compile_config",)


#: extra keys ignored for formats that do not store a ``build_config``
IGNORED_CONFIG_KEYS_BY_FORMAT: dict[str, tuple[str, ...]] = {
    "h5": ("build_config",),
    "savedmodel": ("build_config",),  # tf-keras's SavedModel stores none either
}


@dataclass
class ModelState:
    """A model as plain data (arrays, dicts, strings), taken once from the original and once
    from each reloaded model, here or in a child process under another backend
    (:mod:`pytest_kerasmodel.roundtrip.backends`), then compared by :func:`compare_states`."""

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
    #: each lookup layer's vocabulary (``keras3.vocabularies``), kept outside its variables
    vocabularies: dict[str, dict[str, Any]] = field(default_factory=dict)


def model_state(
    model: Any, inputs: Any, *, framework: KerasAdapter, with_compile: bool, call: bool = True
) -> tuple[ModelState, LoadFailure | None]:
    """``model`` as a :class:`ModelState`, read by ``framework`` (the adapter of its Keras:
    :mod:`~pytest_kerasmodel.frameworks.keras3` or :mod:`~pytest_kerasmodel.frameworks.tfkeras`,
    which fill the same state), and how calling it failed (its other state is taken all the
    same, so that a layer that lost its vocabulary is named even when the call fails).
    ``call=False`` raises what the call raised (the original model must work)."""
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
        vocabularies=framework.vocabularies(model),
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


def _compare_labelled(
    original: ModelState, new: ModelState, kind: str, rtol: float, atol: float
) -> list[ArrayDiff]:
    """The ``weights`` or ``variables`` of two states compared, each side with its own labels
    (``weight_labels`` / ``variable_labels``: what the report calls each array)."""
    label = f"{kind[:-1]}_labels"
    return compare_named_arrays(
        getattr(original, kind),
        getattr(new, kind),
        rtol,
        atol,
        labels=getattr(original, label),
        actual_labels=getattr(new, label),
    )


#: why a format loses a lookup layer's vocabulary: it stores no assets, where ``.keras`` keeps it
VOCABULARY_LOST_BY_FORMAT = {
    "h5": (
        "legacy .h5 stores no layer assets, where an adapted lookup layer keeps its vocabulary: "
        "pass vocabulary= to the layer's constructor (it is then in the config) or save as .keras"
    ),
    "weights": (
        ".weights.h5 holds variables only, and a lookup layer's vocabulary is an asset: pass "
        "vocabulary= to the layer's constructor (it is then in the config) or save as .keras"
    ),
}


def _compare_vocabularies(
    original: ModelState, new: ModelState, fmt: str
) -> list[VocabularyChange]:
    """Each lookup layer's vocabulary against its reloaded twin's (matched by place): lost when
    the reloaded layer has none or only a prefix of the original's (the mask and OOV tokens)."""
    changes = []
    for key, old in original.vocabularies.items():
        got = new.vocabularies.get(key)
        tokens = old["tokens"]
        if tokens is None or got is None or got["class_name"] != old["class_name"]:
            continue  # structural changes show in the config and weights checks
        now = got["tokens"]
        if now == tokens:
            continue
        first = None
        if now is not None and now != tokens[: len(now)]:
            i = next(i for i, (a, b) in enumerate(zip(tokens, now, strict=False)) if a != b)
            first = (i, tokens[i], now[i])
        elif now is not None and len(now) > len(tokens):
            first = (len(tokens), "", now[len(tokens)])
        changes.append(
            VocabularyChange(
                layer=old["layer"],
                class_name=old["class_name"],
                old_size=len(tokens),
                new_size=None if now is None else len(now),
                first_difference=first,
                reason=VOCABULARY_LOST_BY_FORMAT.get(fmt, "") if first is None else "",
            )
        )
    return changes


def _compare_variables(
    original: ModelState, new: ModelState, rtol: float, atol: float, result: FormatDiff
) -> None:
    diffs = _compare_labelled(original, new, "variables", rtol, atol)
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
        # are keyed by the weight's structural key instead (see keras3.optimizer_state).
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
    result.vocabulary = _compare_vocabularies(original, new, fmt)
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
    result.weights = _compare_labelled(original, new, "weights", rtol, atol)


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
