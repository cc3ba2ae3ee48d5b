"""Property test: the plugin's reading of a saved model is exactly Keras's, on random models.

Hypothesis draws a model (Sequential, Functional with shared and nested layers, or subclassed
with layers as attributes, in a list and a dict, a nested Functional model, a layer under two
attributes; built-in and custom layers with named, unnamed and non-trainable variables), maybe
compiled and trained one optimizer step (Adam or SGD with momentum, with or without a metric),
saves it as ``.keras``, ``.weights.h5`` and legacy ``.h5`` with Keras's own writers, and asserts
for each file that

- the variables :func:`read_weights` gives are exactly ``model.weights`` (each shape and every
  value; names too for built-in layers of Sequential and Functional models, the ones Keras
  names stably), and their count is ``count_params()``;
- the optimizer's variables are ``model.optimizer.variables``, in order;
- nothing in the file is left unread;
- a NaN planted (with h5py, into a copy) in any one floating-point dataset is found by the
  finite scan, and only there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_kerasmodel import describe_artifact, read_optimizer_weights, read_weights

LAYERS = st.sampled_from(
    ["dense", "dense_nobias", "bn", "ln", "scaled", "scaled_counter", "block", "dropout"]
)
BUILTIN = {"Dense", "BatchNormalization", "LayerNormalization"}


@st.composite
def recipes(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(["sequential", "functional", "subclassed"]))
    optimizer = draw(st.sampled_from([None, "adam", "sgd"]))
    return {
        "kind": kind,
        "units": draw(st.integers(2, 5)),
        "features": draw(st.integers(2, 5)),
        "layers": draw(st.lists(LAYERS, min_size=1, max_size=3)),
        "stack": draw(st.lists(LAYERS, max_size=2)),
        "named": draw(st.lists(LAYERS, max_size=2)),
        "nested": draw(st.booleans()),
        "shared": draw(st.booleans()),
        "optimizer": optimizer,
        "metrics": optimizer is not None and draw(st.booleans()),
    }


def _save_all(model: Any, folder: Path) -> dict[str, Path]:
    """The model in every format Keras writes for it (legacy .h5 where Keras can)."""
    files = {"keras": folder / "m.keras", "weights": folder / "m.weights.h5"}
    model.save(files["keras"])
    model.save_weights(files["weights"])
    try:
        model.save(folder / "m.h5")
    except (NotImplementedError, ValueError, TypeError):  # Keras refuses this model as .h5
        pass
    else:
        files["h5"] = folder / "m.h5"
    return files


def _values(arrays: Any) -> list[tuple[tuple[int, ...], str, bytes]]:
    return sorted(
        (tuple(a.shape), str(a.dtype), np.ascontiguousarray(a).tobytes())
        for a in map(np.asarray, arrays)
    )


def _builtin_names(model: Any) -> dict[str, np.ndarray]:
    """``<layer>/<variable>`` of the built-in top-level layers of a Sequential or Functional
    model: the names Keras gives stably (an unnamed custom variable's name is not)."""
    if model.__class__.__name__ not in ("Sequential", "Functional"):
        return {}
    return {
        f"{layer.name}/{v.name}": np.asarray(v)
        for layer in model.layers
        if layer.__class__.__name__ in BUILTIN
        for v in layer.weights
    }


@pytest.mark.filterwarnings("ignore")
@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(recipe=recipes(), pick=st.integers(0, 10_000))
def test_plugin_reads_what_keras_saved(
    recipe: dict[str, Any], pick: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from builders.accounting_models import build, float_datasets, plant_nan

    model = build(recipe)
    folder = tmp_path_factory.mktemp("prop")
    files = _save_all(model, folder)
    expected = _values(model.weights)
    stable = _builtin_names(model)
    optimizer = [np.asarray(v) for v in model.optimizer.variables] if recipe["optimizer"] else []
    for fmt, path in files.items():
        where = f"{fmt} of {recipe}"
        d = describe_artifact(path)
        assert d["params"] == model.count_params(), where
        assert d["unread"] == [], where
        with read_weights(path) as weights:
            assert _values(weights.values()) == expected, where
            for name, value in stable.items():
                np.testing.assert_array_equal(weights[name], value, err_msg=f"{name}: {where}")
        with read_optimizer_weights(path) as opt:
            got = [np.asarray(v) for v in opt.values()]
        if fmt != "h5" or got:  # legacy .h5 keeps the optimizer's state where Keras saves it
            assert len(got) == len(optimizer), where
            for a, b in zip(got, optimizer, strict=True):
                np.testing.assert_array_equal(a, b, err_msg=where)

        candidates = float_datasets(path)
        target = candidates[pick % len(candidates)]
        broken = folder / f"nan-{path.name}"
        plant_nan(path, broken, target)
        scanned = describe_artifact(broken, scan_values=True)
        bad = [k for k, v in scanned["values"].items() if v["nan"]]
        assert len(bad) == 1, f"NaN in /{target} of {where}: found {bad}"
        assert scanned["values"][bad[0]]["nan"] == 1
        # found under the name of what it is, at the path the NaN went into
        paths = {**scanned["weight_paths"], **_optimizer_paths(broken)}
        assert paths.get(bad[0], bad[0].lstrip("/")) == target, where
        broken.unlink()


def _optimizer_paths(path: Path) -> dict[str, str]:
    with read_optimizer_weights(path) as opt:
        return {name: info.h5_path for name, info in opt.info.items()}
