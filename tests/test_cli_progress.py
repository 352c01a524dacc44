"""The terminal's progress bar for a job, drawn from the job's real events."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from core.cli import progress
from core.models import JobState
from core.service import Service
from tests.support import CLAUDE_FIXTURES

CASES = CLAUDE_FIXTURES / "claude-code-log-cases"


def terminal(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=140, color_system=None)
    monkeypatch.setattr(progress, "err", console)
    return screen


async def test_a_backup_counts_sessions_and_an_import_counts_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backup's bar said "29/240 bytes 365 bytes/s": it counts sessions done."""
    files = sorted(CASES.glob("*.jsonl"))
    async with await Service.start(tmp_path / "ws", schedule=False) as svc:
        screen = terminal(monkeypatch)
        job = await svc.start_import([str(p) for p in files])
        assert (await progress.follow_job(svc, job.id)).state == JobState.DONE
        drawn = screen.getvalue()
        total = sum(p.stat().st_size for p in files)
        assert f"/{total / 1000:.1f} kB" in drawn, drawn[-400:]

        await svc.add_folder_target("usb", str(tmp_path / "disk"))
        screen = terminal(monkeypatch)
        job = await svc.start_backup([], "usb")
        assert (await progress.follow_job(svc, job.id)).state == JobState.DONE
        drawn = screen.getvalue()
        sessions = len(await svc.list_sessions())
        assert f"{sessions}/{sessions} sessions" in drawn, drawn[-400:]
        assert "bytes" not in drawn
