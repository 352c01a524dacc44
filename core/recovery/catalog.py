"""A session's catalog: the DB rows that list, total and describe it, without its data.

A manifest says which files a backup holds; it cannot say what a session is
(its project, title, model, tokens). Rebuilding those by downloading every
transcript is exactly the days-long repair recovery must avoid, so each backup
carries the few rows that the sessions list, the token and cost totals and the
tool statistics read. Messages are not here: search comes back when a session
is restored and re-imported (its raw bytes are needed for that anyway).

Stored as canonical JSON in a zstd frame with its content checksum on, so
damage is caught by `zstd -d` itself; encrypted like the data files when the
target is.
"""

from __future__ import annotations

import io
from typing import Any

import orjson
import zstandard

from core.errors import BadInputError
from core.local.db.database import Database
from core.packing.crypto import Key, decrypt_stream, encrypt_stream

CATALOG = "catalog.json.zst"
CATALOG_VERSION = 1
KIND_SESSION = "tierkeeper-session-catalog"
KIND_PHASE = "tierkeeper-phase-catalog"

SESSION_COLUMNS = (
    "id", "source", "source_id", "parent_id", "project", "agent", "phase", "title", "cwd",
    "git_branch", "model", "started_at", "ended_at", "message_count", "is_subagent", "updated_at",
)  # fmt: skip
SOURCE_COLUMNS = ("path", "format", "kind", "role", "size", "sha256", "lines_read",
                  "rows_stored", "bad_lines")  # fmt: skip
USAGE_COLUMNS = ("message_key", "request_id", "model", "ts", "input_tokens", "output_tokens",
                 "cache_write_tokens", "cache_read_tokens")  # fmt: skip
TOOL_COLUMNS = ("tool_use_id", "name", "is_error", "started_at", "finished_at", "duration_ms")


async def session_catalog(db: Database, session_id: str) -> dict[str, Any]:
    """The session's rows as they are now; `source` ties usage and tool rows to a file."""
    row = await db.fetchone(
        f"SELECT {', '.join(SESSION_COLUMNS)} FROM sessions WHERE id = ?", (session_id,)
    )
    if row is None:
        raise BadInputError(f"No session {session_id!r} to describe")
    sources = await db.fetchall(
        f"SELECT id, {', '.join(SOURCE_COLUMNS)} FROM sources WHERE session_id = ? ORDER BY path",
        (session_id,),
    )
    paths = {int(s["id"]): str(s["path"]) for s in sources}
    usage = await db.fetchall(
        f"SELECT source_id, {', '.join(USAGE_COLUMNS)} FROM usage WHERE session_id = ? "
        "ORDER BY message_key, request_id",
        (session_id,),
    )
    tools = await db.fetchall(
        f"SELECT source_id, {', '.join(TOOL_COLUMNS)} FROM tool_calls WHERE session_id = ? "
        "ORDER BY source_id, tool_use_id",
        (session_id,),
    )
    return {
        "kind": KIND_SESSION,
        "catalog_version": CATALOG_VERSION,
        "session_id": session_id,
        "session": {c: row[c] for c in SESSION_COLUMNS},
        "sources": [{c: s[c] for c in SOURCE_COLUMNS} for s in sources],
        "usage": [_tied(u, paths, USAGE_COLUMNS) for u in usage],
        "tool_calls": [_tied(t, paths, TOOL_COLUMNS) for t in tools],
    }


def _tied(row: Any, paths: dict[int, str], columns: tuple[str, ...]) -> dict[str, Any]:
    return {"source": paths.get(int(row["source_id"])), **{c: row[c] for c in columns}}


def phase_catalog(phase: str, sessions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": KIND_PHASE, "catalog_version": CATALOG_VERSION, "phase": phase,
            "sessions": sorted(sessions, key=lambda s: str(s["session_id"]))}  # fmt: skip


def encode(doc: dict[str, Any], key: Key | None = None) -> bytes:
    """Canonical JSON → zstd (checksummed) → AES-256-GCM when the target is encrypted."""
    data = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    packed = zstandard.ZstdCompressor(level=3, write_checksum=True).compress(data)
    if key is None:
        return packed
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(packed), out, key)
    return out.getvalue()


def decode(data: bytes, what: str, key: Key | None = None) -> dict[str, Any]:
    """The catalog document; damage, a newer version or the wrong kind is refused."""
    if key is not None:
        out = io.BytesIO()
        decrypt_stream(io.BytesIO(data), out, key, name=what)
        data = out.getvalue()
    try:
        # a streaming decompressor: a catalog written as a stream says no content size
        frame = zstandard.ZstdDecompressor().decompressobj()
        plain = frame.decompress(data)
        if not frame.eof:
            raise BadInputError(f"{what} is damaged (cut short)")
        doc = orjson.loads(plain)
    except (zstandard.ZstdError, orjson.JSONDecodeError) as exc:
        raise BadInputError(f"{what} is damaged ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("kind") not in (KIND_SESSION, KIND_PHASE):
        raise BadInputError(f"{what} is not a Tierkeeper catalog")
    version = doc.get("catalog_version")
    if version != CATALOG_VERSION:
        raise BadInputError(
            f"{what} has catalog_version {version!r}; this Tierkeeper reads {CATALOG_VERSION}",
            hint="update Tierkeeper to read it",
        )
    return doc


def stored_name(key: Key | None) -> str:
    """`.enc` marks an encrypted file, as for the data files (core/tier2/backup.py)."""
    return CATALOG + (".enc" if key is not None else "")
