"""Full-text search over 1 M messages: `core.local.search.search` and what its time is made of.

Besides the function itself and the baseline (FTS5 alone: `MATCH … ORDER BY
rank LIMIT 20` through stdlib sqlite3), the same queries run as variants that
take one cost away at a time — the aiosqlite hop, snippet(), bm25 ranking of
every match — so a miss comes with the reason in numbers. All variants run
query by query, interleaved, so disk and CPU weather hit them alike.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from core.local.db.database import PRAGMAS, Database
from core.local.search import search, to_fts_query
from core.models import SearchQuery
from tests.benchmarks.corpus import ensure_corpus, generator
from tests.benchmarks.measure import Result, Row, log, percentile, ratio, short_time

NAME = "search"
TITLE = "Full-text search"
GOAL_P95 = 0.030
LIMIT = 20
NEWEST_WINDOW = 5_000

BASELINE_SQL = (
    "SELECT rowid, rank FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rank LIMIT ?"
)
NEWEST_SQL = "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rowid DESC LIMIT ?"
TOP_THEN_JOIN_SQL = """
    SELECT m.id, m.session_id, s.project, m.role, m.ts, top.rank, m.text
    FROM (SELECT rowid, rank FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rank LIMIT ?)
         AS top
    JOIN messages m ON m.id = top.rowid
    LEFT JOIN sessions s ON s.id = m.session_id
    ORDER BY top.rank"""
WINDOW_EDGE_SQL = (
    "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rowid DESC LIMIT 1 OFFSET ?"
)
WINDOW_RANK_SQL = (
    "SELECT rowid, rank FROM messages_fts WHERE messages_fts MATCH ? AND rowid >= ?"
    " ORDER BY rank LIMIT ?"
)


def _rows(quick: bool) -> int:
    return 100_000 if quick else 1_000_000


def prepare(quick: bool) -> None:
    ensure_corpus(_rows(quick))


def make_queries(count: int = 200) -> list[tuple[str, str]]:
    """(category, text) pairs over the corpus vocabulary: common, mid and rare terms."""
    gen = generator()
    rng = gen.rng
    vocab = [str(w) for w in gen.vocab]
    plain = [i for i, w in enumerate(vocab) if w.isalnum()]

    def pick(lo: int, hi: int) -> str:
        choices = [i for i in plain if lo <= i < hi]
        return vocab[choices[int(rng.integers(0, len(choices)))]]

    def long_word(lo: int, hi: int) -> str:
        word = pick(lo, hi)
        while len(word) < 4:
            word = pick(lo, hi)
        return word

    scale = count / 200
    plan: list[tuple[str, int, Callable[[], str]]] = [
        ("1 word, common (rank < 30)", 25, lambda: pick(0, 30)),
        ("1 word, mid (rank 200–3k)", 30, lambda: pick(200, 3000)),
        ("1 word, rare (rank > 20k)", 30, lambda: pick(20_000, len(vocab))),
        ("2 words, common + common", 15, lambda: f"{pick(0, 30)} {pick(0, 30)}"),
        ("2 words, common + rare", 15, lambda: f"{pick(0, 30)} {pick(20_000, len(vocab))}"),
        ("2 words, mid + mid", 15, lambda: f"{pick(200, 3000)} {pick(200, 3000)}"),
        ("prefix, 4 letters of a common word", 15, lambda: long_word(0, 80)[:4] + "*"),
        ("prefix, 4 letters of a mid word", 20, lambda: long_word(200, 3000)[:4] + "*"),
        ("phrase (a collocation in the corpus)", 35, lambda: _phrase(gen, rng)),
    ]
    queries = []
    for category, n, make in plan:
        queries += [(category, make()) for _ in range(max(1, round(n * scale)))]
    return queries


def _phrase(gen: Any, rng: Any) -> str:
    phrase = gen.phrases[min(int(rng.zipf(1.3)) - 1, len(gen.phrases) - 1)]
    return f'"{phrase}"'


class _CaptureSql:
    """Stands in for `Database` to learn the SQL `search` would run."""

    def __init__(self) -> None:
        self.sql = ""
        self.params: list[Any] = []

    async def fetchall(self, sql: str, params: list[Any]) -> list[Any]:
        self.sql, self.params = sql, list(params)
        return []


async def _search_sql(text: str) -> tuple[str, list[Any]]:
    cap = _CaptureSql()
    await search(cap, SearchQuery(text=text, limit=LIMIT))  # type: ignore[arg-type]
    return cap.sql, cap.params


async def _measure(
    rows: int, queries: list[tuple[str, str]]
) -> tuple[dict[str, list[float]], dict[str, int]]:
    path, _ = ensure_corpus(rows)
    sql, probe_params = await _search_sql("probe")
    probe = to_fts_query("probe")
    db = await Database.open(path)
    conn = sqlite3.connect(path)
    for pragma in PRAGMAS:
        conn.execute(pragma)
    clock = time.perf_counter

    def newest_window(match: str) -> list[Any]:
        edge = conn.execute(WINDOW_EDGE_SQL, (match, NEWEST_WINDOW - 1)).fetchone()
        low = edge[0] if edge else 0
        return conn.execute(WINDOW_RANK_SQL, (match, low, LIMIT)).fetchall()

    variants: dict[str, Callable[[str], Any]] = {
        "baseline: FTS5 rank only (stdlib)": lambda m: conn.execute(
            BASELINE_SQL, (m, LIMIT)
        ).fetchall(),
        "search() SQL via stdlib (no aiosqlite)": lambda m: conn.execute(
            sql, [m if p == probe else p for p in probe_params]
        ).fetchall(),
        "FTS5 top 20 first, then JOIN (no snippet)": lambda m: conn.execute(
            TOP_THEN_JOIN_SQL, (m, LIMIT)
        ).fetchall(),
        "newest first, no bm25 (ORDER BY rowid DESC)": lambda m: conn.execute(
            NEWEST_SQL, (m, LIMIT)
        ).fetchall(),
        f"bm25 over the newest {NEWEST_WINDOW:,} matches only": newest_window,
    }
    times: dict[str, list[float]] = {"search() (aiosqlite)": []}
    times.update({name: [] for name in variants})
    matches: dict[str, int] = {}
    try:
        for _, text in queries:  # warm-up: pages into the cache, statements prepared
            conn.execute(BASELINE_SQL, (to_fts_query(text), LIMIT)).fetchall()
        for i, (_, text) in enumerate(queries):
            match = to_fts_query(text)
            t0 = clock()
            await search(db, SearchQuery(text=text, limit=LIMIT))
            times["search() (aiosqlite)"].append(clock() - t0)
            for name, fn in variants.items():
                t0 = clock()
                fn(match)
                times[name].append(clock() - t0)
            matches[text] = conn.execute(
                "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ?", (match,)
            ).fetchone()[0]
            if i % 50 == 49:
                log(f"  {i + 1} / {len(queries)} queries")
    finally:
        conn.close()
        await db.close()
    return times, matches


def run(quick: bool) -> Result:
    rows = _rows(quick)
    queries = make_queries(60 if quick else 200)
    log(f"search: {len(queries)} queries × 6 variants on {rows:,} messages")
    times, matches = asyncio.run(_measure(rows, queries))
    _, facts = ensure_corpus(rows)
    ours = times["search() (aiosqlite)"]
    base = times["baseline: FTS5 rank only (stdlib)"]
    p95, b95 = percentile(ours, 95), percentile(base, 95)
    res = Result(NAME, TITLE)
    res.rows.append(
        Row(
            f"Search p95, {rows / 1e6:g} M messages",
            short_time(p95),
            "< 30 ms",
            p95 < GOAL_P95,
            short_time(b95),
            ratio(p95, b95),
        )
    )
    res.method = (
        f"A cached DB of {rows:,} synthetic messages ({facts['sessions']:,} sessions; "
        f"{int(facts['text_bytes']) / 1e6:.0f} MB of text drawn from a 60k-word Zipf–Mandelbrot "
        "vocabulary with real English/programming words at the head, plus 300 collocations; "
        f"DB {int(facts['db_bytes']) / 1e6:.0f} MB, built in {facts['build_seconds']} s through "
        "the real schema and FTS triggers; raw blobs are cut to 120 bytes to keep the build "
        f"fast). {len(queries)} queries, limit {LIMIT}, mixing one-word, two-word, prefix and "
        "phrase queries of common, mid and rare terms (table below). One warm-up pass, then "
        "each query runs once through every variant, interleaved."
    )
    cats = list(dict.fromkeys(c for c, _ in queries))
    res.details = [
        "All queries:",
        "",
        "| Variant | p50 | p95 | p99 | max |",
        "|---|---|---|---|---|",
    ]
    for name, ts in times.items():
        cells = [short_time(percentile(ts, q)) for q in (50, 95, 99, 100)]
        res.details.append(f"| {name} | {' | '.join(cells)} |")
    short = {
        "search() (aiosqlite)": "search()",
        "baseline: FTS5 rank only (stdlib)": "baseline",
        "FTS5 top 20 first, then JOIN (no snippet)": "top 20, then JOIN",
        "newest first, no bm25 (ORDER BY rowid DESC)": "newest first",
        f"bm25 over the newest {NEWEST_WINDOW:,} matches only": "bm25 of newest 5k",
    }
    shown = [name for name in short if name in times]
    res.details += [
        "",
        "p95 per query kind, with the number of matching messages:",
        "",
        "| Query kind | n | median matches | example | "
        + " | ".join(short[name] for name in shown)
        + " |",
        "|---" * (4 + len(shown)) + "|",
    ]
    for c in cats:
        counts = sorted(matches[t] for qc, t in queries if qc == c)
        example = next(t for qc, t in queries if qc == c)
        cells = []
        for name in shown:
            sel = [t for (qc, _), t in zip(queries, times[name], strict=True) if qc == c]
            cells.append(short_time(percentile(sel, 95)))
        res.details.append(
            f"| {c} | {len(counts)} | {counts[len(counts) // 2]:,} | `{example}` "
            f"| {' | '.join(cells)} |"
        )
    slow = sorted(zip(ours, queries, strict=True), key=lambda x: x[0], reverse=True)[
        : max(1, len(ours) // 20)
    ]
    res.details += [
        "",
        "Slowest 5 % through `search()`: "
        + ", ".join(f"`{q[1]}` {short_time(t)} ({matches[q[1]]:,} matches)" for t, q in slow)
        + ".",
    ]
    return res
