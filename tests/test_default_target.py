"""Which target a command means when none is named.

The usual set-up is one backup target (a folder or Drive) and one archive target
(S3). Every `backup`, `verify` and `restore` used to refuse with "Several targets
exist" there. Real parts: a folder target, SeaweedFS for the archive target.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import BadInputError
from core.models import JobState
from core.service import Service
from tests.s3_server.fixtures import SeaweedHarness, seaweed  # noqa: F401
from tests.support import CLAUDE_FIXTURES

FILES = [CLAUDE_FIXTURES / "claude-code-log-cases" / n
         for n in ("edit_tool.jsonl", "dedup_main.jsonl")]  # fmt: skip


@pytest.fixture
def keyring_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


async def test_a_backup_target_beside_an_archive_target_is_the_default(
    seaweed: SeaweedHarness,  # noqa: F811
    tmp_path: Path,
    keyring_file: None,
) -> None:
    async with await Service.start(tmp_path / "ws", schedule=False) as svc:
        await svc.import_now([str(p) for p in FILES])
        await svc.add_folder_target("usb", str(tmp_path / "usb"))
        await svc.add_s3_target(
            "deep", bucket=seaweed.make_bucket(), endpoint_url=seaweed.endpoint,
            region=seaweed.region, addressing="path", storage_class="STANDARD",
            access_key=seaweed.access_key, secret_key=seaweed.secret_key,
        )  # fmt: skip
        job = await svc.jobs.wait((await svc.start_backup([], None)).id)
        assert job.state == JobState.DONE and job.title.endswith("to usb")
        assert all(r.ok for r in await svc.verify(None))
        (back,) = await svc.restore("edit_tool", tmp_path / "back")
        assert back.read_bytes() == FILES[0].read_bytes()

        # a second backup target: a backup must be told which, a restore finds its own
        await svc.add_folder_target("nas", str(tmp_path / "nas"))
        with pytest.raises(BadInputError, match=r"Several backup targets exist \(usb, nas\)"):
            await svc.start_backup([], None)
        done = await svc.jobs.wait((await svc.start_backup(["dedup_main"], "nas")).id)
        assert done.state == JobState.DONE
        (back,) = await svc.restore("dedup_main", tmp_path / "back2")  # on both
        assert back.read_bytes() == FILES[1].read_bytes()
        newest = await svc.start_restore("dedup_main", str(tmp_path / "back4"))
        assert newest.resource == "target:nas"  # the newer backup of the two
        assert (await svc.jobs.wait(newest.id)).state == JobState.DONE
        job = await svc.start_restore("edit_tool", str(tmp_path / "back3"))  # only on usb
        assert job.resource == "target:usb"
        assert (await svc.jobs.wait(job.id)).state == JobState.DONE
