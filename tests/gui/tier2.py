"""Tier 2 set-up for window tests: a real folder target, real backups, a disk that leaves.

The target is a plain folder; "unplugging" it renames the folder away, so the
store fails for real (as a USB disk's vanished mount point does) and the job
parks in the offline queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.client import Client, InProcessClient
from core.config import TargetConfig
from core.models import JobState
from core.service import Service
from core.tier2.targets import RetryPolicy
from core.workspace import Workspace

FAST = RetryPolicy(attempts=1, base_delay=0.01, max_delay=0.01)
"""A store call that fails gives up at once: the job parks in milliseconds."""


@dataclass
class Disk:
    path: Path

    @property
    def away(self) -> Path:
        return self.path.with_name(self.path.name + "-unplugged")

    def unplug(self) -> None:
        self.path.rename(self.away)

    def plug_in(self) -> None:
        self.away.rename(self.path)

    def stored_files(self) -> list[Path]:
        """The session files the backups put there (not the store's own bookkeeping)."""
        return sorted(p for p in (self.path / "Tierkeeper").rglob("*.zst") if p.is_file())


async def add_folder_target(ws: Path, disk: Path, name: str = "usb") -> Disk:
    svc = await Service.start(ws)
    try:
        await svc.add_folder_target(name, str(disk))
    finally:
        await svc.stop()
    return Disk(disk)


async def fast_client(ws: Path) -> Client:
    """A client whose target failures park jobs at once, and which never retries by
    itself (a test decides when the disk is back and presses Retry now)."""
    return InProcessClient(await Service.start(ws, retry=FAST, probe_delay=3600))


async def back_up(client: Client, session_ids: list[str], target: str = "usb") -> None:
    job = await client.start_backup(session_ids, target)
    final = await client.wait_job(job.id)
    assert final.state == JobState.DONE, final


def write_s3_target(ws: Path, name: str, bucket: str, *, first: bool = True) -> None:
    """An archive (S3) target in the config as `target add s3` saves it after its bucket
    checks; the window only reads it, so no S3 server is needed to show it."""
    workspace = Workspace.at(ws)
    config = workspace.config()
    target = TargetConfig(name=name, kind="s3", bucket=bucket)
    config.targets = [target, *config.targets] if first else [*config.targets, target]
    config.save(workspace.config_path)
