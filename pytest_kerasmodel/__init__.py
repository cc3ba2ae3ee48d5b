"""pytest-kerasmodel: trust the Keras model files you save, ship and load.

Public names are resolved lazily (PEP 562) so that importing the package, which pytest
does for every session through the ``pytest11`` entry point, imports none of
TensorFlow, Keras or h5py.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "assert_roundtrip": "pytest_kerasmodel.roundtrip.run",
    "RoundtripResult": "pytest_kerasmodel.roundtrip.run",
    "RoundtripDiff": "pytest_kerasmodel.roundtrip.run",
    "Roundtrip": "pytest_kerasmodel.fixtures",
    "make_inputs": "pytest_kerasmodel.frameworks.inputs",
    "describe_artifact": "pytest_kerasmodel.structure.describe",
    "assert_h5_structure": "pytest_kerasmodel.structure.expected",
    "KerasModelError": "pytest_kerasmodel.errors",
    "KerasModelNote": "pytest_kerasmodel.errors",
    "RoundtripError": "pytest_kerasmodel.errors",
    "StructureError": "pytest_kerasmodel.errors",
    "GoldenError": "pytest_kerasmodel.errors",
    "ArtifactError": "pytest_kerasmodel.errors",
    "UnsafeArtifactError": "pytest_kerasmodel.errors",
    "Finding": "pytest_kerasmodel.safety",
    "scan_artifact": "pytest_kerasmodel.safety",
    "scan_config": "pytest_kerasmodel.safety",
    "read_weights": "pytest_kerasmodel.structure.weights",
    "read_optimizer_weights": "pytest_kerasmodel.structure.weights",
    "ArtifactWeights": "pytest_kerasmodel.structure.weights",
    "assert_artifacts_match": "pytest_kerasmodel.structure.match",
    "artifacts_diff": "pytest_kerasmodel.structure.match",
    "ArtifactDiff": "pytest_kerasmodel.structure.match",
    "ArtifactsDiffer": "pytest_kerasmodel.errors",
    "assert_export": "pytest_kerasmodel.export",
    "ExportResult": "pytest_kerasmodel.export",
    "ExportDiff": "pytest_kerasmodel.export",
    "ExportError": "pytest_kerasmodel.errors",
    "Export": "pytest_kerasmodel.fixtures",
    "sign_artifact": "pytest_kerasmodel.provenance.signature",
    "verify_signature": "pytest_kerasmodel.provenance.signature",
    "SignatureVerdict": "pytest_kerasmodel.provenance.signature",
    "SigningError": "pytest_kerasmodel.provenance.signature",
    "Trust": "pytest_kerasmodel.provenance.signature",
    "lock_artifacts": "pytest_kerasmodel.provenance.lock",
    "read_lock": "pytest_kerasmodel.provenance.lock",
    "LockError": "pytest_kerasmodel.provenance.lock",
}

__all__ = [
    # issue 13: reading and diffing model files
    "ArtifactDiff",
    "ArtifactError",
    "ArtifactWeights",
    "ArtifactsDiffer",
    "Export",
    "ExportDiff",
    "ExportError",
    "ExportResult",
    "Finding",
    "GoldenError",
    "KerasModelError",
    "KerasModelNote",
    "LockError",
    "Roundtrip",
    "RoundtripDiff",
    "RoundtripError",
    "RoundtripResult",
    "SignatureVerdict",
    "SigningError",
    "StructureError",
    "Trust",
    "UnsafeArtifactError",
    "__version__",
    "artifacts_diff",
    "assert_artifacts_match",
    "assert_export",
    "assert_h5_structure",
    "assert_roundtrip",
    "describe_artifact",
    "lock_artifacts",
    "make_inputs",
    "read_lock",
    "read_optimizer_weights",
    "read_weights",
    "scan_artifact",
    "scan_config",
    "sign_artifact",
    "verify_signature",
]

if TYPE_CHECKING:  # pragma: no cover
    # issue 13: reading and diffing model files
    from pytest_kerasmodel.errors import (
        ArtifactError,
        ArtifactsDiffer,
        ExportError,
        GoldenError,
        KerasModelError,
        KerasModelNote,
        RoundtripError,
        StructureError,
        UnsafeArtifactError,
    )
    from pytest_kerasmodel.export import ExportDiff, ExportResult, assert_export
    from pytest_kerasmodel.fixtures import Export, Roundtrip
    from pytest_kerasmodel.frameworks.inputs import make_inputs
    from pytest_kerasmodel.provenance.lock import LockError, lock_artifacts, read_lock
    from pytest_kerasmodel.provenance.signature import (
        SignatureVerdict,
        SigningError,
        Trust,
        sign_artifact,
        verify_signature,
    )
    from pytest_kerasmodel.roundtrip.run import RoundtripDiff, RoundtripResult, assert_roundtrip
    from pytest_kerasmodel.safety import Finding, scan_artifact, scan_config
    from pytest_kerasmodel.structure.describe import describe_artifact
    from pytest_kerasmodel.structure.expected import assert_h5_structure
    from pytest_kerasmodel.structure.match import (
        ArtifactDiff,
        artifacts_diff,
        assert_artifacts_match,
    )
    from pytest_kerasmodel.structure.weights import (
        ArtifactWeights,
        read_optimizer_weights,
        read_weights,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_kerasmodel' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
