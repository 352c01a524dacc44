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
            "INSERT INTO messages(session_id, source_id, seq, text, raw_size, raw)"
            " VALUES ('s1', 1, 0, 'migration survivor', 1, x'00')"
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
