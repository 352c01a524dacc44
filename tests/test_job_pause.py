"""Pause and resume in the job runner: what a person pausing a long backup relies on.

A paused job keeps what it finished (its checkpoint), keeps its place (jobs after it
on the same resource wait, others run), stays paused across a restart, and goes on
where it stopped when resumed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from core.errors import NotFoundError
from core.events import EventBus
from core.jobs import JobContext, JobRunner
from core.local.db.database import Database
from core.models import JobState


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "analytics" / "agent_metrics.db")
    yield database
    await database.close()


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
async def make_runner(db: Database, bus: EventBus) -> AsyncIterator[Callable[[], JobRunner]]:
    made: list[JobRunner] = []

    def make() -> JobRunner:
        runner = JobRunner(db, bus, concurrency=2, probe_delay=3600)
        made.append(runner)
        return runner

    yield make
    for runner in made:
        await runner.stop()


class Stepper:
    """Four steps, a checkpoint after each; holds before step 3 while `hold` is set."""

    def __init__(self) -> None:
        self.done: list[int] = []
        self.resumed_from: list[dict[str, Any] | None] = []
        self.at_hold = asyncio.Event()
        self.hold = True

    async def __call__(self, ctx: JobContext) -> dict[str, Any]:
        self.resumed_from.append(ctx.checkpoint)
        first = (ctx.checkpoint or {"step": 0})["step"] + 1
        ctx.progress(steps_total=4)
        for step in range(first, 5):
            if step == 3 and self.hold:
                self.at_hold.set()
                await asyncio.Event().wait()  # a long step: the pause lands here
            self.done.append(step)
            await ctx.save_checkpoint({"step": step}, steps_done=step)
        return {"steps": 4}


async def quick(ctx: JobContext) -> dict[str, Any]:
    return {"ran": ctx.job_id}


async def state_of(db: Database, job_id: int) -> str:
    return str(await db.scalar("SELECT state FROM jobs WHERE id=?", (job_id,)))


async def test_a_paused_job_keeps_its_work_and_place_across_a_restart_and_resumes(
    db: Database, bus: EventBus, make_runner: Callable[[], JobRunner]
) -> None:
    stepper = Stepper()
    runner = make_runner()
    runner.register("stepper", stepper)
    runner.register("quick", quick)
    await runner.start()
    long = await runner.submit("stepper", {}, resource="target:usb")
    behind = await runner.submit("quick", {}, resource="target:usb")
    elsewhere = await runner.submit("quick", {}, resource="target:nas")
    await stepper.at_hold.wait()
    events = bus.subscribe(["job.paused"])

    paused = await runner.pause(long.id)
    assert paused.state == JobState.PAUSED and paused.steps_done == 2
    assert (await anext(events)).data["id"] == long.id
    assert (await runner.wait(long.id)).state == JobState.PAUSED  # settled: wait returns
    assert (await runner.wait(elsewhere.id)).state == JobState.DONE  # other targets go on
    assert await state_of(db, behind.id) == "queued"  # but not the job queued behind it
    checkpoint = await db.scalar("SELECT checkpoint FROM jobs WHERE id=?", (long.id,))
    assert orjson.loads(str(checkpoint)) == {"step": 2}
    assert [j.id for j in await runner.list(active_only=True)] == [behind.id, long.id]

    await runner.stop()
    stepper.hold = False
    again = make_runner()
    again.register("stepper", stepper)
    again.register("quick", quick)
    await again.start()
    assert (await again.get(long.id)).state == JobState.PAUSED  # a restart does not resume it
    assert await again.resume_waiting() == 0  # nor does "Retry now", which is for targets

    resumed = await again.resume(long.id)
    assert resumed.state in (JobState.QUEUED, JobState.RUNNING)
    final = await asyncio.wait_for(again.wait(long.id), 20)
    assert final.state == JobState.DONE and final.steps_done == 4
    assert stepper.resumed_from == [None, {"step": 2}]
    assert stepper.done == [1, 2, 3, 4]  # steps 1 and 2 were not done twice
    assert (await asyncio.wait_for(again.wait(behind.id), 20)).state == JobState.DONE


async def test_a_queued_job_paused_never_starts_until_resumed(
    db: Database, make_runner: Callable[[], JobRunner]
) -> None:
    ran: list[int] = []

    async def record(ctx: JobContext) -> None:
        ran.append(ctx.job_id)

    runner = make_runner()
    runner.register("record", record)
    first = await runner.submit("record", {}, resource="target:usb")
    assert (await runner.pause(first.id)).state == JobState.PAUSED  # before any worker runs
    await runner.start()
    later = await runner.submit("record", {})
    assert (await runner.wait(later.id)).state == JobState.DONE
    assert ran == [later.id] and await state_of(db, first.id) == "paused"

    assert (await runner.resume(first.id)).state != JobState.PAUSED
    assert (await runner.wait(first.id)).state == JobState.DONE
    assert ran == [later.id, first.id]
    # Pausing or resuming what has ended changes nothing; a paused job can be cancelled.
    assert (await runner.pause(first.id)).state == JobState.DONE
    assert (await runner.resume(later.id)).state == JobState.DONE
    third = await runner.submit("record", {}, resource="target:usb")
    await runner.pause(third.id)
    assert (await runner.cancel(third.id)).state == JobState.CANCELLED
    assert await runner.list(active_only=True) == []
    with pytest.raises(NotFoundError):
        await runner.pause(999)
    with pytest.raises(NotFoundError):
        await runner.resume(999)


async def test_a_job_that_pauses_at_checkpoints_finishes_its_step_or_is_cut_off(
    db: Database, bus: EventBus
) -> None:
    """A cooperative job ends the step in flight and checkpoints it before parking; one
    that never gets there is interrupted after the grace period, so Pause always ends."""

    async def cooperative(ctx: JobContext) -> None:
        ctx.pauses_at_checkpoints = True
        step = (ctx.checkpoint or {"step": 0})["step"]
        while True:
            ctx.check_cancelled()  # between steps: where a pause parks it
            while not ctx.pause_requested:  # a step that lasts until Pause is pressed
                await asyncio.sleep(0.01)
            step += 1
            await ctx.save_checkpoint({"step": step}, steps_done=step)

    async def stubborn(ctx: JobContext) -> None:
        ctx.pauses_at_checkpoints = True  # says so, but never looks
        await asyncio.Event().wait()

    patient = JobRunner(db, bus)
    patient.register("cooperative", cooperative)
    await patient.start()
    try:
        job = await patient.submit("cooperative", {})
        while (await patient.get(job.id)).state != JobState.RUNNING:
            await asyncio.sleep(0.01)
        paused = await patient.pause(job.id)
        assert paused.state == JobState.PAUSED and paused.steps_done == 1
        checkpoint = await db.scalar("SELECT checkpoint FROM jobs WHERE id=?", (job.id,))
        assert orjson.loads(str(checkpoint)) == {"step": 1}  # the step in flight counted
    finally:
        await patient.stop()

    hasty = JobRunner(db, bus, pause_grace=0.05)
    hasty.register("stubborn", stubborn)
    await hasty.start()
    try:
        other = await hasty.submit("stubborn", {})
        while (await hasty.get(other.id)).state != JobState.RUNNING:
            await asyncio.sleep(0.01)
        assert (await hasty.pause(other.id)).state == JobState.PAUSED
    finally:
        await hasty.stop()
