"""A source file as a `.zst` artifact without compressing anything again.

The DB already keeps every source as zstd frames (one per import batch, or one
for a whole document), and concatenated zstd frames are themselves a valid
zstd stream of the concatenated content. So the backup artifact is those
frames, copied in order: the CPU cost of packing drops to decompressing once
to hash the original bytes (several times faster than compressing), and the
artifact decompresses with any zstd tool to the file as imported.

Usually not even that: the import already took the SHA-256 of exactly the bytes
it read (`sources.sha256`, over `bytes_read`), and where no line was redacted on
the way in, those are the bytes the frames hold. Then the frames are copied as
they are, checked only by the sizes their headers declare against the chunk
rows and the source row; the digest a restore checks the decompressed file
against is then the one taken from the original file, so a chunk damaged in the
DB since the import shows at restore (and the source file, if it is still
there, can be imported again). A redacted source, a row without a digest, or
sizes that do not add up: the frames are decompressed and hashed, as before.
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


_DAMAGED_HINT = "re-import the source file, then back up again"


class _Writer:
    """Scratch output: hashed on the way, no fsync (the store makes its own copy durable).
    `known`: (raw size, raw SHA-256) the import recorded; the frames are then not
    decompressed, only their declared sizes added up."""

    def __init__(self, dst: Path, known: tuple[int, str] | None = None) -> None:
        self._fh = open(dst, "wb")  # noqa: SIM115 - closed in close()
        self.out = HashingWriter(self._fh)
        self.raw = hashlib.sha256()
        self.raw_size = 0
        self.known = known
        self._dctx = zstandard.ZstdDecompressor()

    def add(self, frames: list[bytes]) -> None:
        for frame in frames:
            if self.known is None:
                try:
                    plain = self._dctx.decompress(frame)
                except zstandard.ZstdError as exc:
                    raise TierkeeperError(
                        f"A stored chunk is damaged ({exc})", hint=_DAMAGED_HINT
                    ) from exc
                self.raw.update(plain)
                self.raw_size += len(plain)
            else:
                self.raw_size += _declared_size(frame)
            self.out.write(frame)

    def digest(self) -> tuple[int, str]:
        """(raw size, raw SHA-256); with `known`, its sizes checked against the frames'."""
        if self.known is None:
            return self.raw_size, self.raw.hexdigest()
        if self.raw_size != self.known[0]:
            raise TierkeeperError(
                f"The stored chunks hold {self.raw_size} bytes, not the {self.known[0]} imported",
                hint=_DAMAGED_HINT,
            )
        return self.known

    def close(self) -> None:
        self._fh.close()


def pack_source_with(reads: ReadPool, source_id: int, kind: str, dst: Path) -> Packed:
    """Blocking: the source's stored frames copied to `dst`, read through `reads` (a
    backup packs several files at once, in worker threads; see core/local/db/read_pool.py)."""
    with reads.borrow() as conn:
        conn.execute("BEGIN")  # the source row and its frames from one snapshot
        writer = _Writer(dst, _known_digest(conn, source_id) if kind == "lines" else None)
        try:
            _copy_frames(conn, source_id, kind, writer)
            if writer.out.size == 0:
                writer.add([zstandard.ZstdCompressor().compress(b"")])
        finally:
            writer.close()
    raw_size, raw_sha256 = writer.digest()
    return Packed(
        raw_size=raw_size,
        raw_sha256=raw_sha256,
        size=writer.out.size,
        sha256=writer.out.sha256,
        md5=writer.out.md5,
    )


def _known_digest(conn: sqlite3.Connection, source_id: int) -> tuple[int, str] | None:
    """(size, SHA-256) of the bytes the frames hold, as the import recorded them; None
    when that record cannot stand for them (a redacted line, no digest, a size that is
    not the chunks')."""
    row = conn.execute(
        "SELECT sha256, bytes_read, "
        "(SELECT total(size) FROM raw_chunks WHERE source_id = s.id), "
        "EXISTS(SELECT 1 FROM messages WHERE source_id = s.id AND redacted = 1) "
        "FROM sources s WHERE id = ?",
        (source_id,),
    ).fetchone()
    if row is None or row[0] is None or row[3] or int(row[2]) != int(row[1] or 0):
        return None
    return int(row[1]), str(row[0])


def _declared_size(frame: bytes) -> int:
    """The content size a frame's header declares (the importer always writes it)."""
    try:
        size = zstandard.frame_content_size(frame)
    except zstandard.ZstdError as exc:
        raise TierkeeperError(f"A stored chunk is damaged ({exc})", hint=_DAMAGED_HINT) from exc
    if size < 0:  # unknown (-1): not a frame this project wrote
        raise TierkeeperError("A stored chunk has no declared size", hint=_DAMAGED_HINT)
    return int(size)


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
