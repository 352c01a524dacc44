"""Read-only connections to the DB file for worker threads, kept for a job's life.

The service's one aiosqlite connection serialises every statement on one thread,
and a backup reads its whole payload (the stored frames of every source file)
through the DB: four sessions packed at once then queue behind each other and
behind the window's questions. A worker thread that borrows a read-only
connection of its own reads beside them (WAL readers never wait for the writer),
and SQLite releases the GIL while it works. Connections are kept, not opened per
use: a fresh one parses the whole schema on its first statement, which costs
more than a small session's queries.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class ReadPool:
    def __init__(self, db_path: Path) -> None:
        self._path = db_path
        self._uri: str | None = None  # resolved on first use: a job that reads nothing pays nothing
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def borrow(self) -> Iterator[sqlite3.Connection]:
        """Blocking. A connection for this thread alone until the block ends; whatever
        read it began is ended when it is given back (a kept snapshot pins the WAL)."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
            if self._uri is None:
                self._uri = f"{self._path.resolve().as_uri()}?mode=ro"
            uri = self._uri
        if conn is None:
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.rollback()
            with self._lock:
                keep = not self._closed
                if keep:
                    self._idle.append(conn)
            if not keep:
                conn.close()

    def close(self) -> None:
        """Closes the kept connections; one still borrowed is closed when given back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
