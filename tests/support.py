"""Paths and data shared by tests (importable as `tests.support`)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures"
CLAUDE_FIXTURES = FIXTURES / "claude-code"


def fixture_stats() -> dict[str, dict[str, str]]:
    """STATS.csv keyed by the file's path relative to fixtures/."""
    with open(FIXTURES / "STATS.csv", newline="") as fh:
        return {row["path"]: row for row in csv.DictReader(fh)}


async def duplicate_rows(db: object) -> int:
    """Messages stored twice for one source position: must always be 0."""
    return int(
        await db.scalar(  # type: ignore[attr-defined]
            "SELECT count(*) FROM (SELECT source_id, seq FROM messages"
            " GROUP BY source_id, seq HAVING count(*) > 1)"
        )
    )


def tk(*args: str, ws: Path, env: dict[str, str] | None = None, stdin: bytes | None = None
       ) -> subprocess.CompletedProcess[bytes]:  # fmt: skip
    """`tierkeeper ARGS --workspace WS` as a user runs it: a process of its own (`env`
    added to this one's environment, `stdin` piped in)."""
    return subprocess.run(
        [sys.executable, "-m", "core.cli.entry", *args, "--workspace", str(ws)],
        cwd=REPO, capture_output=True, timeout=180, env={**os.environ, **(env or {})},
        input=stdin,
    )  # fmt: skip


def ok(proc: subprocess.CompletedProcess[bytes]) -> Any:
    """Its JSON output, once it exited 0 (else its stderr is the failure's message)."""
    assert proc.returncode == 0, proc.stderr.decode()
    return orjson.loads(proc.stdout) if proc.stdout.strip() else None
