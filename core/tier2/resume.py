"""A backup job's checkpoint, shared by the sessions it packs at the same time.

Two things live there: which sessions are done (never redone after a restart),
and the handles of uploads in flight (a Drive session URI, an S3 upload id),
so a job restarted after a crash resumes an upload instead of restarting it.
Sessions run concurrently, so every change goes through one lock: read,
change, commit, in turn — no update can overwrite another.

A handle is worth keeping only for the exact bytes it was opened for, so each
is stored with its key and the SHA-256 of the packed file; packing is
deterministic, so the same session packs to the same digest after a restart
and the handle applies again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from core.jobs import JobContext

UPLOADS = "uploads"


LATER = 0.25
"""Seconds a `soon` change may wait before it is committed."""


class SharedCheckpoint:
    def __init__(self, ctx: JobContext) -> None:
        self._ctx = ctx
        self.data: dict[str, Any] = dict(ctx.checkpoint or {})
        self._lock = asyncio.Lock()
        self._unsaved: dict[str, int] | None = None
        """Counters of changes made with `soon` and not committed yet."""
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: set[asyncio.Task[None]] = set()

    async def update(
        self, change: Callable[[dict[str, Any]], bool], *, soon: bool = False, **counters: int
    ) -> None:
        """Applies `change` (which says whether it changed anything) and commits.

        `soon` lets the commit wait a moment and share a write with the changes after
        it: for a mark whose loss costs little (a session redone after a crash finds
        its backup unchanged and skips it). `flush` commits what waits."""
        async with self._lock:
            if not change(self.data):
                return
            if soon:
                self._unsaved = {**(self._unsaved or {}), **counters}
                if self._timer is None:
                    loop = asyncio.get_running_loop()
                    self._timer = loop.call_later(LATER, self._flush_later)
                return
            await self._save({**(self._unsaved or {}), **counters})

    async def flush(self) -> None:
        """Commits the changes still waiting (the job's end, a pause, a failure)."""
        async with self._lock:
            if self._unsaved is not None:
                await self._save(self._unsaved)

    def _flush_later(self) -> None:
        self._timer = None
        task = asyncio.ensure_future(self.flush())
        self._flushing.add(task)  # held: the loop keeps only weak references to tasks
        task.add_done_callback(self._flushing.discard)

    async def _save(self, counters: dict[str, int]) -> None:
        self._unsaved = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self._ctx.save_checkpoint(dict(self.data), **counters)

    def slot(self, key: str, sha256: str) -> CheckpointSlot:
        return CheckpointSlot(self, key, sha256)


class CheckpointSlot:
    def __init__(self, shared: SharedCheckpoint, key: str, sha256: str) -> None:
        self._shared = shared
        self._key = key
        self._sha256 = sha256

    def load(self) -> str | None:
        entry = dict(self._shared.data.get(UPLOADS) or {}).get(self._key)
        if isinstance(entry, dict) and entry.get("sha256") == self._sha256:
            handle = entry.get("handle")
            return handle if isinstance(handle, str) else None
        return None

    async def save(self, handle: str | None) -> None:
        def change(data: dict[str, Any]) -> bool:
            uploads = dict(data.get(UPLOADS) or {})
            if handle is None:
                if uploads.pop(self._key, None) is None:
                    return False
            else:
                uploads[self._key] = {"sha256": self._sha256, "handle": handle}
            data[UPLOADS] = uploads
            return True

        await self._shared.update(change)
