"""A streaming tar writer for members whose size is known up front.

`tarfile`'s stream mode buffers every write into a growing `bytes` and slices
it into records, which costs more than zstd itself on a fast phase archive.
Here a header comes from `TarInfo.tobuf` (so the format is exactly tarfile's
PAX), and the member's bytes go straight to the sink in large chunks, hashed
on the way. The result reads back with `tarfile` in stream or random mode.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from typing import IO, Protocol

BLOCK = tarfile.BLOCKSIZE
COPY_SIZE = 1 << 18
"""Bytes read and written at a time: big enough for speed, small enough for the heap."""
_COPY = COPY_SIZE
_ZEROS = bytes(BLOCK)


class Sink(Protocol):
    def write(self, data: bytes | memoryview, /) -> int: ...


class ShortMemberError(Exception):
    """The source ended before the size its header promised."""


def fixed_member(name: str, size: int, *, mtime: int = 0, mode: int = 0o644) -> tarfile.TarInfo:
    """A member with owner 0 and empty owner names: the same content gives the same bytes."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = mode
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


class Hash(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...


def _update_now(hasher: Hash, data: bytes | memoryview) -> None:
    hasher.update(data)


class TarWriter:
    """`update` feeds a member's bytes to its hasher: at once by default, or handed to a
    `Lane` so that hashing runs beside the writing."""

    def __init__(
        self, sink: Sink, *, update: Callable[[Hash, bytes | memoryview], None] = _update_now
    ) -> None:
        self._sink = sink
        self._update = update
        self.size = 0

    def _write(self, data: bytes | memoryview) -> None:
        self._sink.write(data)
        self.size += len(data)

    def add(self, info: tarfile.TarInfo, source: IO[bytes], sha: Hash) -> None:
        """Writes the member, reading exactly `info.size` bytes, each given to `sha`.

        A source that ends early raises ShortMemberError (the archive is then
        unusable: the caller abandons it), one with more bytes is not read further.
        """
        self._write(info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape"))
        left = info.size
        while left:
            chunk = source.read(min(_COPY, left))
            if not chunk:
                raise ShortMemberError(f"{info.name}: {left} bytes missing")
            self._update(sha, chunk)
            self._write(chunk)
            left -= len(chunk)
        tail = info.size % BLOCK
        if tail:
            self._write(_ZEROS[: BLOCK - tail])

    def close(self) -> None:
        """The end-of-archive marker: two zero blocks, then zeros to a whole record."""
        self._write(_ZEROS * 2)
        rest = self.size % tarfile.RECORDSIZE
        if rest:
            self._write(bytes(tarfile.RECORDSIZE - rest))
