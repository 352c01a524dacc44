"""Writes parsed records into the analytics DB, one transaction per batch.

A batch's messages, tool calls, usage, events and the source's new read
position commit together, so a crash at any point leaves the DB at the end of
a whole batch and the next run carries on from exactly there.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import zstandard

from core.local.db.database import Transaction
from core.local.importers.records import ParsedMessage, SessionMeta

_MESSAGE_SQL = """INSERT INTO messages(id, session_id, source_id, seq, byte_offset, uuid,
  parent_uuid, type, role, model, ts, is_sidechain, text, tools, parse_error, redacted,
  raw_size) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"""

_CHUNK_SQL = """INSERT INTO raw_chunks(source_id, first_seq, last_seq, size, data)
  VALUES (?,?,?,?,?)"""

_TOOL_USE_SQL = """INSERT INTO tool_calls(session_id, source_id, message_id, tool_use_id, name,
  input, started_at) VALUES (?,?,?,?,?,?,?)
  ON CONFLICT(source_id, tool_use_id) DO UPDATE SET name=excluded.name, input=excluded.input,
  started_at=excluded.started_at, message_id=excluded.message_id"""

_TOOL_RESULT_SQL = """INSERT INTO tool_calls(session_id, source_id, tool_use_id, name, output,
  is_error, finished_at) VALUES (?,?,?,'',?,?,?)
  ON CONFLICT(source_id, tool_use_id) DO UPDATE SET output=excluded.output,
  is_error=excluded.is_error, finished_at=excluded.finished_at"""

_DURATION_SQL = """UPDATE tool_calls SET duration_ms =
  (julianday(finished_at) - julianday(started_at)) * 86400000.0
  WHERE source_id = ? AND duration_ms IS NULL AND started_at IS NOT NULL
  AND finished_at IS NOT NULL"""

_USAGE_SQL = """INSERT OR IGNORE INTO usage(message_key, request_id, session_id, source_id,
  message_id, model, ts, input_tokens, output_tokens, cache_write_tokens, cache_read_tokens)
  VALUES (?,?,?,?,?,?,?,?,?,?,?)"""

_EVENT_SQL = """INSERT OR REPLACE INTO events(session_id, ts, agent, type, tool, duration_ms,
  tokens_in, tokens_out, payload, source_id, seq) VALUES (?,?,?,?,?,?,?,?,?,?,?)"""

_SESSION_SQL = """INSERT INTO sessions(id, source, source_id, parent_id, project, agent, phase,
  title, cwd, git_branch, model, started_at, ended_at, is_subagent, updated_at)
  VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
  ON CONFLICT(id) DO UPDATE SET
    source_id = COALESCE(sessions.source_id, excluded.source_id),
    parent_id = COALESCE(sessions.parent_id, excluded.parent_id),
    project = COALESCE(sessions.project, excluded.project),
    agent = COALESCE(sessions.agent, excluded.agent),
    phase = COALESCE(sessions.phase, excluded.phase),
    title = COALESCE(sessions.title, excluded.title),
    cwd = COALESCE(sessions.cwd, excluded.cwd),
    git_branch = COALESCE(sessions.git_branch, excluded.git_branch),
    model = COALESCE(excluded.model, sessions.model),
    started_at = CASE WHEN sessions.started_at IS NULL
                        OR excluded.started_at < sessions.started_at
                      THEN COALESCE(excluded.started_at, sessions.started_at)
                      ELSE sessions.started_at END,
    ended_at = CASE WHEN sessions.ended_at IS NULL OR excluded.ended_at > sessions.ended_at
                    THEN COALESCE(excluded.ended_at, sessions.ended_at)
                    ELSE sessions.ended_at END,
    is_subagent = max(sessions.is_subagent, excluded.is_subagent),
    updated_at = excluded.updated_at"""


TOOL_INPUT_KEEP = 2048
TOOL_ERROR_KEEP = 4096
"""`tool_calls` keeps a preview of the input and the output of failed calls only: the
full text is in the message (searchable) and the raw line, so storing it a third
time would double the DB for nothing."""


def _preview(text: str | None, limit: int) -> str | None:
    return text if text is None or len(text) <= limit else text[:limit] + "…"


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


class RecordWriter:
    """Turns records into rows; owns the compressor (not shared across threads)."""

    def __init__(self, level: int = 3) -> None:
        self._zc = zstandard.ZstdCompressor(level=level)

    def compress(self, data: bytes) -> bytes:
        return self._zc.compress(data)

    async def write_messages(
        self,
        tx: Transaction,
        source_id: int,
        session_id: str,
        records: Sequence[ParsedMessage],
        *,
        keep_raw: bool = True,
    ) -> None:
        """Rows for the records; with `keep_raw`, their exact bytes as compressed chunks
        (one zstd frame per batch compresses far better than a frame per line)."""
        if not records:
            return
        row = await tx.fetchone("SELECT COALESCE(MAX(id), 0) FROM messages")
        base = int(row[0]) if row else 0
        msg_rows = []
        uses = []
        results = []
        usage = []
        events = []
        for i, rec in enumerate(records):
            mid = base + i + 1
            msg_rows.append(
                (
                    mid, session_id, source_id, rec.seq, rec.byte_offset, rec.uuid,
                    rec.parent_uuid, rec.type, rec.role, rec.model, rec.ts,
                    int(rec.is_sidechain), rec.text, rec.tools, rec.parse_error,
                    int(rec.redacted), len(rec.raw),
                )
            )  # fmt: skip
            for use in rec.tool_uses:
                uses.append(
                    (session_id, source_id, mid, use.tool_use_id or f"msg{mid}", use.name,
                     _preview(use.input, TOOL_INPUT_KEEP), use.ts)
                )  # fmt: skip
            for res in rec.tool_results:
                results.append(
                    (session_id, source_id, res.tool_use_id or f"msg{mid}",
                     _preview(res.output, TOOL_ERROR_KEEP) if res.is_error else None,
                     None if res.is_error is None else int(res.is_error), res.ts)
                )  # fmt: skip
            if rec.usage is not None:
                u = rec.usage
                usage.append(
                    (u.message_key, u.request_id, session_id, source_id, mid, u.model, u.ts,
                     u.input_tokens, u.output_tokens, u.cache_write_tokens, u.cache_read_tokens)
                )  # fmt: skip
            if rec.event is not None:
                e = rec.event
                events.append(
                    (e.session_id, e.ts, e.agent, e.type, e.tool, e.duration_ms, e.tokens_in,
                     e.tokens_out, e.payload, source_id, rec.seq)
                )  # fmt: skip
        await tx.executemany(_MESSAGE_SQL, msg_rows)
        if keep_raw:
            await tx.executemany(_CHUNK_SQL, self._chunks(source_id, records))
        if uses:
            await tx.executemany(_TOOL_USE_SQL, uses)
        if results:
            await tx.executemany(_TOOL_RESULT_SQL, results)
        if uses or results:
            await tx.execute(_DURATION_SQL, (source_id,))
        if usage:
            await tx.executemany(_USAGE_SQL, usage)
        if events:
            await tx.executemany(_EVENT_SQL, events)

    def _chunks(
        self, source_id: int, records: Sequence[ParsedMessage]
    ) -> list[tuple[int, int, int, int, bytes]]:
        """Consecutive records as chunks; a partial last line always gets its own."""
        out = []
        group: list[ParsedMessage] = []
        for rec in [*records, None]:
            if rec is None or rec.partial or (group and group[-1].partial):
                if group:
                    data = b"".join(r.raw for r in group)
                    out.append((source_id, group[0].seq, group[-1].seq, len(data),
                                self._zc.compress(data)))  # fmt: skip
                group = []
            if rec is not None:
                group.append(rec)
        return out

    async def upsert_session(
        self,
        tx: Transaction,
        meta: SessionMeta,
        records: Sequence[ParsedMessage],
        phase: str | None,
    ) -> None:
        stamps = [r.ts for r in records if r.ts]
        started = min(stamps) if stamps else meta.started_at
        ended = max(stamps) if stamps else meta.ended_at
        await tx.execute(
            _SESSION_SQL,
            (
                meta.id, meta.source, meta.source_id, meta.parent_id, meta.project, meta.agent,
                phase, meta.title, meta.cwd, meta.git_branch, meta.model, started, ended,
                int(meta.is_subagent), now_iso(),
            ),
        )  # fmt: skip


async def forget_rows(tx: Transaction, source_id: int, from_seq: int = 0) -> None:
    """Removes what a source contributed at or after `from_seq` (a rewrite or a partial line)."""
    ids = "SELECT id FROM messages WHERE source_id = ? AND seq >= ?"
    await tx.execute(f"DELETE FROM tool_calls WHERE message_id IN ({ids})", (source_id, from_seq))
    await tx.execute(f"DELETE FROM usage WHERE message_id IN ({ids})", (source_id, from_seq))
    await tx.execute("DELETE FROM events WHERE source_id = ? AND seq >= ?", (source_id, from_seq))
    await tx.execute("DELETE FROM messages WHERE source_id = ? AND seq >= ?", (source_id, from_seq))
    await tx.execute(
        "DELETE FROM raw_chunks WHERE source_id = ? AND first_seq >= ?", (source_id, from_seq)
    )
    if from_seq == 0:
        await tx.execute("DELETE FROM tool_calls WHERE source_id = ?", (source_id,))
        await tx.execute("DELETE FROM raw_files WHERE source_id = ?", (source_id,))


async def refresh_message_count(tx: Transaction, session_id: str) -> None:
    await tx.execute(
        "UPDATE sessions SET message_count = (SELECT count(*) FROM messages WHERE session_id = ?)"
        " WHERE id = ?",
        (session_id, session_id),
    )
