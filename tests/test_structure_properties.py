"""Property tests (hypothesis) of the structure comparison and its rendering."""

from __future__ import annotations

import glob
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_kerasmodel.structure.expected import StructureDiff, compare_descriptions, compare_paths

NAMES = st.text(alphabet="abz01_.[*", min_size=1, max_size=4).filter(lambda s: s not in ".")
SHAPES = st.lists(st.integers(min_value=0, max_value=5), max_size=3)


@st.composite
def descriptions(draw: Any) -> dict[str, Any]:
    paths = draw(st.lists(st.lists(NAMES, min_size=1, max_size=3), min_size=1, max_size=12))
    tree: dict[str, Any] = {"": {"kind": "group", "attrs": {}}}
    for parts in paths:
        for depth in range(1, len(parts)):
            group = "/".join(parts[:depth])
            if tree.get(group, {}).get("kind") == "dataset":
                break
            tree.setdefault(group, {"kind": "group", "attrs": {}})
        else:
            path = "/".join(parts)
            if path not in tree:
                tree[path] = {"kind": "dataset", "shape": draw(SHAPES), "dtype": "float32"}
    return {
        "format": "weights.h5",
        "model": None,
        "layers": [],
        "weights": {},
        "optimizer": None,
        "hdf5": tree,
    }


def _datasets(d: dict[str, Any]) -> list[str]:
    return sorted(p for p, n in d["hdf5"].items() if n["kind"] == "dataset")


@given(descriptions())
def test_a_description_matches_itself(d: dict[str, Any]) -> None:
    assert compare_descriptions(d, d, exact=True) == []
    everything = {glob.escape(p): n["shape"] for p, n in d["hdf5"].items() if n.get("shape")}
    everything.update({glob.escape(p): None for p in d["hdf5"] if p})
    assert compare_paths(everything, d, exact=True) == []


@given(descriptions(), st.data())
def test_removed_datasets_are_reported_missing_exactly(d: dict[str, Any], data: Any) -> None:
    datasets = _datasets(d)
    removed = data.draw(st.sets(st.sampled_from(datasets), min_size=1))
    actual = json.loads(json.dumps(d))
    for path in removed:
        del actual["hdf5"][path]
    changes = compare_descriptions(d, actual, exact=True)
    assert sorted((c.op, c.path) for c in changes) == sorted(("-", "/" + p) for p in removed)
    assert not compare_descriptions(actual, d, exact=False)  # extra datasets are fine
    unexpected = compare_descriptions(actual, d, exact=True)
    assert sorted(c.path for c in unexpected) == sorted("/" + p for p in removed)
    assert {c.op for c in unexpected} == {"+"}


@given(descriptions(), st.data())
def test_changed_shapes_are_reported_with_both_values(d: dict[str, Any], data: Any) -> None:
    datasets = _datasets(d)
    changed = data.draw(st.sets(st.sampled_from(datasets), min_size=1))
    actual = json.loads(json.dumps(d))
    for path in changed:
        actual["hdf5"][path]["shape"] = [*actual["hdf5"][path]["shape"], 7]
    changes = compare_descriptions(d, actual, exact=True)
    assert sorted(c.path for c in changes) == sorted("/" + p for p in changed)
    for c in changes:
        assert (c.op, c.what) == ("~", "shape")
        assert c.actual == [*c.expected, 7]


@settings(max_examples=50)
@given(descriptions(), descriptions(), st.integers(min_value=1, max_value=10))
def test_rendering_is_capped_and_counts_everything(
    a: dict[str, Any], b: dict[str, Any], cap: int
) -> None:
    diff = StructureDiff("x.weights.h5", "a description", compare_descriptions(a, b, exact=True))
    text = diff.render(max_shown=cap)
    marked = [line for line in text.splitlines()[1:] if line[:4].strip() in ("-", "+", "~")]
    assert len(marked) == min(cap, len(diff.changes))
    if len(diff.changes) > cap:
        assert text.endswith(
            f"... and {len(diff.changes) - cap} more difference(s) not shown "
            "(see StructureError.diff)"
        )
    assert json.loads(diff.to_json())["changes"] == json.loads(
        json.dumps(diff.to_dict()["changes"])
    )
