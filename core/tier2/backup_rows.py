"""A backup job's `backups` rows, written together and off its sessions' path.

A session's row is what says its backup is verified, so it is handed over only
once the manifest is known to have landed; but the session's worker need not wait while
it is written: it starts the next session at once, and rows that arrive while
one write is in flight go together in the next (one transaction, one trip to
the DB thread). Whatever must follow a row (the job's "done" mark for the
session) awaits that row's future.
"""

from __future__ import annotations

import asyncio
from typing import Any

from core.local.db.database import Database

INSERT = """INSERT INTO backups(session_id, target, phase, prefix, manifest, raw_bytes,
    stored_bytes, created_at, verified_at, verify_status) VALUES (?,?,?,?,?,?,?,?,?,?)"""


class BackupRows:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._waiting: list[tuple[tuple[Any, ...], asyncio.Future[int]]] = []
        self._writer: asyncio.Task[None] | None = None

    def add(self, params: tuple[Any, ...]) -> asyncio.Future[int]:
        """The row's id once it is committed (or the error that kept it out)."""
        row: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.append((params, row))
        if self._writer is None:
            self._writer = asyncio.ensure_future(self._write())
        return row

    async def _write(self) -> None:
        batch: list[tuple[tuple[Any, ...], asyncio.Future[int]]] = []
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    ids = await self._db.insert_many(INSERT, [params for params, _ in batch])
                except Exception as exc:  # the disk is full: every row of the batch hears
                    for _, row in batch:
                        if not row.done():
                            row.set_exception(exc)
                    continue
                for (_, row), rowid in zip(batch, ids, strict=True):
                    if not row.done():
                        row.set_result(rowid)
                batch = []
        finally:
            self._writer = None
            for _, row in batch + self._waiting:  # cancelled: the loop is closing
                row.cancel()
            self._waiting = []
