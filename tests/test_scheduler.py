"""Backups and verifies that start by themselves: due once, never doubled, caught up after
downtime, held back in quiet hours, on battery or on a metered network.

A real service backs up to a real folder. The scheduler's clock and its two checks are
swapped for ones the test controls; the job rows it reads are real, and a run "long ago"
is a real finished job whose start was moved back in time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.config import Schedule
from core.models import JobInfo, JobState
from core.power import metered, parse_metered, read_power_source
from core.scheduler import quiet_until
from core.service import Service
from core.tier2.targets import RetryPolicy
from tests.support import CLAUDE_FIXTURES

FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)
SOURCE = CLAUDE_FIXTURES / "claude-code-log-cases" / "edge_cases.jsonl"


class Clock:
    """Real time plus an offset, or a fixed moment."""

    def __init__(self) -> None:
        self.offset = timedelta(0)
        self.fixed: datetime | None = None

    def __call__(self) -> datetime:
        return self.fixed if self.fixed is not None else datetime.now(UTC) + self.offset


class Probes:
    def __init__(self) -> None:
        self.power = "ac"
        self.metered: bool | None = False

    async def power_source(self) -> str:
        return self.power

    async def is_metered(self) -> bool | None:
        return self.metered


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[Service]:
    # The scheduler starts in the test that needs it: adding the target below announces
    # config.changed, and a running scheduler would look at once, on the real clock.
    service = await Service.start(tmp_path / "ws", retry=FAST, probe_delay=3600, schedule=False)
    try:
        job = await service.start_import([str(SOURCE)])
        assert (await service.jobs.wait(job.id)).state == JobState.DONE
        await service.add_folder_target("usb", str(tmp_path / "disk"))
        service.config.schedule = Schedule(backup_every="hourly", verify_every="off")
        yield service
    finally:
        await service.stop()


@pytest.fixture
def clock(svc: Service) -> Clock:
    c = Clock()
    svc.scheduler.now = c
    return c


@pytest.fixture
def probes(svc: Service) -> Probes:
    p = Probes()
    svc.scheduler.power_source = p.power_source
    svc.scheduler.metered = p.is_metered
    return p


async def jobs_of(svc: Service, kind: str) -> list[JobInfo]:
    return [j for j in await svc.jobs.list() if j.kind == kind]


async def backdate(svc: Service, job_id: int, ago: timedelta) -> None:
    """The job ran `ago` before now (as if the machine had been off since)."""
    when = (datetime.now(UTC) - ago).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    await svc.db.execute(
        "UPDATE jobs SET created_at = ?, started_at = ?, finished_at = ? WHERE id = ?",
        (when, when, when, job_id),
    )


@pytest.mark.usefixtures("probes")
async def test_a_due_backup_is_submitted_once_then_again_a_period_later(
    svc: Service, clock: Clock
) -> None:
    await svc.scheduler.check()
    (job,) = await jobs_of(svc, "backup")
    await svc.scheduler.check()  # queued, running or done: either way not again
    assert len(await jobs_of(svc, "backup")) == 1
    done = await svc.jobs.wait(job.id)
    assert done.state == JobState.DONE and done.resource == "target:usb"
    assert (svc.workspace.root.parent / "disk" / "Tierkeeper").is_dir()

    await svc.scheduler.check()
    assert len(await jobs_of(svc, "backup")) == 1  # the next one is an hour away
    clock.offset = timedelta(minutes=61)
    await svc.scheduler.check()
    assert len(await jobs_of(svc, "backup")) == 2


@pytest.mark.usefixtures("probes")
async def test_no_second_run_while_one_waits_and_no_instant_retry_after_a_cancel(
    svc: Service, clock: Clock, tmp_path: Path
) -> None:
    (tmp_path / "disk").rename(tmp_path / "unplugged")
    await svc.scheduler.check()
    (job,) = await jobs_of(svc, "backup")
    assert (await svc.jobs.wait(job.id)).state == JobState.WAITING
    clock.offset = timedelta(hours=5)  # many periods pass while it waits for the disk
    await svc.scheduler.check()
    assert len(await jobs_of(svc, "backup")) == 1

    assert (await svc.jobs.cancel(job.id)).state == JobState.CANCELLED
    clock.offset = timedelta(0)
    await svc.scheduler.check()
    assert len(await jobs_of(svc, "backup")) == 1, "a cancelled run is not restarted at once"
    clock.offset = timedelta(minutes=61)
    await svc.scheduler.check()
    assert len(await jobs_of(svc, "backup")) == 2


@pytest.mark.usefixtures("clock", "probes")
async def test_catch_up_after_days_off_is_one_run_not_one_per_missed_slot(
    svc: Service,
) -> None:
    await svc.scheduler.check()
    (first,) = await jobs_of(svc, "backup")
    assert (await svc.jobs.wait(first.id)).state == JobState.DONE
    await backdate(svc, first.id, timedelta(days=3))  # 72 hourly slots missed

    await svc.scheduler.check()
    await svc.scheduler.check()
    latest, _ = await jobs_of(svc, "backup")
    assert (await svc.jobs.wait(latest.id)).state == JobState.DONE
    await svc.scheduler.check()
    assert len(await jobs_of(svc, "backup")) == 2


@pytest.mark.usefixtures("clock", "probes")
async def test_verify_comes_a_week_after_the_last_one(svc: Service) -> None:
    svc.config.schedule = Schedule(backup_every="daily", verify_every="weekly")
    await svc.scheduler.check()
    (backup,) = await jobs_of(svc, "backup")
    assert (await svc.jobs.wait(backup.id)).state == JobState.DONE
    await svc.scheduler.check()
    assert await jobs_of(svc, "verify") == []  # backed up just now: nothing to verify yet

    await backdate(svc, backup.id, timedelta(days=8))
    await svc.scheduler.check()
    (verify,) = await jobs_of(svc, "verify")
    done = await svc.jobs.wait(verify.id)
    assert done.state == JobState.DONE and done.result == {"verified": 1, "failed": []}


@pytest.mark.usefixtures("probes")
async def test_quiet_hours_defer_the_run_to_their_end(svc: Service, clock: Clock) -> None:
    svc.config.schedule = Schedule(backup_every="hourly", quiet_hours="22:00-07:00")
    sub = svc.bus.subscribe(["schedule."])
    clock.fixed = datetime(2030, 3, 4, 23, 30, tzinfo=UTC)
    await svc.scheduler.check()
    await svc.scheduler.check()
    assert await jobs_of(svc, "backup") == []
    event = await asyncio.wait_for(sub.__anext__(), 5)
    assert event.topic == "schedule.skipped"
    assert event.data["reason"] == "quiet-hours" and event.data["kind"] == "backup"
    assert event.data["until"] == "2030-03-05T07:00:00+00:00"

    clock.fixed = datetime(2030, 3, 5, 6, 59, tzinfo=UTC)
    await svc.scheduler.check()
    assert await jobs_of(svc, "backup") == []
    clock.fixed = datetime(2030, 3, 5, 7, 0, 1, tzinfo=UTC)
    await svc.scheduler.check()
    assert len(await jobs_of(svc, "backup")) == 1
    sub.close()


def test_quiet_hours_windows() -> None:
    at = datetime(2030, 3, 4, 12, 0, tzinfo=UTC)
    assert quiet_until("11:00-13:30", at) == at.replace(hour=13, minute=30)
    assert quiet_until("13:00-14:00", at) is None
    assert quiet_until("22:00-07:00", at) is None
    assert quiet_until("22:00-07:00", at.replace(hour=3)) == at.replace(hour=7)
    assert quiet_until(None, at) is None


@pytest.mark.usefixtures("clock")
async def test_battery_and_metered_network_hold_runs_back(svc: Service, probes: Probes) -> None:
    sub = svc.bus.subscribe(["schedule.skipped"])
    probes.power = "battery"
    await svc.scheduler.check()
    await svc.scheduler.check()
    assert await jobs_of(svc, "backup") == []
    event = await asyncio.wait_for(sub.__anext__(), 5)
    assert event.data["reason"] == "battery"

    probes.power, probes.metered = "ac", True
    await svc.scheduler.check()
    assert await jobs_of(svc, "backup") == []
    event = await asyncio.wait_for(sub.__anext__(), 5)
    assert event.data["reason"] == "metered" and "metered" in event.data["message"]

    svc.config.schedule.skip_on_metered = False  # the user does not mind
    await svc.scheduler.check()
    assert len(await jobs_of(svc, "backup")) == 1
    sub.close()


@pytest.mark.usefixtures("clock", "probes")
async def test_off_and_session_end_start_nothing_by_themselves(svc: Service) -> None:
    for every in ("off", "session-end"):
        svc.config.schedule = Schedule(backup_every=every, verify_every="off")
        await svc.scheduler.check()
    assert [j.kind for j in await svc.jobs.list()] == ["import"]


@pytest.mark.usefixtures("clock", "probes")
async def test_a_config_change_wakes_the_running_scheduler(svc: Service) -> None:
    svc.config.schedule = Schedule(backup_every="off", verify_every="off")
    svc.scheduler.start()
    await svc.scheduler.check()
    sub = svc.bus.subscribe(["job.queued"])
    svc.config.schedule = Schedule(backup_every="hourly", verify_every="off")
    svc.bus.publish("config.changed", {"keys": ["schedule"]})
    event = await asyncio.wait_for(sub.__anext__(), 10)  # not a minute later
    assert event.data["kind"] == "backup"
    sub.close()


def supply(root: Path, name: str, **files: str) -> None:
    (root / name).mkdir(parents=True)
    for key, value in files.items():
        (root / name / key).write_text(value + "\n")


@pytest.mark.parametrize(
    ("supplies", "expected"),
    [
        ({"BAT0": {"type": "Battery", "status": "Discharging"},
          "AC": {"type": "Mains", "online": "0"}}, "battery"),
        ({"BAT0": {"type": "Battery", "status": "Charging"},
          "AC": {"type": "Mains", "online": "1"}}, "ac"),
        ({"BAT0": {"type": "Battery", "status": "Not charging"},
          "ADP1": {"type": "Mains", "online": "0"}}, "battery"),
        ({"BAT0": {"type": "Battery", "status": "Full"}}, "ac"),
        ({"hidpp_battery_0": {"type": "Battery", "scope": "Device", "status": "Discharging"},
          "AC": {"type": "Mains", "online": "1"}}, "ac"),
        ({"hidpp_battery_0": {"type": "Battery", "scope": "Device", "status": "Discharging"}},
         "unknown"),
        ({"BAT1": {"type": "Battery", "status": "Charging"},
          "ucsi-source-psy-USBC000:001": {"type": "USB", "online": "1"},
          "AC": {"type": "Mains", "online": "0"}}, "ac"),
        ({}, "unknown"),
    ],
)  # fmt: skip
def test_power_source_read_from_a_sysfs_tree(
    tmp_path: Path, supplies: dict[str, dict[str, str]], expected: str
) -> None:
    root = tmp_path / "power_supply"
    root.mkdir()
    for name, files in supplies.items():
        supply(root, name, **files)
    assert read_power_source(root) == expected


def test_power_source_without_sysfs_is_unknown(tmp_path: Path) -> None:
    assert read_power_source(tmp_path / "absent") == "unknown"


async def test_metered_answers_from_network_manager_output() -> None:
    assert parse_metered("u 4") is False
    assert parse_metered("u 1") is True
    assert parse_metered("(<uint32 3>,)") is True
    assert parse_metered("(<uint32 2>,)") is False
    assert parse_metered("") is None
    assert await metered(timeout=5) in (True, False, None)  # this machine, whatever it has


def test_schedule_is_saved_in_config_toml(tmp_path: Path) -> None:
    from core.config import Config

    path = tmp_path / "config.toml"
    Config(schedule=Schedule(backup_every="daily", quiet_hours="22:00-07:00")).save(path)
    back = Config.load(path)
    assert back.schedule.backup_every == "daily" and back.schedule.quiet_hours == "22:00-07:00"
    assert Config().schedule.backup_every == "session-end"
    with pytest.raises(ValueError):
        Schedule(quiet_hours="10pm-7am")


async def test_only_a_long_lived_service_schedules(tmp_path: Path) -> None:
    from core.cli.common import open_service

    command = await open_service(tmp_path / "ws", write=True)
    try:
        assert not command.scheduler.running  # `tierkeeper import` must not start backups
    finally:
        await command.stop()
    owner = await Service.start(tmp_path / "ws")  # the daemon, the window
    try:
        assert owner.scheduler.running
    finally:
        await owner.stop()
