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
