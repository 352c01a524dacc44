"""A cached analytics DB full of synthetic messages, for lookups and search.

The schema comes from `Database.open` (so indexes, FTS table and triggers are
the real ones); rows go in through stdlib sqlite3 in big transactions with the
FTS triggers doing the indexing, which is what an import does, only faster.
The DB is kept under `.bench-cache/` keyed by `VERSION`, the row count and the
seed: bump `VERSION` whenever the generator or the schema changes.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from pathlib import Path

from core.local.db.database import Database
from core.local.db.schema import LATEST
from tests.benchmarks.measure import cache_dir, log
from tests.benchmarks.synth import TextGen

VERSION = "corpus-v3"
SEED = 20260131
PER_SESSION = 200
CHUNK = 50_000
PROJECTS = 40
_TOOLS = ("Read", "Edit", "Bash", "Grep", "Glob", "Write", "Task", "TodoWrite", "WebFetch")


def corpus_path(rows: int) -> Path:
    return cache_dir() / f"{VERSION}-schema{LATEST}-{rows}-seed{SEED}.db"


def meta_path(db: Path) -> Path:
    return db.with_suffix(".json")


def ensure_corpus(rows: int) -> tuple[Path, dict[str, object]]:
    """The cached DB with `rows` messages, built first if missing; plus its build facts."""
    path = corpus_path(rows)
    meta = meta_path(path)
    if path.exists() and meta.exists():
        return path, json.loads(meta.read_text())
    log(f"building a {rows:,}-message corpus DB (cached afterwards under .bench-cache/)")
    tmp = path.with_name(path.name + ".building")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    started = time.perf_counter()
    facts = _build(tmp, rows)
    facts["build_seconds"] = round(time.perf_counter() - started, 1)
    facts["db_bytes"] = tmp.stat().st_size
    os.replace(tmp, path)
    meta.write_text(json.dumps(facts, indent=1))
    log(f"corpus built in {facts['build_seconds']} s, {facts['db_bytes'] / 1e6:.0f} MB")
    return path, facts


async def _create_schema(path: Path) -> None:
    db = await Database.open(path)
    await db.close()


def _build(path: Path, rows: int) -> dict[str, object]:
    asyncio.run(_create_schema(path))
    gen = TextGen(SEED)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-262144")
        sessions = max(1, rows // PER_SESSION)
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO sessions(id, source, project, agent, started_at, message_count,"
            " updated_at) VALUES (?,?,?,?,?,?,?)",
            (
                (
                    _session_id(s),
                    "claude-code",
                    f"-home-dev-project-{s % PROJECTS:02d}",
                    "claude-code",
                    _ts(s * PER_SESSION),
                    PER_SESSION,
                    _ts(s * PER_SESSION),
                )
                for s in range(sessions)
            ),
        )
        conn.execute("COMMIT")
        text_bytes = 0
        for start in range(0, rows, CHUNK):
            count = min(CHUNK, rows - start)
            texts = gen.texts(count)
            tool_pick = gen.rng.random(count)
            batch = []
            for i, text in enumerate(texts):
                mid = start + i + 1
                role = "assistant" if mid % 5 in (1, 3, 4) else "user"
                tools = None
                if role == "assistant" and tool_pick[i] < 0.35:
                    tools = f"{_TOOLS[mid % len(_TOOLS)]} {text[:60]}"
                raw = text.encode()
                text_bytes += len(raw)
                batch.append(
                    (
                        mid, _session_id((mid - 1) // PER_SESSION), (mid - 1) // PER_SESSION + 1,
                        (mid - 1) % PER_SESSION, None, None, None, role, role,
                        "claude-sonnet-4-5" if role == "assistant" else None, _ts(mid), 0, text,
                        tools, None, 0, len(raw) + 400,
                    )
                )  # fmt: skip
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO messages(id, session_id, source_id, seq, byte_offset, uuid,"
                " parent_uuid, type, role, model, ts, is_sidechain, text, tools, parse_error,"
                " redacted, raw_size) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                batch,
            )
            conn.execute("COMMIT")
            log(f"  {start + count:,} / {rows:,} messages")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return {"rows": rows, "sessions": sessions, "text_bytes": text_bytes, "seed": SEED}


def _session_id(n: int) -> str:
    return f"5e55{n:04x}-0000-4000-8000-{n:012d}"


def _ts(n: int) -> str:
    day, rest = divmod(n // 4, 86_400)
    hh, rest = divmod(rest, 3600)
    mm, ss = divmod(rest, 60)
    return f"2025-{1 + (day // 28) % 12:02d}-{1 + day % 28:02d}T{hh:02d}:{mm:02d}:{ss:02d}.000Z"


def generator() -> TextGen:
    """A generator with the corpus seed: its vocabulary and phrases match the DB's."""
    return TextGen(SEED)
