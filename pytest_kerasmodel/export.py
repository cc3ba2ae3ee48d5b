"""Export a model, run the artifact with its format's own runtime, compare with Keras.

:func:`assert_export` calls ``model.export(...)`` for each format (``tf_saved_model``,
``onnx``, ``litert``, ``openvino``) into a private temporary folder, loads the artifact with that
format's runtime (``tf.saved_model.load``'s serving signature, ``onnxruntime.InferenceSession``,
the ``ai_edge_litert`` signature runner, ``openvino.Core().compile_model``) and compares every
output with ``model(inputs, training=False)``:

- at every batch size of ``batch_sizes``, so a batch dimension baked in at export fails;
- for inputs with a ``None`` axis besides the batch (a time or length axis), at a second length
  too, so a length baked in at export fails.

The data flows one way: model -> runtime outputs (:mod:`pytest_kerasmodel.frameworks.exporters`) ->
comparisons (:mod:`pytest_kerasmodel.compare`) -> :class:`ExportDiff` -> text.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pytest_kerasmodel.compare import ArrayDiff, compare_arrays
from pytest_kerasmodel.diff import MAX_LISTED, Diff, indent, short_text
from pytest_kerasmodel.errors import ExportError
from pytest_kerasmodel.options import (
    DEFAULT_ATOL,
    DEFAULT_EXPORT_FORMATS,
    DEFAULT_RTOL,
    KNOWN_EXPORT_FORMATS,
)

#: the formats, in the order reports show them
EXPORT_FORMATS = KNOWN_EXPORT_FORMATS
#: the length a ``None`` time axis gets in the second run (the first uses inputs.NONE_DIM)
SECOND_LENGTH = 5
#: a float output of shape (samples, classes) with at least this many classes is compared by
#: its argmax too (the share of samples whose predicted class changed)
CLASS_AXIS_MIN = 2

_STAGE_FAILED = {
    "export": "exporting",
    "load": "loading the artifact",
    "call": "running the artifact",
}


@dataclass
class ExportFailure:
    """Exporting, loading or running the artifact raised: the exporter's message and a hint."""

    stage: str
    error_type: str
    message: str
    hint: str | None = None
    package: str | None = None  # a missing pip package, when that is the cause
    case: str | None = None  # the inputs being run when the call failed

    def render(self) -> str:
        lines = [
            short_text(line, 400) for line in self.message.strip().splitlines() if line.strip()
        ][:12]
        where = f" ({self.case})" if self.case else ""
        text = f"{_STAGE_FAILED.get(self.stage, self.stage)} failed{where}: {self.error_type}"
        out = [f"{text}: {lines[0] if lines else ''}"]
        out += [f"      {line}" for line in lines[1:]]
        if self.package:
            out.append(f"    missing package: {self.package}")
        if self.hint:
            out.append(f"    hint: {self.hint}")
        return "\n".join(out)


@dataclass
class OutputDiff(Diff):
    """One output of one run that differs: the array diff (numpy-style) and more figures."""

    case: str
    diff: ArrayDiff
    mean_abs_diff: float | None = None
    mean_rel_diff: float | None = None
    argmax_changed: int | None = None  # samples whose argmax moved, for class-score outputs
    samples: int | None = None

    def is_empty(self) -> bool:
        return False

    def render(self) -> str:
        first, *rest = self.diff.render().splitlines()
        extra = []
        if self.mean_abs_diff is not None:
            extra.append(f"mean abs diff {_num(self.mean_abs_diff)}")
        if self.mean_rel_diff is not None:
            extra.append(f"mean rel diff {_num(self.mean_rel_diff)}")
        lines = [f"{self.case}: {first}" + (f", {', '.join(extra)}" if extra else "")]
        if self.argmax_changed is not None and self.samples:
            share = 100.0 * self.argmax_changed / self.samples
            lines.append(
                f"    argmax changed for {self.argmax_changed} of {self.samples} samples "
                f"({share:.3g}%)"
            )
        return "\n".join(lines + rest)


@dataclass
class FormatExportDiff(Diff):
    """One format: the failure that stopped it, or what differed, and the figures of all runs."""

    format: str
    file: str
    rtol: float
    atol: float
    failure: ExportFailure | None = None
    outputs: list[OutputDiff] = field(default_factory=list)
    cases: list[str] = field(default_factory=list)  # every run compared
    max_abs_diff: float = 0.0  # over every output of every run, also when within tolerance
    max_rel_diff: float = 0.0
    notes: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        return self.failure is None and not self.outputs

    def figures(self) -> str:
        return f"max abs diff {_num(self.max_abs_diff)}, max rel diff {_num(self.max_rel_diff)}"

    def render(self) -> str:
        head = f"[{self.format}] {self.file} (rtol={self.rtol:g}, atol={self.atol:g})"
        if self.failure is not None:
            lines = [f"{head}: {self.failure.stage} failed", f"  {self.failure.render()}"]
        elif self.outputs:
            lines = [
                f"{head}: {len(self.outputs)} output(s) differ in "
                f"{len({o.case for o in self.outputs})} of {len(self.cases)} run(s); "
                f"{self.figures()}"
            ]
            lines += [indent(o.render(), "  ") for o in self.outputs[:MAX_LISTED]]
            if len(self.outputs) > MAX_LISTED:
                lines.append(f"  ... {len(self.outputs) - MAX_LISTED} more (see the error's .diff)")
        else:
            return f"{head}: ok, {len(self.cases)} run(s), {self.figures()}"
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


@dataclass
class ExportDiff(Diff):
    """Every format checked: the ``.diff`` of :class:`~pytest_kerasmodel.errors.ExportError`."""

    formats: list[FormatExportDiff]

    def is_empty(self) -> bool:
        return all(f.is_empty() for f in self.formats)

    def render(self) -> str:
        bad = [f for f in self.formats if not f.is_empty()]
        names = ", ".join(repr(f.format) for f in bad)
        head = (
            f"assert_export: the exported model differs from Keras as {names}"
            if bad
            else "assert_export: every exported artifact agrees with Keras"
        )
        return "\n".join([head, *(f.render() for f in self.formats)])


@dataclass
class ExportResult:
    """What :func:`assert_export` returns: the runtime outputs per format, for more asserts.

    ``result["onnx"]`` is the list of the artifact's outputs (in ``output_names`` order) for
    ``inputs``, the first run's inputs; ``expected`` the Keras outputs for them.
    """

    outputs: dict[str, list[Any]]
    output_names: list[str]
    inputs: Any
    expected: list[Any]
    diff: ExportDiff

    def __getitem__(self, fmt: str) -> list[Any]:
        return self.outputs[fmt]

    @property
    def formats(self) -> tuple[str, ...]:
        return tuple(self.outputs)


def _num(value: float) -> str:
    return f"{value:.3g}"


# -- tolerances, formats, inputs ---------------------------------------------------------------


def _formats(value: Any) -> tuple[str, ...]:
    """Formats from a list or a string ("onnx litert" or "onnx,litert"), unknown ones refused."""
    if value is None:
        return DEFAULT_EXPORT_FORMATS
    words = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    chosen = tuple(dict.fromkeys(str(w) for w in words))
    unknown = [f for f in chosen if f not in EXPORT_FORMATS]
    if unknown or not chosen:
        raise ValueError(
            f"assert_export: unknown export format(s) {unknown}; choose from {list(EXPORT_FORMATS)}"
        )
    return chosen


def _tolerance(value: float | Mapping[str, float] | None, fmt: str, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, Mapping):
        unknown = [k for k in value if k not in EXPORT_FORMATS]
        if unknown:
            raise ValueError(
                f"assert_export: tolerance given for unknown format(s) {unknown}; "
                f"choose from {list(EXPORT_FORMATS)}"
            )
        return float(value.get(fmt, default))
    return float(value)


@dataclass
class _Case:
    label: str
    inputs: Any
    expected: list[Any]


def _resize_batch(value: Any, batch: int) -> Any:
    array = np.asarray(value)
    if array.ndim == 0 or array.shape[0] == batch:
        return array
    reps = -(-batch // array.shape[0])
    return np.concatenate([array] * reps, axis=0)[:batch]


def _shorten(value: Any, axes: Sequence[int], length: int) -> Any:
    array = np.asarray(value)
    index = tuple(slice(0, length) if ax in axes else slice(None) for ax in range(array.ndim))
    return array[index]


def _map_inputs(inputs: Any, fn: Any) -> Any:
    if isinstance(inputs, Mapping):
        return {k: fn(k, v) for k, v in inputs.items()}
    if isinstance(inputs, (list, tuple)):
        return [fn(i, v) for i, v in enumerate(inputs)]
    return fn(0, inputs)


def _none_axes(signature: Any) -> dict[Any, list[int]]:
    """Per input (its dict key or position), the axes other than the batch that are ``None``."""
    found: dict[Any, list[int]] = {}
    for i, spec in enumerate(signature.specs):
        axes = [ax for ax, d in enumerate(spec.shape) if ax > 0 and d is None]
        if axes:
            found[spec.name if signature.structure == "dict" else i] = axes
    return found


def _cases(model: Any, inputs: Any, batch_sizes: Sequence[int]) -> list[_Case]:
    """The runs: every batch size, and each again at a second length of the ``None`` axes.

    Generated inputs are drawn anew at the second length (another seed), so its values are no
    prefix of the first run's; given inputs are cut to half their length there.
    """
    import dataclasses

    from pytest_kerasmodel.frameworks import keras3
    from pytest_kerasmodel.frameworks.inputs import InputSignature, inputs_for_signature

    signature = keras3.input_signature(model)
    none_axes = _none_axes(signature)
    second = InputSignature(
        tuple(
            dataclasses.replace(
                s,
                shape=tuple(
                    SECOND_LENGTH if (ax > 0 and d is None) else d for ax, d in enumerate(s.shape)
                ),
            )
            for s in signature.specs
        ),
        signature.structure,
    )
    runs: list[tuple[str, Any]] = []
    for batch in batch_sizes:
        if inputs is None:
            batch_inputs = inputs_for_signature(signature, batch_size=batch)
        else:
            batch_inputs = _map_inputs(inputs, lambda _k, v, b=batch: _resize_batch(v, b))
        runs.append((f"batch {batch}", batch_inputs))
        if not none_axes:
            continue
        if inputs is None:
            length = SECOND_LENGTH
            shorter = inputs_for_signature(second, batch_size=batch, seed=1)
        else:
            known = [
                np.asarray(v).shape[ax]
                for k, v in _items(batch_inputs)
                for ax in none_axes.get(k, [])
            ]
            length = max(1, min(known) // 2) if known else 0
            if not known or length == min(known):
                continue  # a length-1 axis has no shorter length to try
            shorter = _map_inputs(
                batch_inputs, lambda k, v, n=length: _shorten(v, none_axes.get(k, []), n)
            )
        runs.append((f"batch {batch}, length {length}", shorter))
    cases = []
    for label, case_inputs in runs:
        expected = _flat_outputs(model, keras3.call_model(model, case_inputs))
        cases.append(_Case(label, case_inputs, expected))
    return cases


def _items(inputs: Any) -> list[tuple[Any, Any]]:
    if isinstance(inputs, Mapping):
        return list(inputs.items())
    if isinstance(inputs, (list, tuple)):
        return list(enumerate(inputs))
    return [(0, inputs)]


def _flat_outputs(model: Any, outputs: Any) -> list[Any]:
    if isinstance(outputs, Mapping):
        return [np.asarray(outputs[k]) for k in sorted(outputs)]
    if isinstance(outputs, (list, tuple)):
        return [np.asarray(o) for o in outputs]
    return [np.asarray(outputs)]


def _output_names(model: Any, outputs: Any) -> list[str]:
    from pytest_kerasmodel.frameworks import keras3

    if isinstance(outputs, Mapping):
        return [str(k) for k in sorted(outputs)]
    names = keras3.output_names(model) or []
    count = len(outputs) if isinstance(outputs, (list, tuple)) else 1
    if len(names) == count:
        return names
    return [f"output[{i}]" for i in range(count)] if count > 1 else ["output"]


def _input_names(model: Any) -> list[str]:
    from pytest_kerasmodel.frameworks import keras3

    return [s.name for s in keras3.input_signature(model).specs]


# -- comparing ---------------------------------------------------------------------------------


def _looks_like_class_scores(expected: np.ndarray) -> bool:
    """A float output of shape (samples, classes): its argmax is the predicted class."""
    kind, shape = expected.dtype.kind, expected.shape
    return kind == "f" and len(shape) == 2 and shape[-1] >= CLASS_AXIS_MIN


def _compare(
    name: str, case: str, expected: np.ndarray, actual: Any, rtol: float, atol: float
) -> tuple[OutputDiff | None, float, float]:
    """The diff of one output (None when within tolerance) and its max abs and rel figures."""
    actual = np.asarray(actual)
    diff = compare_arrays(name, expected, actual, rtol, atol)
    max_abs = max_rel = 0.0
    mean_abs = mean_rel = None
    if expected.shape == actual.shape and expected.dtype.kind in "fiu" and expected.size:
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            e = expected.astype(np.float64)
            a = actual.astype(np.float64)
            abs_diff = np.abs(a - e)
            rel = abs_diff / np.abs(e)
        finite = abs_diff[np.isfinite(abs_diff)]
        if finite.size:
            max_abs, mean_abs = float(finite.max()), float(finite.mean())
        finite_rel = rel[np.isfinite(rel)]
        if finite_rel.size:
            max_rel, mean_rel = float(finite_rel.max()), float(finite_rel.mean())
    if diff is None:
        return None, max_abs, max_rel
    out = OutputDiff(case, diff, mean_abs, mean_rel)
    if expected.shape == actual.shape and _looks_like_class_scores(expected):
        out.argmax_changed = int(np.count_nonzero(expected.argmax(-1) != actual.argmax(-1)))
        out.samples = int(expected.shape[0])
    return out, max_abs, max_rel


# -- failures ----------------------------------------------------------------------------------


def _missing_module(exc: BaseException) -> str | None:
    from pytest_kerasmodel.frameworks.exporters import PIP_PACKAGES

    name = getattr(exc, "name", None)
    if isinstance(exc, ImportError) and name:
        return str(name).split(".")[0]
    text = str(exc)
    for module in PIP_PACKAGES:
        if f"requires the {module} module" in text or f"No module named '{module}" in text:
            return module
    return None


def _failure(stage: str, exc: BaseException, model: Any, fmt: str) -> ExportFailure:
    from pytest_kerasmodel.frameworks import keras3
    from pytest_kerasmodel.frameworks.exporters import PIP_PACKAGES

    message = str(exc).strip() or type(exc).__name__
    failure = ExportFailure(stage, type(exc).__name__, message)
    module = _missing_module(exc)
    if module is not None:
        package = PIP_PACKAGES.get(module, module)
        failure.package = package
        failure.hint = (
            f"the {fmt!r} format needs {package!r}: pip install {package} "
            "(or pip install 'pytest-kerasmodel[export]' for every export runtime)"
        )
        return failure
    backend = keras3.keras().backend.backend()
    dtype_hint = _dtype_hint(model)
    if dtype_hint:
        failure.hint = dtype_hint
    elif backend == "torch" and keras3.has_rnn(model):
        failure.hint = (
            "with the torch backend, an RNN is exported with a static time axis: pass "
            "input_signature= with a fixed length (keras.InputSpec(shape=(None, LENGTH, ...)))"
        )
    elif "Flex delegate" in message or "Select TensorFlow op" in message:
        failure.hint = (
            "the converter kept TensorFlow ops it has no LiteRT kernel for (SELECT_TF_OPS, e.g. "
            "an RNN over a None time axis becomes TensorList ops); ai-edge-litert's interpreter "
            "has no Flex delegate: export with a fixed time length (input_signature=) or unroll"
        )
    elif "TensorList" in message and fmt == "openvino":
        failure.hint = (
            "OpenVINO has no conversion for TensorList, which an RNN over a None time axis "
            "becomes: export with a fixed time length (input_signature=) or unroll=True"
        )
    return failure


def _dtype_hint(model: Any) -> str | None:
    """A hint when layers compute in another dtype than float32 (Keras's exporters expect it)."""
    from pytest_kerasmodel.frameworks import keras3

    layers = keras3.non_float32_layers(model)
    if not layers:
        return None
    shown = ", ".join(f"{name} ({policy})" for name, policy in layers[:5])
    more = f" and {len(layers) - 5} more" if len(layers) > 5 else ""
    return (
        f"{len(layers)} layer(s) use a dtype policy other than float32: {shown}{more}; "
        "Keras's exporters expect 'float32' (the runtime computes them its own way, or, for "
        "LiteRT, keeps them as TensorFlow Flex ops): export a float32 copy, or set a tolerance "
        "for this format on purpose"
    )


# -- one format --------------------------------------------------------------------------------


def _check_format(
    model: Any,
    fmt: str,
    folder: Path,
    cases: list[_Case],
    names: list[str],
    keras_inputs: list[str],
    rtol: float,
    atol: float,
    export_kwargs: dict[str, Any],
) -> tuple[FormatExportDiff, list[Any] | None]:
    from pytest_kerasmodel.frameworks import exporters

    result = FormatExportDiff(fmt, exporters.EXPORT_FILES[fmt], rtol, atol)
    try:
        exporters.import_runtime(fmt)
    except ImportError as exc:
        result.failure = _failure("load", exc, model, fmt)
        return result, None
    try:
        path = exporters.export_model(model, fmt, str(folder), **export_kwargs)
    except Exception as exc:
        result.failure = _failure("export", exc, model, fmt)
        return result, None
    try:
        runtime = exporters.load_runtime(fmt, path)
    except Exception as exc:
        result.failure = _failure("load", exc, model, fmt)
        return result, None
    result.notes += runtime.notes
    first: list[Any] | None = None
    for case in cases:
        try:
            actual = runtime.run(exporters.flatten_inputs(case.inputs, runtime, keras_inputs))
        except Exception as exc:
            result.failure = _failure("call", exc, model, fmt)
            result.failure.case = case.label
            return result, first
        result.cases.append(case.label)
        if first is None:
            first = actual
        if len(actual) != len(case.expected):
            result.failure = ExportFailure(
                "call",
                "OutputMismatch",
                f"the artifact gives {len(actual)} output(s) {runtime.output_names}, the model "
                f"{len(case.expected)} {names}",
                case=case.label,
            )
            return result, first
        for name, expected, got in zip(names, case.expected, actual, strict=True):
            diff, max_abs, max_rel = _compare(name, case.label, expected, got, rtol, atol)
            result.max_abs_diff = max(result.max_abs_diff, max_abs)
            result.max_rel_diff = max(result.max_rel_diff, max_rel)
            if diff is not None:
                result.outputs.append(diff)
    if not result.outputs:
        result.notes = []
    elif hint := _dtype_hint(model):
        result.notes.append(hint)
    return result, first


def assert_export(
    model: Any,
    inputs: Any = None,
    *,
    formats: str | Sequence[str] | None = None,
    rtol: float | Mapping[str, float] | None = None,
    atol: float | Mapping[str, float] | None = None,
    batch_sizes: Sequence[int] = (1, 4),
    **export_kwargs: Any,
) -> ExportResult:
    """Export ``model`` in each format, run it with that format's runtime, compare with Keras.

    Args:
        model: a built Keras model.
        inputs: samples (array, list or dict, as the model takes them); generated from the
            model's input specs when ``None`` (as :func:`~pytest_kerasmodel.make_inputs` does).
            Given inputs are tiled or cut to every batch size.
        formats: any of ``"tf_saved_model"``, ``"onnx"``, ``"litert"``, ``"openvino"``;
            default ``("tf_saved_model",)``.
        rtol, atol: a number, or a dict per format (``{"openvino": 1e-2}``; formats not named
            get the defaults 1e-5 and 1e-6), ``np.allclose`` semantics.
        batch_sizes: every batch size run; a ``None`` time axis also runs at a second length.
        **export_kwargs: passed to ``model.export`` (``input_signature=``, ``opset_version=``).

    Returns:
        An :class:`ExportResult`: ``result["onnx"]`` is the runtime's outputs for the first run.

    Raises:
        ExportError: an artifact differs, or exporting, loading or running it failed; its
            ``.diff`` is an :class:`ExportDiff`.
    """
    __tracebackhide__ = True
    from pytest_kerasmodel.frameworks import keras3

    chosen = _formats(formats)
    if not getattr(model, "built", False):
        raise ValueError("assert_export: the model is not built; call it on data first")
    sizes = tuple(int(b) for b in batch_sizes)
    if not sizes or any(b < 1 for b in sizes):
        raise ValueError(f"assert_export: batch_sizes must be positive, got {batch_sizes!r}")
    tolerances = {
        fmt: (_tolerance(rtol, fmt, DEFAULT_RTOL), _tolerance(atol, fmt, DEFAULT_ATOL))
        for fmt in chosen
    }
    workdir = Path(tempfile.mkdtemp(prefix="kerasmodel-export-"))
    try:
        with keras3.preserved_global_state():
            cases = _cases(model, inputs, sizes)
            raw = keras3.call_model(model, cases[0].inputs)
            names = _output_names(model, raw)
            keras_inputs = _input_names(model)
            diffs: list[FormatExportDiff] = []
            outputs: dict[str, list[Any]] = {}
            for fmt in chosen:
                folder = workdir / fmt
                folder.mkdir()
                fmt_rtol, fmt_atol = tolerances[fmt]
                diff, first = _check_format(
                    model,
                    fmt,
                    folder,
                    cases,
                    names,
                    keras_inputs,
                    fmt_rtol,
                    fmt_atol,
                    dict(export_kwargs),
                )
                diffs.append(diff)
                if first is not None:
                    outputs[fmt] = first
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    export_diff = ExportDiff(diffs)
    if export_diff:
        raise ExportError(export_diff)
    return ExportResult(outputs, names, cases[0].inputs, cases[0].expected, export_diff)
