"""What reached the server, so tests can assert how the client behaved.

For instance "the upload resumed rather than restarted" is `count("upload.start") == 1` plus
the `Content-Range` of each chunk.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class RequestRecord:
    endpoint: str
    method: str
    path: str
    query: dict[str, str]
    content_range: str | None
    status: int | None = None  # None: no response was sent (dropped or still running)


@dataclass
class Traffic:
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _records: list[RequestRecord] = field(default_factory=list)

    def record(self, rec: RequestRecord) -> RequestRecord:
        with self._lock:
            self._records.append(rec)
        return rec

    def count(self, endpoint: str) -> int:
        with self._lock:
            return sum(1 for r in self._records if r.endpoint == endpoint)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(Counter(r.endpoint for r in self._records))

    def records(self, endpoint: str | None = None) -> list[RequestRecord]:
        with self._lock:
            return [r for r in self._records if endpoint is None or r.endpoint == endpoint]

    def reset(self) -> None:
        with self._lock:
            self._records.clear()
