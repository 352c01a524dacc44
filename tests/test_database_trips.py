"""The DB's one-trip statements keep the promises of the transactions they replace.

A single write is BEGIN, the statement and COMMIT in one trip to the connection's
thread; a cancelled caller must not leave the query cache believing nothing
changed, and a failed statement must leave nothing behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from core.errors import TierkeeperError
from core.local.db.database import Database


async def test_a_write_whose_caller_was_cancelled_still_tells_the_commit_hooks(
    tmp_path: Path,
) -> None:
    db = await Database.open(tmp_path / "a.db")
    try:
        heard: list[Sequence[str]] = []
        db.on_commit.append(heard.append)
        write = asyncio.ensure_future(
            db.execute("INSERT INTO phases(name, status, created_at) VALUES ('p', 'open', 'x')")
        )
        await asyncio.sleep(0)  # queued on the connection's thread
        write.cancel()
        with pytest.raises(asyncio.CancelledError):
            await write
        for _ in range(100):
            if heard:
                break
            await asyncio.sleep(0.01)
        assert await db.scalar("SELECT count(*) FROM phases WHERE name = 'p'") == 1
        assert heard and "INSERT INTO phases" in heard[0][0]
    finally:
        await db.close()


async def test_a_failed_write_rolls_back_and_the_next_one_goes_through(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "a.db")
    try:
        await db.execute("INSERT INTO phases(name, status, created_at) VALUES ('p', 'open', 'x')")
        with pytest.raises(TierkeeperError):
            await db.execute(
                "INSERT INTO phases(name, status, created_at) VALUES ('p', 'open', 'x')"
            )
        rowid = await db.execute(
            "INSERT INTO phases(name, status, created_at) VALUES ('q', 'open', 'x')"
        )
        assert rowid > 0
        names = [r[0] for r in await db.fetchall("SELECT name FROM phases ORDER BY name")]
        assert names == ["p", "q"]
        one = await db.call(lambda c: c.execute("SELECT count(*) FROM phases").fetchone())
        assert one[0] == 2
    finally:
        await db.close()
