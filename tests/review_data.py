"""A workspace for the review tests, built once per module.

Phase `p1` holds the shared Claude Code fixtures; `errors-only` one crafted
transcript whose every tool call fails, with no usage, a line that is not
JSON, a planted API key and a `<script>` tag; `empty` has no sessions. Known
store timings are added to the metrics table so the operation latency has an
exact answer to check.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from tests.support import CLAUDE_FIXTURES

PLANTED_KEY = "sk-ant-api03-AAAABBBBCCCCDDDDEEEEFFFFGGGGHHHH"
SCRIPT = "<script>alert('owned')</script>"
OP_SAMPLES = [0.004, 0.006, 0.010, 0.012, 0.020, 0.035, 0.050, 0.120, 0.300, 1.5]
"""Seconds of the `put@folder` operations planted in the metrics table."""


def _line(obj: dict[str, object]) -> bytes:
    return orjson.dumps(obj) + b"\n"


def errors_transcript(path: Path) -> None:
    sid = path.stem
    lines = [
        _line({"type": "user", "uuid": "u0", "sessionId": sid, "timestamp": "2025-03-01T10:00:00Z",
               "message": {"role": "user", "content": f"{SCRIPT} run the deploy"}}),
        _line({"type": "assistant", "uuid": "a1", "sessionId": sid,
               "timestamp": "2025-03-01T10:00:01Z",
               "message": {"id": "m1", "role": "assistant", "model": "claude-sonnet-4-20250514",
                           "content": [{"type": "tool_use", "id": "t1", "name": "Bash",
                                        "input": {"command": f"deploy --key {PLANTED_KEY}"}}]}}),
        _line({"type": "user", "uuid": "u1", "sessionId": sid, "timestamp": "2025-03-01T10:00:04Z",
               "message": {"role": "user", "content": [
                   {"type": "tool_result", "tool_use_id": "t1", "is_error": True,
                    "content": f"Error: key {PLANTED_KEY} rejected {SCRIPT}\nexit 1"}]}}),
        b"{this line is not json\n",
        _line({"type": "assistant", "uuid": "a2", "sessionId": sid,
               "timestamp": "2025-03-01T10:01:00Z",
               "message": {"id": "m2", "role": "assistant", "model": "claude-sonnet-4-20250514",
                           "content": [{"type": "tool_use", "id": "t2", "name": "Bash",
                                        "input": {"command": "deploy"}}]}}),
        _line({"type": "user", "uuid": "u2", "sessionId": sid, "timestamp": "2025-03-01T10:01:10Z",
               "message": {"role": "user", "content": [
                   {"type": "tool_result", "tool_use_id": "t2", "is_error": True,
                    "content": f"Error: key {PLANTED_KEY} rejected {SCRIPT}\nexit 1"}]}}),
        _line({"type": "assistant", "uuid": "a3", "sessionId": sid,
               "timestamp": "2025-03-01T10:02:00Z",
               "message": {"id": "m3", "role": "assistant", "model": "claude-sonnet-4-20250514",
                           "content": [{"type": "tool_use", "id": "t3", "name": "Edit",
                                        "input": {"file_path": "a.py"}}]}}),
        _line({"type": "user", "uuid": "u3", "sessionId": sid, "timestamp": "2025-03-01T10:02:02Z",
               "message": {"role": "user", "content": [
                   {"type": "tool_result", "tool_use_id": "t3", "is_error": True,
                    "content": "String to replace not found in file."}]}}),
    ]  # fmt: skip
    path.write_bytes(b"".join(lines))


@dataclass
class Built:
    ws: Path
    db: Path
    p1_job: dict[str, object]


def plant_metrics(db_path: Path) -> None:
    """Known put@folder timings in the current minute, plus the hour's roll-up of the
    same timings (which the review must not count a second time)."""
    import sqlite3

    from core.metrics.histogram import Histogram

    hist = Histogram()
    for s in OP_SAMPLES:
        hist.observe(s)
    now = time.time()
    minute = time.strftime("%Y-%m-%dT%H:%M:00Z", time.gmtime(now))
    hour = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(now))
    conn = sqlite3.connect(db_path)
    with conn:
        for ts, res in ((minute, "1m"), (hour, "1h")):
            conn.execute(
                "INSERT INTO metrics(ts, resolution, op, tier, count, p50, p95, p99, bytes, "
                "errors, sum, hist) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (ts, res, "put", "folder", hist.count, None, None, None, 0, 1, hist.sum,
                 orjson.dumps(hist.to_sparse()).decode()),
            )  # fmt: skip
    conn.close()


def build(root: Path, *, fixtures: bool = True) -> Built:
    """`fixtures=False` leaves p1 empty and unreviewed: enough for the edge cases."""

    async def go() -> Built:
        from core.local import lifecycle
        from core.service import Service

        ws = root / "ws"
        planted = root / "src" / "planted_errors.jsonl"
        planted.parent.mkdir(parents=True)
        errors_transcript(planted)
        svc = await Service.start(ws, schedule=False)
        try:
            await lifecycle.phase_new(svc.db, svc.workspace, "p1")
            if fixtures:
                await svc.import_now([str(CLAUDE_FIXTURES)])
            await lifecycle.phase_new(svc.db, svc.workspace, "errors-only")
            await svc.import_now([str(planted)], "claude-code")
            await lifecycle.phase_new(svc.db, svc.workspace, "empty")
            await lifecycle.phase_close(svc.db, svc.workspace, "errors-only")
            plant_metrics(svc.workspace.db_path)
            result: dict[str, object] = {}
            if fixtures:
                info = await svc.jobs.wait((await svc.start_review("p1", html=True)).id)
                assert info.state.value == "done", info.error
                result = dict(info.result or {})
            for phase in ("errors-only", "empty"):
                done = await svc.jobs.wait((await svc.start_review(phase, html=True)).id)
                assert done.state.value == "done", done.error
            return Built(ws=ws, db=svc.workspace.db_path, p1_job=result)
        finally:
            await svc.stop()

    return asyncio.run(go())
