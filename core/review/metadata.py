"""`phase_metadata.json`: what the phase holds and a checksum of every review file.

It is written last, naming the files beside it with their size and SHA-256,
so a copy on Drive (or one restored years later) can be checked without the
analytics DB, and a reader can tell a complete review from one cut short.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import orjson

from core.review.models import PhaseReview

FORMAT = 1


def file_entry(path: Path, name: str) -> dict[str, Any]:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return {"name": name, "size": path.stat().st_size, "sha256": digest.hexdigest()}


def sessions(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """The phase's sessions with their source files' sizes and checksums, from the slice."""
    files: dict[str, list[dict[str, Any]]] = {}
    for r in conn.execute(
        "SELECT session_id, path, role, size, sha256 FROM sources "
        "WHERE session_id IS NOT NULL ORDER BY session_id, role, path"
    ):
        files.setdefault(r[0], []).append(
            {"path": r[1], "role": r[2], "size": int(r[3]), "sha256": r[4]}
        )
    out = []
    for r in conn.execute(
        "SELECT id, source, agent, parent_id, is_subagent, model, started_at, ended_at, "
        "message_count FROM sessions ORDER BY COALESCE(started_at, updated_at), id"
    ):
        mine = files.get(r[0], [])
        out.append(
            {
                "id": r[0],
                "source": r[1],
                "agent": r[2],
                "parent_id": r[3],
                "is_subagent": bool(r[4]),
                "model": r[5],
                "started_at": r[6],
                "ended_at": r[7],
                "messages": int(r[8]),
                "raw_bytes": sum(f["size"] for f in mine),
                "sources": mine,
            }
        )
    return out


def build(
    review: PhaseReview,
    session_rows: list[dict[str, Any]],
    slice_rows: dict[str, int],
    files: list[dict[str, Any]],
) -> bytes:
    o = review.overview
    doc = {
        "format": FORMAT,
        "phase": o.phase,
        "status": o.status,
        "created_at": o.created_at,
        "closed_at": o.closed_at,
        "first_activity": o.first_activity,
        "last_activity": o.last_activity,
        "generated_at": review.generated_at,
        "tool_version": review.tool_version,
        "totals": {
            "sessions": o.sessions,
            "messages": o.messages,
            "raw_bytes": sum(s["raw_bytes"] for s in session_rows),
            "responses": o.responses,
            "input_tokens": o.input_tokens,
            "output_tokens": o.output_tokens,
            "cache_write_tokens": o.cache_write_tokens,
            "cache_read_tokens": o.cache_read_tokens,
            "cost_usd": round(o.cost_usd, 6),
        },
        "slice_rows": slice_rows,
        "sessions": session_rows,
        "files": files,
    }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"
