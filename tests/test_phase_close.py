"""`phase close` as one job: close → back up → review → upload → archive → retention.

Real parts: the workspace's SQLite, folder targets on disk (one unplugged by
renaming it away, one encrypted with a key in a file keyring), SeaweedFS as the
archive target, and a service stopped and started again mid-job.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import orjson
import pytest

from core.config import TargetConfig
from core.local import lifecycle
from core.models import JobInfo, JobState
from core.packing.crypto import decrypt_file
from core.packing.manifest import Manifest
from core.remote.folder import FolderStore
from core.service import Service
from core.tier2.encryption import target_key
from core.tier2.targets import RetryPolicy
from tests.s3_server.fixtures import SeaweedHarness, seaweed  # noqa: F401
from tests.support import CLAUDE_FIXTURES

SOURCE = CLAUDE_FIXTURES / "claude-code-log-cases" / "edge_cases.jsonl"
FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)
REVIEW = "Tierkeeper/p1/review"


async def phase_with_a_session(svc: Service, phase: str = "p1") -> None:
    await lifecycle.phase_new(svc.db, svc.workspace, phase)
    await svc.import_now([str(SOURCE)])


async def finished(svc: Service, job_id: int, timeout: float = 30) -> dict[str, object]:
    """The job's result once done; a parked job is waited out (its probe requeues it)."""

    async def settled() -> JobInfo:
        while (info := await svc.jobs.wait(job_id)).state == JobState.WAITING:
            await asyncio.sleep(0.05)
        return info

    info = await asyncio.wait_for(settled(), timeout)
    assert info.state == JobState.DONE, info.error or info.wait_reason
    assert info.result is not None
    return info.result


def metadata(ws: Path, phase: str = "p1") -> dict[str, object]:
    data: dict[str, object] = orjson.loads(
        (ws / "phases" / phase / "phase_metadata.json").read_bytes()
    )
    return data


async def test_a_target_away_parks_the_job_and_a_restart_finishes_it_without_a_second_review(
    tmp_path: Path,
) -> None:
    ws, disk = tmp_path / "ws", tmp_path / "disk"
    svc = await Service.start(ws, retry=FAST, probe_delay=3600, schedule=False)
    try:
        await phase_with_a_session(svc)
        await svc.add_folder_target("usb", str(disk))
        await finished(svc, (await svc.start_backup([], "usb")).id)
        disk.rename(tmp_path / "unplugged")
        job = await svc.start_phase_close()  # the current phase
        parked = await asyncio.wait_for(svc.jobs.wait(job.id), 30)
        assert parked.state == JobState.WAITING and "usb" in (parked.wait_reason or "")
        assert parked.resource == "target:usb"
        # closed and reviewed before the upload met the missing disk
        (row,) = await lifecycle.phase_list(svc.db, svc.workspace)
        assert row["status"] == "closed" and not row["current"]
        written = metadata(ws)
        stamp = (ws / "phases" / "p1" / "phase_insights.md").stat().st_mtime_ns
    finally:
        await svc.stop()

    (tmp_path / "unplugged").rename(disk)  # plugged in again while nothing runs
    svc = await Service.start(ws, retry=FAST, probe_delay=0.05, schedule=False)
    try:
        result = await finished(svc, job.id)  # the probe finds the disk and requeues it
    finally:
        await svc.stop()
    assert metadata(ws) == written  # the review was not written again
    assert (ws / "phases" / "p1" / "phase_insights.md").stat().st_mtime_ns == stamp
    review = result["review"]
    assert isinstance(review, dict) and review["generated_at"] == written["generated_at"]
    upload = result["upload"]
    assert isinstance(upload, dict) and upload["prefix"] == REVIEW
    stored = disk / REVIEW
    assert (stored / "phase_insights.md").read_bytes() == (
        ws / "phases" / "p1" / "phase_insights.md"
    ).read_bytes()
    assert {p.name for p in (stored / "charts").iterdir()} == {
        Path(str(f["name"])).name
        for f in written["files"]  # type: ignore[attr-defined]
        if str(f["name"]).startswith("charts/")
    }
    manifest = Manifest.parse((stored / "manifest.json").read_bytes())
    db = manifest.file("phase_analytics.db")
    assert db is not None and db.stored_name == "phase_analytics.db.zst"
    assert result["archive"] == {"status": "skipped", "reason": "no single archive (S3) target "
                                 "is set up", "hint": "tierkeeper archive p1"}  # fmt: skip


@pytest.mark.parametrize(("policy", "status"), [("ask", "awaits-confirmation"), ("never", "off")])
async def test_the_archive_waits_for_the_user_unless_the_config_says_otherwise(
    tmp_path: Path, policy: str, status: str
) -> None:
    async with await Service.start(tmp_path / "ws", schedule=False) as svc:
        await phase_with_a_session(svc)
        svc.config.phases.archive_on_close = policy  # type: ignore[assignment]
        # an archive target that must not be touched: its endpoint answers nothing
        svc.config.targets.append(TargetConfig(name="deep", kind="s3", bucket="b",
                                               endpoint_url="http://127.0.0.1:9"))  # fmt: skip
        await svc.add_folder_target("usb", str(tmp_path / "disk"))
        result = await finished(svc, (await svc.start_phase_close("p1")).id)
    archive = result["archive"]
    assert isinstance(archive, dict) and archive["status"] == status
    if policy == "ask":
        assert archive["hint"] == "tierkeeper archive p1" and archive["target"] == "deep"
    backup = result["backup"]
    assert isinstance(backup, dict) and backup["sessions"] == 1 and backup["failed"] == []


async def test_always_archives_then_retention_drops_the_sessions_but_keeps_the_review(
    tmp_path: Path,
    seaweed: SeaweedHarness,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    disk = tmp_path / "disk"
    async with await Service.start(tmp_path / "ws", schedule=False) as svc:
        await phase_with_a_session(svc)
        await lifecycle.phase_new(svc.db, svc.workspace, "p2")  # newer: the one Tier 2 keeps
        svc.config.retention.backup_phases = 1
        svc.config.phases.archive_on_close = "always"
        await svc.add_folder_target("usb", str(disk))
        await svc.add_s3_target(
            "deep", bucket=seaweed.make_bucket(), endpoint_url=seaweed.endpoint,
            region=seaweed.region, addressing="path", access_key=seaweed.access_key,
            secret_key=seaweed.secret_key, storage_class="STANDARD",
        )  # fmt: skip
        result = await finished(svc, (await svc.start_phase_close("p1")).id, timeout=60)
        archived = await svc.db.fetchone("SELECT verify_status, sessions FROM archives")
    archive = result["archive"]
    assert isinstance(archive, dict) and archive["status"] == "archived"
    assert archived is not None and tuple(archived) == ("ok", 1)
    assert result["retention"] == {"local_files_pruned": 0, "tier2_phases_removed": ["p1"]}
    assert not (disk / "Tierkeeper" / "p1" / "sessions").exists() or not any(
        (disk / "Tierkeeper" / "p1" / "sessions").rglob("*.zst")
    )
    kept = sorted(p.relative_to(disk / REVIEW).as_posix()
                  for p in (disk / REVIEW).rglob("*") if p.is_file())  # fmt: skip
    assert "phase_insights.md" in kept and "manifest.json" in kept
    assert "phase_analytics.db.zst" in kept and any(k.startswith("charts/") for k in kept)


async def test_on_an_encrypted_target_the_review_leaves_as_ciphertext(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    disk, ws = tmp_path / "disk", tmp_path / "ws"
    async with await Service.start(ws, schedule=False) as svc:
        await phase_with_a_session(svc)
        await svc.add_folder_target("usb", str(disk), passphrase="correct horse battery staple")
        result = await finished(svc, (await svc.start_phase_close("p1")).id)
        key = target_key(svc.config.target("usb"), svc.scope)
    assert key is not None
    upload = result["upload"]
    assert isinstance(upload, dict) and upload["encrypted"] is True
    stored = disk / REVIEW
    manifest = Manifest.parse((stored / "manifest.json").read_bytes())
    assert manifest.encryption == "aes-256-gcm" and manifest.key_id == key.key_id
    report = (ws / "phases" / "p1" / "phase_insights.md").read_bytes()
    sealed = stored / "phase_insights.md.enc"
    assert not (stored / "phase_insights.md").exists() and report[:40] not in sealed.read_bytes()
    decrypt_file(sealed, tmp_path / "back.md", key)
    assert (tmp_path / "back.md").read_bytes() == report
    assert (stored / "phase_analytics.db.zst.enc").is_file()
    # what the store holds is what the manifest says, file by file
    store = FolderStore(disk, name="usb")
    for entry in manifest.files:
        info = await store.stat(f"{REVIEW}/{entry.stored_name}")
        assert (info.size, info.md5) == (entry.stored_size, entry.stored_md5)
    back = io.BytesIO()
    await store.get(f"{REVIEW}/manifest.json", back)
    assert Manifest.parse(back.getvalue()) == manifest


async def test_closing_needs_a_phase_and_a_known_one(tmp_path: Path) -> None:
    from core.errors import BadInputError, NotFoundError

    async with await Service.start(tmp_path / "ws", schedule=False) as svc:
        with pytest.raises(BadInputError, match="No phase is current"):
            await svc.start_phase_close()
        with pytest.raises(NotFoundError, match="No phase 'nope'"):
            await svc.start_phase_close("nope")
        await lifecycle.phase_new(svc.db, svc.workspace, "empty")
        result = await finished(svc, (await svc.start_phase_close()).id)
    upload = result["upload"]  # no target: the review stays local, and says so
    assert isinstance(upload, dict) and upload["target"] is None and "stays local" in upload["note"]
    assert (tmp_path / "ws" / "phases" / "empty" / "phase_insights.md").is_file()


async def test_reviewing_a_closed_phase_again_with_the_target_away_says_it_waits(
    tmp_path: Path,
) -> None:
    """The review is written here; only its upload waits: that is no failure (exit 4)."""
    import subprocess
    import sys

    from core.errors import ExitCode
    from tests.support import REPO

    ws, disk = tmp_path / "ws", tmp_path / "disk"
    async with await Service.start(ws, retry=FAST, schedule=False) as svc:
        await phase_with_a_session(svc)
        await svc.add_folder_target("usb", str(disk))
        await finished(svc, (await svc.start_backup([], "usb")).id)
        await finished(svc, (await svc.start_phase_close()).id)
    disk.rename(tmp_path / "unplugged")
    report = ws / "phases" / "p1" / "phase_insights.md"
    report.unlink()
    proc = subprocess.run(
        [sys.executable, "-m", "core.cli.entry", "review", "p1", "--workspace", str(ws)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == int(ExitCode.PARTIAL), proc.stderr
    assert "waiting:" in proc.stderr and "usb" in proc.stderr
    assert "error:" not in proc.stderr
    assert report.is_file()  # written again before the upload met the missing disk
