"""Tier 2 through the client interface, as the window uses it: targets, history, jobs."""

from __future__ import annotations

from pathlib import Path

from core.client import InProcessClient
from core.models import JobState
from core.service import Service
from tests.support import CLAUDE_FIXTURES

SOURCE = CLAUDE_FIXTURES / "claude-code-log-cases" / "edge_cases.jsonl"


async def test_targets_history_restore_and_verify_through_the_client(tmp_path: Path) -> None:
    svc = await Service.start(tmp_path / "ws")
    client = InProcessClient(svc)
    try:
        await svc.import_now([str(SOURCE)])
        await svc.add_folder_target("usb", str(tmp_path / "disk"))
        (empty,) = await client.targets()
        assert empty.sessions == 0 and empty.last_backup_at is None

        job = await client.start_backup([], "usb")
        assert (await client.wait_job(job.id)).state == JobState.DONE
        (card,) = await client.targets()
        assert card.sessions == 1 and card.stored_bytes > 0 and card.last_backup_at
        (row,) = await client.backups(session_id="edge_cases")
        assert row.target == "usb" and row.verify_status == "ok"

        job = await client.start_restore("edge_cases", str(tmp_path / "back"), target="usb")
        done = await client.wait_job(job.id)
        assert done.state == JobState.DONE and done.result is not None
        (written,) = done.result["written"]
        assert Path(written).read_bytes() == SOURCE.read_bytes()

        stored = next((tmp_path / "disk" / "Tierkeeper").rglob("*.jsonl.zst"))
        stored.write_bytes(b"\x00" + stored.read_bytes()[1:])  # damage, same size
        job = await client.start_verify("usb", deep=True)
        done = await client.wait_job(job.id)
        assert done.result is not None and done.result["failed"][0]["session"] == "edge_cases"
        (card,) = await client.targets()
        assert card.verify_failures == 1
    finally:
        await client.close()
