"""Typed callables handed out by the plugin's fixtures (import them for annotations).

This module imports neither Keras nor numpy: the fixture objects are created for every
test that asks for them, and the work starts only when they are called.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Mapping

    from pytest_kerasmodel.export import ExportResult
    from pytest_kerasmodel.roundtrip.run import RoundtripResult


@dataclass(frozen=True)
class Roundtrip:
    """The ``keras_roundtrip`` fixture: :func:`~pytest_kerasmodel.assert_roundtrip` with the
    session's ``--keras-rtol``, ``--keras-atol``, ``--keras-roundtrip-formats`` and
    ``--keras-backends`` (or their ini keys) as defaults, saving under the test's ``tmp_path``.

    ``keras_roundtrip(model, inputs=None, *, formats=None, rtol=None, atol=None,
    custom_objects=None, compile=True, backends=None)``: arguments given here win.
    """

    rtol: float
    atol: float
    formats: tuple[str, ...]
    folder: Path
    backends: tuple[str, ...] = ()

    def __call__(
        self,
        model: Any,
        inputs: Any = None,
        *,
        formats: str | Sequence[str] | None = None,
        rtol: float | None = None,
        atol: float | None = None,
        custom_objects: dict[str, Any] | None = None,
        compile: bool = True,
        backends: str | Sequence[str] | None = None,
    ) -> RoundtripResult:
        __tracebackhide__ = True
        from pytest_kerasmodel.roundtrip.run import assert_roundtrip

        return assert_roundtrip(
            model,
            inputs,
            formats=self.formats if formats is None else formats,
            rtol=self.rtol if rtol is None else rtol,
            atol=self.atol if atol is None else atol,
            custom_objects=custom_objects,
            compile=compile,
            folder=self.folder,
            # tf_keras in --keras-backends is the gate's Keras 2 loader: a tf-keras model is
            # checked with tf-keras whatever the backends, a Keras 3 one is not reloaded by it
            backends=[b for b in self.backends if b != "tf_keras"]
            if backends is None
            else backends,
        )


@dataclass(frozen=True)
class Export:
    """The ``keras_export`` fixture: :func:`~pytest_kerasmodel.assert_export` with the session's
    ``--keras-export-formats``, ``--keras-rtol`` and ``--keras-atol`` (or their ini keys) as
    defaults; arguments given in the call win.

    ``keras_export(model, inputs=None, *, formats=None, rtol=None, atol=None,
    batch_sizes=(1, 4), **export_kwargs)``.
    """

    rtol: float
    atol: float
    formats: tuple[str, ...]

    def __call__(
        self,
        model: Any,
        inputs: Any = None,
        *,
        formats: str | Sequence[str] | None = None,
        rtol: float | Mapping[str, float] | None = None,
        atol: float | Mapping[str, float] | None = None,
        batch_sizes: Sequence[int] = (1, 4),
        **export_kwargs: Any,
    ) -> ExportResult:
        __tracebackhide__ = True
        from pytest_kerasmodel.export import assert_export

        return assert_export(
            model,
            inputs,
            formats=self.formats if formats is None else formats,
            rtol=self.rtol if rtol is None else rtol,
            atol=self.atol if atol is None else atol,
            batch_sizes=batch_sizes,
            **export_kwargs,
        )
