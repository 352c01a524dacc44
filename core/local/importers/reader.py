"""Reading source files in pieces, off the event loop.

The reader splits on `\\n` only (a `\\r` inside a line is data), hands back
each line with its exact bytes and offset, and treats bytes after the last
newline as a *partial* line: stored like any other, but re-read when the file
grows, since a writer may still be in the middle of it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

READ_SIZE = 1 << 20


@dataclass(slots=True)
class Line:
    offset: int
    raw: bytes
    partial: bool = False


class LineReader:
    """Yields batches of lines from `start` up to `limit` (the size seen at stat time)."""

    def __init__(self, path: Path, start: int, limit: int) -> None:
        self._fh: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed in close()
        self._fh.seek(start)
        self._pos = start
        self._limit = limit
        self._buf = bytearray()
        self._buf_offset = start
        self.eof = start >= limit

    def close(self) -> None:
        self._fh.close()

    def next_batch(self, max_lines: int, max_bytes: int) -> list[Line]:
        lines: list[Line] = []
        size = 0
        while len(lines) < max_lines and size < max_bytes:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                raw = bytes(self._buf[: nl + 1])
                del self._buf[: nl + 1]
                lines.append(Line(self._buf_offset, raw))
                self._buf_offset += len(raw)
                size += len(raw)
                continue
            if self._pos >= self._limit:
                if self._buf:
                    lines.append(Line(self._buf_offset, bytes(self._buf), partial=True))
                    self._buf_offset += len(self._buf)
                    self._buf.clear()
                self.eof = True
                break
            chunk = self._fh.read(min(READ_SIZE, self._limit - self._pos))
            if not chunk:  # the file shrank under us: stop at what exists
                self._limit = self._pos
                continue
            self._pos += len(chunk)
            self._buf += chunk
        if not self._buf and self._pos >= self._limit:
            self.eof = True
        return lines


def hash_prefix(
    path: Path, upto: int, mark: int | None = None
) -> tuple[hashlib._Hash, hashlib._Hash | None]:
    """Running SHA-256 over bytes [0, upto), plus a copy taken at `mark` (≤ upto).

    Used to prove a file was only appended to since the last import (its old
    bytes still hash to the stored digest) before reading just the new bytes;
    the returned hashers then continue over those new bytes.
    """
    hasher = hashlib.sha256()
    at_mark: hashlib._Hash | None = hasher.copy() if mark == 0 else None
    done = 0
    with open(path, "rb") as fh:
        while done < upto:
            want = upto - done
            if mark is not None and done < mark:
                want = min(want, mark - done)
            chunk = fh.read(min(READ_SIZE, want))
            if not chunk:
                break
            hasher.update(chunk)
            done += len(chunk)
            if done == mark:
                at_mark = hasher.copy()
    return hasher, at_mark
