"""Import throughput of `Service.import_now`, its re-import, and a raw-insert floor.

The import keeps every line losslessly (compressed raw bytes), extracts
fields, tool calls and usage, redacts, and feeds the FTS index, so it cannot
match a bare insert; the baseline (parse each line as JSON, insert the raw
bytes into a plain table, one transaction) shows how far from the floor it is.
A re-import of unchanged files should cost one `stat` per file.
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

from core.local.db.database import PRAGMAS
from core.models import ImportReport
from core.service import Service
from tests.benchmarks.claude_gen import ensure_projects
from tests.benchmarks.measure import (
    SHARED,
    Result,
    Row,
    dir_size,
    log,
    mb,
    rate,
    scratch_parent,
    short_time,
)

NAME = "import"
TITLE = "Import (Claude Code transcripts)"
FIXTURES = SHARED / "fixtures" / "claude-code"


def _size_mb(quick: bool) -> int:
    return 8 if quick else 150


def prepare(quick: bool) -> None:
    ensure_projects(_size_mb(quick))


def _db_bytes(path: Path) -> int:
    return sum(
        p.stat().st_size
        for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))
        if p.exists()
    )


async def _import(ws: Path, data: Path) -> dict[str, Any]:
    svc = await Service.start(ws, run_jobs=False)
    try:
        gc.collect()
        t0 = time.perf_counter()
        first = await svc.import_now([str(data)])
        first_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = await svc.import_now([str(data)])
        again_s = time.perf_counter() - t0
        db_path = svc.workspace.db_path
        before_checkpoint = _db_bytes(db_path)
        await svc.db.checkpoint()
        try:
            objects = await svc.db.fetchall(
                "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 6"
            )
            biggest = [(str(r[0]), int(r[1])) for r in objects]
        except Exception:  # SQLite built without the dbstat table
            biggest = []
        return {
            "biggest": biggest,
            "first": first,
            "first_s": first_s,
            "again": again,
            "again_s": again_s,
            "db_live": before_checkpoint,
            "db_file": _db_bytes(db_path),
        }
    finally:
        await svc.stop()


def _baseline(db_path: Path, data: Path) -> tuple[float, int, int]:
    """Parse every line as JSON and insert its raw bytes, all in one transaction."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        for pragma in PRAGMAS:
            conn.execute(pragma)
        conn.execute("CREATE TABLE lines(id INTEGER PRIMARY KEY, file TEXT, seq INTEGER, raw BLOB)")
        files = sorted(data.rglob("*.jsonl"))
        counted = {"lines": 0, "bytes": 0}

        def rows() -> Any:
            for path in files:
                name = str(path.relative_to(data))
                with open(path, "rb") as fh:
                    for seq, line in enumerate(fh):
                        orjson.loads(line)
                        counted["lines"] += 1
                        counted["bytes"] += len(line)
                        yield (name, seq, line)

        t0 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO lines(file, seq, raw) VALUES (?,?,?)", rows())
        conn.execute("COMMIT")
        return time.perf_counter() - t0, counted["lines"], counted["bytes"]
    finally:
        conn.close()


def run(quick: bool) -> Result:
    data = ensure_projects(_size_mb(quick))
    raw_bytes = dir_size(data)
    res = Result(NAME, TITLE)
    with tempfile.TemporaryDirectory(prefix="bench-import-", dir=scratch_parent()) as tmp:
        root = Path(tmp)
        log(f"import: {mb(raw_bytes)} of synthetic transcripts")
        big = asyncio.run(_import(root / "ws-synthetic", data))
        log("import: the shared fixtures")
        fx = asyncio.run(_import(root / "ws-fixtures", FIXTURES)) if FIXTURES.is_dir() else None
        log("import: raw-insert baseline")
        gc.collect()
        base_s, base_lines, base_bytes = _baseline(root / "baseline.db", data)
        base_db = _db_bytes(root / "baseline.db")

    first: ImportReport = big["first"]
    again: ImportReport = big["again"]
    secs = big["first_s"]
    mbps = first.bytes_read / 1e6 / secs
    base_mbps = base_bytes / 1e6 / base_s
    res.rows.append(
        Row(
            f"Import {mb(first.bytes_read)} synthetic",
            f"{mbps:.1f} MB/s, {rate(first.lines_read, secs)} lines/s",
            "—",
            None,
            f"{base_mbps:.1f} MB/s raw insert",
            f"{mbps / base_mbps:.2f}×",
        )
    )
    untouched = again.files_imported == 0 and again.lines_read == 0
    res.rows.append(
        Row(
            "Re-import, unchanged",
            short_time(big["again_s"]),
            "~0 work (nothing read)",
            untouched,
            f"first import {secs:.1f} s",
            f"{big['again_s'] / secs:.4f}×",
        )
    )
    res.rows.append(
        Row(
            "DB size ÷ raw bytes",
            f"{big['db_file'] / raw_bytes:.2f}",
            "—",
            None,
            f"{base_db / raw_bytes:.2f} raw-insert DB",
            "—",
        )
    )
    res.method = (
        f"`Service.start(ws, run_jobs=False)` then `await svc.import_now([folder])` on "
        f"{mb(raw_bytes)} of generated Claude Code projects ({first.files_seen} files: sessions "
        "and `agent-*.jsonl` subagents; user prompts, assistant text, tool_use with usage, "
        "tool_result lines with numbered file contents up to ~40 KB; generator in "
        "`tests/benchmarks/claude_gen.py`, cached under `.bench-cache/`), then again unchanged; "
        "the same on `../shared/fixtures/claude-code` (real transcripts). Baseline: stdlib "
        "sqlite3, every line `orjson.loads`-ed and its raw bytes inserted into a plain "
        "`lines(id, file, seq, raw)` table by one `executemany` in one transaction, same PRAGMAs."
    )
    res.details = [
        "| Run | seconds | files | lines | MB read | MB/s | lines/s | sessions |",
        "|---|---|---|---|---|---|---|---|",
        _report_line("synthetic, first import", first, secs),
        _report_line("synthetic, re-import", again, big["again_s"]),
    ]
    if fx is not None:
        res.details += [
            _report_line("fixtures, first import", fx["first"], fx["first_s"]),
            _report_line("fixtures, re-import", fx["again"], fx["again_s"]),
        ]
    res.details += [
        f"| raw-insert baseline | {base_s:.2f} | — | {base_lines:,} | {base_bytes / 1e6:.1f} "
        f"| {base_mbps:.1f} | {rate(base_lines, base_s)} | — |",
        "",
        f"DB after the synthetic import: {mb(big['db_live'])} before a WAL checkpoint, "
        f"{mb(big['db_file'])} after (`wal_checkpoint(TRUNCATE)`), for {mb(raw_bytes)} of "
        f"transcripts ({big['db_file'] / raw_bytes:.2f}×: zstd-compressed raw lines + extracted "
        f"text + FTS index + tool calls/usage). Raw-insert DB: {mb(base_db)}.",
    ]
    if big["biggest"]:
        res.details.append(
            "Largest objects (dbstat): "
            + ", ".join(f"`{name}` {mb(size)}" for name, size in big["biggest"])
            + "."
        )
    if fx is not None:
        fx_bytes = dir_size(FIXTURES)
        res.details.append(
            f"Fixtures DB: {mb(fx['db_file'])} for {mb(fx_bytes)} of transcripts "
            f"({fx['db_file'] / fx_bytes:.2f}×; includes a 0.9 MB image line and the fixed cost "
            "of an empty DB)."
        )
    return res


def _report_line(label: str, rep: ImportReport, secs: float) -> str:
    return (
        f"| {label} | {secs:.2f} | {rep.files_seen} ({rep.files_imported} imported) "
        f"| {rep.lines_read:,} | {rep.bytes_read / 1e6:.1f} | {rep.bytes_read / 1e6 / secs:.1f} "
        f"| {rate(rep.lines_read, secs)} | {rep.sessions} |"
    )
