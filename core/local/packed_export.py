"""A source file as a `.zst` artifact without compressing anything again.

The DB already keeps every source as zstd frames (one per import batch, or one
for a whole document), and concatenated zstd frames are themselves a valid
zstd stream of the concatenated content. So the backup artifact is those
frames, copied in order: the CPU cost of packing drops to decompressing once
to hash the original bytes (several times faster than compressing), and the
artifact decompresses with any zstd tool to the file as imported.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import zstandard

from core.errors import TierkeeperError
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


def pack_source_with(reads: ReadPool, source_id: int, kind: str, dst: Path) -> Packed:
    """Blocking: the source's stored frames copied to `dst`, read through `reads` (a
    backup packs several files at once, in worker threads; see core/local/db/read_pool.py)."""
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
