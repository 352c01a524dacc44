"""One suite, both transports: what a caller of `core.client` sees must not depend on
whether the service runs in its process or behind the daemon's socket.

The HTTP transport runs against a real daemon (aiohttp on a Unix socket in tmp_path)
started in this process; the in-process one against a plain `Service`. Set-up runs on
real parts too: a keyring file backend the test chose, SeaweedFS for S3, the Drive test
server's consent page (`/auth`) for the browser's side of a sign-in.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from core.client import Client, HttpClient, InProcessClient, connect_daemon
from core.config import Config
from core.daemon.server import Daemon
from core.errors import BadInputError, NotFoundError, TierkeeperError
from core.models import Event, JobInfo, JobState, SearchQuery
from core.remote.oauth_loopback import SignInCancelled
from core.secrets import Secrets
from core.service import Service
from core.setup.models import (
    ConfigPatch,
    CostParams,
    DriveTargetSpec,
    FolderTargetSpec,
    RetentionPatch,
    S3TargetSpec,
    SchedulePatch,
)
from core.tier2.targets import RetryPolicy
from tests.drive_server.fixture import DriveHarness, drive_fixture
from tests.s3_server.fixtures import SeaweedHarness, seaweed  # noqa: F401
from tests.support import CLAUDE_FIXTURES

drive = drive_fixture()
SOURCE = CLAUDE_FIXTURES / "claude-code-log-cases" / "edge_cases.jsonl"
FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)


@dataclass
class Setup:
    client: Client
    svc: Service
    tmp: Path


@pytest.fixture(params=["in-process", "http"])
async def t(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Setup]:
    ws = tmp_path / "ws"
    if request.param == "in-process":
        svc = await Service.start(ws, retry=FAST, probe_delay=3600)
        client: Client = InProcessClient(svc)
        try:
            yield Setup(client, svc, tmp_path)
        finally:
            await client.close()
        return
    sock = tmp_path / "d.sock"
    daemon = await Daemon.start(ws, socket=sock, retry=FAST, probe_delay=3600)
    try:
        http = await connect_daemon(socket=sock)
        assert isinstance(http, HttpClient)
        try:
            yield Setup(http, daemon.service, tmp_path)
        finally:
            await http.close()
    finally:
        await daemon.stop()


async def imported(t: Setup) -> JobInfo:
    job = await t.client.start_import([str(SOURCE)])
    done = await asyncio.wait_for(t.client.wait_job(job.id), 10)
    assert done.state == JobState.DONE, done.error
    return done


async def test_status_names_the_workspace_and_counts(t: Setup) -> None:
    before = await t.client.status()
    assert before.workspace == str(t.svc.workspace.root) and before.sessions == 0
    await imported(t)
    after = await t.client.status()
    assert after.sessions == 1 and after.messages > 0 and after.last_import is not None


async def test_sessions_list_and_detail_after_an_import_job(t: Setup) -> None:
    done = await imported(t)
    assert done.result is not None and done.result["files_imported"] == 1
    (summary,) = await t.client.list_sessions()
    assert summary.id == "edge_cases" and summary.raw_bytes == SOURCE.stat().st_size
    assert await t.client.list_sessions(phase="no-such-phase") == []
    detail = await t.client.session("edge_cases")
    assert detail.session == summary
    assert [s.path for s in detail.sources] == [str(SOURCE.resolve())]  # stored resolved
    assert len(detail.messages) == summary.message_count > 0
    assert (await t.client.session("edge_cases", messages=False)).messages == []


async def test_search_finds_messages_with_marked_matches(t: Setup) -> None:
    await imported(t)
    hits = await t.client.search(SearchQuery(text="markdown", limit=5))
    assert hits and all(h.session_id == "edge_cases" for h in hits)
    assert "\x02" in hits[0].snippet and "\x03" in hits[0].snippet
    assert await t.client.search(SearchQuery(text="zebra-quantum-nothing")) == []


async def test_jobs_list_wait_cancel_and_retry_with_a_target_away(t: Setup) -> None:
    await imported(t)
    disk = t.tmp / "disk"
    await t.svc.add_folder_target("usb", str(disk))
    disk.rename(t.tmp / "unplugged")  # the disk goes away: backups park, in order

    first = await t.client.start_backup(["edge_cases"], "usb")
    parked = await asyncio.wait_for(t.client.wait_job(first.id), 10)
    assert parked.state == JobState.WAITING and parked.wait_reason
    second = await t.client.start_backup([], "usb")
    active = {j.id: j.state for j in await t.client.jobs(active_only=True)}
    assert active == {first.id: JobState.WAITING, second.id: JobState.QUEUED}
    listed = [j.id for j in await t.client.jobs()]
    assert listed[:2] == [second.id, first.id]  # newest first, the import after them

    cancelled = await t.client.cancel_job(second.id)
    assert cancelled.state == JobState.CANCELLED
    assert (await t.client.wait_job(second.id)).state == JobState.CANCELLED
    assert await t.client.retry_waiting() == 1  # the parked one tries again, parks again
    again = await asyncio.wait_for(t.client.wait_job(first.id), 10)
    assert again.state == JobState.WAITING
    assert (await t.client.cancel_job(first.id)).state == JobState.CANCELLED
    assert await t.client.jobs(active_only=True) == []


async def test_jobs_pause_and_resume_keep_their_place_and_finish(t: Setup) -> None:
    await imported(t)
    disk = t.tmp / "disk"
    await t.svc.add_folder_target("usb", str(disk))
    disk.rename(t.tmp / "unplugged")
    first = await t.client.start_backup(["edge_cases"], "usb")
    assert (await asyncio.wait_for(t.client.wait_job(first.id), 10)).state == JobState.WAITING
    second = await t.client.start_backup([], "usb")

    assert (await t.client.pause_job(second.id)).state == JobState.PAUSED  # a queued one
    paused = await t.client.pause_job(first.id)  # a waiting one: no longer retried
    assert paused.state == JobState.PAUSED and paused.wait_reason is None
    assert (await t.client.wait_job(first.id)).state == JobState.PAUSED
    active = {j.id: j.state for j in await t.client.jobs(active_only=True)}
    assert active == {first.id: JobState.PAUSED, second.id: JobState.PAUSED}
    (t.tmp / "unplugged").rename(disk)
    assert await t.client.retry_waiting() == 0

    assert (await t.client.resume_job(first.id)).state != JobState.PAUSED
    assert (await asyncio.wait_for(t.client.wait_job(first.id), 20)).state == JobState.DONE
    assert (await t.client.wait_job(second.id)).state == JobState.PAUSED  # still, until asked
    await t.client.resume_job(second.id)
    done = await asyncio.wait_for(t.client.wait_job(second.id), 20)
    assert done.state == JobState.DONE and done.result is not None
    assert done.result["unchanged"] == 1  # the first one's work stands
    assert (await t.client.pause_job(second.id)).state == JobState.DONE  # ended: no change
    await same_error(t.svc.jobs.pause(999), t.client.pause_job(999))
    await same_error(t.svc.jobs.resume(999), t.client.resume_job(999))


async def test_targets_backups_restore_and_verify_on_a_folder_target(t: Setup) -> None:
    await imported(t)
    await t.svc.add_folder_target("usb", str(t.tmp / "disk"))
    (card,) = await t.client.targets()
    assert card.name == "usb" and card.kind == "folder" and card.sessions == 0

    job = await t.client.start_backup([], "usb")
    assert (await asyncio.wait_for(t.client.wait_job(job.id), 20)).state == JobState.DONE
    (card,) = await t.client.targets()
    assert card.sessions == 1 and card.stored_bytes > 0 and card.last_backup_at
    (row,) = await t.client.backups(session_id="edge_cases")
    assert row.target == "usb" and row.verify_status == "ok"
    assert await t.client.backups(target="elsewhere") == []

    job = await t.client.start_restore("edge_cases", str(t.tmp / "back"), target="usb")
    done = await asyncio.wait_for(t.client.wait_job(job.id), 20)
    assert done.state == JobState.DONE and done.result is not None
    (written,) = done.result["written"]
    assert Path(written).read_bytes() == SOURCE.read_bytes()

    job = await t.client.start_verify("usb", deep=True)
    done = await asyncio.wait_for(t.client.wait_job(job.id), 20)
    assert done.state == JobState.DONE and done.result == {"verified": 1, "failed": []}


async def test_a_restore_with_no_folder_puts_the_file_back_where_it_was(t: Setup) -> None:
    mine = t.tmp / "projects" / SOURCE.name
    mine.parent.mkdir()
    mine.write_bytes(SOURCE.read_bytes())
    job = await t.client.start_import([str(mine)])
    assert (await asyncio.wait_for(t.client.wait_job(job.id), 10)).state == JobState.DONE
    await t.svc.add_folder_target("usb", str(t.tmp / "disk"))
    job = await t.client.start_backup([], "usb")
    assert (await asyncio.wait_for(t.client.wait_job(job.id), 20)).state == JobState.DONE
    mine.unlink()

    job = await t.client.start_restore("edge_cases", None, target="usb")
    done = await asyncio.wait_for(t.client.wait_job(job.id), 20)

    assert done.state == JobState.DONE and done.result == {"written": [str(mine)]}
    assert mine.read_bytes() == SOURCE.read_bytes()


async def same_error(direct: Awaitable[object], via_client: Awaitable[object]) -> TierkeeperError:
    """The client raises what the service raises: class, message, hint, exit code."""
    with pytest.raises(TierkeeperError) as want:
        await direct
    with pytest.raises(TierkeeperError) as got:
        await via_client
    assert type(got.value) is type(want.value)
    assert (got.value.message, got.value.hint, got.value.exit_code) == (
        want.value.message, want.value.hint, want.value.exit_code,
    )  # fmt: skip
    return got.value


async def test_errors_are_the_same_exceptions_on_both_transports(t: Setup) -> None:
    c, svc = t.client, t.svc
    err = await same_error(svc.session("no-such"), c.session("no-such"))
    assert isinstance(err, NotFoundError) and err.message == "No session 'no-such'"
    for odd in ("..", "a/../b", "x?y#z", "ü %41"):  # ids are data, never URL syntax
        await same_error(svc.session(odd), c.session(odd))
    assert await c.list_sessions(phase="a&phase=b") == []
    assert await c.backups(session_id="x&target=y", target="usb?") == []
    err = await same_error(svc.start_import([]), c.start_import([]))
    assert isinstance(err, BadInputError) and not isinstance(err, NotFoundError)
    missing = str(t.tmp / "not-there")
    await same_error(svc.start_import([missing]), c.start_import([missing]))
    await same_error(svc.jobs.wait(999), c.wait_job(999))
    await same_error(svc.jobs.cancel(999), c.cancel_job(999))
    await same_error(svc.start_backup([], "nowhere"), c.start_backup([], "nowhere"))
    await same_error(svc.start_verify(None), c.start_verify())


async def test_a_jobs_events_arrive_through_subscribe(t: Setup) -> None:
    events = t.client.subscribe()
    try:
        job = await t.client.start_import([str(SOURCE)])  # right after: nothing is missed
        topics: list[str] = []
        finished: JobInfo | None = None
        while finished is None:
            event = await asyncio.wait_for(events.__anext__(), 10)
            topics.append(event.topic)
            if event.topic.startswith("job.") and event.data["id"] == job.id:
                info = JobInfo.model_validate(event.data)
                if event.topic == "job.finished":
                    finished = info
        assert topics[0] == "job.queued" and "job.progress" in topics
        assert "sessions.changed" in topics
        assert finished.state == JobState.DONE and finished.bytes_done == SOURCE.stat().st_size
    finally:
        await events.aclose()  # type: ignore[attr-defined]


async def test_metrics_show_store_and_db_work_and_their_history(t: Setup) -> None:
    from datetime import UTC, datetime, timedelta

    await imported(t)
    await t.svc.add_folder_target("usb", str(t.tmp / "disk"))
    job = await t.client.start_backup([], "usb")
    assert (await asyncio.wait_for(t.client.wait_job(job.id), 20)).state == JobState.DONE
    live = await t.client.metrics()
    ops = {(m.op, m.tier) for m in live.ops}
    assert ("put", "folder") in ops and any(tier == "local" for _, tier in ops)
    put = next(m for m in live.ops if (m.op, m.tier) == ("put", "folder"))
    assert put.count >= 2 and put.bytes > 0  # the session's file and its manifest
    t.svc.metrics.tick()
    series = await t.client.metrics_series(
        "put", "folder", datetime.now(UTC) - timedelta(minutes=5), "1s"
    )
    assert sum(p.count for p in series) >= 2


async def test_live_metrics_stream_only_to_who_asks_for_them(t: Setup) -> None:
    everything = t.client.subscribe()
    metrics = t.client.subscribe(["metrics"])
    try:
        seen = []

        async def collect() -> None:
            async for event in metrics:
                seen.append(event)
                if len(seen) >= 3:
                    return

        await asyncio.wait_for(collect(), 5)  # four a second while someone asks
        assert all(e.topic == "metrics" and "ops" in e.data for e in seen)
    finally:
        await metrics.aclose()  # type: ignore[attr-defined]
        await everything.aclose()  # type: ignore[attr-defined]
    await asyncio.sleep(0.6)
    assert not t.svc.bus.listening("metrics")  # nobody asks: the stream stops


# set-up and settings --------------------------------------------------------------------------
@pytest.fixture
def keyring_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real keyring backend, a file the test chose (as a user may, explicitly)."""
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    return tmp_path / "xdg-data"


async def drain(events: AsyncIterator[Event], svc: Service) -> list[Event]:
    """Everything published so far (a marker event closes the batch)."""
    svc.bus.publish("test.marker", {})
    seen = []
    while (event := await asyncio.wait_for(events.__anext__(), 10)).topic != "test.marker":
        seen.append(event)
    return seen


def assert_nowhere(secrets: list[str], *places: str) -> None:
    for secret in secrets:
        for place in places:
            assert secret not in place


async def test_settings_change_validated_saved_atomically_and_announced(t: Setup) -> None:
    c = t.client
    events = c.subscribe(["config.", "test."])
    try:
        before = await c.config()
        assert before.workspace == str(t.svc.workspace.root) and before.targets == []
        assert before.schedule.backup_every == "session-end" and before.sources == []
        agent = t.tmp / "agent"
        agent.mkdir()
        patch = ConfigPatch(sources=[str(agent)], schedule=SchedulePatch(
            backup_every="daily", quiet_hours="22:00-07:00"))  # fmt: skip
        after = await c.update_config(patch)
        assert after.sources == [str(agent)] and after.schedule.backup_every == "daily"
        assert after.schedule.verify_every == before.schedule.verify_every  # untouched
        assert after == await c.config()
        on_disk = Config.load(t.svc.workspace.config_path)
        assert on_disk.schedule.quiet_hours == "22:00-07:00" and on_disk.sources == [str(agent)]
        (event,) = await drain(events, t.svc)
        assert event.topic == "config.changed" and event.data["keys"] == ["sources", "schedule"]

        cleared = await c.update_config(ConfigPatch(schedule=SchedulePatch(quiet_hours=None)))
        assert cleared.schedule.quiet_hours is None and cleared.schedule.backup_every == "daily"
        assert await c.update_config(ConfigPatch(retention=RetentionPatch())) == cleared
        assert [e.data["keys"] for e in await drain(events, t.svc)] == [["schedule"]]

        text = t.svc.workspace.config_path.read_text()
        bad = [
            ConfigPatch(schedule=SchedulePatch(quiet_hours="25:00-07:00")),
            ConfigPatch(retention=RetentionPatch(local_sessions=0)),
            ConfigPatch(job_concurrency=99),
            ConfigPatch(sources=[str(t.tmp / "not-there")]),
            ConfigPatch(sources=["relative/path"]),
            ConfigPatch(schedule=SchedulePatch(skip_on_battery=None)),
        ]
        for patch in bad:
            err = await same_error(t.svc.setup.update_config(patch), c.update_config(patch))
            assert isinstance(err, BadInputError) and err.message.startswith("Bad settings")
        assert t.svc.workspace.config_path.read_text() == text  # nothing half-written
        assert await drain(events, t.svc) == []
    finally:
        await events.aclose()  # type: ignore[attr-defined]


async def test_agent_sources_on_this_machine_are_detected(
    t: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = t.tmp / "home"
    claude = home / ".claude" / "projects"
    roo = home / ".config/Code/User/globalStorage/rooveterinaryinc.roo-cline/tasks"
    for folder in (claude, roo):
        folder.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    for var in ("CLAUDE_CONFIG_DIR", "XDG_CONFIG_HOME", "APPDATA"):
        monkeypatch.delenv(var, raising=False)
    found = {(s.format, s.path): s.watched for s in await t.client.detect_sources()}
    assert found == {("claude-code", str(claude)): False, ("roo", str(roo)): False}
    await t.client.update_config(ConfigPatch(sources=[str(claude)]))
    found = {(s.format, s.path): s.watched for s in await t.client.detect_sources()}
    assert found == {("claude-code", str(claude)): True, ("roo", str(roo)): False}


async def test_a_folder_target_added_tested_kitted_and_removed_keeps_secrets_secret(
    t: Setup, keyring_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    c, passphrase = t.client, "correct horse battery staple"
    events = c.subscribe()
    try:
        trial = FolderTargetSpec(name="spare", path=str(t.tmp / "spare"))
        tried = await c.test_target(trial)  # before saving: nothing is kept
        assert tried.writable and tried.kind == "folder" and tried.round_trip_ms >= 0
        assert (t.tmp / "spare").is_dir() and (await c.config()).targets == []

        added = await c.add_target(FolderTargetSpec(name="usb", path=str(t.tmp / "disk"),
                                                    passphrase=SecretStr(passphrase)))  # fmt: skip
        assert added.target.name == "usb" and added.target.encryption is not None
        assert [x.name for x in (await c.config()).targets] == ["usb"]
        assert [x.name for x in await c.targets()] == ["usb"]
        found = await c.test_target("usb")
        assert found.writable and found.probe_bytes == 64 * 1024 and "ok" in found.report[-1]
        assert (await c.test_target()).name == "usb"  # the only one
        kit = await c.recovery_kit("usb")
        assert kit.target == "usb" and "usb" in kit.text and passphrase not in kit.text
        svc = t.svc.setup
        for direct, via in [
            (svc.add_target(FolderTargetSpec(name="usb", path=str(t.tmp / "d2"))),
             c.add_target(FolderTargetSpec(name="usb", path=str(t.tmp / "d2")))),
            (svc.add_target(FolderTargetSpec(name="bad name", path=str(t.tmp / "d3"))),
             c.add_target(FolderTargetSpec(name="bad name", path=str(t.tmp / "d3")))),
            (svc.remove_target("nowhere"), c.remove_target("nowhere")),
            (svc.recovery_kit("nowhere"), c.recovery_kit("nowhere")),
            (svc.test_target("nowhere"), c.test_target("nowhere")),
            (svc.cancel_drive_sign_in("no-flow"), c.cancel_drive_sign_in("no-flow")),
            (svc.finish_drive_sign_in("no-flow"), c.finish_drive_sign_in("no-flow")),
        ]:  # fmt: skip
            await same_error(direct, via)
        plain = FolderTargetSpec(name="plain", path=str(t.tmp / "plain"))
        await c.add_target(plain)
        await same_error(svc.recovery_kit("plain"), c.recovery_kit("plain"))
        await c.remove_target("plain")

        await c.remove_target("usb")
        assert (await c.config()).targets == [] and await c.targets() == []
        seen = await drain(events, t.svc)
        changes = [(e.data["keys"], e.data.get("target")) for e in seen
                   if e.topic == "config.changed"]  # fmt: skip
        assert changes == [(["targets"], "usb"), (["targets"], "plain"),
                           (["targets"], "plain"), (["targets"], "usb")]  # fmt: skip
    finally:
        await events.aclose()  # type: ignore[attr-defined]
    assert_nowhere([passphrase], t.svc.workspace.config_path.read_text(), caplog.text,
                   "\n".join(e.model_dump_json() for e in seen),
                   added.model_dump_json(), found.model_dump_json())  # fmt: skip


async def test_s3_is_checked_before_saving_and_its_keys_go_to_the_keyring_only(
    t: Setup,
    keyring_file: Path,
    seaweed: SeaweedHarness,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    c = t.client
    events = c.subscribe()
    spec = S3TargetSpec(name="deep", bucket=seaweed.make_bucket(), endpoint_url=seaweed.endpoint,
                        region=seaweed.region, addressing="path", storage_class="STANDARD_IA",
                        access_key=seaweed.access_key, secret_key=SecretStr(seaweed.secret_key),
                        passphrase=SecretStr("archive passphrase"))  # fmt: skip
    try:
        tried = await c.test_target(spec)
        assert tried.writable and tried.bucket is not None and tried.bucket.exists
        assert tried.bucket.writable and any("AbortIncomplete" in a for a in tried.bucket.advice)
        assert (await c.config()).targets == []

        added = await c.add_target(spec)
        assert added.target.kind == "s3" and added.target.encryption is not None
        assert added.bucket is not None and "writable: yes" in added.report
        found = await c.test_target("deep")  # with the keys from the keyring now
        assert found.writable and found.bucket is not None and found.bucket.exists
        assert found.where == added.target.where

        missing = spec.model_copy(update={"name": "gone", "bucket": "tk-no-such-bucket"})
        err = await same_error(t.svc.setup.test_target(missing), c.test_target(missing))
        assert "does not exist" in err.message
        await same_error(t.svc.setup.add_target(missing), c.add_target(missing))
        half = spec.model_copy(update={"name": "half", "secret_key": None})
        await same_error(t.svc.setup.add_target(half), c.add_target(half))
        seen = await drain(events, t.svc)
    finally:
        await events.aclose()  # type: ignore[attr-defined]
    assert_nowhere([seaweed.secret_key, "archive passphrase"],
                   t.svc.workspace.config_path.read_text(), caplog.text,
                   "\n".join(e.model_dump_json() for e in seen), added.model_dump_json(),
                   found.model_dump_json())  # fmt: skip
    assert seaweed.access_key not in t.svc.workspace.config_path.read_text()
    await c.remove_target("deep")  # forgets the keys: a new target of that name starts clean
    assert Secrets().get(f"{t.svc.scope}/deep/aws-secret-access-key") is None


def browse(url: str) -> str:
    """The user's browser: Google's page (the fake's /auth) sends it back to the loopback."""
    with urllib.request.urlopen(url, timeout=30) as page:
        return str(page.read().decode())


def drive_spec(drive: DriveHarness, name: str = "gdrive", **more: object) -> DriveTargetSpec:
    s = drive.server
    return DriveTargetSpec.model_validate(
        {"name": name, "client_id": s.client_id, "client_secret": s.client_secret,
         "auth_uri": s.auth_uri, "token_uri": s.token_uri, "api_root": s.base_url, **more}
    )  # fmt: skip


async def test_drive_sign_in_through_the_client_shows_account_and_quota(
    t: Setup, keyring_file: Path, drive: DriveHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    c = t.client
    events = c.subscribe()
    try:
        started = await c.start_drive_sign_in(drive_spec(drive, passphrase="drive passphrase"))
        assert started.target == "gdrive" and started.url.startswith(drive.server.auth_uri)
        with pytest.raises(TimeoutError):  # the user is slow: giving up waiting...
            await asyncio.wait_for(c.finish_drive_sign_in(started.flow_id), 0.3)
        assert "signed in" in (await asyncio.to_thread(browse, started.url)).lower()
        done = await asyncio.wait_for(c.finish_drive_sign_in(started.flow_id), 30)  # ...is fine
        assert done.account == "test.user@example.com" and done.target.account == done.account
        assert done.quota_limit == 15 * 1024**3 and done.quota_used >= 0
        assert done.target.encryption is not None
        (saved,) = (await c.config()).targets
        assert saved.name == "gdrive" and saved.kind == "drive"
        found = await c.test_target("gdrive")
        assert found.writable and found.account == done.account and found.quota_limit
        refresh = Secrets().get(f"{t.svc.scope}/gdrive/refresh-token")
        assert refresh
        await same_error(
            t.svc.setup.finish_drive_sign_in(started.flow_id),
            c.finish_drive_sign_in(started.flow_id),
        )  # collected: gone
        taken = drive_spec(drive)
        await same_error(t.svc.setup.start_drive_sign_in(taken), c.start_drive_sign_in(taken))
        await same_error(t.svc.setup.add_target(taken), c.add_target(taken))  # type: ignore[arg-type]
        seen = await drain(events, t.svc)
    finally:
        await events.aclose()  # type: ignore[attr-defined]
    assert_nowhere([drive.server.client_secret, refresh, "drive passphrase"],
                   t.svc.workspace.config_path.read_text(), caplog.text,
                   "\n".join(e.model_dump_json() for e in seen), done.model_dump_json(),
                   started.model_dump_json())  # fmt: skip


async def test_a_drive_sign_in_can_be_refused_or_cancelled_and_leaves_nothing(
    t: Setup, keyring_file: Path, drive: DriveHarness
) -> None:
    c = t.client
    drive.server.tokens.deny_next_authorization()  # the user clicks "Cancel" at Google
    started = await c.start_drive_sign_in(drive_spec(drive))
    page = await asyncio.to_thread(browse, started.url)
    assert "cancelled" in page.lower()
    with pytest.raises(SignInCancelled):
        await asyncio.wait_for(c.finish_drive_sign_in(started.flow_id), 30)

    started = await c.start_drive_sign_in(drive_spec(drive))  # the name is free again
    waiting = asyncio.ensure_future(c.finish_drive_sign_in(started.flow_id))
    await asyncio.sleep(0.1)
    assert await c.cancel_drive_sign_in(started.flow_id) is True  # the dialog was closed
    with pytest.raises(SignInCancelled):
        await asyncio.wait_for(waiting, 10)
    with pytest.raises(urllib.error.URLError):  # its loopback listener is gone
        await asyncio.to_thread(browse, started.url)
    assert (await c.config()).targets == []
    assert Secrets().get(f"{t.svc.scope}/gdrive/client-secret") is None


async def test_cost_preview_prices_tier3_before_anything_is_stored(t: Setup) -> None:
    c = t.client
    (deep,) = await c.cost_preview(100 * 1024**3, "DEEP_ARCHIVE")
    assert deep.monthly_usd == pytest.approx(0.099) and deep.min_days == 180
    assert deep.minimum_charge_usd == pytest.approx(0.099 * 6)
    assert deep.retrieval_tier == "Bulk" and deep.retrieval_usd == pytest.approx(0.25, abs=0.01)
    assert "a month in DEEP_ARCHIVE" in deep.summary
    every = {p.storage_class: p for p in await c.cost_preview(100 * 1024**3, tier="Standard")}
    assert {"STANDARD", "GLACIER", "DEEP_ARCHIVE"} <= set(every)
    assert every["STANDARD"].retrieval_usd is None and every["STANDARD"].min_days == 0
    assert every["DEEP_ARCHIVE"].retrieval_usd == pytest.approx(2.0, abs=0.01)
    for args in [(1, "NO_SUCH_CLASS"), (-1, None), (1, None, "Instant")]:
        params = CostParams.model_validate(dict(zip(["size_bytes", "storage_class", "tier"],
                                                    args, strict=False)))  # fmt: skip
        await same_error(t.svc.setup.cost_preview(params), c.cost_preview(*args))  # type: ignore[arg-type]


async def test_a_session_starts_and_ends_with_its_note_import_and_backup(t: Setup) -> None:
    """What the Claude Code hook's `session end` does, on either transport."""
    await t.svc.add_folder_target("usb", str(t.tmp / "disk"))
    sid = (await t.client.start_session("claude-code")).session
    ended = await t.client.end_session(sid, summary="Did the thing", open_items=["write docs"])
    assert ended.session == sid
    note = Path(ended.handoff).read_text()
    assert "Did the thing" in note and "- [ ] write docs" in note
    assert ended.imported.files_failed == 0 and ended.imported.files_seen >= 1
    assert sid in [s.id for s in await t.client.list_sessions()]
    assert ended.backup is not None and ended.backup.resource == "target:usb"
    done = await asyncio.wait_for(t.client.wait_job(ended.backup.id), 20)
    assert done.state == JobState.DONE
    (row,) = await t.client.backups(session_id=sid)
    assert row.verify_status == "ok"

    with pytest.raises(NotFoundError):
        await t.client.end_session("no-such-session")


# disaster recovery: a new machine, the backups on a folder --------------------------------------
async def old_machine(tmp: Path, disk: Path, passphrase: str | None = None) -> None:
    """Another workspace backs the fixture session up to `disk`, then is gone."""
    svc = await Service.start(tmp / "old-ws", retry=FAST)
    try:
        await svc.add_folder_target("usb", str(disk), passphrase=passphrase)
        await svc.import_now([str(SOURCE)])
        info = await svc.jobs.wait((await svc.start_backup([], "usb")).id)
        assert info.state == JobState.DONE, info.error
    finally:
        await svc.stop()


async def test_a_rebuild_from_a_folder_lists_sessions_then_restores_them(t: Setup) -> None:
    disk = t.tmp / "disk"
    await old_machine(t.tmp, disk)
    c = t.client
    await c.add_target(FolderTargetSpec(name="usb", path=str(disk)))
    held = await c.backup_contents("usb")
    assert (held.sessions, held.known_here, held.encrypted, held.index) == (1, 0, False, "ok")
    assert [p.sessions for p in held.phases] == [1]
    assert await c.backup_contents() == held  # the only target
    await same_error(t.svc.backup_contents("nope"), c.backup_contents("nope"))

    job = await c.start_recover(["usb"])
    assert job.kind == "recover" and job.resource == "target:usb"
    done = await asyncio.wait_for(c.wait_job(job.id), 20)
    assert done.state == JobState.DONE, done.error
    assert done.result is not None and done.result["sessions_added"] == 1
    assert done.steps_done == done.steps_total == 1
    (summary,) = await c.list_sessions()
    assert summary.id == "edge_cases" and summary.in_backup_only
    assert (await c.session("edge_cases", messages=False)).session.in_backup_only
    assert (await c.backup_contents("usb")).known_here == 1
    assert await c.search(SearchQuery(text="markdown")) == []  # no messages until restored

    again = await asyncio.wait_for(c.wait_job((await c.start_recover(restore=True)).id), 20)
    assert again.state == JobState.DONE, again.error
    assert again.result is not None and again.result["restore"]["restored"] == ["edge_cases"]
    (summary,) = await c.list_sessions()
    assert not summary.in_backup_only
    assert await c.search(SearchQuery(text="markdown"))


async def test_an_encrypted_backup_needs_its_passphrase_before_the_job(
    t: Setup, keyring_file: Path
) -> None:
    disk = t.tmp / "disk"
    await old_machine(t.tmp, disk, passphrase="correct horse battery staple")
    c = t.client
    await c.add_target(FolderTargetSpec(name="usb", path=str(disk)))
    held = await c.backup_contents("usb")
    assert held.encrypted and not held.unlocked and held.sessions == 1
    await same_error(t.svc.start_recover(["usb"]), c.start_recover(["usb"]))
    wrong = SecretStr("not the passphrase at all")
    await same_error(t.svc.start_recover(["usb"], secret=wrong.get_secret_value()),
                     c.start_recover(["usb"], secret=wrong))  # fmt: skip
    assert await c.jobs() == []  # nothing was started

    job = await c.start_recover(["usb"], secret=SecretStr("correct horse battery staple"))
    done = await asyncio.wait_for(c.wait_job(job.id), 20)
    assert done.state == JobState.DONE, done.error
    (params,) = await t.svc.db.fetchall("SELECT params FROM jobs")
    assert "correct horse" not in params[0]  # the job was given none
    assert (await c.backup_contents("usb")).unlocked
    assert [s.in_backup_only for s in await c.list_sessions()] == [True]


async def test_a_rebuild_needs_a_target(t: Setup) -> None:
    await same_error(t.svc.start_recover(), t.client.start_recover())


async def test_catalog_drift_is_reported_and_repair_mends_only_the_local_side(t: Setup) -> None:
    c = t.client
    await imported(t)
    disk = t.tmp / "disk"
    await t.svc.add_folder_target("usb", str(disk))
    done = await asyncio.wait_for(c.wait_job((await c.start_backup([], "usb")).id), 20)
    assert done.state == JobState.DONE, done.error
    (clean,) = await c.catalog_drift("usb")
    assert clean.target == "usb" and clean.clean and clean.missing_remotely == []
    await same_error(t.svc.catalog_drift("nope"), c.catalog_drift("nope"))

    (held,) = [p for p in disk.rglob("session_edge_cases") if p.is_dir()]
    for f in held.iterdir():  # the disk lost the session's backup
        f.unlink()
    remote = sorted(p for p in disk.rglob("*") if p.is_file())
    (drift,) = await c.catalog_drift()
    assert not drift.clean and drift.missing_remotely[0].startswith("session edge_cases")
    repaired = await c.catalog_repair("usb")
    assert repaired.marked_missing == 1 and repaired.added == 0
    assert all(d.clean for d in await c.catalog_drift())
    assert sorted(p for p in disk.rglob("*") if p.is_file()) == remote  # nothing written there
