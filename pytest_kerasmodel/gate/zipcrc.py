"""A large archive's CRCs verified in a thread while the other checks go on.

Each stored member's CRC-32 is computed over units read in order and combined with
:func:`crc32_combine` (zlib's ``crc32_combine``, which Python's ``zlib`` does not expose), so the
integrity check's verdict waits only for what is not read yet.
"""

from __future__ import annotations

import threading
import zipfile
import zlib
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pytest_kerasmodel import artifacts
from pytest_kerasmodel.artifacts.ziplocal import read_local_header
from pytest_kerasmodel.gate.protocol import CheckFailure


def _test_zip_crcs(zf: zipfile.ZipFile, skip: Collection[str] = ()) -> None:
    """Read every member once (chunk by chunk): a damaged member fails its CRC check here.

    ``skip`` names the members a :class:`_ZipCrcJob` verifies instead.
    """
    for info in zf.infolist():
        if info.filename in skip:
            continue
        try:
            with zf.open(info) as member:
                while member.read(2**20):
                    pass
        except zipfile.BadZipFile:
            raise CheckFailure(
                f"a damaged zip archive: member {info.filename!r} fails its CRC check"
            ) from None
        except (OSError, EOFError, zlib.error) as exc:
            raise CheckFailure(f"a damaged zip archive: {exc}") from None


# A stored member larger than this has its CRC checked by a _ZipCrcJob: in a thread, on its own
# file handle, while the weights are described and scanned (and, when more checks follow, while
# they run); zlib.crc32 and file reads release the GIL, so the CRC pass (as costly as reading the
# bytes) overlaps the scan on another core. Smaller members are read through zipfile, inline.
CRC_IN_BACKGROUND_BYTES = 16 * 1024**2


# the job's unit of work (each unit's CRC is computed alone, then combined in order) and the size
# of each read into the reused buffer (small enough to stay in the CPU cache for zlib.crc32)
CRC_UNIT_BYTES = 8 * 1024**2


CRC_READ_BYTES = 1024**2


_CRC_POLY = 0xEDB88320  # zlib's CRC-32, bit-reflected: bit 31 holds the coefficient of x^0


def _multmodp(a: int, b: int) -> int:
    """a(x) * b(x) modulo the CRC-32 polynomial (zlib's multmodp)."""
    product = 0
    mask = 1 << 31
    while mask:
        if a & mask:
            product ^= b
        mask >>= 1
        b = (b >> 1) ^ _CRC_POLY if b & 1 else b >> 1
    return product


_X2N = [1 << 30]  # x^(2^k) modulo the polynomial, for k in 0..31


for _ in range(31):
    _X2N.append(_multmodp(_X2N[-1], _X2N[-1]))


def _x2nmodp(n: int, k: int) -> int:
    """x^(n * 2^k) modulo the CRC-32 polynomial (zlib's x2nmodp)."""
    power = 1 << 31
    while n:
        if n & 1:
            power = _multmodp(_X2N[k & 31], power)
        n >>= 1
        k += 1
    return power


def crc32_combine(crc1: int, crc2: int, length2: int) -> int:
    """The CRC-32 of A + B from crc32(A), crc32(B) and len(B) (zlib's crc32_combine)."""
    return _multmodp(_x2nmodp(length2, 3), crc1) ^ crc2


@dataclass
class _CrcUnit:
    member: str
    start: int  # in the file
    length: int
    crc: int = 0


class _ZipCrcJob:
    """Verifies the CRCs of an archive's large stored members, unit by unit.

    A background thread takes the units in turn; :meth:`finish` makes the caller take the units
    left too (two cores then share the end of the pass), waits for the thread, combines each
    member's unit CRCs in order and raises :class:`CheckFailure` on a damaged member. Memory: one
    reused read buffer per thread.
    """

    def __init__(self, path: Path, members: dict[str, tuple[int, int, int]]) -> None:
        # member -> (data start in the file, length, expected CRC)
        self.path = path
        self.members = members
        unit = max(1, CRC_UNIT_BYTES)
        self._units = [
            _CrcUnit(name, start + offset, min(unit, length - offset))
            for name, (start, length, _) in members.items()
            for offset in range(0, length, unit)
        ]
        self._next = 0
        self._lock = threading.Lock()
        self._error: Exception | None = None
        self._done = False
        self._thread = threading.Thread(target=self._work, name="kerasmodel-zip-crc", daemon=True)
        self._thread.start()

    @classmethod
    def start_for(cls, opened: artifacts.Artifact) -> _ZipCrcJob | None:
        """Start verifying the archive's large stored members; None when it has none."""
        assert opened.zip is not None
        large = [
            info
            for info in opened.zip.infolist()
            if info.compress_type == zipfile.ZIP_STORED
            and info.compress_size == info.file_size
            and not info.flag_bits & 0x1  # encrypted: zipfile refuses it, inline
            and info.file_size > CRC_IN_BACKGROUND_BYTES
        ]
        if not large:
            return None
        members: dict[str, tuple[int, int, int]] = {}
        with open(opened.path, "rb") as fh:
            for info in large:
                members[info.filename] = (_stored_data_start(fh, info), info.file_size, info.CRC)
        return cls(opened.path, members)

    def _take(self) -> _CrcUnit | None:
        with self._lock:
            if self._error is not None or self._next >= len(self._units):
                return None
            self._next += 1
            return self._units[self._next - 1]

    def _work(self) -> None:
        try:
            with open(self.path, "rb", buffering=0) as fh:
                buffer = memoryview(bytearray(max(1, min(CRC_READ_BYTES, CRC_UNIT_BYTES))))
                while (unit := self._take()) is not None:
                    fh.seek(unit.start)
                    crc, left = 0, unit.length
                    while left:
                        got = fh.readinto(buffer[: min(len(buffer), left)])
                        if not got:
                            raise EOFError(f"member {unit.member!r} is truncated")
                        crc = zlib.crc32(buffer[:got], crc)
                        left -= got
                    unit.crc = crc
        except Exception as exc:  # reported by finish(), in the check's own thread
            with self._lock:
                if self._error is None:
                    self._error = exc

    def cancel(self) -> None:
        """Stop taking units and wait for the thread (it ends its current unit)."""
        with self._lock:
            self._next = len(self._units)
        self._thread.join()

    def finish(self) -> None:
        """Help with the units left, wait, and raise CheckFailure when a member is damaged."""
        if not self._done:
            self._work()
            self._thread.join()
            self._done = True
        if self._error is not None:
            raise CheckFailure(f"a damaged zip archive: {self._error}")
        crcs: dict[str, int] = {}
        for unit in self._units:
            previous = crcs.get(unit.member)
            crcs[unit.member] = (
                unit.crc if previous is None else crc32_combine(previous, unit.crc, unit.length)
            )
        for name, (_, _, expected) in self.members.items():
            if crcs.get(name, 0) != expected:
                raise CheckFailure(f"a damaged zip archive: member {name!r} fails its CRC check")


def _stored_data_start(fh: BinaryIO, info: zipfile.ZipInfo) -> int:
    """Where a member's data starts, after its local header (checked as zipfile checks it)."""
    header = read_local_header(fh, info.header_offset)
    if header is None:
        raise CheckFailure(
            f"a damaged zip archive: member {info.filename!r} has no valid local header"
        )
    name = header.name_text(flags=info.flag_bits)
    if name != info.orig_filename:
        raise CheckFailure(
            f"a damaged zip archive: file name in directory {info.orig_filename!r} and header "
            f"{name!r} differ"
        )
    return header.data_start
