"""Sessions and phases as the user drives them: start, end (with a handoff note), new, close.

`current_phase.json` is the source of truth for which phase new sessions join,
so tools that only read files (the hook, older scripts) see the same answer
as the DB.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from core.errors import BadInputError, NotFoundError
from core.local.db.database import Database
from core.redact import redact_text
from core.workspace import Workspace

_PHASE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
_SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


@dataclass(frozen=True, slots=True)
class PhaseInfo:
    name: str
    started_at: str


def _now() -> datetime:
    return datetime.now(UTC)


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


# phases -------------------------------------------------------------------
def current_phase(ws: Workspace) -> PhaseInfo | None:
    try:
        data = orjson.loads(ws.current_phase_path.read_bytes())
        return PhaseInfo(str(data["name"]), str(data.get("started_at", "")))
    except FileNotFoundError:
        return None
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise BadInputError(
            f"{ws.current_phase_path} is damaged ({exc})",
            hint="fix it, or delete it and run `tierkeeper phase new NAME`",
        ) from exc


def validate_phase_name(name: str) -> str:
    if not _PHASE_NAME.match(name):
        raise BadInputError(
            f"{name!r} is not a usable phase name",
            hint="use letters, digits, '.', '_' or '-' (up to 80), starting with a letter or digit",
        )
    return name


async def phase_new(db: Database, ws: Workspace, name: str) -> PhaseInfo:
    validate_phase_name(name)
    existing = await db.fetchone("SELECT status FROM phases WHERE name = ?", (name,))
    if existing is not None:
        raise BadInputError(
            f"A phase named {name!r} already exists ({existing[0]})", hint="pick another name"
        )
    started = _now().isoformat()
    await db.execute(
        "INSERT INTO phases(name, status, created_at) VALUES (?, 'open', ?)", (name, started)
    )
    info = PhaseInfo(name, started)
    write_atomic(ws.current_phase_path, orjson.dumps({"name": name, "started_at": started}))
    return info


async def phase_close(db: Database, ws: Workspace, name: str | None = None) -> PhaseInfo:
    current = current_phase(ws)
    if name is None:
        if current is None:
            raise BadInputError("No phase is current", hint="name the phase to close")
        name = current.name
    row = await db.fetchone("SELECT status, created_at FROM phases WHERE name = ?", (name,))
    if row is None:
        raise NotFoundError(f"No phase {name!r}", hint="`tierkeeper phase list` shows them")
    if row[0] == "closed":
        raise BadInputError(f"Phase {name!r} is already closed")
    await db.execute(
        "UPDATE phases SET status = 'closed', closed_at = ? WHERE name = ?",
        (_now().isoformat(), name),
    )
    if current is not None and current.name == name:
        ws.current_phase_path.unlink(missing_ok=True)
    return PhaseInfo(name, str(row[1]))


async def phase_list(db: Database, ws: Workspace) -> list[dict[str, Any]]:
    current = current_phase(ws)
    rows = await db.fetchall(
        """SELECT p.name, p.status, p.created_at, p.closed_at,
                  (SELECT count(*) FROM sessions s WHERE s.phase = p.name) AS sessions
           FROM phases p ORDER BY p.created_at"""
    )
    return [{**dict(r), "current": current is not None and current.name == r["name"]} for r in rows]


# sessions -------------------------------------------------------------------
def new_session_id(ws: Workspace, when: datetime | None = None) -> str:
    """`YYYYMMDD_HHMMSS`, with `_2`, `_3`… when two start in the same second."""
    base = (when or _now()).strftime("%Y%m%d_%H%M%S")
    candidate, n = base, 1
    while ws.log_path(candidate).exists() or ws.handoff_path(candidate).exists():
        n += 1
        candidate = f"{base}_{n}"
    return candidate


def validate_session_id(session_id: str) -> str:
    if not _SESSION_ID.match(session_id):
        raise BadInputError(f"{session_id!r} is not a valid session id")
    return session_id


async def session_start(
    db: Database, ws: Workspace, *, agent: str = "human", session_id: str | None = None
) -> str:
    from core.local.activity_log import ActivityEvent, ActivityLog

    sid = validate_session_id(session_id) if session_id else new_session_id(ws)
    phase = current_phase(ws)
    started = _now().isoformat()
    log = ActivityLog.open(ws.log_path(sid))
    try:
        log.append(ActivityEvent(session=sid, type="SessionStart", agent=agent))
    finally:
        log.close()
    await db.execute(
        """INSERT INTO sessions(id, source, source_id, agent, phase, started_at, updated_at)
           VALUES (?, 'tierkeeper', ?, ?, ?, ?, ?)
           ON CONFLICT(id) DO UPDATE SET agent = COALESCE(sessions.agent, excluded.agent)""",
        (sid, sid, agent, phase.name if phase else None, started, started),
    )
    return sid


async def open_session(db: Database) -> str | None:
    """The latest session started here and not yet ended."""
    value = await db.scalar(
        """SELECT id FROM sessions WHERE source = 'tierkeeper' AND ended_at IS NULL
           ORDER BY started_at DESC LIMIT 1"""
    )
    return None if value is None else str(value)


async def session_end(
    db: Database,
    ws: Workspace,
    session_id: str | None = None,
    *,
    summary: str | None = None,
    open_items: list[str] | None = None,
) -> Path:
    """Logs the end, writes the handoff note, marks the session ended; returns the note's path."""
    from core.local.activity_log import ActivityEvent, ActivityLog

    sid = session_id or await open_session(db)
    if sid is None:
        raise BadInputError("No open session to end", hint="pass the session id")
    validate_session_id(sid)
    row = await db.fetchone("SELECT agent, started_at FROM sessions WHERE id = ?", (sid,))
    if row is None and not ws.log_path(sid).exists():
        raise NotFoundError(f"No session {sid!r}")
    ended = _now().isoformat()
    log = ActivityLog.open(ws.log_path(sid))
    try:
        log.append(ActivityEvent(session=sid, type="SessionEnd", agent=row[0] if row else None))
    finally:
        log.close()
    stats = await _session_stats(db, ws, sid)
    note = redact_text(
        render_handoff(sid, row[1] if row else None, ended, stats, summary, open_items or [])
    )
    path = ws.handoff_path(sid)
    write_atomic(path, note.encode("utf-8"))
    await db.execute("UPDATE sessions SET ended_at = ?, updated_at = ? WHERE id = ?",
                     (ended, ended, sid))  # fmt: skip
    return path


async def _session_stats(db: Database, ws: Workspace, sid: str) -> dict[str, Any]:
    events: dict[str, int] = {}
    tools: dict[str, int] = {}
    log_path = ws.log_path(sid)
    if log_path.exists():
        for line in log_path.read_bytes().splitlines():
            try:
                ev = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(ev, dict):
                continue
            events[str(ev.get("type"))] = events.get(str(ev.get("type")), 0) + 1
            if ev.get("type") == "PreToolUse" and ev.get("tool"):
                tools[str(ev["tool"])] = tools.get(str(ev["tool"]), 0) + 1
    usage = await db.fetchone(
        """SELECT count(*), COALESCE(sum(input_tokens), 0), COALESCE(sum(output_tokens), 0),
                  COALESCE(sum(cache_write_tokens), 0), COALESCE(sum(cache_read_tokens), 0)
           FROM usage WHERE session_id = ?""",
        (sid,),
    )
    messages = await db.scalar("SELECT count(*) FROM messages WHERE session_id = ?", (sid,))
    return {
        "events": events,
        "tools": tools,
        "messages": int(messages or 0),
        "usage": tuple(usage) if usage else (0, 0, 0, 0, 0),
    }


def render_handoff(
    sid: str,
    started: str | None,
    ended: str,
    stats: dict[str, Any],
    summary: str | None,
    open_items: list[str],
) -> str:
    responses, inp, out, cw, cr = stats["usage"]
    lines = [
        f"# Handoff — session {sid}",
        "",
        f"- Started: {started or 'unknown'}",
        f"- Ended: {ended}",
        f"- Messages imported: {stats['messages']}",
        f"- Events logged: {sum(stats['events'].values())}",
        f"- Tokens: {inp} in, {out} out, {cw} cache write, {cr} cache read ({responses} responses)",
        "",
        "## Summary",
        "",
        summary.strip() if summary else "_No summary given._",
        "",
        "## Tools used",
        "",
    ]
    if stats["tools"]:
        lines += [f"- {name}: {n}" for name, n in sorted(stats["tools"].items())]
    else:
        lines.append("_None recorded._")
    lines += ["", "## Open items", ""]
    lines += [f"- [ ] {item}" for item in open_items] or ["_None._"]
    return "\n".join(lines) + "\n"
