"""Deterministic inputs for a model, generated from its input specs.

Floats come from a fixed-seed standard normal distribution; integers stay inside the
valid range where it is knowable (an ``Embedding``'s ``input_dim``, a ``CategoryEncoding``'s
``num_tokens``) and are 0 or 1 otherwise; booleans are fair coin flips. Unknown dimensions
(``None``) become :data:`NONE_DIM` (or ``none_dim``), the batch dimension ``batch_size``. The same
model, ``batch_size`` and ``seed`` always give the same arrays, and no global random state
(Python's, numpy's or Keras's) is read or advanced.

Where inputs cannot be generated (string inputs, a subclassed model with no known input
shape, several call arguments) :class:`InputsError` says to pass ``inputs=``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pytest_kerasmodel.frameworks.inputspec import InputsError, InputSignature, InputSpec

__all__ = ["InputSignature", "InputSpec", "InputsError", "inputs_for_signature", "make_inputs"]

#: the size given to an unknown (``None``) dimension other than the batch
NONE_DIM = 8
#: the sizes :func:`run_generated` gives unknown dimensions, in turn, while the model refuses
#: them: a sequence model with learned positions (KerasHub's ``max_sequence_length`` of 5 in
#: its test configs, Whisper's encoder frames halved by a strided conv) takes no more than it
#: has positions for
NONE_DIMS = (NONE_DIM, 4, 2, 1)
#: the range of integer inputs whose valid range is not knowable: [0, 2)
DEFAULT_INT_RANGE = (0, 2)


def make_inputs(model: Any, *, batch_size: int = 4, seed: int = 0, none_dim: int = NONE_DIM) -> Any:
    """Deterministic inputs for ``model``: one array, a list or a dict, as the model takes them."""
    __tracebackhide__ = True
    from pytest_kerasmodel.frameworks import module_for

    signature = module_for(model).input_signature(model)
    return inputs_for_signature(signature, batch_size=batch_size, seed=seed, none_dim=none_dim)


def run_generated(model: Any, call: Callable[[Any, Any], Any]) -> tuple[Any, Any, int | None]:
    """``(inputs, call(model, inputs), size)``: ``model`` called on generated inputs whose
    unknown dimensions are the first of :data:`NONE_DIMS` it accepts (``size`` None when it has
    no unknown dimension). When it accepts none, the error of the first call is raised: that
    is the one the default inputs meet."""
    __tracebackhide__ = True
    from pytest_kerasmodel.frameworks import module_for

    signature = module_for(model).input_signature(model)
    free = any(d is None for spec in signature.specs for d in spec.shape[1:])
    first: Exception | None = None
    for size in NONE_DIMS if free else (NONE_DIM,):
        inputs = inputs_for_signature(signature, none_dim=size)
        try:
            return inputs, call(model, inputs), size if free else None
        except Exception as exc:
            first = first or exc
    assert first is not None
    raise first


def inputs_for_signature(
    signature: InputSignature, *, batch_size: int = 4, seed: int = 0, none_dim: int = NONE_DIM
) -> Any:
    """Generate the arrays described by ``signature`` (numpy only, no Keras)."""
    __tracebackhide__ = True
    rng = np.random.default_rng(seed)
    arrays = [_array(spec, batch_size, rng, none_dim) for spec in signature.specs]
    if signature.structure == "dict":
        return {spec.name: a for spec, a in zip(signature.specs, arrays, strict=True)}
    if signature.structure == "list":
        return arrays
    return arrays[0]


def _dtype(spec: InputSpec) -> np.dtype:
    __tracebackhide__ = True
    if spec.dtype in ("string", "str", "object") or spec.dtype.startswith("<U"):
        raise InputsError(
            f"cannot generate inputs for input {spec.name!r} of dtype {spec.dtype}: "
            "pass inputs= with real samples"
        )
    try:
        return np.dtype(spec.dtype)
    except TypeError:  # bfloat16 and other dtypes numpy does not know: Keras casts
        return np.dtype("float32")


def _array(
    spec: InputSpec, batch_size: int, rng: np.random.Generator, none_dim: int = NONE_DIM
) -> np.ndarray:
    __tracebackhide__ = True
    dtype = _dtype(spec)
    shape = (batch_size, *(none_dim if d is None else int(d) for d in spec.shape[1:]))
    if spec.int_range is not None:
        low, high = spec.int_range
        return rng.integers(low, max(high, low + 1), size=shape).astype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        return rng.integers(*DEFAULT_INT_RANGE, size=shape).astype(dtype)
    if dtype.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)
