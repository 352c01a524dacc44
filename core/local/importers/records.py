"""What a parser hands to the import engine: plain data, no DB, no I/O.

Parsers turn source bytes into these records; the engine owns transactions,
incremental bookkeeping and the counts check. That split lets every format be
tested on bytes alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class ToolUse:
    tool_use_id: str
    name: str
    input: str | None = None
    ts: str | None = None


@dataclass(slots=True)
class ToolResult:
    tool_use_id: str
    output: str | None = None
    is_error: bool | None = None
    ts: str | None = None


@dataclass(slots=True)
class Usage:
    """Token counts of one API response; deduplicated on (message_key, request_id)."""

    message_key: str
    request_id: str
    model: str | None
    ts: str | None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0


@dataclass(slots=True)
class ParsedMessage:
    seq: int
    raw: bytes
    byte_offset: int | None = None
    uuid: str | None = None
    parent_uuid: str | None = None
    type: str | None = None
    role: str | None = None
    model: str | None = None
    ts: str | None = None
    is_sidechain: bool = False
    text: str | None = None
    tools: str | None = None
    parse_error: str | None = None
    tool_uses: list[ToolUse] = field(default_factory=list)
    tool_results: list[ToolResult] = field(default_factory=list)
    usage: Usage | None = None
    session_hint: str | None = None
    """The session id the line itself names (Claude Code `sessionId`), if any."""
    source_len: int | None = None
    """Bytes this record took in the source file (raw may be shorter once redacted)."""
    partial: bool = False
    """An unterminated last line: stored in a chunk of its own, re-read when the file grows."""
    redacted: bool = False
    """True when a secret was cut from `raw`: export then differs from the source here."""
    event: EventRow | None = None
    """Set by activity-log formats: the structured row for the `events` table."""


@dataclass(slots=True)
class EventRow:
    session_id: str
    ts: str
    type: str
    agent: str | None = None
    tool: str | None = None
    duration_ms: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    payload: str | None = None


@dataclass(slots=True)
class SessionMeta:
    """What a parser learned about the session; None fields leave stored values alone."""

    id: str
    source: str
    source_id: str | None = None
    parent_id: str | None = None
    project: str | None = None
    agent: str | None = None
    title: str | None = None
    cwd: str | None = None
    git_branch: str | None = None
    model: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    is_subagent: bool = False


@dataclass(slots=True)
class SourceFile:
    """One file the engine will read, with the session it belongs to.

    kind "lines": JSON Lines, imported incrementally line by line.
    kind "json": one JSON document, imported whole and kept whole for export.
    """

    path: str
    format: str
    kind: str
    role: str
    session: SessionMeta
