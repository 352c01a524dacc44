"""A source file as a `.zst` artifact without compressing anything again.

The DB already keeps every source as zstd frames (one per import batch, or one
for a whole document), and concatenated zstd frames are themselves a valid
zstd stream of the concatenated content. So the backup artifact is those
frames, copied in order: the CPU cost of packing drops to decompressing once
to hash the original bytes (several times faster than compressing), and the
artifact decompresses with any zstd tool to the file as imported.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from pathlib import Path

import zstandard

from core.errors import NotFoundError, TierkeeperError
from core.local.db.database import Database
from core.local.db.read_pool import ReadPool
from core.packing import Packed
from core.packing.compress import HashingWriter

_BATCH = 8
"""Stored frames fetched at a time: a few MB in memory whatever the file's size."""


class _Writer:
    """Scratch output: hashed on the way, no fsync (the store makes its own copy durable)."""

    def __init__(self, dst: Path) -> None:
        self._fh = open(dst, "wb")  # noqa: SIM115 - closed in close()
        self.out = HashingWriter(self._fh)
        self.raw = hashlib.sha256()
        self.raw_size = 0
        self._dctx = zstandard.ZstdDecompressor()

    def add(self, frames: list[bytes]) -> None:
        for frame in frames:
            try:
                plain = self._dctx.decompress(frame)
            except zstandard.ZstdError as exc:
                raise TierkeeperError(
                    f"A stored chunk is damaged ({exc})",
                    hint="re-import the source file, then back up again",
                ) from exc
            self.raw.update(plain)
            self.raw_size += len(plain)
            self.out.write(frame)

    def close(self) -> None:
        self._fh.close()


async def pack_source(db: Database, source_id: int, dst: Path, *, kind: str | None = None
                      ) -> Packed:  # fmt: skip
    """`kind` (the source's, when the caller already has it) saves a query."""
    if kind is None:
        row = await db.fetchone("SELECT kind FROM sources WHERE id = ?", (source_id,))
        if row is None:
            raise NotFoundError(f"No source {source_id}")
        kind = str(row["kind"])
    # opened and closed here, not in a thread: a job cancelled while a thread opens
    # it, or before a queued close ran, would leak the file (a local scratch file
    # opens and closes at once)
    writer = _Writer(dst)
    try:
        if kind == "json":
            blob = await db.fetchone("SELECT data FROM raw_files WHERE source_id = ?",
                                     (source_id,))  # fmt: skip
            if blob is None:
                raise TierkeeperError(f"The stored copy of source {source_id} is missing")
            await asyncio.to_thread(writer.add, [bytes(blob[0])])
        else:
            last = -1
            while True:
                rows = await db.fetchall(
                    "SELECT first_seq, data FROM raw_chunks WHERE source_id = ? AND first_seq > ?"
                    " ORDER BY first_seq LIMIT ?",
                    (source_id, last, _BATCH),
                )
                if rows:
                    await asyncio.to_thread(writer.add, [bytes(r[1]) for r in rows])
                    last = int(rows[-1][0])
                if len(rows) < _BATCH:  # the last batch: no need to ask for an empty one
                    break
        if writer.out.size == 0:  # an empty file still needs a frame to decompress from
            await asyncio.to_thread(writer.add, [zstandard.ZstdCompressor().compress(b"")])
    finally:
        writer.close()
    return Packed(
        raw_size=writer.raw_size,
        raw_sha256=writer.raw.hexdigest(),
        size=writer.out.size,
        sha256=writer.out.sha256,
        md5=writer.out.md5,
    )


def pack_source_with(reads: ReadPool, source_id: int, kind: str, dst: Path) -> Packed:
    """Blocking: `pack_source` in one worker-thread call, reading through `reads`
    (a backup packs several files at once; see core/local/db/read_pool.py)."""
    with reads.borrow() as conn:
        writer = _Writer(dst)
        try:
            _copy_frames(conn, source_id, kind, writer)
            if writer.out.size == 0:
                writer.add([zstandard.ZstdCompressor().compress(b"")])
        finally:
            writer.close()
    return Packed(
        raw_size=writer.raw_size,
        raw_sha256=writer.raw.hexdigest(),
        size=writer.out.size,
        sha256=writer.out.sha256,
        md5=writer.out.md5,
    )


def _copy_frames(conn: sqlite3.Connection, source_id: int, kind: str, writer: _Writer) -> None:
    if kind == "json":
        blob = conn.execute(
            "SELECT data FROM raw_files WHERE source_id = ?", (source_id,)
        ).fetchone()
        if blob is None:
            raise TierkeeperError(f"The stored copy of source {source_id} is missing")
        writer.add([bytes(blob[0])])
        return
    cur = conn.execute(
        "SELECT data FROM raw_chunks WHERE source_id = ? ORDER BY first_seq", (source_id,)
    )
    try:
        while rows := cur.fetchmany(_BATCH):
            writer.add([bytes(r[0]) for r in rows])
    finally:
        cur.close()
