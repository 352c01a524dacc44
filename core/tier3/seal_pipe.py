"""Encrypting a phase tarball while it is built, without a second pass over a file.

`encrypt_stream` pulls plaintext (`readinto`) while the builder pushes it
(`write`), so the two run on two threads joined by a small bounded pipe: the
builder blocks when the encryptor falls behind, memory stays at a few MiB.
A failure on either side reaches the other: the builder's error comes out of
the encryptor's read as it was raised, and a reader that gives up (a cancel,
an upload that failed) makes the builder's next write fail so it stops.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import TypeVar

from core.packing.crypto import Key, encrypt_stream
from core.tier3.phase_pack import Sink

_T = TypeVar("_T")

PIPE_LIMIT = 4 * 1024 * 1024


class PipeClosed(Exception):
    """The reading side went away; the writer must stop."""


class BytePipe:
    """One writer thread and one reader thread, at most `limit` bytes held between them."""

    def __init__(self, limit: int = PIPE_LIMIT) -> None:
        self._limit = limit
        self._cond = threading.Condition()
        self._chunks: deque[memoryview] = deque()
        self._held = 0
        self._closed = False
        self._error: BaseException | None = None
        self._gone = False

    # the writer's side
    def write(self, data: bytes | memoryview, /) -> int:
        chunk = memoryview(bytes(data))  # the caller may reuse its buffer
        with self._cond:
            while self._held >= self._limit and not self._gone:
                self._cond.wait()
            if self._gone:
                raise PipeClosed("the reader stopped")
            self._chunks.append(chunk)
            self._held += len(chunk)
            self._cond.notify_all()
        return len(chunk)

    def flush(self) -> None:
        """Bytes are readable as soon as written."""

    def close(self, error: BaseException | None = None) -> None:
        """The end of the data, or the writer's failure for the reader to raise."""
        with self._cond:
            self._closed = True
            self._error = error
            self._cond.notify_all()

    # the reader's side
    def readinto(self, buffer: memoryview, /) -> int:
        with self._cond:
            while not self._chunks and not self._closed:
                self._cond.wait()
            if not self._chunks:
                if self._error is not None:
                    raise self._error
                return 0
            first = self._chunks[0]
            n = min(len(first), len(buffer))
            buffer[:n] = first[:n]
            if n == len(first):
                self._chunks.popleft()
            else:
                self._chunks[0] = first[n:]
            self._held -= n
            self._cond.notify_all()
            return n

    def abandon(self) -> None:
        with self._cond:
            self._gone = True
            self._chunks.clear()
            self._held = 0
            self._cond.notify_all()


def build_sealed(build: Callable[[Sink], _T], out: Sink, key: Key) -> _T:
    """Runs `build(plaintext sink)` on a thread of its own and encrypts what it writes
    into `out`; returns what `build` returned."""
    pipe = BytePipe()
    result: list[_T] = []

    def run() -> None:
        try:
            result.append(build(pipe))
        except BaseException as err:  # handed to the reader, raised there
            pipe.close(err)
        else:
            pipe.close()

    builder = threading.Thread(target=run, name="tk-phase-build", daemon=True)
    builder.start()
    try:
        encrypt_stream(pipe, out, key)
    finally:
        pipe.abandon()
        builder.join()
    return result[0]
