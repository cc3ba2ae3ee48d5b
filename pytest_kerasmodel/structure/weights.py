"""A model file's weights by their Keras names, without Keras: :func:`read_weights`.

``h5py.File("model.keras")`` fails (a ``.keras`` is a zip) and ``h5py.File("model.h5")`` shows
``model_weights/hidden/hidden/kernel:0``; what a user wants is ``weights["hidden/kernel"]``, the
same key whichever format or layout wrote the file. The names are the ones
:func:`~pytest_kerasmodel.structure.describe.describe_artifact` gives (see
:mod:`pytest_kerasmodel.artifacts.names`).

The artifact is opened the way describe opens it
(:func:`~pytest_kerasmodel.artifacts.open_artifact`: read-only, its hygiene checked before any
dataset is read; a ``.keras`` archive's inner ``model.weights.h5`` read in place, sharded
weights through their manifest). Opening reads
names, shapes and dtypes only; a value is read when it is asked for, one dataset at a time, so a
caller streaming through the weights holds one of them at a time.
"""

from __future__ import annotations

import contextlib
import os
import weakref
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, NamedTuple

from pytest_kerasmodel.artifacts import DEFAULT_LIMITS, Limits, open_artifact
from pytest_kerasmodel.artifacts.base import H5_ERRORS
from pytest_kerasmodel.errors import ArtifactError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from pytest_kerasmodel.artifacts import Artifact


class WeightInfo(NamedTuple):
    """What the file declares of one saved variable, before its values are read."""

    name: str  # the Keras-level name: "hidden/kernel", "optimizer/3"
    h5_path: str  # where it is stored: "layers/dense/vars/0", "model_weights/hidden/..."
    shape: tuple[int, ...]
    dtype: str


class ArtifactWeights(Mapping[str, "np.ndarray"]):
    """A read-only mapping from Keras weight name to numpy array, read lazily.

    The artifact stays open until :meth:`close` (or the end of a ``with`` block, or garbage
    collection); each ``weights[name]`` reads that one dataset. :attr:`info` tells the shape,
    dtype and HDF5 path of every entry without reading any value.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        optimizer: bool = False,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.path = os.fspath(path)
        self.optimizer = optimizer
        self._stack = contextlib.ExitStack()
        self._finalizer = weakref.finalize(self, self._stack.close)
        try:
            artifact = self._stack.enter_context(open_artifact(path, limits=limits))
            _require_readable(artifact)
            self.format = artifact.format
            self._artifact: Artifact | None = artifact
            self.info: dict[str, WeightInfo] = read_weight_infos(artifact, optimizer=optimizer)
        except H5_ERRORS as exc:
            self.close()
            raise ArtifactError(
                self.path, "weights", f"cannot read the file: {type(exc).__name__}: {exc}"
            ) from None
        except BaseException:
            self.close()
            raise

    # -- the mapping ---------------------------------------------------------------------------

    def __getitem__(self, name: str) -> np.ndarray:
        info = self.info[name]  # KeyError for an unknown name, as a mapping should
        if self._artifact is None:
            raise ValueError(f"{self.path}: the weights were closed; read them inside the with")
        try:
            dataset = self._artifact.dataset(info.h5_path)
            value: np.ndarray = dataset[()]
        except H5_ERRORS as exc:
            raise ArtifactError(
                self.path,
                "weights",
                f"cannot read {name} (/{info.h5_path}): {type(exc).__name__}: {exc}",
            ) from None
        import numpy as np

        return np.asarray(value)

    def __iter__(self) -> Iterator[str]:
        return iter(self.info)

    def __len__(self) -> int:
        return len(self.info)

    def __contains__(self, name: object) -> bool:
        return name in self.info

    def __repr__(self) -> str:
        what = "optimizer variables" if self.optimizer else "weights"
        state = "" if self._artifact is not None else ", closed"
        return f"<ArtifactWeights {self.path!r}: {len(self)} {what} ({self.format}){state}>"

    # -- lifetime ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the artifact's files (values can no longer be read; :attr:`info` stays)."""
        self._artifact = None
        self._finalizer()

    def __enter__(self) -> ArtifactWeights:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _require_readable(artifact: Artifact) -> None:
    """Refuse what holds weights this reader cannot read, saying why (never an empty mapping
    that looks like a model without weights)."""
    if artifact.weights_unread:
        raise ArtifactError(artifact.path, "weights", artifact.weights_unread)
    if artifact.weights_root is None:
        raise ArtifactError(
            artifact.path,
            "weights",
            f"a {artifact.title}: its variables are not stored in HDF5, so they are not read "
            "by this version",
        )


def read_weights(
    path: str | os.PathLike[str], *, limits: Limits = DEFAULT_LIMITS
) -> ArtifactWeights:
    """The model's saved variables of any Keras artifact, by Keras name, read lazily.

    ``read_weights("model.keras")["hidden/kernel"]`` is the array Keras would load into that
    variable; the keys are the same for the model saved as ``.keras``, ``.h5``, ``.weights.h5``,
    an unzipped folder, a KerasHub preset (its backbone) or sharded weights. Use it in a
    ``with`` block to close the file when done. Never imports Keras.

    Raises :class:`~pytest_kerasmodel.errors.ArtifactError` naming the file when it is no Keras
    artifact, cannot be read safely, or keeps its weights where this reader does not read them
    (a SavedModel's checkpoint, an Orbax checkpoint, ``model.weights.npz``).
    """
    return ArtifactWeights(path, limits=limits)


def read_optimizer_weights(
    path: str | os.PathLike[str], *, limits: Limits = DEFAULT_LIMITS
) -> ArtifactWeights:
    """The optimizer's saved variables, named ``optimizer/<i>`` in the optimizer's own order
    (the same in ``.keras``, ``.weights.h5`` and legacy HDF5); empty when none was saved."""
    return ArtifactWeights(path, optimizer=True, limits=limits)


def read_weight_infos(artifact: Artifact, *, optimizer: bool = False) -> dict[str, WeightInfo]:
    """Name -> :class:`WeightInfo` of an artifact already opened (for the artifact diff)."""
    from pytest_kerasmodel.artifacts import names as weightnames

    entries = (
        weightnames.optimizer_weight_paths(artifact)
        if optimizer
        else weightnames.model_weight_paths(artifact)
    )
    infos: dict[str, WeightInfo] = {}
    for name, h5_path in entries:
        node = artifact.node(h5_path)
        if node is not None and node.kind == "dataset":
            infos[name] = WeightInfo(name, h5_path, tuple(node.shape or ()), str(node.dtype))
    return infos
