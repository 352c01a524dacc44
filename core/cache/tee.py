"""The destination a cache fill hands to the inner store: the caller's file plus a copy.

Stores write from worker threads, tell where they are (the retry wrapper
resumes a range from there) and, on a damaged download, seek back and
truncate (the S3 store does). The copy follows all of that, so it always
holds exactly what the caller's destination got. Past `limit` bytes the copy
is abandoned: the object is too big to keep, and the caller's read goes on.
"""

from __future__ import annotations

import contextlib
from typing import BinaryIO


class TeeWriter:
    def __init__(self, dest: BinaryIO, copy: BinaryIO, limit: int) -> None:
        self.dest = dest
        self.copy: BinaryIO | None = copy
        self.limit = limit
        self._base = _position(dest)
        self._written = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._base is not None

    def write(self, data: bytes | bytearray | memoryview) -> int:
        n = self.dest.write(data)
        self._written += len(data)
        if self.copy is not None:
            if self.copy.tell() + len(data) > self.limit:
                self.copy = None  # too big to keep; the caller still gets everything
            else:
                self.copy.write(data)
        return n if n is not None else len(data)

    def tell(self) -> int:
        if self._base is None:
            return self._written
        return self.dest.tell()

    def seek(self, pos: int, whence: int = 0) -> int:
        if self._base is None or whence != 0:
            raise OSError("this destination can only be rewound to an absolute position")
        at = self.dest.seek(pos)
        if self.copy is not None:
            self.copy.seek(pos - self._base)
        return at

    def truncate(self, size: int | None = None) -> int:
        if self._base is None:
            raise OSError("this destination cannot be truncated")
        end = self.dest.truncate(size)
        if self.copy is not None:
            self.copy.truncate(None if size is None else size - self._base)
        return end

    def flush(self) -> None:
        self.dest.flush()

    @property
    def kept(self) -> bool:
        """The copy holds the whole object."""
        return self.copy is not None


def _position(dest: BinaryIO) -> int | None:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        if dest.seekable():
            return dest.tell()
    return None
