"""compare.py: numpy-only comparisons with np.allclose semantics, and their diffs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pytest_kerasmodel.compare import (
    ArrayDiff,
    compare_arrays,
    compare_configs,
    compare_named_arrays,
    compare_outputs,
)


def test_equal_and_within_tolerance_arrays_match() -> None:
    a = np.arange(6, dtype="float32").reshape(2, 3)
    assert compare_arrays("x", a, a.copy(), 1e-5, 1e-6) is None
    assert compare_arrays("x", a, a + 1e-7, 1e-5, 1e-6) is None
    # np.allclose semantics: |actual - expected| <= atol + rtol * |expected|
    assert compare_arrays("x", [100.0], [100.5], rtol=0.01, atol=0.0) is None
    assert compare_arrays("x", [0.0], [0.5], rtol=0.01, atol=0.0) is not None


def test_mismatch_counts_percent_max_diffs_and_worst_positions() -> None:
    expected = np.zeros((3, 4), "float32")
    expected[0, 0] = 2.0
    actual = expected.copy()
    actual[0, 0] = 3.0  # abs 1, rel 0.5
    actual[2, 1] = 4.0  # abs 4, expected 0: no relative difference
    diff = compare_arrays("dense/kernel", expected, actual, 1e-5, 1e-6)
    assert isinstance(diff, ArrayDiff)
    assert (diff.kind, diff.mismatched, diff.total) == ("values", 2, 12)
    assert diff.percent == pytest.approx(100 * 2 / 12)
    assert diff.max_abs_diff == 4.0
    assert diff.max_rel_diff == 0.5
    assert [p.index for p in diff.worst] == [(2, 1), (0, 0)]
    assert (diff.worst[0].expected, diff.worst[0].actual) == (0.0, 4.0)
    text = diff.render()
    assert text.splitlines()[0] == (
        "dense/kernel: shape (3, 4) float32: 2 of 12 elements differ (16.7%), "
        "max abs diff 4, max rel diff 0.5"
    )
    assert "[2, 1]" in text and "[0, 0]" in text


def test_worst_positions_are_capped() -> None:
    diff = compare_arrays("y", np.zeros(50), np.arange(50.0) + 1, 0.0, 0.0)
    assert diff is not None and diff.mismatched == 50 and len(diff.worst) == 5
    assert diff.worst[0].index == (49,)
    assert "... 45 more" in diff.render()


def test_nan_matches_only_nan_and_inf_only_the_same_inf() -> None:
    assert compare_arrays("n", [np.nan, 1.0], [np.nan, 1.0], 1e-5, 1e-6) is None
    diff = compare_arrays("n", [np.nan, 1.0], [0.0, np.nan], 1e-5, 1e-6)
    assert diff is not None and diff.mismatched == 2
    assert compare_arrays("i", [np.inf], [np.inf], 1e-5, 1e-6) is None
    diff = compare_arrays("i", [np.inf], [-np.inf], 1e-5, 1e-6)
    assert diff is not None and diff.mismatched == 1


def test_shape_and_dtype_differences() -> None:
    diff = compare_arrays("w", np.zeros((2, 3)), np.zeros((3, 2)), 1e-5, 1e-6)
    assert diff is not None and diff.kind == "shape"
    assert diff.summary() == "w: shape (2, 3) became (3, 2) (float64 -> float64)"
    diff = compare_arrays("w", np.ones(3, "float32"), np.ones(3, "float16"), 1e-5, 1e-6)
    assert diff is not None and diff.kind == "dtype" and diff.mismatched == 0
    assert diff.summary() == "w: shape (3,) float32 became float16"


def test_scalars_integers_booleans_and_strings() -> None:
    diff = compare_arrays("step", np.int64(3), np.int64(0), 0.0, 0.0)
    assert diff is not None and diff.worst[0].index == () and diff.worst[0].expected == 3
    assert compare_arrays("b", [True, False], [True, False], 0, 0) is None
    diff = compare_arrays("s", np.array(["a", "b"]), np.array(["a", "c"]), 0, 0)
    assert diff is not None and diff.mismatched == 1 and diff.worst[0].actual == "c"


def test_outputs_single_list_and_dict() -> None:
    a = np.ones((2, 2), "float32")
    assert compare_outputs(a, a, 1e-5, 1e-6) == []
    (diff,) = compare_outputs(a, a * 2, 1e-5, 1e-6, names=["dense"])
    assert diff.name == "dense"
    (diff,) = compare_outputs([a, a], [a, a + 1], 1e-5, 1e-6, names=["y1", "y2"])
    assert diff.name == "y2"
    (diff,) = compare_outputs([a, a], [a + 1, a], 1e-5, 1e-6)
    assert diff.name == "output[0]"
    diffs = compare_outputs({"score": a, "label": a}, {"score": a, "extra": a}, 1e-5, 1e-6)
    assert {(d.name, d.kind) for d in diffs} == {("label", "missing"), ("extra", "unexpected")}


def test_named_arrays_use_labels_for_missing_and_unexpected() -> None:
    diffs = compare_named_arrays(
        {"0:Dense/kernel": np.zeros(2), "0:Dense/bias": np.zeros(1)},
        {"0:Dense/kernel": np.zeros(2), "0:Dense/extra": np.zeros(3)},
        1e-5,
        1e-6,
        labels={"0:Dense/bias": "dense/bias"},
        actual_labels={"0:Dense/extra": "dense_7/extra"},
    )
    assert [d.summary() for d in diffs] == [
        "dense/bias: missing (expected shape (1,) float64)",
        "dense_7/extra: unexpected (shape (3,) float64)",
    ]


def test_config_diff_by_json_path_with_ignored_keys_and_float_tolerance() -> None:
    old = {
        "name": "m",
        "layers": [{"config": {"units": 3, "rate": 0.001}}, {"config": {"factor": 3.0}}],
        "build_config": {"input_shape": [16, 3]},
    }
    new = {
        "name": "m",
        "layers": [
            {"config": {"units": 3, "rate": 0.0010000000474974513}},
            {"config": {"extra": True}},
        ],
        "build_config": {"input_shape": [None, 3]},
    }
    changes = compare_configs(old, new, ignore_keys=("build_config",))
    assert [c.render() for c in changes] == [
        "layers[1].config.factor: 3.0 -> <missing>",
        "layers[1].config.extra: <missing> -> True",
    ]
    assert compare_configs({"a": [1, 2]}, {"a": (1, 2)}) == []
    assert compare_configs({"a": 1}, {"a": 1.0}) == []
    assert [c.path for c in compare_configs({"a": True}, {"a": 1})] == ["a"]
    assert [c.path for c in compare_configs({"a": [1]}, {"a": [1, 2]})] == ["a"]


def test_diffs_are_strict_json() -> None:
    diff = compare_arrays("n", [np.nan, 1.0, 2.0], [0.0, np.inf, 2.0], 1e-5, 1e-6)
    assert diff is not None
    data = json.loads(diff.to_json(allow_nan=False))
    assert data["kind"] == "values" and data["mismatched"] == 2
    assert data["max_abs_diff"] == "inf"


def test_compare_imports_no_keras() -> None:
    code = (
        "import sys, pytest_kerasmodel.compare, pytest_kerasmodel.frameworks.inputs;"
        "print(sorted(m for m in ('keras', 'tensorflow', 'h5py') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


_floats = hnp.arrays(
    np.float32,
    st.integers(1, 6),
    elements=st.floats(-1e3, 1e3, width=32) | st.sampled_from([np.nan, np.inf, -np.inf]),
)


@settings(max_examples=200, deadline=None)
@given(expected=_floats, noise=_floats, rtol=st.sampled_from([0.0, 1e-5, 0.1]))
def test_matches_exactly_when_np_allclose_does(
    expected: np.ndarray, noise: np.ndarray, rtol: float
) -> None:
    size = min(expected.size, noise.size)
    with np.errstate(invalid="ignore", over="ignore"):
        expected, actual = expected[:size], (expected[:size] + noise[:size] * 1e-3)
    diff = compare_arrays("x", expected, actual, rtol, 1e-6)
    with np.errstate(invalid="ignore", over="ignore"):
        close = np.isclose(actual, expected, rtol, 1e-6, equal_nan=True)
    assert (diff is None) == bool(close.all())
    if diff is not None:
        mismatched = ~close
        assert diff.mismatched == int(mismatched.sum())
        assert {p.index for p in diff.worst} <= {(int(i),) for i in np.flatnonzero(mismatched)}
