"""pickles.py on real pickles: what each would import and call, read from opcodes only.

The malicious pickles here are built with ``pickle.dumps`` of an object whose ``__reduce__``
returns ``(os.system, ("touch MARKER",))``; nothing in this module ever loads one, and each test
that analyses one checks afterwards that the marker file does not exist.
"""

from __future__ import annotations

import io
import json
import pickle
import pickletools
import zipfile
from pathlib import Path

import numpy as np
import pytest
from builders import attacks
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_kerasmodel.safety.pickles import (
    DATA_GLOBALS,
    PickleReport,
    analyse_pickle,
    analyse_torch_payload,
    looks_like_pickle,
)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_plain_values_import_nothing(protocol: int) -> None:
    data = pickle.dumps({"a": [1, 2.5, "x", None, True], "b": (1, 2)}, protocol=protocol)
    report = analyse_pickle(data)
    assert report.complete
    assert report.imports == () and report.calls == ()
    assert report.data_only
    assert report.protocol == protocol if protocol >= 2 else report.protocol <= 1
    assert report.end == len(data)
    assert report.summary() == "imports nothing"
    assert looks_like_pickle(data)
    # bytes: protocols 0-2 rebuild them with _codecs.encode, a data rebuilder
    assert analyse_pickle(pickle.dumps(b"raw", protocol=protocol)).data_only


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_malicious_reduce_is_named_as_users_search_it(tmp_path: Path, protocol: int) -> None:
    data = attacks.marker_pickle(tmp_path, protocol=protocol)
    report = analyse_pickle(data)
    assert report.imports == ("posix.system",)
    assert report.calls == ("posix.system",)
    assert report.unsafe_calls == ("posix.system",)
    assert not report.data_only
    assert report.summary() == "imports and calls posix.system (os.system: runs a shell command)"
    assert looks_like_pickle(data)
    assert not (tmp_path / attacks.MARKER).exists()


def test_stack_global_resolved_through_the_memo() -> None:
    """Protocol 4+ names a global with two strings; here they are fetched back from the memo
    (BINGET) after being memoised, as pickle does when a name repeats."""
    import builtins

    data = pickle.dumps([builtins.eval, builtins.eval, ("eval", "eval")], protocol=4)
    ops = [op.name for op, _, _ in pickletools.genops(pickletools.optimize(data))]
    assert "STACK_GLOBAL" in ops
    report = analyse_pickle(data)
    assert report.imports == ("builtins.eval",)
    assert report.calls == ()  # named, passed along, never called
    assert report.unsafe_imports == ("builtins.eval",)
    assert report.summary() == "imports builtins.eval (runs Python code)"


def test_inst_and_obj_are_calls() -> None:
    inst = b"(S'echo hi'\nios\nsystem\n."
    obj = b"(cos\nsystem\nS'echo hi'\no."
    for data in (inst, obj):
        report = analyse_pickle(data)
        assert report.complete, report.problem
        assert report.calls == ("os.system",), data


def test_build_calls_the_class_it_made() -> None:
    class_pickle = b"\x80\x02cmypkg\nThing\n)\x81}b."  # NEWOBJ then BUILD with a dict state
    report = analyse_pickle(class_pickle)
    assert report.calls == ("mypkg.Thing",)
    assert report.summary() == "imports and calls mypkg.Thing"


def test_numpy_object_array_saved_by_np_save() -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"x": 1}, [1, 2]], dtype=object), allow_pickle=True)
    raw = buffer.getvalue()
    pickled = raw[raw.index(b"\n", 10) + 1 :]  # after the .npy header
    report = analyse_pickle(pickled)
    assert report.complete
    assert report.data_only
    assert set(report.imports) <= DATA_GLOBALS
    assert any("_reconstruct" in name for name in report.imports)
    assert report.summary().startswith("only rebuilds data (numpy.")


def test_numpy_array_in_protocol_2_rebuilds_data() -> None:
    report = analyse_pickle(pickle.dumps(np.arange(3.0), protocol=2))
    assert report.data_only, report.imports  # _codecs.encode writes its bytes


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80\x04",
        b"garbage that is not a pickle",
        b"\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\xff",
        b"\x80\x02h\x05.",  # BINGET of a memo key never written
        b"\x80\x02R.",  # REDUCE on an empty stack
        b"\x80\x02\x93.",  # STACK_GLOBAL without its strings
        bytes(range(256)) * 4,
    ],
)
def test_malformed_streams_are_reported_not_raised(data: bytes) -> None:
    report = analyse_pickle(data)
    assert isinstance(report, PickleReport)
    assert report.problem
    assert not report.data_only
    json.dumps(report.to_dict())


def test_truncated_malicious_pickle_still_names_what_it_imports(tmp_path: Path) -> None:
    data = attacks.marker_pickle(tmp_path)
    report = analyse_pickle(data[:-4])
    assert report.imports == ("posix.system",)
    assert report.problem and "STOP" in report.problem
    assert "the stream is malformed" in report.summary()


def test_opcode_cap_bounds_the_work() -> None:
    data = pickle.dumps(list(range(1000)), protocol=2)
    report = analyse_pickle(data, max_opcodes=50)
    assert report.problem == "more than 50 opcodes: analysis stopped"
    assert report.opcodes == 51


def test_looks_like_pickle() -> None:
    assert looks_like_pickle(pickle.dumps(1, protocol=2))
    assert looks_like_pickle(pickle.dumps({"a": 1}, protocol=0))
    assert not looks_like_pickle(b"")
    assert not looks_like_pickle(b'{"class_name": "Dense"}')
    assert not looks_like_pickle(b"\x89HDF\r\n\x1a\n")
    assert not looks_like_pickle(b"PK\x03\x04")
    assert not looks_like_pickle(b"hello world\n")
    assert not looks_like_pickle(b"(")  # a MARK and then nothing


def test_report_is_json_serialisable(tmp_path: Path) -> None:
    report = analyse_pickle(attacks.marker_pickle(tmp_path))
    as_dict = json.loads(json.dumps(report.to_dict()))
    assert as_dict["imports"] == ["posix.system"]
    assert as_dict["unsafe_calls"] == ["posix.system"]
    assert as_dict["data_only"] is False
    with pytest.raises(AttributeError):
        report.protocol = 1  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# torch.save payloads
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_torch_save_of_a_module_rebuilds_the_module(zip_format: bool) -> None:
    torch = pytest.importorskip("torch")
    data = attacks.torch_save_bytes(torch.nn.Linear(4, 2), zip_format=zip_format)
    report = analyse_torch_payload(data)
    assert report.layout == ("zip" if zip_format else "legacy")
    assert report.problem is None
    assert "torch.nn.modules.linear.Linear" in report.imports
    assert "torch._utils._rebuild_parameter" in report.imports
    assert report.storages == 2  # weight and bias
    text = report.summary()
    assert "rebuilds torch.nn.modules.linear.Linear (a torch module pickle" in text
    assert "imports and calls" not in text
    json.dumps(report.to_dict())
    if zip_format:
        assert [where for where, _ in report.pickles] == ["archive/data.pkl"]
    else:
        assert [where for where, _ in report.pickles] == [
            "magic number",
            "protocol version",
            "system info",
            "data",
            "storage keys",
        ]


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_torch_save_of_a_state_dict_is_data_only(zip_format: bool) -> None:
    torch = pytest.importorskip("torch")
    data = attacks.torch_save_bytes(torch.nn.Linear(4, 2).state_dict(), zip_format=zip_format)
    report = analyse_torch_payload(data)
    assert all(pickle_report.data_only for _, pickle_report in report.pickles)
    assert "only rebuilds data" in report.summary()


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_torch_save_of_a_malicious_object(tmp_path: Path, zip_format: bool) -> None:
    pytest.importorskip("torch")
    evil = attacks._ShellOnLoad(attacks._touch(tmp_path))
    report = analyse_torch_payload(attacks.torch_save_bytes(evil, zip_format=zip_format))
    assert "posix.system" in report.calls
    assert "imports and calls posix.system (os.system: runs a shell command)" in report.summary()
    assert not (tmp_path / attacks.MARKER).exists()


def test_torch_payload_that_is_neither_zip_nor_pickle() -> None:
    report = analyse_torch_payload(b"not torch at all")
    assert (report.layout, report.pickles) == ("unknown", ())
    assert "no pickle" in report.summary()
    damaged = analyse_torch_payload(b"PK\x03\x04" + bytes(40))
    assert damaged.problem


_SEED_PICKLES = [
    pickle.dumps({"a": [1, 2.5, "x"], "b": (None, True)}, protocol=p) for p in range(6)
] + [pickle.dumps(np.arange(3.0), protocol=p) for p in (2, 4)]


@settings(max_examples=300, deadline=None)
@given(
    seed=st.sampled_from(_SEED_PICKLES),
    cuts=st.lists(st.tuples(st.integers(0, 200), st.binary(max_size=4)), max_size=4),
)
def test_mutated_pickles_never_raise(seed: bytes, cuts: list[tuple[int, bytes]]) -> None:
    data = bytearray(seed)
    for at, chunk in cuts:
        data[at : at + len(chunk)] = chunk
    report = analyse_pickle(bytes(data))
    json.dumps(report.to_dict())
    assert isinstance(report.summary(), str)
    assert isinstance(looks_like_pickle(bytes(data)), bool)
    torch_report = analyse_torch_payload(bytes(data))
    assert isinstance(torch_report.summary(), str)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=256))
def test_random_bytes_never_raise(data: bytes) -> None:
    assert isinstance(analyse_pickle(data).summary(), str)
    assert isinstance(analyse_torch_payload(data).summary(), str)


def _torch_like_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"w": [1.0, 2.0]}, protocol=2))
        zf.writestr("archive/data/0", bytes(16))
        zf.writestr("archive/version", b"3\n")
    return buffer.getvalue()


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.tuples(st.integers(0, 600), st.binary(max_size=8)), min_size=1, max_size=6))
def test_mutated_torch_zips_never_raise(cuts: list[tuple[int, bytes]]) -> None:
    data = bytearray(_torch_like_zip())
    for at, chunk in cuts:
        data[at : at + len(chunk)] = chunk
    report = analyse_torch_payload(bytes(data))
    json.dumps(report.to_dict())
    assert isinstance(report.summary(), str)
