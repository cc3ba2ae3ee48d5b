"""A zip member's local file header, read where the central directory (or a walk) says it is.

``zipfile`` reads local headers only inside ``ZipFile.open``, which decompresses and checks the
CRC; the checks here need the header alone: where a stored member's bytes start (to read them in
place), whether the header agrees with the directory (two readers must see one archive), and the
names of a truncated archive whose directory is gone. One reader serves them all: the artifact
readers, the safety scan, the gate's format guess and its CRC job.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import IO

#: signature, version, flags, method, time, date, CRC-32, compressed size, size, name length,
#: extra length (APPNOTE.TXT 4.3.7)
LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
LOCAL_SIGNATURE = b"PK\x03\x04"
#: general purpose flag bits
UTF8_NAME = 0x800
SIZES_AFTER_DATA = 0x8


@dataclass(frozen=True)
class LocalHeader:
    """One member's local header: what it says, and where the member's data starts."""

    offset: int
    flags: int
    method: int
    compress_size: int
    name: bytes  # as read: shorter than name_length in a truncated file
    name_length: int
    extra_length: int

    @property
    def data_start(self) -> int:
        """The offset of the member's first data byte."""
        return self.offset + LOCAL_HEADER.size + self.name_length + self.extra_length

    def name_text(self, *, flags: int | None = None) -> str:
        """The name decoded as zipfile decodes it: UTF-8 when the flag says so (the central
        directory's ``flags`` when given), else code page 437."""
        utf8 = (self.flags if flags is None else flags) & UTF8_NAME
        return self.name.decode("utf-8" if utf8 else "cp437", errors="replace")


def read_local_header(fh: IO[bytes], offset: int) -> LocalHeader | None:
    """The local header at ``offset``, with its name; ``None`` when there is none (too short or
    another signature). Leaves ``fh`` after the name."""
    fh.seek(offset)
    raw = fh.read(LOCAL_HEADER.size)
    if len(raw) != LOCAL_HEADER.size or raw[:4] != LOCAL_SIGNATURE:
        return None
    fields = LOCAL_HEADER.unpack(raw)
    flags, method, compress_size, name_length, extra_length = (
        fields[2],
        fields[3],
        fields[7],
        fields[9],
        fields[10],
    )
    name = fh.read(name_length)
    return LocalHeader(offset, flags, method, compress_size, name, name_length, extra_length)
