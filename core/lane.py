"""Work done on a thread of its own, in the order it was queued.

Building a phase tarball hashes every byte twice (each member against its
Tier 2 manifest, and the whole tar stream) and then spools and hashes the
compressed bytes: done inline, that is half of the building thread's time,
while it is also the thread that feeds zstd. hashlib and file writes let go of
the GIL, so a lane does them while the builder decompresses and compresses.
Work that must see a finished digest is queued behind the bytes it depends on;
a failure there is raised in the producing thread at its next call, and at
`close` at the latest — before the caller seals what it was writing.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Protocol

DEPTH = 32
"""Chunks waiting to be hashed (at 256 KiB, 8 MiB held at most)."""


class Hash(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...


_Item = tuple[Hash, bytes | memoryview] | Callable[[], None] | None


class Lane:
    def __init__(self, depth: int = DEPTH) -> None:
        self._queue: queue.Queue[_Item] = queue.Queue(depth)
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="lane", daemon=True)
        self._thread.start()

    def update(self, hasher: Hash, data: bytes | memoryview) -> None:
        """Queues `hasher.update(data)`; `data` must not change afterwards."""
        self._raise_failure()
        self._queue.put((hasher, data))

    def then(self, check: Callable[[], None]) -> None:
        """Runs `check` once every update queued before it is done; what it raises
        comes back from the producer's next call."""
        self._raise_failure()
        self._queue.put(check)

    def close(self) -> None:
        """Waits for the queue to drain; raises the first failure of a check."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()
        self._raise_failure()

    def abandon(self) -> None:
        """Stops without raising: for a build that failed already for another reason."""
        if not self._closed:
            self._closed = True
            self._error = self._error or _Abandoned()
            while True:  # make room for the stop mark even if the thread is stuck behind
                try:
                    self._queue.put_nowait(None)
                    break
                except queue.Full:
                    self._drop_one()
            self._thread.join()

    def _drop_one(self) -> None:
        try:
            self._queue.get_nowait()
        except queue.Empty:
            pass

    def _raise_failure(self) -> None:
        if self._error is not None and not isinstance(self._error, _Abandoned):
            raise self._error

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is not None:
                continue  # a check failed: the build is lost, only drain
            try:
                if isinstance(item, tuple):
                    item[0].update(item[1])
                else:
                    item()
            except BaseException as exc:  # handed to the producer
                self._error = exc


class _Abandoned(Exception):
    pass
