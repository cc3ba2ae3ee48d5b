"""Deterministic inputs for a model, generated from its input specs.

Floats come from a fixed-seed standard normal distribution; integers stay inside the
valid range where it is knowable (an ``Embedding``'s ``input_dim``, a ``CategoryEncoding``'s
``num_tokens``) and are 0 or 1 otherwise; booleans are fair coin flips. Unknown dimensions
(``None``) become :data:`NONE_DIM`, the batch dimension becomes ``batch_size``. The same
model, ``batch_size`` and ``seed`` always give the same arrays, and no global random state
(Python's, numpy's or Keras's) is read or advanced.

Where inputs cannot be generated (string inputs, a subclassed model with no known input
shape, several call arguments) :class:`InputsError` says to pass ``inputs=``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pytest_kerasmodel.frameworks.inputspec import InputsError, InputSignature, InputSpec

__all__ = ["InputSignature", "InputSpec", "InputsError", "inputs_for_signature", "make_inputs"]

#: the size given to an unknown (``None``) dimension other than the batch
NONE_DIM = 8
#: the range of integer inputs whose valid range is not knowable: [0, 2)
DEFAULT_INT_RANGE = (0, 2)


def make_inputs(model: Any, *, batch_size: int = 4, seed: int = 0) -> Any:
    """Deterministic inputs for ``model``: one array, a list or a dict, as the model takes them."""
    __tracebackhide__ = True
    from pytest_kerasmodel.frameworks import module_for

    signature = module_for(model).input_signature(model)
    return inputs_for_signature(signature, batch_size=batch_size, seed=seed)


def inputs_for_signature(signature: InputSignature, *, batch_size: int = 4, seed: int = 0) -> Any:
    """Generate the arrays described by ``signature`` (numpy only, no Keras)."""
    __tracebackhide__ = True
    rng = np.random.default_rng(seed)
    arrays = [_array(spec, batch_size, rng) for spec in signature.specs]
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


def _array(spec: InputSpec, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    __tracebackhide__ = True
    dtype = _dtype(spec)
    shape = (batch_size, *(NONE_DIM if d is None else int(d) for d in spec.shape[1:]))
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
