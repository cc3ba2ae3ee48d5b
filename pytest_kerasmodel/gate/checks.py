"""The bodies of the gate's checks on one artifact: integrity, safety, load, compile, finite,
structure, predictions and budgets.

Each ``check_*`` takes the :class:`~pytest_kerasmodel.gate.subject.Subject` and returns a
:class:`~pytest_kerasmodel.gate.protocol.CheckResult` or raises ``CheckFailure`` /
``CheckSkipped``; :mod:`pytest_kerasmodel.gate.runner` runs them in order. Nothing here imports
Keras unless a load or predictions check needs the model; h5py is imported inside the functions
that read HDF5.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

from pytest_kerasmodel import artifacts
from pytest_kerasmodel.artifacts.base import KERAS_ZIP_WEIGHTS_NPZ
from pytest_kerasmodel.errors import ArtifactError
from pytest_kerasmodel.frameworks import loader
from pytest_kerasmodel.gate.loading import _import_keras, _tf_keras_savedmodel, load
from pytest_kerasmodel.gate.protocol import (
    NO_BUDGET,
    PASSED,
    CheckFailure,
    CheckResult,
    CheckSkipped,
    Request,
    _no_budget,
    not_applicable,
    size_on_disk,
)
from pytest_kerasmodel.gate.subject import Subject
from pytest_kerasmodel.gate.zipcrc import _test_zip_crcs, _ZipCrcJob


def check_integrity(subject: Subject) -> CheckResult:
    """The file opens (read-only, hygiene first) and its content is a Keras artifact.

    Reads it once through :func:`~pytest_kerasmodel.structure.describe.describe_artifact`, counting
    NaN and
    Inf values too when the finite check is asked for, so the finite, structure and budgets
    checks need no second pass over the file. A .keras archive's large members have their CRCs
    checked meanwhile in a thread (:class:`_ZipCrcJob`); when ``subject.defer_crc`` is set, the
    check returns before that ends and leaves it in ``subject.pending_crc`` (see
    :func:`iter_checks`).
    """
    from pytest_kerasmodel.structure.describe import describe_artifact

    path = subject.path
    subject.size = size_on_disk(path)
    job: _ZipCrcJob | None = None
    try:
        try:
            opened = subject.opened()
            if opened.format == artifacts.FORMAT_KERAS:
                job = _ZipCrcJob.start_for(opened)
            description = describe_artifact(
                opened, scan_values="finite" in subject.request.checks, tree=False
            )
        except artifacts.HygieneError as exc:
            raise CheckFailure(f"refused before reading any data: {exc.reason}") from None
        except ArtifactError as exc:
            raise CheckFailure(exc.reason + (f" ({exc.hint})" if exc.hint else "")) from None
        subject.description = description
        subject.format = description["format"]
        subject.writer = description["keras_version"] or ""
        subject.backend = description["backend"] or ""
        subject.size = description["file_size"]
        if subject.format in artifacts.EXPORTED_FORMATS:
            return _exported_integrity(subject, opened)
        if not _never_built(opened):
            subject.params = int(description["params"])
        if subject.format == artifacts.FORMAT_KERAS:
            assert opened.zip is not None
            _test_zip_crcs(opened.zip, skip=job.members if job else ())
            weights = (artifacts.KERAS_ZIP_WEIGHTS, KERAS_ZIP_WEIGHTS_NPZ)
            if not any(m["name"] in weights for m in description["zip"] or []):
                if job is not None:
                    job.finish()  # a damaged member is the first thing to say
                raise CheckFailure(
                    f"the archive has no {artifacts.KERAS_ZIP_WEIGHTS} (nor "
                    f"{KERAS_ZIP_WEIGHTS_NPZ})"
                )
            if job is not None and not subject.defer_crc:
                job.finish()
    except BaseException:
        if job is not None:
            job.cancel()
        raise
    subject.pending_crc = job if subject.defer_crc else None
    writer = f", written by Keras {subject.writer}" if subject.writer else ""
    notes = [n for n in description["notes"] if not n.startswith(("weight ", "variable "))]
    if unread := description.get("unread"):
        listed = unread_text(unread)
        if subject.request.strict:
            raise CheckFailure(
                f"{len(unread)} dataset(s) or attribute(s) that no reader interpreted "
                f"(--keras-strict): {listed}",
                unread=unread,
            )
        notes.append(f"not interpreted ({len(unread)}; --keras-strict fails it): {listed}")
    shown = "".join(f"; note: {n}" for n in notes)
    return CheckResult(PASSED, f"{description['format_title']}{writer}{shown}")


def unread_text(unread: list[dict[str, Any]], shown: int = 8) -> str:
    """The unread entries of a description, each as ``path (reason)``, the first ``shown``."""
    text = ", ".join(f"{u['path']} ({u['reason']})" for u in unread[:shown])
    return text + (f", ... {len(unread) - shown} more" if len(unread) > shown else "")


def _spec_text(spec: artifacts.TensorSpec) -> str:
    dims = (
        "?"
        if spec.shape is None
        else ", ".join("None" if d is None else str(d) for d in spec.shape)
    )
    return f"{spec.name} ({dims}) {spec.dtype}"


def _exported_integrity(subject: Subject, opened: artifacts.Artifact) -> CheckResult:
    """An exported graph parsed by its format's own reader: it must have a serving signature."""
    graph = opened.graph
    if graph is None or (not graph.inputs and not graph.outputs):
        raise CheckFailure(
            f"the {opened.title} has no serving signature: nothing a runtime could call"
        )
    inputs = ", ".join(_spec_text(t) for t in graph.inputs)
    outputs = ", ".join(_spec_text(t) for t in graph.outputs)
    return CheckResult(
        PASSED,
        f"{opened.title}; signature {graph.signature!r}: inputs {inputs}; outputs {outputs}; "
        f"{sum(graph.ops.values())} operation(s) of {len(graph.ops)} kind(s)",
        {"signature": graph.as_dict()},
    )


def _never_built(opened: artifacts.Artifact) -> bool:
    """A Keras 3 model saved before it was ever built: its parameter count is unknown (its
    layers have no variables yet), not zero. Keras 3 writes a model's ``build_config`` once it is
    built (a Functional model always is); an unbuilt Sequential's config has none."""
    config = opened.config
    return (
        opened.format == artifacts.FORMAT_KERAS
        and str(opened.keras_version or "").startswith("3.")
        and isinstance(config, dict)
        and config.get("class_name") in ("Sequential", "Functional", "Model")
        and "build_config" not in config
    )


def check_safety(subject: Subject) -> CheckResult:
    """The safety scan of :mod:`pytest_kerasmodel.safety`: config, zip container, HDF5 hygiene."""
    from pytest_kerasmodel.safety import scan_artifact

    # Share the integrity check's open when it has one. Otherwise (integrity refused the file, or
    # crashed a worker and safety reruns alone in a fresh one) the scan goes by path: it checks the
    # HDF5 tree before reading the attributes that open_artifact reads, and says why as findings.
    source: Path | artifacts.Artifact = subject.already_opened() or subject.path
    allowed = list(subject.request.allowed_modules)
    if subject.request.imports or subject.request.custom_objects:
        # the modules of what the team's code registered (see gate.usercode), nothing else
        allowed += subject.user_code().allowed_modules
    findings = scan_artifact(
        source, allowed_modules=allowed, allowed_classes=subject.request.allowed_classes
    )
    subject.findings = [str(f) for f in findings]
    if subject.findings:
        lines = "\n".join(f"  - {f}" for f in subject.findings)
        raise CheckFailure(f"{len(findings)} finding(s):\n{lines}", findings=subject.findings)
    return CheckResult(PASSED, "no findings")


def check_load(subject: Subject) -> CheckResult:
    if reason := not_applicable("load", subject.format):
        raise CheckSkipped(reason)
    model = load(subject)
    what = f"{type(model).__name__} {model.name!r}"
    if not model.built:  # Keras loads it; count_params() would raise
        subject.params = None
        return CheckResult(PASSED, f"{what}, never built: parameter count unknown")
    subject.params = int(model.count_params())
    return CheckResult(PASSED, f"{what}, {subject.params} parameters")


def check_compile(subject: Subject) -> CheckResult:
    """The artifact reloads compiled (it can resume training) under this worker's backend, with
    an optimizer of this backend: a file written under torch names torch's own optimizer class,
    which other backends import where torch is installed (then training fails) or cannot load
    at all."""
    if reason := not_applicable("load", subject.format):
        raise CheckSkipped(reason.replace("load_model", "load_model(compile=True)"))
    _keras = loader()
    _import_keras(subject)
    if subject.format == artifacts.FORMAT_PRESET:
        raise CheckSkipped("not applicable: a KerasHub preset is loaded by KerasHub, uncompiled")
    if subject.format == artifacts.FORMAT_SAVEDMODEL:
        _tf_keras_savedmodel(subject)
    try:
        model = _keras.load_model(
            subject.path,
            safe_mode=True,
            compile=True,
            custom_objects=subject.user_code().custom_objects or None,
        )
    except Exception as exc:
        from pytest_kerasmodel.roundtrip.run import failure_of

        failure = failure_of("load", exc, _keras)
        text = f"load_model(compile=True) failed under {_keras.backend()}: {failure.message}"
        if failure.hint:
            text += f"\nhint: {failure.hint}"
        raise CheckFailure(text) from None
    optimizer = getattr(model, "optimizer", None)
    compiled = getattr(model, "compiled", None) or getattr(model, "_is_compiled", False)  # tf-keras
    if not compiled or optimizer is None:
        raise CheckSkipped("saved without a compile config: there is no training to resume")
    module = type(optimizer).__module__
    here = _keras.backend()
    prefix = "keras.src.backend."
    if module.startswith(prefix) and module[len(prefix) :].split(".")[0] != here:
        owner = module[len(prefix) :].split(".")[0]
        raise CheckFailure(
            f"the reloaded optimizer is {module}.{type(optimizer).__name__}, the {owner} "
            f"backend's own class, under {here}: training it fails, and where {owner} is not "
            "installed the file does not load compiled at all (Keras saved the optimizer's "
            f"backend module into the file)\nhint: under {here}, reload with compile=False and "
            "compile again"
        )
    return CheckResult(
        PASSED, f"compiled under {here}: {type(optimizer).__name__}, loss {model.loss!r}"
    )


def check_finite(subject: Subject) -> CheckResult:
    """Every floating-point weight is finite: the counts the integrity check's single read took
    (:func:`~pytest_kerasmodel.structure.describe.count_nonfinite`, block by block)."""
    if reason := not_applicable("finite", subject.format):
        raise CheckSkipped(reason)
    assert subject.description is not None and subject.description["values"] is not None
    if subject.description.get("weights_unread"):
        raise CheckSkipped(f"not checked: {subject.description['weights_unread']}")
    d = subject.description
    counts = d["values"]
    shapes = {name: w["shape"] for name, w in d["weights"].items()}
    shapes.update(
        (n, v["shape"]) for n, v in ((d.get("optimizer") or {}).get("variables") or {}).items()
    )
    shapes.update((n, v["shape"]) for n, v in (d.get("metric_variables") or {}).items())
    shapes.update((u["path"], u["shape"]) for u in d.get("unread") or [] if "shape" in u)
    bad = {name: c for name, c in counts.items() if c["nan"] or c["inf"]}
    total = sum(_values(shapes[name]) for name in counts if name in shapes)
    if bad:
        lines = [f"{len(bad)} of {len(counts)} numeric dataset(s) hold NaN or Inf:"]
        for name, c in bad.items():
            parts = [f"{c[k]} {label}" for k, label in (("nan", "NaN"), ("inf", "Inf")) if c[k]]
            of = f" of {_values(shapes[name])} values" if name in shapes else ""
            lines.append(f"  - {name}: {', '.join(parts)}{of}")
        raise CheckFailure("\n".join(lines), variables=bad)
    return CheckResult(PASSED, f"{len(counts)} numeric dataset(s), {total} values, all finite")


def _values(shape: list[int]) -> int:
    size = 1
    for n in shape:
        size *= int(n)
    return size


def check_structure(subject: Subject) -> CheckResult:
    from pytest_kerasmodel.diff import jsonable
    from pytest_kerasmodel.gate import goldens
    from pytest_kerasmodel.structure.expected import (
        StructureDiff,
        compare_descriptions,
        structure_view,
    )

    if not subject.request.golden_structure:
        raise CheckSkipped("no golden structure asked for")
    golden_path = Path(subject.request.golden_structure)
    key = subject.path.name
    assert subject.description is not None
    view = jsonable(structure_view(subject.description))
    if subject.request.update_golden:
        goldens.write_structure(golden_path, key, view)
        return CheckResult(
            PASSED, f"golden structure recorded in {golden_path}", {"written": [str(golden_path)]}
        )
    expected = goldens.read_structure(golden_path, key)
    if expected is None:
        raise CheckSkipped(f"no golden structure ({golden_path}); {goldens.HOW_TO_RECORD}")
    changes = compare_descriptions(expected, view, exact=True)
    if changes:
        diff = StructureDiff(key, f"its golden {golden_path}", changes)
        raise CheckFailure(f"{diff.render()}\n{goldens.HOW_TO_UPDATE}", diff=diff.to_dict())
    return CheckResult(PASSED, f"matches {golden_path.name}")


def check_predictions(subject: Subject) -> CheckResult:
    from pytest_kerasmodel.compare import compare_named_arrays
    from pytest_kerasmodel.gate import goldens

    if reason := not_applicable("predictions", subject.format):
        raise CheckSkipped(reason)
    request = subject.request
    if not request.golden_predictions:
        raise CheckSkipped("no golden predictions asked for")
    golden_path = Path(request.golden_predictions)
    if subject.format in artifacts.EXPORTED_FORMATS:
        from pytest_kerasmodel.gate import exported

        message = exported.check_predictions(subject.path, subject.format, request, golden_path)
        written = {"written": [str(golden_path)]} if request.update_golden else {}
        return CheckResult(PASSED, message, written)
    _keras = loader()
    if request.update_golden:
        model = load(subject)
        sidecar = Path(request.inputs_file) if request.inputs_file else None
        if sidecar is not None and sidecar.is_file():
            inputs, source = goldens.sidecar_inputs(sidecar), f"from {sidecar.name}"
            raw = _keras.call_model(model, inputs)
        else:
            from pytest_kerasmodel.frameworks.inputs import NONE_DIM, run_generated

            inputs, raw, size = run_generated(model, _keras.call_model)
            source = "generated"
            if size is not None and size != NONE_DIM:
                source += f", unknown dimensions {size}: the model refuses {NONE_DIM}"
        outputs = goldens.named_outputs(model, raw)
        goldens.write_predictions(golden_path, inputs, outputs)
        return CheckResult(
            PASSED,
            f"golden predictions ({source} inputs) recorded in {golden_path}",
            {"written": [str(golden_path)]},
        )
    golden = goldens.read_predictions(golden_path)
    if golden is None:
        raise CheckSkipped(f"no golden predictions ({golden_path}); {goldens.HOW_TO_RECORD}")
    inputs, expected = golden
    model = load(subject)
    actual = goldens.named_outputs(model, _keras.call_model(model, inputs))
    diffs = compare_named_arrays(expected, actual, request.rtol, request.atol)
    if diffs:
        body = "\n".join("  " + d.render().replace("\n", "\n  ") for d in diffs)
        raise CheckFailure(
            f"the predictions differ from the golden {golden_path} "
            f"(rtol={request.rtol:g}, atol={request.atol:g}):\n{body}\n{goldens.HOW_TO_UPDATE}",
            diffs=[d.to_dict() for d in diffs],
        )
    return CheckResult(PASSED, f"{len(expected)} output(s) match {golden_path.name}")


def _sidecar_budgets(request: Request) -> tuple[Request, str]:
    """``request`` with the budgets of ``<artifact>.budget.json`` (when present) applied on top."""
    path = Path(request.budget_file) if request.budget_file else None
    if path is None or not path.is_file():
        return request, ""
    from dataclasses import replace

    from pytest_kerasmodel.options import parse_size

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        unknown = set(data) - {"max_file_size", "max_params", "allowed_versions"}
        if unknown:
            raise ValueError(f"unknown key(s) {sorted(unknown)}")
        changes: dict[str, Any] = {}
        if "max_file_size" in data:
            changes["max_file_size"] = parse_size(data["max_file_size"])
        if "max_params" in data:
            changes["max_params"] = int(data["max_params"])
        if "allowed_versions" in data:
            versions = data["allowed_versions"]
            changes["allowed_versions"] = (
                [versions] if isinstance(versions, str) else list(versions)
            )
    except Exception as exc:  # a usage error in the user's sidecar: say which file and why
        raise CheckFailure(
            f"the budget file {path.name} cannot be used: {exc} (expected JSON with "
            'max_file_size ("500MB"), max_params (int), allowed_versions (["3.*"]))'
        ) from None
    return replace(request, **changes), f" (budgets from {path.name})"


def check_budgets(subject: Subject) -> CheckResult:
    request, source = _sidecar_budgets(subject.request)
    if _no_budget(request):
        raise CheckSkipped(NO_BUDGET)
    over: list[str] = []
    within: list[str] = []
    unknown: list[str] = []
    if request.max_file_size is not None:
        line = f"size {subject.size} bytes, budget {request.max_file_size}"
        (over if subject.size > request.max_file_size else within).append(line)
    if request.max_params is not None:
        if subject.params is None:
            why = (
                f"an exported {subject.format} graph's variables are not counted"
                if subject.format in artifacts.EXPORTED_FORMATS
                else "the model was never built, so its layers have no variables yet"
            )
            unknown.append(f"parameter count unknown ({why}), budget {request.max_params}")
        else:
            line = f"{subject.params} parameters, budget {request.max_params}"
            (over if subject.params > request.max_params else within).append(line)
    if request.allowed_versions:
        allowed = request.allowed_versions
        writer = subject.writer or "unknown"
        line = f"written by Keras {writer}, allowed {allowed}"
        ok = any(fnmatch.fnmatchcase(writer, pattern) for pattern in allowed)
        (within if ok else over).append(line)
    parts = []
    if over:
        parts.append(f"over budget{source}:\n" + "\n".join(f"  - {line}" for line in over))
    if unknown:
        parts.append(
            f"cannot be verified{source}:\n" + "\n".join(f"  - {line}" for line in unknown)
        )
    if parts:
        raise CheckFailure("\n".join(parts))
    return CheckResult(PASSED, "; ".join(within) + source)
