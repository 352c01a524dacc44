"""Analytics answers cached until a commit writes a table they read: the batch writer's
flushes, the importer's batches, and nothing else (job rows, metrics) throws them away."""

from __future__ import annotations

from pathlib import Path

from core.cache.query import QueryCache
from core.cache.tables import EVERYTHING, written_tables
from core.local.db.batch_writer import BatchWriter
from core.local.db.database import Database
from core.metrics.registry import Metrics
from core.service import Service
from tests.support import CLAUDE_FIXTURES


def query_layer(metrics: Metrics) -> tuple[int, int]:
    for c in metrics.snapshot().cache:
        if c.layer == "query":
            return c.hits, c.misses
    return 0, 0


async def test_a_batch_writer_commit_invalidates_only_queries_on_its_table(
    tmp_path: Path,
) -> None:
    metrics = Metrics()
    async with await Database.open(tmp_path / "db.sqlite") as db:
        cache = QueryCache(db, metrics)
        runs = {"sessions": 0, "tools": 0}

        async def count_sessions() -> int:
            runs["sessions"] += 1
            return int(await db.scalar("SELECT count(*) FROM sessions"))

        async def count_tools() -> int:
            runs["tools"] += 1
            return int(await db.scalar("SELECT count(*) FROM tool_calls"))

        assert await cache.get("n", (), ["sessions"], count_sessions) == 0
        assert await cache.get("t", (), ["tool_calls"], count_tools) == 0
        assert await cache.get("n", (), ["sessions"], count_sessions) == 0
        assert runs == {"sessions": 1, "tools": 1}

        writer = BatchWriter(db, "sessions", ["id", "source", "updated_at"])
        await writer.add(("s1", "claude-code", "2025-01-01T00:00:00Z"))
        assert await cache.get("n", (), ["sessions"], count_sessions) == 0  # not flushed yet
        await writer.close()  # the commit
        assert await cache.get("n", (), ["sessions"], count_sessions) == 1
        assert await cache.get("t", (), ["tool_calls"], count_tools) == 0  # untouched table
        assert runs == {"sessions": 2, "tools": 1}
        assert query_layer(metrics) == (3, 3)

        await db.execute("CREATE TABLE scratch(x)")  # not understood: forget everything
        await cache.get("t", (), ["tool_calls"], count_tools)
        assert runs["tools"] == 2


def test_written_tables_reads_the_service_s_statements() -> None:
    assert written_tables(["INSERT OR IGNORE INTO usage(a) VALUES (?)"]) == {"usage"}
    assert written_tables(['UPDATE "sessions" SET x = 1', "DELETE FROM jobs WHERE id = 1"]) == {
        "sessions",
        "jobs",
    }
    assert written_tables(["SELECT max(id) FROM messages", "PRAGMA user_version"]) == set()
    assert written_tables(["INSERT INTO a VALUES (1)", "DROP TABLE b"]) == {EVERYTHING}


async def test_the_service_answers_from_the_cache_until_an_import_commits(
    tmp_path: Path,
) -> None:
    async with await Service.start(tmp_path / "ws", run_jobs=False) as svc:
        assert await svc.list_sessions() == []
        assert (await svc.status()).sessions == 0
        report = await svc.import_now([str(CLAUDE_FIXTURES)])
        assert report.sessions
        listed = await svc.list_sessions()
        assert len(listed) == len({s.id for s in listed}) > 0  # the import was seen
        status = await svc.status()
        assert status.sessions == len(listed) and status.messages > 0
        hits = query_layer(svc.metrics)[0]
        assert await svc.list_sessions() == listed
        assert await svc.stats("model") == await svc.stats("model")
        assert query_layer(svc.metrics)[0] == hits + 2


async def test_a_read_only_service_never_answers_from_the_cache(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    async with (
        await Service.start(ws, run_jobs=False) as owner,
        await Service.start(ws, readonly=True) as reader,
    ):
        assert await reader.list_sessions() == []
        await owner.import_now([str(CLAUDE_FIXTURES)])  # another process's write
        assert await reader.list_sessions() != []
        assert query_layer(reader.metrics) == (0, 0)
