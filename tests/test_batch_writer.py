"""The batch writer: size and time triggers, flush on demand, nothing lost on error."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.errors import StorageFullError
from core.local.db.batch_writer import BatchWriter
from core.local.db.database import Database

COLS = ("session_id", "ts", "type", "tool", "duration_ms")


def row(i: int) -> tuple[object, ...]:
    return ("s1", f"2026-01-01T00:00:{i % 60:02d}Z", "PostToolUse", "Bash", float(i))


async def count(db: Database) -> int:
    return int(await db.scalar("SELECT count(*) FROM events"))


async def test_flushes_when_max_rows_reached(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "a.db")
    w = BatchWriter(db, "events", COLS, max_rows=100, max_delay=60)
    for i in range(99):
        await w.add(row(i))
    await asyncio.sleep(0.05)
    assert await count(db) == 0  # below the size trigger and long before the timer
    await w.add(row(99))
    for _ in range(100):
        await asyncio.sleep(0.01)
        if await count(db) == 100:
            break
    assert await count(db) == 100
    await w.close()
    await db.close()


async def test_flushes_after_max_delay(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "a.db")
    w = BatchWriter(db, "events", COLS, max_rows=1000, max_delay=0.05)
    await w.add(row(1))
    for _ in range(200):
        await asyncio.sleep(0.01)
        if await count(db) == 1:
            break
    assert await count(db) == 1 and w.batches == 1
    await w.close()
    await db.close()


async def test_flush_on_demand_and_close(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "a.db")
    w = BatchWriter(db, "events", COLS, max_rows=10_000, max_delay=60)
    await w.add_many([row(i) for i in range(5)])
    assert await w.flush() == 5
    await w.add(row(5))
    await w.close()
    assert await count(db) == 6
    with pytest.raises(RuntimeError):
        w.add_nowait(row(7))
    await db.close()


async def test_backpressure_bounds_memory(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "a.db")
    w = BatchWriter(db, "events", COLS, max_rows=100, max_delay=60, max_pending=1000)
    for i in range(10_000):
        await w.add(row(i))
        assert w.pending <= 1000
    await w.close()
    assert await count(db) == 10_000
    await db.close()


async def test_failed_flush_keeps_rows_for_the_next_one(tmp_path: Path) -> None:
    """Disk full is produced for real: the DB's page limit stops the write."""
    db = await Database.open(tmp_path / "a.db")
    pages = int(await db.scalar("PRAGMA page_count"))
    await db.fetchone(f"PRAGMA max_page_count={pages + 2}")
    w = BatchWriter(db, "events", ("session_id", "ts", "type", "payload"), max_rows=10**6)
    await w.add_many([("s1", "t", "x", "p" * 2000) for _ in range(50)])
    with pytest.raises(StorageFullError):
        await w.flush()
    assert w.pending == 50 and await count(db) == 0
    await db.fetchone("PRAGMA max_page_count=1073741823")
    assert await w.flush() == 50
    await w.close()
    await db.close()
