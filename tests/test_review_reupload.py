"""A closed phase reviewed again: the review on Tier 2 is replaced, not left stale.

Real parts: the workspace's SQLite, a folder target on disk (unplugged by renaming it
away), the real job runner. `phase close --html` uploads the first review; a later
`review` (no HTML this time) must leave on the target exactly the new review, each
file as the store reports it, under the manifest that vouches for it.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from core.models import JobState
from core.packing.manifest import Manifest
from core.remote.folder import FolderStore
from core.service import Service
from tests.test_phase_close import FAST, REVIEW, finished, metadata, phase_with_a_session


def stored_names(disk: Path) -> set[str]:
    root = disk / REVIEW
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


async def the_target_holds(disk: Path, ws: Path) -> Manifest:
    """The target's review is the workspace's, file by file, and nothing else."""
    raw = io.BytesIO()
    store = FolderStore(disk, name="usb")
    await store.get(f"{REVIEW}/manifest.json", raw)
    manifest = Manifest.parse(raw.getvalue())
    local = ws / "phases" / "p1"
    assert stored_names(disk) == {e.stored_name for e in manifest.files} | {"manifest.json"}
    for entry in manifest.files:
        info = await store.stat(f"{REVIEW}/{entry.stored_name}")
        assert (info.size, info.md5) == (entry.stored_size, entry.stored_md5)
        assert hashlib.sha256((local / entry.name).read_bytes()).hexdigest() == entry.sha256
    assert {e.name for e in manifest.files} == {
        p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()
    }
    return manifest


async def test_a_review_written_again_after_the_close_replaces_the_uploaded_one(
    tmp_path: Path,
) -> None:
    disk, ws = tmp_path / "disk", tmp_path / "ws"
    async with await Service.start(ws, schedule=False, retry=FAST) as svc:
        await phase_with_a_session(svc)
        await svc.add_folder_target("usb", str(disk))
        await finished(svc, (await svc.start_phase_close("p1", html=True)).id)
        first = await the_target_holds(disk, ws)
        assert "phase_insights.html" in stored_names(disk)
        first_metadata = metadata(ws)

        result = await finished(svc, (await svc.start_review("p1")).id)  # no --html now
        upload = result["upload"]
        assert isinstance(upload, dict) and upload["target"] == "usb"
        assert metadata(ws) != first_metadata  # it names its files: no HTML now
        again = await the_target_holds(disk, ws)
        assert "phase_insights.html" not in stored_names(disk)  # gone with the local one
        assert again != first
        by_name = {e.name: e for e in again.files}
        stored = disk / REVIEW / "phase_metadata.json"
        assert stored.read_bytes() == (ws / "phases" / "p1" / "phase_metadata.json").read_bytes()
        assert (
            by_name["phase_metadata.json"].sha256
            != {e.name: e for e in first.files}["phase_metadata.json"].sha256
        )


async def test_an_open_phase_review_stays_local(tmp_path: Path) -> None:
    disk, ws = tmp_path / "disk", tmp_path / "ws"
    async with await Service.start(ws, schedule=False, retry=FAST) as svc:
        await phase_with_a_session(svc)
        await svc.add_folder_target("usb", str(disk))
        result = await finished(svc, (await svc.start_review("p1")).id)
    assert "upload" not in result
    assert not (disk / REVIEW).exists()


async def test_a_target_away_parks_the_re_review_until_it_is_back(tmp_path: Path) -> None:
    disk, ws = tmp_path / "disk", tmp_path / "ws"
    async with await Service.start(ws, schedule=False, retry=FAST) as svc:
        await phase_with_a_session(svc)
        await svc.add_folder_target("usb", str(disk))
        await finished(svc, (await svc.start_phase_close("p1")).id)
        disk.rename(tmp_path / "unplugged")
        job = await svc.start_review("p1")
        info = await svc.jobs.wait(job.id)
        assert info.state == JobState.WAITING and "usb" in (info.wait_reason or "")
        (tmp_path / "unplugged").rename(disk)
        await svc.jobs.resume_waiting()
        result = await finished(svc, job.id)
    assert isinstance(result["upload"], dict)
    assert (await the_target_holds(disk, ws)).phase == "p1"
