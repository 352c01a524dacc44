"""Gives back a session's source files exactly as they were imported.

Lines come back from their compressed raw bytes in order; whole documents
from the compressed copy. The SHA-256 of what is written is checked against
the digest recorded at import, so an export either matches byte for byte or
says why not (a secret was redacted on the way in).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import zstandard

from core.errors import BadInputError, NotFoundError, TierkeeperError
from core.local.db.database import Database
from core.packing.extract import make_folder


@dataclass(slots=True)
class ExportedFile:
    source_path: str
    written_to: str
    size: int
    sha256: str
    matches_source: bool
    redacted_lines: int


async def session_sources(db: Database, session_id: str) -> list[tuple[int, str, str]]:
    rows = await db.fetchall(
        "SELECT id, path, role FROM sources WHERE session_id = ? ORDER BY role, path",
        (session_id,),
    )
    if not rows:
        exists = await db.scalar("SELECT 1 FROM sessions WHERE id = ?", (session_id,))
        if not exists:
            raise NotFoundError(
                f"No session {session_id!r}", hint="`tierkeeper sessions` lists the ids"
            )
    return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]


async def export_source(db: Database, source_id: int, out: BinaryIO) -> tuple[int, str, int]:
    """Writes one source's original bytes to `out`; returns (size, sha256, redacted lines)."""
    row = await db.fetchone("SELECT kind, sha256 FROM sources WHERE id = ?", (source_id,))
    if row is None:
        raise NotFoundError(f"No source {source_id}")
    dctx = zstandard.ZstdDecompressor()
    hasher = hashlib.sha256()
    size = 0
    redacted = 0
    if row["kind"] == "json":
        blob = await db.fetchone("SELECT data FROM raw_files WHERE source_id = ?", (source_id,))
        if blob is None:
            raise TierkeeperError(f"The stored copy of source {source_id} is missing")
        data = dctx.decompress(blob[0])
        await asyncio.to_thread(out.write, data)
        return len(data), hashlib.sha256(data).hexdigest(), 0
    redacted = int(
        await db.scalar(
            "SELECT count(*) FROM messages WHERE source_id = ? AND redacted = 1", (source_id,)
        )
        or 0
    )
    last = -1
    while True:
        rows = await db.fetchall(
            "SELECT first_seq, last_seq, data FROM raw_chunks WHERE source_id = ? AND first_seq > ?"
            " ORDER BY first_seq LIMIT 64",
            (source_id, last),
        )
        if not rows:
            break
        for row in rows:
            chunk = dctx.decompress(row[2])
            hasher.update(chunk)
            size += len(chunk)
            await asyncio.to_thread(out.write, chunk)
        last = int(rows[-1][0])
    return size, hasher.hexdigest(), redacted


async def export_session(
    db: Database, session_id: str, dest: Path | None, *, file: str | None = None
) -> list[ExportedFile]:
    """Exports into `dest`: a file path for a one-file session, else a folder."""
    sources = await session_sources(db, session_id)
    from core.recovery.apply import in_backup_only  # recovery imports the local layer

    if await in_backup_only(db, session_id):
        raise NotFoundError(
            f"Session {session_id} is in a backup, not on this computer yet",
            hint=f"restore it first: tierkeeper recover --restore --session {session_id}",
        )
    if file is not None:
        sources = [s for s in sources if Path(s[1]).name == file]
        if not sources:
            raise NotFoundError(f"Session {session_id} has no file named {file!r}")
    if not sources:
        raise NotFoundError(f"Session {session_id} has no stored source files")
    if dest is None:
        raise BadInputError("Say where to write the export", hint="pass -o FILE or -o DIR")
    as_dir = len(sources) > 1 or await asyncio.to_thread(dest.is_dir)
    if as_dir:
        await asyncio.to_thread(make_folder, dest)
    results = []
    for source_id, path, _role in sources:
        target = dest / Path(path).name if as_dir else dest
        expected = await db.scalar("SELECT sha256 FROM sources WHERE id = ?", (source_id,))
        tmp = target.with_name(target.name + ".part")
        fh = await asyncio.to_thread(open, tmp, "wb")
        try:
            size, digest, redacted = await export_source(db, source_id, fh)
            await asyncio.to_thread(_sync_close, fh)
        except BaseException:
            fh.close()
            await asyncio.to_thread(tmp.unlink, missing_ok=True)
            raise
        await asyncio.to_thread(tmp.replace, target)
        results.append(ExportedFile(path, str(target), size, digest, digest == expected, redacted))
    return results


def _sync_close(fh: BinaryIO) -> None:
    fh.flush()
    os.fsync(fh.fileno())
    fh.close()
