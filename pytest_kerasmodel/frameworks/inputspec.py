"""What a model's inputs look like (:class:`InputSignature`, :class:`InputSpec`) and the error
when inputs cannot be made for it: plain data, shared by :mod:`.inputs` (which makes the arrays)
and the framework modules (which read a model's inputs), so neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_kerasmodel.errors import KerasModelError


class InputsError(KerasModelError, ValueError):
    """Inputs cannot be generated for this model; the message says why and to pass ``inputs=``."""


@dataclass(frozen=True)
class InputSpec:
    """What one model input looks like: name, shape (batch first, ``None`` unknown), dtype.

    ``int_range`` is the ``[low, high)`` range of valid integer values when known.
    """

    name: str
    shape: tuple[int | None, ...]
    dtype: str
    int_range: tuple[int, int] | None = None


@dataclass(frozen=True)
class InputSignature:
    """A model's inputs: their specs and how the model takes them.

    ``structure`` is ``"single"`` (one array), ``"list"`` or ``"dict"`` (keyed by spec name).
    """

    specs: tuple[InputSpec, ...]
    structure: str = "single"
