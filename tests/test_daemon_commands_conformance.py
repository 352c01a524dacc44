"""The client calls the remaining CLI commands needed, on both transports.

Same fixture as tests/test_client_conformance.py (a plain `Service`, and a real daemon
on a Unix socket in tmp_path): stats, export, phases, archive and its restore, unlocking
an encrypted target, signing a Drive target in again, and the cap on a job wait.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

import pytest
from pydantic import SecretStr

from core.client import HttpClient, connect_daemon
from core.daemon import app as daemon_app
from core.daemon.server import Daemon
from core.errors import BadInputError, NotFoundError
from core.local import lifecycle
from core.models import JobState
from core.setup.models import FolderTargetSpec
from tests import test_client_conformance as conformance
from tests.daemon_harness import BASE, unix_session
from tests.drive_server.fixture import DriveHarness, drive_fixture
from tests.test_client_conformance import SOURCE, Setup, browse, drive_spec, imported, same_error

drive = drive_fixture()
t = conformance.t
keyring_file = conformance.keyring_file


async def test_stats_give_the_services_rows_and_refuse_an_unknown_grouping(t: Setup) -> None:
    await imported(t)
    for by in ("model", "tool", "day"):
        rows = await t.client.stats(by)
        assert rows == await t.svc.stats(by)
    assert await t.client.stats("model")  # the fixture has priced messages
    await same_error(t.svc.stats("colour"), t.client.stats("colour"))


async def test_export_writes_the_original_bytes_where_asked(t: Setup) -> None:
    await imported(t)
    out = t.tmp / "out"
    out.mkdir()
    (copy,) = await t.client.export("edge_cases", str(out / "one.jsonl"))
    assert copy.written_to == str(out / "one.jsonl") and copy.matches_source
    assert Path(copy.written_to).read_bytes() == SOURCE.read_bytes()
    assert copy.size == SOURCE.stat().st_size and len(copy.sha256) == 64
    (again,) = await t.client.export("edge_cases", str(out), file=SOURCE.name)
    assert again.written_to == str(out / SOURCE.name)
    svc, c = t.svc, t.client
    await same_error(svc.export("no-such", out), c.export("no-such", str(out)))
    await same_error(svc.export("edge_cases", out, "nope"), c.export("edge_cases", str(out),
                                                                     file="nope"))  # fmt: skip
    err = await same_error(svc.export("edge_cases", Path("a\0b")), c.export("edge_cases", "a\0b"))
    assert isinstance(err, BadInputError)
    blocked = t.tmp / "a-file"
    blocked.write_text("x")  # a file where the folder should be
    await same_error(svc.export("edge_cases", blocked / "x" / "y"),
                     c.export("edge_cases", str(blocked / "x" / "y")))  # fmt: skip


async def test_a_new_phase_becomes_current_and_names_are_checked(t: Setup) -> None:
    started = await t.client.phase_new("m1")
    assert started.name == "m1" and started.started_at
    (listed,) = await t.client.phases()
    assert (listed.name, listed.status, listed.current) == ("m1", "open", True)
    assert (await t.client.status()).current_phase == "m1"
    await imported(t)
    assert [s.phase for s in await t.client.list_sessions()] == ["m1"]
    svc, c = t.svc, t.client
    await same_error(svc.phase_new("m1"), c.phase_new("m1"))
    await same_error(svc.phase_new("../x"), c.phase_new("../x"))


async def test_a_closed_phase_is_archived_and_comes_back(t: Setup) -> None:
    c, svc = t.client, t.svc
    await c.phase_new("p1")
    await imported(t)
    await svc.add_folder_target("usb", str(t.tmp / "disk"))
    await svc.add_folder_target("cold", str(t.tmp / "cold"))
    job = await c.start_backup([], "usb")
    assert (await asyncio.wait_for(c.wait_job(job.id), 20)).state == JobState.DONE
    await same_error(svc.start_archive("p1", target="cold", source="usb"),
                     c.start_archive("p1", target="cold", source="usb"))  # still open  # fmt: skip
    await lifecycle.phase_close(svc.db, svc.workspace, "p1")

    plan = await c.archive_plan("p1", target="cold", source="usb")
    assert (plan.phase, plan.target, plan.source, plan.sessions) == ("p1", "cold", "usb", 1)
    assert plan.tier2_bytes > 0 and plan.estimate is None and plan.overwrite is None
    await same_error(svc.archive_plan("p1"), c.archive_plan("p1"))  # no S3 target to guess
    await same_error(svc.archive_plan("p1", target="nowhere", source="usb"),
                     c.archive_plan("p1", target="nowhere", source="usb"))  # fmt: skip
    job = await c.start_archive("p1", target="cold", source="usb")
    done = await asyncio.wait_for(c.wait_job(job.id), 20)
    assert done.state == JobState.DONE and done.result is not None
    assert done.result["sessions"] == 1 and (t.tmp / "cold" / "p1.tar.zst").exists()

    assert await c.archive_restore_estimate("p1", target="cold") is None  # a folder: free
    assert await c.archive_restore_estimate("p1") is None
    back = t.tmp / "back"
    job = await c.start_archive_restore("p1", str(back), target="cold", reimport=False)
    done = await asyncio.wait_for(c.wait_job(job.id), 20)
    assert done.state == JobState.DONE and done.result is not None
    assert done.result["written"] >= 1 and done.result["import"] is None
    (got,) = [p for p in back.rglob(SOURCE.name)]
    assert got.read_bytes() == SOURCE.read_bytes()
    for args, more in [
        (("nope", str(back)), {}),
        (("p1", str(back)), {"tier": "Instant"}),
        (("p1", str(back)), {"days": 0}),
        (("p1", str(back)), {"sessions": ["not-in-it"], "target": "cold"}),
    ]:
        await same_error(svc.start_archive_restore(*args, **more),  # type: ignore[arg-type]
                         c.start_archive_restore(*args, **more))  # type: ignore[arg-type]  # fmt: skip


async def test_unlocking_an_encrypted_target_continues_what_waited_for_its_key(
    t: Setup, keyring_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    c, svc = t.client, t.svc
    passphrase = "a long enough passphrase"
    await imported(t)
    spec = FolderTargetSpec(name="usb", path=str(t.tmp / "disk"), passphrase=SecretStr(passphrase))
    await c.add_target(spec)
    shutil.rmtree(keyring_file)  # a new computer: the key is not in this keyring
    job = await c.start_backup([], "usb")
    parked = await asyncio.wait_for(c.wait_job(job.id), 20)
    assert parked.state == JobState.WAITING and parked.needs_user

    wrong = SecretStr("not the passphrase")
    err = await same_error(svc.unlock_target("usb", wrong.get_secret_value()),
                           c.unlock_target("usb", wrong))  # fmt: skip
    assert "does not open" in err.message
    await c.unlock_target("usb", SecretStr(passphrase))
    done = await asyncio.wait_for(c.wait_job(job.id), 20)
    assert done.state == JobState.DONE
    await c.add_target(FolderTargetSpec(name="plain", path=str(t.tmp / "plain")))
    await same_error(svc.unlock_target("plain", "whatever it is"),
                     c.unlock_target("plain", SecretStr("whatever it is")))  # fmt: skip
    await same_error(svc.unlock_target("nowhere", "x"), c.unlock_target("nowhere", SecretStr("x")))
    assert passphrase not in caplog.text and "not the passphrase" not in caplog.text


async def test_a_drive_target_signs_in_again_and_its_waiting_job_continues(
    t: Setup, keyring_file: Path, drive: DriveHarness
) -> None:
    c, svc = t.client, t.svc
    started = await c.start_drive_sign_in(drive_spec(drive))
    await asyncio.to_thread(browse, started.url)
    await asyncio.wait_for(c.finish_drive_sign_in(started.flow_id), 30)
    await imported(t)
    drive.server.tokens.revoke_all()  # the user removed the app's access
    job = await c.start_backup([], "gdrive")
    parked = await asyncio.wait_for(c.wait_job(job.id), 30)
    assert parked.state == JobState.WAITING and parked.needs_user

    again = await c.start_drive_reconnect("gdrive")
    assert again.target == "gdrive" and again.url.startswith(drive.server.auth_uri)
    await same_error(svc.start_drive_reconnect("gdrive"), c.start_drive_reconnect("gdrive"))
    assert "signed in" in (await asyncio.to_thread(browse, again.url)).lower()
    signed = await asyncio.wait_for(c.finish_drive_sign_in(again.flow_id), 30)
    assert signed.account == "test.user@example.com" and signed.target.name == "gdrive"
    assert (await asyncio.wait_for(c.wait_job(job.id), 30)).state == JobState.DONE
    assert [t.name for t in (await c.config()).targets] == ["gdrive"]

    await svc.add_folder_target("usb", str(t.tmp / "disk"))
    err = await same_error(svc.start_drive_reconnect("usb"), c.start_drive_reconnect("usb"))
    assert "nothing to sign in to" in err.message
    err = await same_error(svc.start_drive_reconnect("nope"), c.start_drive_reconnect("nope"))
    assert isinstance(err, NotFoundError) or "nope" in err.message
    cancel = await c.start_drive_reconnect("gdrive")
    assert await c.cancel_drive_sign_in(cancel.flow_id) is True
    assert [t.name for t in (await c.config()).targets] == ["gdrive", "usb"]  # kept


async def test_a_job_wait_answers_within_the_cap_and_the_client_asks_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job runner is off: the import stays queued, so only the cap ends a wait."""
    sock = tmp_path / "d.sock"
    daemon = await Daemon.start(tmp_path / "ws", socket=sock, run_jobs=False, schedule=False)
    http = await connect_daemon(socket=sock)
    assert isinstance(http, HttpClient)
    try:
        job = await http.start_import([str(SOURCE)])
        raw = unix_session(sock)
        try:
            url = f"{BASE}/v1/jobs/{job.id}/wait"
            answer = await asyncio.to_thread(raw.get, url, params={"timeout": "0.05"}, timeout=30)
            assert answer.status_code == 200 and answer.json()["state"] == "queued"
            for bad in ("0", "-1", "61", "soon"):
                refused = await asyncio.to_thread(raw.get, url, params={"timeout": bad},
                                                  timeout=30)  # fmt: skip
                assert refused.status_code == 400
                assert "timeout" in refused.json()["error"]["message"]
            monkeypatch.setattr(daemon_app, "WAIT_CAP", 0.05)  # no timeout given: the cap
            answer = await asyncio.to_thread(raw.get, url, params={"timeout": "30"}, timeout=30)
            assert answer.status_code == 200 and answer.json()["state"] == "queued"
            answer = await asyncio.to_thread(raw.get, url, timeout=30)
            assert answer.status_code == 200 and answer.json()["state"] == "queued"
        finally:
            raw.close()
        waiting = asyncio.ensure_future(http.wait_job(job.id))
        await asyncio.sleep(0.3)  # several capped answers: the client keeps asking
        assert not waiting.done()
        await http.cancel_job(job.id)
        assert (await asyncio.wait_for(waiting, 10)).state == JobState.CANCELLED
    finally:
        await http.close()
        await daemon.stop()
