"""BatchWriter throughput into `events`, against one raw `executemany`.

The producer hands rows over in chunks of 1,000 and yields to the event loop
after each chunk, as a live stream of events would; the writer's background
flushes take whatever is pending. The baseline is the best case SQLite
offers for the same rows: stdlib `sqlite3`, one `executemany`, one
transaction, on a fresh DB made by `Database.open` (same schema, indexes
and PRAGMAs).
"""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from core.local.db.batch_writer import BatchWriter
from core.local.db.database import PRAGMAS, Database
from tests.benchmarks.measure import Result, Row, log, rate, scratch_parent

NAME = "batch_writer"
TITLE = "Batch writer into `events`"
GOAL_RATE = 100_000
GOAL_SHARE = 0.70
COLUMNS = (
    "session_id",
    "ts",
    "agent",
    "type",
    "tool",
    "duration_ms",
    "tokens_in",
    "tokens_out",
    "payload",
    "source_id",
    "seq",
)
CHUNK = 1_000


def make_rows(count: int) -> list[tuple[Any, ...]]:
    tools = ("Bash", "Read", "Edit", "Grep", "Write", "Task", None)
    types = ("PreToolUse", "PostToolUse", "UserPromptSubmit", "Stop")
    rows = []
    for i in range(count):
        tool = tools[i % len(tools)]
        payload = orjson.dumps(
            {"tool_input": {"file_path": f"src/pkg_{i % 23}/mod_{i % 311}.py"}, "n": i}
        ).decode()
        sec = i // 20
        rows.append(
            (
                f"sess-{i // 5000:05d}",
                f"2026-01-{1 + (sec // 86400) % 28:02d}T{(sec // 3600) % 24:02d}:"
                f"{(sec // 60) % 60:02d}:{sec % 60:02d}.{i % 1_000_000:06d}+00:00",
                "claude-code" if i % 9 else "roo-code",
                types[i % len(types)],
                tool,
                None if i % 2 == 0 else float(i % 5000) / 3,
                None if i % 3 else 1000 + i % 700,
                None if i % 3 else 50 + i % 300,
                payload,
                1 + i // 50_000,
                i,
            )
        )
    return rows


async def _open(path: Path) -> None:
    db = await Database.open(path)
    await db.close()


async def _through_writer(path: Path, rows: list[tuple[Any, ...]]) -> tuple[float, int]:
    db = await Database.open(path)
    try:
        writer = BatchWriter(db, "events", COLUMNS)
        t0 = time.perf_counter()
        for start in range(0, len(rows), CHUNK):
            await writer.add_many(rows[start : start + CHUNK])
            await asyncio.sleep(0)
        await writer.close()
        elapsed = time.perf_counter() - t0
        stored = await db.scalar("SELECT count(*) FROM events")
        assert stored == len(rows), f"{stored} of {len(rows)} rows stored"
        return elapsed, writer.batches
    finally:
        await db.close()


def _raw(path: Path, rows: list[tuple[Any, ...]]) -> float:
    asyncio.run(_open(path))
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in PRAGMAS:
            conn.execute(pragma)
        sql = f"INSERT INTO events({','.join(COLUMNS)}) VALUES ({','.join('?' * len(COLUMNS))})"
        t0 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
        return time.perf_counter() - t0
    finally:
        conn.close()


def run(quick: bool) -> Result:
    count = 20_000 if quick else 200_000
    rows = make_rows(count)
    log(f"batch writer: {count:,} rows, writer then raw, twice")
    writer_times: list[float] = []
    raw_times: list[float] = []
    batches = 0
    with tempfile.TemporaryDirectory(prefix="bench-bw-", dir=scratch_parent()) as tmp:
        root = Path(tmp)
        for n in range(2):
            gc.collect()
            elapsed, batches = asyncio.run(_through_writer(root / f"w{n}.db", rows))
            writer_times.append(elapsed)
            gc.collect()
            raw_times.append(_raw(root / f"r{n}.db", rows))
    w, b = min(writer_times), min(raw_times)
    share = b / w
    res = Result(NAME, TITLE)
    res.rows.append(
        Row(
            "Batch writer, events/s",
            f"{rate(count, w)}/s ({share:.0%} of baseline)",
            "≥ 100 k/s and ≥ 70 % of baseline",
            count / w >= GOAL_RATE and share >= GOAL_SHARE,
            f"{rate(count, b)}/s",
            f"{share:.2f}×",
        )
    )
    res.method = (
        f"{count:,} event rows (11 columns, ~90-byte JSON payload) into the `events` table "
        "(4 indexes + UNIQUE(source_id, seq)) of a fresh DB. Writer: `BatchWriter` with its "
        f"defaults (max_rows=100, max_delay=0.1 s), fed with `add_many` in chunks of {CHUNK:,} "
        "with an `await asyncio.sleep(0)` after each; timed until `close()` returns. Baseline: "
        "stdlib sqlite3, one `executemany` in one transaction, on a fresh DB made by "
        "`Database.open`, same PRAGMAs (WAL, synchronous=NORMAL). Each is run twice, "
        "alternating; the better run of each is reported."
    )
    res.details = [
        "| | run 1 | run 2 | best rows/s |",
        "|---|---|---|---|",
        f"| BatchWriter | {writer_times[0]:.2f} s | {writer_times[1]:.2f} s | {rate(count, w)} |",
        f"| raw executemany | {raw_times[0]:.2f} s | {raw_times[1]:.2f} s | {rate(count, b)} |",
        "",
        f"The writer committed {batches:,} transactions (mean {count / max(batches, 1):,.0f} "
        "rows each): a flush takes everything pending, so batches grow while SQLite is busy.",
    ]
    return res
