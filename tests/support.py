"""Paths and data shared by tests (importable as `tests.support`)."""

from __future__ import annotations

import csv
from pathlib import Path

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
