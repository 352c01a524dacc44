"""`phase_analytics.db`: the phase's rows of the analytics DB, in a file of their own.

Same schema as the workspace's DB (built by the same migrations), so every tool
and query that reads one reads the other. The copy runs as one transaction on
a read-only connection with the new file ATTACHed: in WAL mode that is one
snapshot, so an import writing meanwhile cannot leave the slice with messages
whose session is missing. Raw transcript bytes (raw_chunks, raw_files) stay
out: each session's backup carries them, and the slice is what people query.
Metrics have no phase, so the phase's time span selects them (from the start
of the hour it began, as hourly rows start on the hour).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from core.local.db.schema import LATEST, MIGRATIONS

_IN_PHASE = "session_id IN (SELECT id FROM main.sessions WHERE phase = :phase)"

COPIES: tuple[tuple[str, str], ...] = (
    ("phases", "name = :phase"),
    ("sessions", "phase = :phase"),
    ("sources", _IN_PHASE),
    ("messages", _IN_PHASE),
    ("tool_calls", _IN_PHASE),
    ("usage", _IN_PHASE),
    ("events", _IN_PHASE),
    ("backups", f"{_IN_PHASE} OR phase = :phase"),
    ("archives", "phase = :phase"),
    ("metrics", "ts >= :since_hour AND substr(ts, 1, 19) <= :until"),
)
"""Each table copied, with the rows that belong to the phase."""


def create_schema(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for script in MIGRATIONS:
            conn.executescript(script)
        conn.execute(f"PRAGMA user_version={LATEST}")
    finally:
        conn.close()


def write_slice(db_path: Path, phase: str, dest: Path) -> dict[str, int]:
    """Writes the slice to `dest` (which must not exist); returns rows copied per table."""
    create_schema(dest)
    src = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    try:
        src.execute("PRAGMA busy_timeout=5000")
        src.execute("ATTACH DATABASE ? AS slice", (f"{dest.resolve().as_uri()}?mode=rw",))
        src.execute("BEGIN")
        try:
            window = _window(src, phase)
            counts = {}
            for table, where in COPIES:
                cur = src.execute(
                    f"INSERT INTO slice.{table} SELECT * FROM main.{table} WHERE {where}",
                    {"phase": phase, **window},
                )
                counts[table] = cur.rowcount
            src.execute("COMMIT")
        except BaseException:
            src.execute("ROLLBACK")
            raise
    finally:
        src.close()
    return counts


def _window(conn: sqlite3.Connection, phase: str) -> dict[str, str]:
    row = conn.execute(
        "SELECT created_at, closed_at FROM main.phases WHERE name = ?", (phase,)
    ).fetchone()
    now = datetime.now(UTC).isoformat()
    start = str(row[0]) if row and row[0] else now
    end = str(row[1]) if row and row[1] else now
    return {"since_hour": _utc(start)[:13] + ":00:00Z", "until": _utc(end)[:19]}


def _utc(ts: str) -> str:
    """An ISO time as the metrics table writes it (UTC, `T`, seconds)."""
    try:
        parsed = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return ts
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
