"""Live metrics: the numbers the dashboard draws, what survives a restart, and the stream."""

from __future__ import annotations

import asyncio
import hashlib
import io
import math
import os
import random
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.config import TargetConfig
from core.metrics.histogram import Histogram
from core.metrics.models import MetricsSnapshot
from core.metrics.prometheus import prometheus_text
from core.metrics.registry import Metrics
from core.metrics.store import MeteredStore
from core.models import JobState
from core.remote.base import ObjectNotFound, PutSource, TransientError
from core.remote.folder import FolderStore
from core.remote.retry import RetryingStore
from core.service import Service
from core.tier2.targets import RetryPolicy, open_store
from tests.support import CLAUDE_FIXTURES

KIB = 1024
FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)


class FakeClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def source(path: Path, size: int) -> PutSource:
    data = os.urandom(size)
    path.write_bytes(data)
    return PutSource(path, size, hashlib.sha256(data).hexdigest(),
                     hashlib.md5(data, usedforsecurity=False).hexdigest())  # fmt: skip


def op(snapshot: MetricsSnapshot, name: str, tier: str) -> dict[str, float | int | None]:
    for o in snapshot.ops:
        if (o.op, o.tier) == (name, tier):
            return o.model_dump()
    raise AssertionError(f"no {name}/{tier} in {[(o.op, o.tier) for o in snapshot.ops]}")


# --- the histogram ------------------------------------------------------------------


def close_to(value: float | None, expected: float, rel: float = 0.08) -> bool:
    return value is not None and abs(value - expected) <= rel * expected


def test_percentiles_of_a_known_distribution_and_merging() -> None:
    values = [i / 1000 for i in range(1, 1001)]  # 1 ms … 1 s, evenly
    random.Random(7).shuffle(values)
    whole, left, right = Histogram(), Histogram(), Histogram()
    for n, v in enumerate(values):
        whole.observe(v)
        (left if n % 2 else right).observe(v)
    assert whole.count == 1000 and math.isclose(whole.sum, sum(values))
    assert close_to(whole.quantile(0.50), 0.500)
    assert close_to(whole.quantile(0.95), 0.950)
    assert close_to(whole.quantile(0.99), 0.990)
    assert whole.quantile(0.0) == 0.001 and whole.quantile(1.0) == 1.0

    merged = Histogram.merged([left, right])
    assert merged.counts == whole.counts and merged.count == whole.count
    assert merged.quantile(0.95) == whole.quantile(0.95)
    back = Histogram.from_sparse(merged.to_sparse())
    assert back.counts == whole.counts and back.quantile(0.99) == whole.quantile(0.99)


def test_latencies_outside_the_buckets_stay_within_what_was_seen() -> None:
    h = Histogram()
    assert h.quantile(0.5) is None and h.mean is None
    for v in (1e-6, 2e-6, 500.0):
        h.observe(v)
    assert h.quantile(0.0) == 1e-6 and h.quantile(1.0) == 500.0
    assert 1e-6 <= (h.quantile(0.5) or 0) <= 50e-6


# --- the store wrapper --------------------------------------------------------------


async def test_metered_folder_store_counts_ops_bytes_and_errors(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    folder = FolderStore(disk, name="usb")
    await folder.create_root()
    metrics = Metrics()
    store = MeteredStore(folder, metrics, "folder")
    src = source(tmp_path / "a.bin", 256 * KIB)

    await store.put("p/a.bin", src)
    back = io.BytesIO()
    assert await store.get("p/a.bin", back) == 256 * KIB
    assert (await store.stat("p/a.bin")).size == 256 * KIB
    with pytest.raises(ObjectNotFound):
        await store.stat("p/missing")  # an answer, not an error
    assert [i.key async for i in store.list("p/")] == ["p/a.bin"]
    await store.delete("p/a.bin")

    snap = metrics.snapshot()
    put, get = op(snap, "put", "folder"), op(snap, "get", "folder")
    assert (put["count"], put["bytes"], put["errors"]) == (1, 256 * KIB, 0)
    assert (get["count"], get["bytes"], get["errors"]) == (1, 256 * KIB, 0)
    assert (op(snap, "stat", "folder")["count"], op(snap, "stat", "folder")["errors"]) == (2, 0)
    assert op(snap, "list", "folder")["count"] == op(snap, "delete", "folder")["count"] == 1
    assert put["p50"] is not None and put["p50"] > 0

    disk.rename(tmp_path / "unplugged")  # the USB disk is pulled out
    with pytest.raises(TransientError):
        await store.put("p/b.bin", src)
    with pytest.raises(TransientError):
        await store.stat("p/a.bin")
    with pytest.raises(TransientError):
        [i async for i in store.list()]
    snap = metrics.snapshot()
    assert op(snap, "put", "folder")["errors"] == 1
    assert op(snap, "put", "folder")["bytes"] == 256 * KIB  # a failed put moved nothing
    assert op(snap, "stat", "folder")["errors"] == 1
    assert op(snap, "list", "folder")["errors"] == 1


async def test_open_store_meters_every_attempt_and_keeps_the_wrapper_chain(
    tmp_path: Path,
) -> None:
    metrics = Metrics()
    target = TargetConfig(name="nas", kind="folder", path=str(tmp_path / "not-mounted"))
    store = open_store(target, "scope", FAST, metrics)
    assert isinstance(store, RetryingStore)
    assert isinstance(store.inner, MeteredStore) and isinstance(store.inner.inner, FolderStore)
    with pytest.raises(TransientError):
        await store.stat("k")
    stat = op(metrics.snapshot(), "stat", "folder")
    assert (stat["count"], stat["errors"]) == (2, 2)  # both attempts, as the NAS saw them
    unmetered = open_store(target, "scope", FAST)
    assert isinstance(unmetered, RetryingStore) and isinstance(unmetered.inner, FolderStore)


async def test_a_backup_through_the_service_shows_up_in_its_metrics(tmp_path: Path) -> None:
    svc = await Service.start(tmp_path / "ws", retry=FAST)
    try:
        job = await svc.start_import([str(CLAUDE_FIXTURES / "claude-code-log-cases")])
        assert (await svc.jobs.wait(job.id)).state == JobState.DONE
        await svc.add_folder_target("usb", str(tmp_path / "disk"))
        job = await svc.start_backup([], "usb")
        assert (await svc.jobs.wait(job.id)).state == JobState.DONE
        snap = (await svc.recorder.live()).model_dump()
    finally:
        await svc.stop()
    ops = {(o["op"], o["tier"]): o for o in snap["ops"]}
    assert ops[("put", "folder")]["count"] > 0 and ops[("put", "folder")]["bytes"] > 0
    assert ops[("db.read", "local")]["count"] > 0 and ops[("db.tx", "local")]["count"] > 0
    (ratio,) = snap["ratios"]
    assert ratio["kind"] == "session" and ratio["ratio"] > 1.0  # transcripts compress
    assert snap["queue"] == {"queued": 0, "running": 0, "waiting": 0}


# --- persistence --------------------------------------------------------------------

HOUR = datetime(2030, 1, 1, 10, tzinfo=UTC).timestamp()


async def test_minute_points_are_written_and_read_back_after_a_restart(tmp_path: Path) -> None:
    clock = FakeClock(HOUR + 5)
    svc = await Service.start(tmp_path / "ws")
    try:
        svc.metrics.clock = clock
        for s in (0.010, 0.020, 0.030):
            svc.metrics.observe("put", "drive", s, nbytes=1000)
        await svc.recorder.step()
        clock.advance(60)
        await svc.recorder.step()  # a new minute: the last one is written
        (point,) = await svc.recorder.series("put", "drive", datetime.fromtimestamp(HOUR, UTC))
        assert point.ts == datetime.fromtimestamp(HOUR, UTC)
        assert (point.count, point.bytes, point.errors) == (3, 3000, 0)
        assert close_to(point.p50, 0.020, rel=0.1) and close_to(point.p99, 0.030, rel=0.1)
        (second,) = await svc.recorder.series("put", "drive", datetime.fromtimestamp(HOUR, UTC),
                                              "1s")  # fmt: skip
        assert (second.ts, second.count) == (datetime.fromtimestamp(HOUR + 5, UTC), 3)
        svc.metrics.observe("put", "drive", 0.5, ok=False)  # in the minute still running
    finally:
        await svc.stop()  # writes that minute too

    svc = await Service.start(tmp_path / "ws")
    try:
        svc.metrics.clock = clock
        since = datetime.fromtimestamp(HOUR, UTC)
        first, second = await svc.recorder.series("put", "drive", since, "1m")
        assert (first.count, second.count, second.errors) == (3, 1, 1)
        assert second.ts == datetime.fromtimestamp(HOUR + 60, UTC)
        (hour,) = await svc.recorder.series("put", "drive", since, "1h")  # rolled up on the fly
        assert (hour.ts, hour.count, hour.errors, hour.bytes) == (since, 4, 1, 3000)
        assert await svc.recorder.series("put", "s3", since, "1m") == []
    finally:
        await svc.stop()


async def test_an_idle_service_writes_no_points(tmp_path: Path) -> None:
    clock = FakeClock(HOUR + 5)
    svc = await Service.start(tmp_path / "ws")
    try:
        svc.metrics.clock = clock
        for _ in range(3):  # what starting the service did (workers look for jobs) is written
            await svc.recorder.step()
            clock.advance(60)
        with svc.metrics.unmetered():  # the test's own look must not count either
            written = await svc.db.scalar("SELECT count(*) FROM metrics")
        for _ in range(3):
            await svc.scheduler.check()
            clock.advance(60)
            await svc.recorder.step()
        with svc.metrics.unmetered():
            assert await svc.db.scalar("SELECT count(*) FROM metrics") == written
    finally:
        await svc.stop()


async def test_hours_are_rolled_up_from_minutes_and_old_minutes_pruned(tmp_path: Path) -> None:
    clock = FakeClock(HOUR + 5)
    svc = await Service.start(tmp_path / "ws")
    try:
        svc.metrics.clock = clock
        for minute in range(60):
            svc.metrics.observe("get", "s3", (minute + 1) / 1000, nbytes=10)
            await svc.recorder.step()
            clock.advance(60)
        await svc.recorder.step()  # 11:00:05: minute 10:59 written, hour 10 rolled up
        since = datetime.fromtimestamp(HOUR, UTC)
        assert len(await svc.recorder.series("get", "s3", since, "1m")) == 60
        (hour,) = await svc.recorder.series("get", "s3", since, "1h")
        assert (hour.ts, hour.count, hour.bytes) == (since, 60, 600)
        assert close_to(hour.p50, 0.030, rel=0.1) and close_to(hour.p95, 0.057, rel=0.1)
        stored = await svc.db.scalar(
            "SELECT count(*) FROM metrics WHERE resolution = '1h' AND op = 'get'"
        )
        assert stored == 1

        clock.advance(8 * 86400)
        await svc.recorder.step()  # a week later: the minutes go, the hour stays
        assert await svc.recorder.series("get", "s3", since, "1m") == []
        (kept,) = await svc.recorder.series("get", "s3", since, "1h")
        assert kept.count == 60
    finally:
        await svc.stop()


# --- the live stream ----------------------------------------------------------------


async def test_the_metrics_event_streams_while_someone_listens(service: Service) -> None:
    everything = service.bus.subscribe()  # a catch-all does not start the stream
    await asyncio.sleep(0.6)
    heard = []
    while True:
        try:
            heard.append((await asyncio.wait_for(everything.__anext__(), 0.01)).topic)
        except TimeoutError:
            break
    assert "metrics" not in heard

    service.metrics.observe("put", "folder", 0.01)
    sub = service.bus.subscribe(["metrics"])
    events = []
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        events.append(await asyncio.wait_for(sub.__anext__(), 2))
    sub.close()
    everything.close()
    assert len(events) >= 3  # four a second; loosely, since this is no benchmark
    snap = MetricsSnapshot.model_validate(events[-1].data)
    assert op(snap, "put", "folder")["count"] == 1


# --- Prometheus ---------------------------------------------------------------------

SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)"
    r'(?:\{(?P<labels>(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*)\})?'
    r" (?P<value>[-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|NaN|Inf))$"
)
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> tuple[dict[tuple[str, frozenset[tuple[str, str]]], float], dict[str, str]]:
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(LABEL.findall(m["labels"] or ""))
        samples[(m["name"], labels)] = float(m["value"])
    return samples, types


def test_prometheus_text_parses() -> None:
    metrics = Metrics()
    for s in (0.01, 0.02, 0.03):
        metrics.observe("put", "drive", s, nbytes=100)
    metrics.observe("get", "drive", 0.1, ok=False)
    metrics.observe('odd"op\\', "folder", 0.1)
    metrics.hit("memory")
    metrics.miss("memory")
    metrics.ratio("transcript", 1000, 250)
    metrics.set_queue(queued=2, running=1, waiting=0)
    text = prometheus_text(metrics.snapshot())
    assert text.endswith("\n")
    samples, types = parse(text)

    def at(name: str, **labels: str) -> float:
        return samples[(name, frozenset(labels.items()))]

    assert types["tierkeeper_op_seconds"] == "summary"
    assert at("tierkeeper_op_seconds_count", op="put", tier="drive") == 3
    assert math.isclose(at("tierkeeper_op_seconds_sum", op="put", tier="drive"), 0.06)
    assert close_to(at("tierkeeper_op_seconds", op="put", tier="drive", quantile="0.5"), 0.02)
    assert at("tierkeeper_op_errors_total", op="get", tier="drive") == 1
    assert at("tierkeeper_op_bytes_total", op="put", tier="drive") == 300
    assert at("tierkeeper_op_seconds_count", op='odd\\"op\\\\', tier="folder") == 1
    assert at("tierkeeper_cache_hits_total", layer="memory") == 1
    assert at("tierkeeper_compression_ratio", kind="transcript") == 4.0
    assert at("tierkeeper_jobs", state="queued") == 2
