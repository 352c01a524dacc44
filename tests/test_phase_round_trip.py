"""A phase's whole journey: local → Google Drive → S3 Deep Archive → thaw → back, re-imported.

Real parts all the way: the Drive v3 test server driven by the real client for
Tier 2, moto's S3 (Deep Archive semantics: a GET needs a thaw) for Tier 3,
the real job runner and its offline queue in between.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from core.config import TargetConfig
from core.local import lifecycle
from core.models import JobState
from core.service import Service
from core.tier2.drive_target import keep_tokens
from core.tier2.targets import RetryPolicy
from tests.drive_server.fixture import DriveHarness, drive_fixture
from tests.s3_server.fixtures import moto_s3  # noqa: F401
from tests.s3_server.moto import MotoS3Server
from tests.support import CLAUDE_FIXTURES

drive = drive_fixture()
SOURCES = sorted((CLAUDE_FIXTURES / "claude-code-log-cases").glob("dag_*.jsonl"))


@pytest.fixture
def keyring_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


async def settle(svc: Service, job_id: int, state: JobState, timeout: float = 30) -> None:
    async def poll() -> None:
        while (await svc.jobs.get(job_id)).state != state:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


async def test_local_to_drive_to_deep_archive_and_back(
    drive: DriveHarness,
    moto_s3: MotoS3Server,  # noqa: F811
    tmp_path: Path,
    keyring_file: None,
) -> None:
    svc = await Service.start(tmp_path / "ws", retry=RetryPolicy(attempts=2, base_delay=0.01),
                              probe_delay=0.05)  # fmt: skip
    try:
        await lifecycle.phase_new(svc.db, svc.workspace, "p1")
        await svc.import_now([str(p) for p in SOURCES])
        gd = TargetConfig(name="gd", kind="drive", client_id=drive.server.client_id,
                          token_uri=drive.server.token_uri, api_root=drive.base_url)  # fmt: skip
        keep_tokens(gd, svc.scope, drive.credentials().refresh_token, drive.server.client_secret)
        svc.config.targets.append(gd)
        job = await svc.start_backup([], "gd")
        assert (await svc.jobs.wait(job.id)).state == JobState.DONE
        await lifecycle.phase_close(svc.db, svc.workspace, "p1")

        bucket = moto_s3.make_bucket()
        os.environ.pop("AWS_PROFILE", None)
        await svc.add_s3_target(
            "deep", bucket=bucket, endpoint_url=moto_s3.endpoint, region=moto_s3.region,
            addressing="path", access_key=moto_s3.access_key, secret_key=moto_s3.secret_key,
        )  # fmt: skip
        job = await svc.start_archive("p1", target="deep", source="gd")
        done = await svc.jobs.wait(job.id)
        assert done.state == JobState.DONE, done.error
        head = moto_s3.client().head_object(Bucket=bucket, Key="p1.tar.zst")
        assert head["StorageClass"] == "DEEP_ARCHIVE"

        messages = await svc.db.scalar("SELECT count(*) FROM messages")
        back = tmp_path / "back"
        job = await svc.start_archive_restore("p1", str(back), target="deep", tier="Standard")
        parked = await svc.jobs.wait(job.id)
        assert parked.state == JobState.WAITING and parked.resource == "thaw:deep:p1.tar.zst"
        moto_s3.hold_restore(bucket, "p1.tar.zst")
        await asyncio.sleep(0.3)  # the queue's probe finds it still thawing
        assert (await svc.jobs.get(job.id)).state == JobState.WAITING
        moto_s3.complete_restore(bucket, "p1.tar.zst")
        await settle(svc, job.id, JobState.DONE)  # the probe requeued it by itself

        restored = {p.name: p for p in back.rglob("*.jsonl")}
        for src in SOURCES:
            digest = hashlib.sha256(src.read_bytes()).hexdigest()
            assert hashlib.sha256(restored[src.name].read_bytes()).hexdigest() == digest
        assert await svc.db.scalar("SELECT count(*) FROM messages") == messages
    finally:
        await svc.stop()
