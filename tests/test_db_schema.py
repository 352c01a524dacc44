"""Schema migrations: every earlier version upgrades to the latest without losing rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from core.errors import CorruptDatabaseError
from core.local.db.database import Database
from core.local.db.schema import LATEST


def schema_of(path: Path) -> list[tuple[str, str]]:
    con = sqlite3.connect(path)
    try:
        return sorted(
            (r[0], " ".join((r[1] or "").split()))
            for r in con.execute(
                "SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
            )
        )
    finally:
        con.close()


@pytest.mark.parametrize("start", range(1, LATEST))
async def test_upgrade_from_every_earlier_version(tmp_path: Path, start: int) -> None:
    old = tmp_path / "old.db"
    db = await Database.open(old, migrate=False)
    await db.migrate(start)
    assert await db.user_version() == start
    async with db.transaction() as tx:
        await tx.execute(
            "INSERT INTO sessions(id, source, updated_at) VALUES ('s1', 'claude-code', 'now')"
        )
        await tx.execute(
            "INSERT INTO sources(id, path, format, kind, role) VALUES (1, '/x', 'f', 'lines', 't')"
        )
        await tx.execute(
            "INSERT INTO messages(session_id, source_id, seq, text, raw_size)"
            " VALUES ('s1', 1, 0, 'migration survivor', 1)"
        )
    await db.close()

    db = await Database.open(old)  # upgrades
    assert await db.user_version() == LATEST
    assert await db.scalar("SELECT text FROM messages") == "migration survivor"
    hits = await db.scalar("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'survivor'")
    assert hits == 1, "rows written before search existed must be searchable after the upgrade"
    await db.close()

    fresh = tmp_path / "fresh.db"
    db = await Database.open(fresh)
    await db.close()
    assert schema_of(old) == schema_of(fresh)


async def test_db_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version={LATEST + 5}")
    con.close()
    with pytest.raises(CorruptDatabaseError, match="newer Tierkeeper"):
        await Database.open(path)


async def test_wal_mode_and_rollback_on_error(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "a.db")
    assert (await db.scalar("PRAGMA journal_mode")).lower() == "wal"
    with pytest.raises(ZeroDivisionError):
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO phases(name, created_at) VALUES ('p', 'now')")
            raise ZeroDivisionError
    assert await db.scalar("SELECT count(*) FROM phases") == 0
    await db.close()


@pytest.mark.parametrize(
    ("query", "index"),
    [
        ("SELECT model, sum(input_tokens), sum(output_tokens), sum(cache_write_tokens),"
         " sum(cache_read_tokens) FROM usage GROUP BY model", "usage_model"),
        ("SELECT session_id, model, sum(input_tokens), sum(cache_read_tokens) FROM usage"
         " GROUP BY session_id, model", "usage_session"),
        ("SELECT substr(ts, 1, 10), model, sum(input_tokens), sum(cache_read_tokens) FROM usage"
         " GROUP BY substr(ts, 1, 10), model", "usage_day"),
        ("SELECT substr(ts, 1, 10), type, count(*) FROM events GROUP BY substr(ts, 1, 10), type",
         "events_day"),
        ("SELECT agent, count(*), avg(duration_ms) FROM events GROUP BY agent", "events_agent"),
        ("SELECT tool, count(*), avg(duration_ms) FROM events GROUP BY tool", "events_tool"),
        ("SELECT name, count(*), sum(is_error), avg(duration_ms) FROM tool_calls GROUP BY name",
         "tool_calls_name"),
    ],
)  # fmt: skip
async def test_report_queries_read_only_their_covering_index(
    tmp_path: Path, query: str, index: str
) -> None:
    db = await Database.open(tmp_path / "a.db")
    plan = " ".join(r[3] for r in await db.fetchall("EXPLAIN QUERY PLAN " + query))
    await db.close()
    assert f"COVERING INDEX {index}" in plan


async def test_upgrade_redacts_tool_call_previews_stored_before_redaction(tmp_path: Path) -> None:
    """Version 7 stored tool inputs as they came; the phase review would quote them."""
    key = "sk-ant-api03-" + "Q" * 40
    path = tmp_path / "old.db"
    db = await Database.open(path, migrate=False)
    await db.migrate(7)
    async with db.transaction() as tx:
        await tx.executemany(
            "INSERT INTO tool_calls(session_id, source_id, tool_use_id, name, input, output)"
            " VALUES ('s1', 1, ?, 'Bash', ?, ?)",
            [
                ("t1", f'{{"command": "export ANTHROPIC_API_KEY={key}"}}', None),
                ("t2", '{"command": "ls"}', f"Error: bad key {key}"),
                ("t3", '{"command": "pytest -q"}', "3 passed"),
            ],
        )
    await db.close()

    db = await Database.open(path)
    rows = await db.fetchall("SELECT tool_use_id, input, output FROM tool_calls ORDER BY id")
    await db.close()
    assert key not in str([tuple(r) for r in rows])
    assert "[REDACTED" in rows[0][1] and "[REDACTED" in rows[1][2]
    assert tuple(rows[2]) == ("t3", '{"command": "pytest -q"}', "3 passed")  # clean rows untouched
