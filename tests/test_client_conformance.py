"""One suite, both transports: what a caller of `core.client` sees must not depend on
whether the service runs in its process or behind the daemon's socket.

The HTTP transport runs against a real daemon (aiohttp on a Unix socket in tmp_path)
started in this process; the in-process one against a plain `Service`. Setup that the
client has no method for (adding a folder target) goes straight to the service.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.client import Client, HttpClient, InProcessClient, connect_daemon
from core.daemon.server import Daemon
from core.errors import BadInputError, NotFoundError, TierkeeperError
from core.models import JobInfo, JobState, SearchQuery
from core.service import Service
from core.tier2.targets import RetryPolicy
from tests.support import CLAUDE_FIXTURES

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
