from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

from core.errors import BadInputError, NotFoundError, StorageFullError
from core.events import EventBus, Subscription
from core.jobs import JobContext, JobMeter, JobRunner, RateEstimator
from core.local.db.database import Database
from core.models import Event, JobInfo, JobState

HERE = Path(__file__).resolve().parent

# --- rate and ETA ------------------------------------------------------------------------


def test_steady_rate_gives_eta_of_remaining_over_rate() -> None:
    est = RateEstimator(window=10.0)
    for tick in range(41):  # 100 units/s, a sample every 0.5 s for 20 s
        est.update(tick * 50, now=tick * 0.5)
    assert est.rate(now=20.0) == pytest.approx(100.0)
    assert est.eta(10_000, now=20.0) == pytest.approx((10_000 - 2000) / 100.0)
    assert est.eta(2000, now=20.0) == 0.0


def test_no_total_no_eta_and_too_little_history_no_rate() -> None:
    est = RateEstimator(window=10.0, min_span=0.25)
    assert est.rate(now=0.0) is None
    est.update(0, now=0.0)
    est.update(10, now=0.1)
    assert est.rate(now=0.1) is None  # 0.1 s says nothing reliable yet
    est.update(100, now=1.0)
    assert est.rate(now=1.0) == pytest.approx(100.0)
    assert est.eta(None, now=1.0) is None


def test_a_stall_lowers_the_rate_and_then_makes_the_eta_unknown() -> None:
    est = RateEstimator(window=10.0)
    for tick in range(21):
        est.update(tick * 100, now=float(tick))  # 100/s for 20 s
    assert est.rate(now=20.0) == pytest.approx(100.0)
    assert est.rate(now=25.0) == pytest.approx(50.0)  # half the window without progress
    assert est.rate(now=31.0) == 0.0
    assert est.eta(10_000, now=31.0) is None
    est.update(2100, now=32.0)  # it moves again
    assert est.rate(now=32.0) is not None
    assert est.rate(now=32.0) > 0  # type: ignore[operator]


def test_a_counter_that_goes_back_starts_a_new_window() -> None:
    est = RateEstimator(window=10.0)
    est.update(0, now=0.0)
    est.update(1000, now=1.0)
    est.update(10, now=2.0)  # a new pass over the data
    est.update(20, now=3.0)
    assert est.rate(now=3.0) == pytest.approx(10.0)


def test_very_frequent_updates_keep_memory_bounded() -> None:
    est = RateEstimator(window=10.0)
    for n in range(200_000):
        est.update(n, now=n * 1e-4)  # 10 000 updates a second for 20 s
    assert len(est._samples) <= 60
    assert est.rate(now=20.0) == pytest.approx(10_000, rel=0.01)


def test_meter_prefers_bytes_when_their_total_is_known() -> None:
    meter = JobMeter(window=10.0)
    for tick in range(11):
        meter.update(items_done=tick, bytes_done=tick * 1000, now=float(tick))
    rate, eta = meter.rate_eta(items_total=20, bytes_total=40_000, now=10.0)
    assert rate == pytest.approx(1000.0)
    assert eta == pytest.approx(30.0)
    rate, eta = meter.rate_eta(items_total=20, bytes_total=None, now=10.0)
    assert rate == pytest.approx(1.0)
    assert eta == pytest.approx(10.0)
    rate, eta = meter.rate_eta(items_total=None, bytes_total=None, now=10.0)
    assert rate == pytest.approx(1000.0)
    assert eta is None


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "analytics" / "agent_metrics.db")
    yield database
    await database.close()


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


RunnerFactory = Callable[..., JobRunner]


@pytest.fixture
async def make_runner(db: Database, bus: EventBus) -> AsyncIterator[RunnerFactory]:
    made: list[JobRunner] = []

    def make(concurrency: int = 2) -> JobRunner:
        runner = JobRunner(db, bus, concurrency=concurrency)
        made.append(runner)
        return runner

    yield make
    for runner in made:
        await runner.stop()


async def collect_until_finished(sub: Subscription, job_ids: set[int]) -> list[Event]:
    """Every event until each of `job_ids` has published job.finished."""
    events: list[Event] = []
    pending = set(job_ids)
    async for event in sub:
        events.append(event)
        if event.topic == "job.finished":
            pending.discard(event.data["id"])
            if not pending:
                break
    return events


async def row(db: Database, job_id: int) -> dict[str, Any]:
    found = await db.fetchone("SELECT * FROM jobs WHERE id=?", (job_id,))
    assert found is not None
    return dict(found)


def is_utc_iso(text: str | None) -> bool:
    return text is not None and datetime.fromisoformat(text).utcoffset() == timedelta(0)


# --- running -----------------------------------------------------------------------------


async def test_a_job_runs_reports_progress_in_order_and_stores_its_result(
    db: Database, bus: EventBus, make_runner: RunnerFactory
) -> None:
    async def count(ctx: JobContext) -> dict[str, Any]:
        total = ctx.params["n"]
        ctx.progress(items_total=total, message="counting")
        for done in range(1, total + 1):
            await asyncio.sleep(0.02)
            ctx.progress(items_done=done)
        return {"counted": total}

    runner = make_runner()
    runner.register("count", count)
    sub = bus.subscribe(["job."])
    await runner.start()
    info = await runner.submit("count", {"n": 8}, title="count to 8")
    assert info.state == JobState.QUEUED
    events = await collect_until_finished(sub, {info.id})

    topics = [e.topic for e in events]
    assert topics[:2] == ["job.queued", "job.started"]
    assert topics[-1] == "job.finished"
    assert set(topics[2:-1]) == {"job.progress"}
    progress = [e.data["items_done"] for e in events if e.topic == "job.progress"]
    assert progress == sorted(progress)
    assert progress[-1] == 8  # the final value always gets out, throttled or not
    assert events[2].data["message"] == "counting"
    final = JobInfo.model_validate(events[-1].data)
    assert final.state == JobState.DONE
    assert final.result == {"counted": 8}
    assert final.items_done == final.items_total == 8

    stored = await runner.wait(info.id)
    assert stored.state == JobState.DONE
    assert stored.title == "count to 8"
    assert stored.result == {"counted": 8}
    assert stored.items_done == 8
    assert stored.error is None
    for stamp in (stored.created_at, stored.started_at, stored.finished_at):
        assert is_utc_iso(stamp), stamp
    assert stored.created_at <= stored.started_at <= stored.finished_at  # type: ignore[operator]


async def test_progress_events_are_throttled_but_end_on_the_final_value(
    bus: EventBus, make_runner: RunnerFactory
) -> None:
    async def busy(ctx: JobContext) -> None:
        for done in range(1, 1001):
            ctx.progress(items_done=done, items_total=1000)  # no await between calls
        # returns at once: the last value goes out when the job ends, not on a timer

    runner = make_runner()
    runner.register("busy", busy)
    sub = bus.subscribe(["job.progress", "job.finished"])
    await runner.start()
    info = await runner.submit("busy", {})
    events = await collect_until_finished(sub, {info.id})
    progress = [e.data["items_done"] for e in events if e.topic == "job.progress"]
    assert len(progress) < 100
    assert progress[-1] == 1000


async def test_running_progress_reaches_the_database(
    db: Database, make_runner: RunnerFactory
) -> None:
    release = asyncio.Event()

    async def halfway(ctx: JobContext) -> None:
        ctx.progress(items_done=7, items_total=10, bytes_done=700, bytes_total=1000)
        await release.wait()

    runner = make_runner()
    runner.register("halfway", halfway)
    await runner.start()
    info = await runner.submit("halfway", {})
    while (await row(db, info.id))["items_done"] != 7:
        await asyncio.sleep(0.05)
    stored = await row(db, info.id)
    assert (stored["state"], stored["items_total"], stored["bytes_done"]) == ("running", 10, 700)
    live = await runner.get(info.id)
    assert (live.state, live.bytes_done, live.bytes_total) == (JobState.RUNNING, 700, 1000)
    release.set()
    assert (await runner.wait(info.id)).state == JobState.DONE


async def test_a_tierkeeper_error_fails_the_job_with_its_message(
    make_runner: RunnerFactory,
) -> None:
    async def full(ctx: JobContext) -> None:
        raise StorageFullError("The disk is full", hint="free some space\nand retry")

    runner = make_runner()
    runner.register("full", full)
    await runner.start()
    info = await runner.wait((await runner.submit("full", {})).id)
    assert info.state == JobState.FAILED
    assert info.error == "The disk is full — free some space and retry"
    assert info.finished_at is not None


async def test_an_unexpected_exception_fails_the_job_and_is_logged_with_traceback(
    make_runner: RunnerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async def buggy(ctx: JobContext) -> None:
        raise KeyError("missing")

    async def wrong_result(ctx: JobContext) -> Any:
        return [1, 2]

    runner = make_runner()
    runner.register("buggy", buggy)
    runner.register("wrong", wrong_result)
    await runner.start()
    with caplog.at_level(logging.ERROR, logger="core.jobs"):
        info = await runner.wait((await runner.submit("buggy", {})).id)
    assert info.state == JobState.FAILED
    assert info.error == "internal error: KeyError: 'missing'"
    assert any(r.exc_info and r.exc_info[0] is KeyError for r in caplog.records)
    info = await runner.wait((await runner.submit("wrong", {})).id)
    assert info.state == JobState.FAILED
    assert info.error is not None
    assert info.error.startswith("internal error: TypeError:")


async def test_bad_requests(make_runner: RunnerFactory) -> None:
    runner = make_runner()

    async def noop(ctx: JobContext) -> None:
        return None

    runner.register("noop", noop)
    with pytest.raises(BadInputError, match="Unknown job kind 'nope'"):
        await runner.submit("nope", {})
    with pytest.raises(BadInputError, match="JSON"):
        await runner.submit("noop", {"when": object()})
    for call in (runner.get, runner.cancel, runner.wait):
        with pytest.raises(NotFoundError):
            await call(12345)
    with pytest.raises(ValueError):
        runner.register("noop", noop)


# --- cancelling --------------------------------------------------------------------------


async def test_cancel_a_running_job(db: Database, make_runner: RunnerFactory) -> None:
    started = asyncio.Event()
    cleaned_up = asyncio.Event()

    async def forever(ctx: JobContext) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cleaned_up.set()

    runner = make_runner()
    runner.register("forever", forever)
    await runner.start()
    info = await runner.submit("forever", {})
    await started.wait()
    cancelled = await runner.cancel(info.id)
    assert cleaned_up.is_set()
    assert cancelled.state == JobState.CANCELLED
    assert cancelled.finished_at is not None
    assert (await row(db, info.id))["state"] == "cancelled"
    assert (await runner.wait(info.id)).state == JobState.CANCELLED
    again = await runner.cancel(info.id)  # already finished: unchanged
    assert again.state == JobState.CANCELLED
    assert again.finished_at == cancelled.finished_at


async def test_cancel_reaches_a_loop_running_in_a_thread(make_runner: RunnerFactory) -> None:
    looping = threading.Event()
    thread_ended = threading.Event()

    def crunch(ctx: JobContext) -> None:
        try:
            n = 0
            while True:
                ctx.check_cancelled()
                n += 1
                ctx.progress(items_done=n)  # from the worker thread
                looping.set()
        finally:
            thread_ended.set()

    async def cpu(ctx: JobContext) -> None:
        await asyncio.to_thread(crunch, ctx)

    runner = make_runner()
    runner.register("cpu", cpu)
    await runner.start()
    info = await runner.submit("cpu", {})
    assert await asyncio.to_thread(looping.wait, 30)
    assert (await runner.cancel(info.id)).state == JobState.CANCELLED
    assert await asyncio.to_thread(thread_ended.wait, 30)


async def test_cancel_a_queued_job_it_never_runs(bus: EventBus, make_runner: RunnerFactory) -> None:
    release = asyncio.Event()
    ran: list[int] = []

    async def gated(ctx: JobContext) -> None:
        ran.append(ctx.job_id)
        await release.wait()

    runner = make_runner(concurrency=1)
    runner.register("gated", gated)
    await runner.start()
    first = await runner.submit("gated", {})
    second = await runner.submit("gated", {})
    sub = bus.subscribe(["job.finished"])
    cancelled = await runner.cancel(second.id)
    assert cancelled.state == JobState.CANCELLED
    assert cancelled.finished_at is not None
    announced = await anext(sub)
    assert (announced.data["id"], announced.data["state"]) == (second.id, "cancelled")
    release.set()
    assert (await runner.wait(first.id)).state == JobState.DONE
    assert (await runner.wait(second.id)).state == JobState.CANCELLED
    assert ran == [first.id]


# --- scheduling --------------------------------------------------------------------------


async def test_concurrency_limit_is_honoured_and_jobs_start_in_id_order(
    db: Database, bus: EventBus, make_runner: RunnerFactory
) -> None:
    gates: dict[int, asyncio.Event] = {}
    running_now: set[int] = set()
    most_at_once = 0

    async def gated(ctx: JobContext) -> None:
        nonlocal most_at_once
        running_now.add(ctx.job_id)
        most_at_once = max(most_at_once, len(running_now))
        try:
            await gates[ctx.job_id].wait()
        finally:
            running_now.discard(ctx.job_id)

    runner = make_runner(concurrency=2)
    runner.register("gated", gated)
    sub = bus.subscribe(["job.started", "job.finished"])
    ids = [(await runner.submit("gated", {"n": n})).id for n in range(5)]
    gates.update({job_id: asyncio.Event() for job_id in ids})
    await runner.start()

    order: list[tuple[str, int]] = []
    started: set[int] = set()
    for k, job_id in enumerate(ids):
        # release them one by one, each once it and the next one are both running
        want = set(ids[k : k + 2])
        while not want <= started:
            event = await anext(sub)
            order.append((event.topic, event.data["id"]))
            if event.topic == "job.started":
                started.add(event.data["id"])
        states = [r[0] for r in await db.fetchall("SELECT state FROM jobs")]
        assert states.count("running") <= 2
        gates[job_id].set()
        assert (await runner.wait(job_id)).state == JobState.DONE
    order += [(e.topic, e.data["id"]) async for e in _until_finished(sub, ids[-1])]

    assert most_at_once == 2
    in_flight = 0
    for topic, _ in order:
        in_flight += 1 if topic == "job.started" else -1
        assert in_flight <= 2
    assert [job_id for topic, job_id in order if topic == "job.started"] == ids


async def _until_finished(sub: Subscription, job_id: int) -> AsyncIterator[Event]:
    async for event in sub:
        yield event
        if event.topic == "job.finished" and event.data["id"] == job_id:
            return


async def test_list_active_only(make_runner: RunnerFactory) -> None:
    release = asyncio.Event()

    async def gated(ctx: JobContext) -> None:
        if ctx.params.get("wait"):
            await release.wait()

    runner = make_runner(concurrency=1)
    runner.register("gated", gated)
    await runner.start()
    done = await runner.submit("gated", {})
    await runner.wait(done.id)
    running = await runner.submit("gated", {"wait": True})
    queued = await runner.submit("gated", {})
    while (await runner.get(running.id)).state != JobState.RUNNING:
        await asyncio.sleep(0.01)

    active = await runner.list(active_only=True)
    assert [(j.id, j.state) for j in active] == [
        (queued.id, JobState.QUEUED),
        (running.id, JobState.RUNNING),
    ]
    everything = await runner.list()
    assert [j.id for j in everything] == [queued.id, running.id, done.id]
    assert [j.id for j in await runner.list(limit=1)] == [queued.id]
    release.set()
    await runner.wait(queued.id)
    assert await runner.list(active_only=True) == []


async def test_a_queued_job_waits_for_its_kind_to_be_registered(
    db: Database, bus: EventBus, make_runner: RunnerFactory
) -> None:
    async def noop(ctx: JobContext) -> dict[str, Any]:
        return {"ran": True}

    earlier = make_runner()
    earlier.register("later", noop)
    info = await earlier.submit("later", {})  # never started: stays queued

    runner = make_runner()
    await runner.start()
    assert (await runner.get(info.id)).state == JobState.QUEUED
    runner.register("later", noop)
    assert (await runner.wait(info.id)).result == {"ran": True}


# --- stopping and crashing ---------------------------------------------------------------


async def test_graceful_stop_requeues_and_the_next_start_resumes_from_the_checkpoint(
    db: Database, bus: EventBus, make_runner: RunnerFactory
) -> None:
    done_steps: list[int] = []
    resumed_from: list[dict[str, Any] | None] = []
    reached_2 = asyncio.Event()
    hold_at_3 = True

    async def stepper(ctx: JobContext) -> dict[str, Any]:
        resumed_from.append(ctx.checkpoint)
        first = (ctx.checkpoint or {"step": 0})["step"] + 1
        ctx.progress(steps_total=4)
        for step in range(first, 5):
            if step == 3 and hold_at_3:
                reached_2.set()
                await asyncio.Event().wait()  # interrupted here by stop()
            done_steps.append(step)
            await ctx.save_checkpoint({"step": step}, steps_done=step)
        return {"steps": 4}

    first_runner = make_runner()
    first_runner.register("stepper", stepper)
    await first_runner.start()
    info = await first_runner.submit("stepper", {})
    await reached_2.wait()
    sub = bus.subscribe(["job.queued"])
    await first_runner.stop()

    stored = await row(db, info.id)
    assert stored["state"] == "queued"
    assert orjson.loads(stored["checkpoint"]) == {"step": 2}
    assert stored["steps_done"] == 2
    assert stored["finished_at"] is None
    assert (await anext(sub)).data["id"] == info.id

    hold_at_3 = False
    second_runner = make_runner()
    second_runner.register("stepper", stepper)
    await second_runner.start()
    final = await asyncio.wait_for(second_runner.wait(info.id), 60)
    assert final.state == JobState.DONE
    assert final.steps_done == final.steps_total == 4
    assert resumed_from == [None, {"step": 2}]
    assert done_steps == [1, 2, 3, 4]


def _load_helper() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crash_job_helper", HERE / "crash_job_helper.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_a_job_resumes_after_the_process_is_killed_without_redoing_steps(
    tmp_path: Path,
) -> None:
    db_path = tmp_path / "agent_metrics.db"
    log = tmp_path / "steps.log"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE / "crash_job_helper.py"),
        str(db_path),
        str(log),
        "6",
        "4",
        cwd=HERE.parent,
    )
    assert await asyncio.wait_for(child.wait(), 60) == -signal.SIGKILL

    db = await Database.open(db_path)
    try:
        [(job_id, state, checkpoint, steps_done)] = [
            tuple(r)
            for r in await db.fetchall("SELECT id, state, checkpoint, steps_done FROM jobs")
        ]
        assert (state, orjson.loads(checkpoint), steps_done) == ("running", {"step": 3}, 3)

        helper = _load_helper()
        runner = JobRunner(db, EventBus())
        runner.register("steps", helper.steps_job)
        await runner.start()
        try:
            final = await asyncio.wait_for(runner.wait(job_id), 60)
        finally:
            await runner.stop()
        assert final.state == JobState.DONE
        assert final.result == {"last_step": 6}
        assert final.steps_done == final.steps_total == 6
    finally:
        await db.close()

    lines = [line.split(" ", 2) for line in log.read_text().splitlines()]
    child_pid, our_pid = str(child.pid), str(os.getpid())
    assert lines == [
        ["resume", child_pid, "None"],
        ["step", child_pid, "1"],
        ["step", child_pid, "2"],
        ["step", child_pid, "3"],
        ["resume", our_pid, "{'step': 3}"],
        ["step", our_pid, "4"],
        ["step", our_pid, "5"],
        ["step", our_pid, "6"],
    ]


async def test_wait_on_a_finished_job_returns_at_once(make_runner: RunnerFactory) -> None:
    async def noop(ctx: JobContext) -> None:
        return None

    runner = make_runner()
    runner.register("noop", noop)
    await runner.start()
    info = await runner.submit("noop", {})
    first = await runner.wait(info.id)
    assert first.state == JobState.DONE
    assert first.result is None
    assert await runner.wait(info.id) == first
