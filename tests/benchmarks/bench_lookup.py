"""Primary-key lookups of messages through aiosqlite, against stdlib sqlite3.

Both read the same cached DB with the same statement and the same random ids,
in alternating blocks; the difference is the price of the async wrapper (a
hop to aiosqlite's thread and back per call).
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time

from core.local.db.database import PRAGMAS, Database
from tests.benchmarks.corpus import ensure_corpus
from tests.benchmarks.measure import Result, Row, log, percentile, ratio, short_time

NAME = "lookup"
TITLE = "Message lookup by id"
GOAL_P99 = 1e-3
SQL = (
    "SELECT id, session_id, seq, type, role, ts, model, text, tools, parse_error"
    " FROM messages WHERE id = ?"
)
BLOCK = 1_000


def _sizes(quick: bool) -> tuple[int, int]:
    return (20_000, 2_000) if quick else (100_000, 10_000)


def prepare(quick: bool) -> None:
    ensure_corpus(_sizes(quick)[0])


async def _aio(db: Database, ids: list[int], out: list[float]) -> None:
    clock = time.perf_counter
    for mid in ids:
        t0 = clock()
        row = await db.fetchone(SQL, (mid,))
        out.append(clock() - t0)
        assert row is not None


def _std(conn: sqlite3.Connection, ids: list[int], out: list[float]) -> None:
    clock = time.perf_counter
    for mid in ids:
        t0 = clock()
        row = conn.execute(SQL, (mid,)).fetchone()
        out.append(clock() - t0)
        assert row is not None


async def _measure(rows: int, lookups: int) -> tuple[list[float], list[float]]:
    path, _ = ensure_corpus(rows)
    rng = random.Random(5)
    ids = [rng.randint(1, rows) for _ in range(lookups)]
    warm = [rng.randint(1, rows) for _ in range(500)]
    db = await Database.open(path)
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    for pragma in PRAGMAS:
        conn.execute(pragma)
    aio: list[float] = []
    std: list[float] = []
    try:
        await _aio(db, warm, [])
        _std(conn, warm, [])
        for start in range(0, lookups, BLOCK):
            block = ids[start : start + BLOCK]
            await _aio(db, block, aio)
            _std(conn, block, std)
    finally:
        conn.close()
        await db.close()
    return aio, std


def run(quick: bool) -> Result:
    rows, lookups = _sizes(quick)
    log(f"lookup: {lookups:,} random ids in a {rows:,}-message DB")
    aio, std = asyncio.run(_measure(rows, lookups))
    p99, b99 = percentile(aio, 99), percentile(std, 99)
    res = Result(NAME, TITLE)
    res.rows.append(
        Row(
            "Message by id, aiosqlite p99",
            short_time(p99),
            "< 1 ms",
            p99 < GOAL_P99,
            short_time(b99),
            ratio(p99, b99),
        )
    )
    res.method = (
        f"{lookups:,} random primary-key lookups (`{SQL}`) on a cached DB of {rows:,} "
        "synthetic messages, through `Database.fetchone` (aiosqlite) and through a stdlib "
        f"sqlite3 connection with the same PRAGMAs, alternating in blocks of {BLOCK:,}; 500 "
        "warm-up lookups each first (the DB is in the page cache)."
    )
    res.details = [
        "| | p50 | p90 | p99 | p99.9 | max |",
        "|---|---|---|---|---|---|",
        _line("Database.fetchone (aiosqlite)", aio),
        _line("stdlib sqlite3", std),
    ]
    return res


def _line(label: str, times: list[float]) -> str:
    cells = [short_time(percentile(times, q)) for q in (50, 90, 99, 99.9)]
    return f"| {label} | {' | '.join(cells)} | {short_time(max(times))} |"
