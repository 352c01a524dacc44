"""Upload handles kept in the backup job's checkpoint, so a restarted job resumes.

A Drive session URI (or an S3 upload id) is worth keeping only for the exact
bytes it was opened for, so each handle is stored with the key and the SHA-256
of the packed file; packing is deterministic, so the same session packs to the
same digest after a restart and the handle applies again.
"""

from __future__ import annotations

from typing import Any

from core.jobs import JobContext

UPLOADS = "uploads"


class CheckpointSlot:
    def __init__(self, ctx: JobContext, key: str, sha256: str) -> None:
        self._ctx = ctx
        self._key = key
        self._sha256 = sha256

    def _uploads(self) -> dict[str, Any]:
        found = (self._ctx.checkpoint or {}).get(UPLOADS, {})
        return dict(found) if isinstance(found, dict) else {}

    def load(self) -> str | None:
        entry = self._uploads().get(self._key)
        if isinstance(entry, dict) and entry.get("sha256") == self._sha256:
            handle = entry.get("handle")
            return handle if isinstance(handle, str) else None
        return None

    async def save(self, handle: str | None) -> None:
        uploads = self._uploads()
        if handle is None:
            if uploads.pop(self._key, None) is None:
                return
        else:
            uploads[self._key] = {"sha256": self._sha256, "handle": handle}
        state = dict(self._ctx.checkpoint or {})
        state[UPLOADS] = uploads
        await self._ctx.save_checkpoint(state)
