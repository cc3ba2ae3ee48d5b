"""Save a model, reload it, compare everything, and name what changed.

:func:`assert_roundtrip` saves a model in each requested format into a temporary folder,
reloads it and compares the reloaded model with the original:

- ``outputs``: predictions on the same inputs with ``training=False``, every output;
- ``weights``: every weight, trainable and non-trainable, by its place (a weight created without
  a name, which Keras numbers ``variable_17`` anew on each reload, by its layer and creation order);
- ``variables``: every other variable of ``model.variables`` (seed-generator states), by place.
  Keras never saves a seed generator's state, so a difference there is a note (the random
  stream of a Dropout restarts on reload), not a failure;
- ``vocabulary``: every lookup layer's vocabulary, kept outside its variables (an asset of
  ``.keras``; legacy ``.h5`` and ``.weights.h5`` lose an adapted one);
- ``config``: the model's serialized config (what ``config.json`` holds), except the keys in
  :data:`~.state.IGNORED_CONFIG_KEYS`;
- ``optimizer`` and ``compile``: the optimizer's class, hyperparameters and variables (step
  counter and slots, matched so that Keras renaming them on reload does not matter), the
  loss (with the arguments a loss object calls its function with) and the metrics, by what
  they compute and by the names ``fit``/``evaluate`` logs give them (history keys). An
  optimizer the original never built (compiled, never trained) has no state to lose: its
  variables are not compared;
- ``layers``: the simple public attributes of every layer, to name a constructor argument
  that ``get_config`` forgot or state kept outside Keras variables.

Config keys ignored on reload (:data:`~.state.IGNORED_CONFIG_KEYS`), at any depth of the config:

- ``compile_config`` of the model: compared by the ``compile`` and ``optimizer`` checks, with
  losses and metrics by what they compute (``"mse"`` equals ``"mean_squared_error"``);
- ``build_config`` under the ``h5`` and (tf-keras) ``savedmodel`` formats only: they store
  none, so Keras rebuilds layers from the model's input shapes and a batch size a layer
  recorded when it was built (e.g. by ``Normalization.adapt()``) comes back as ``None``.

The ``layers`` check does not compare a layer's ``name`` (auto-generated names such as
``dense_3`` change on reload; the names that matter are in the config), nor a model's
training-loop state and compile arguments (``keras3.IGNORED_MODEL_ATTRIBUTES``), which the
``compile`` check compares, nor attributes a backend puts on every layer
(``keras3.BACKEND_LAYER_ATTRIBUTES``: torch's ``nn.Module.training`` mode).

Nothing else is ignored. Numbers in configs compare with a relative tolerance of 1e-6 (a
hyperparameter read back from a float32 variable differs in its last digits).

A tf-keras (Keras 2) model is saved and reloaded with tf-keras's own API, in its formats
``keras``, ``h5``, ``weights`` and ``savedmodel`` (:mod:`pytest_kerasmodel.frameworks.tfkeras`),
and goes through the same checks and report. Which Keras a model belongs to is worked out once,
here, and its adapter passed down to every step.

The data flows one way: model -> plain data (:mod:`.state`, through the Keras adapter) ->
comparisons (:mod:`pytest_kerasmodel.compare`) -> :class:`~.report.RoundtripDiff`
(:mod:`.report`) -> text.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_kerasmodel.errors import RoundtripError
from pytest_kerasmodel.options import DEFAULT_ATOL, DEFAULT_FORMATS, DEFAULT_RTOL, KNOWN_FORMATS
from pytest_kerasmodel.roundtrip.hints import failure_of
from pytest_kerasmodel.roundtrip.notes import warn_notes
from pytest_kerasmodel.roundtrip.report import FormatDiff, RoundtripDiff, RoundtripResult
from pytest_kerasmodel.roundtrip.state import ModelState, compare_states, model_state

if TYPE_CHECKING:  # pragma: no cover
    from pytest_kerasmodel.frameworks.base import KerasAdapter


def _check_format(
    model: Any,
    fmt: str,
    folder: Path,
    inputs: Any,
    original: ModelState,
    *,
    framework: KerasAdapter,
    rtol: float,
    atol: float,
    custom_objects: dict[str, Any] | None,
    compile: bool,
    on_saved: Callable[[str], None] | None = None,
) -> tuple[FormatDiff, Any, str | None]:
    """Save ``model`` as ``fmt`` with ``framework`` (its Keras's adapter) and check it here;
    returns the diff, the reloaded model and the saved file's path (``None`` when saving
    failed). ``on_saved(path)`` runs as soon as the file is written (the other backends start
    reloading it while this process does)."""
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
    new, result.failure = model_state(reloaded, inputs, framework=framework, with_compile=compile)
    compare_states(original, new, result, fmt=fmt, rtol=rtol, atol=atol, compile=compile)
    result.hints = framework.hints_for(result, original)
    return result, reloaded, path


def _formats(formats: str | Iterable[str] | None, framework: KerasAdapter) -> tuple[str, ...]:
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
            kept for the session (:mod:`pytest_kerasmodel.roundtrip.backends`), and compare what it
            gives back with the original in the same report (``[keras -> jax]``). This
            process's own backend is always checked here. A backend not installed is a
            :class:`~pytest_kerasmodel.frameworks.BackendError` naming the package to install.

    Returns:
        A :class:`RoundtripResult` with the reloaded model of each format.

    Raises:
        RoundtripError: the reloaded model differs, or saving / reloading / calling failed;
            its ``.diff`` is a :class:`RoundtripDiff`.
    """
    __tracebackhide__ = True
    from pytest_kerasmodel.frameworks import TF_KERAS, BackendError, module_for, parse_backends
    from pytest_kerasmodel.frameworks.inputs import inputs_for_signature
    from pytest_kerasmodel.roundtrip import backends as other_backends

    try:
        framework = module_for(model)
    except ValueError as exc:
        raise ValueError(f"assert_roundtrip: {exc}") from None
    chosen = _formats(formats, framework)
    here = framework.backend()
    targets = [
        b for b in parse_backends(backends, source="assert_roundtrip: backends") if b != here
    ]
    if TF_KERAS in targets:
        raise BackendError(
            f"assert_roundtrip: backends={targets}: {TF_KERAS!r} is the gate's "
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
                inputs = inputs_for_signature(framework.input_signature(model))
            original, _ = model_state(
                model, inputs, framework=framework, with_compile=compile, call=False
            )
            for fmt in chosen:
                fmt_dir = workdir / fmt
                fmt_dir.mkdir()
                pending: list[other_backends.Pending] = []

                def send(
                    path: str, fmt: str = fmt, pending: list[other_backends.Pending] = pending
                ) -> None:
                    if targets:
                        pending.append(
                            other_backends.send_to_backends(
                                model,
                                fmt,
                                path,
                                inputs,
                                targets,
                                framework=framework,
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
                    framework=framework,
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
                    diffs += other_backends.receive_from_backends(
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
    warn_notes(roundtrip)
    return RoundtripResult(models=models, diff=roundtrip, inputs=inputs, outputs=original.outputs)
