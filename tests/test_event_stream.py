"""The event stream survives a slow consumer: bounded memory, nobody else waits, and
what the slow one lost is counted, not silently gone.

A real daemon on a real socket; the slow reader is an HTTP connection that stops
reading, so the kernel's socket buffers fill and the daemon's writes really block.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from core.client import HttpClient, connect_daemon
from core.daemon import sse
from core.daemon.server import Daemon
from core.events import Subscription
from core.models import Event

PAD = "x" * 1000
"""About 1 kB an event: a few thousand are megabytes, past what socket buffers hold."""
BURST = 4000
BATCH = 100


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    d = await Daemon.start(tmp_path / "ws", socket=tmp_path / "d.sock", run_jobs=False,
                           schedule=False)  # fmt: skip
    try:
        yield d
    finally:
        await d.stop()


@pytest.fixture
async def client(daemon: Daemon) -> AsyncIterator[HttpClient]:
    http = await connect_daemon(socket=daemon.socket)
    assert http is not None
    try:
        yield http
    finally:
        await http.close()


async def _read_events(content: aiohttp.StreamReader, until: str) -> tuple[list[Event], int]:
    """Reads a raw SSE stream up to the event with topic `until`: (events, dropped)."""
    events: list[Event] = []
    dropped = 0
    while True:
        line = (await asyncio.wait_for(content.readline(), 30)).rstrip(b"\n")
        if line.startswith(b": dropped "):
            dropped += int(line.removeprefix(b": dropped "))
        elif line.startswith(b"data: "):
            events.append(Event.model_validate_json(line.removeprefix(b"data: ")))
            if events[-1].topic == until:
                return events, dropped


async def test_a_reader_that_stops_reading_holds_up_nobody_and_is_told_what_it_lost(
    daemon: Daemon, client: HttpClient
) -> None:
    bus = daemon.service.bus
    connector = aiohttp.UnixConnector(path=str(daemon.socket))
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.get("http://tierkeeper/v1/events", params={"topics": "load."}) as slow,
    ):
        assert await slow.content.readline() == b": subscribed\n"
        fast = client.subscribe(["load"])
        await client.status()  # returns once the fast subscription is registered
        received: list[int] = []

        async def catch_up(upto: int) -> None:
            while len(received) < upto:
                event = await fast.__anext__()
                received.append(event.data["n"])

        # The slow reader reads nothing from here on. Each batch must still reach the
        # fast reader, and a request must still be answered, before the next batch.
        for start in range(0, BURST, BATCH):
            for n in range(start, start + BATCH):
                bus.publish("load.tick", {"n": n, "pad": PAD})
            await asyncio.wait_for(catch_up(start + BATCH), 30)
            assert (await asyncio.wait_for(client.status(), 30)).workspace
        assert received == list(range(BURST)) and fast.dropped == 0  # type: ignore[attr-defined]

        # The slow one's backlog stays within its subscription's bound in the daemon.
        (stuck,) = [s for s in daemon_streams(daemon) if s._patterns == ("load.",)]
        assert len(stuck._queue) <= stuck._maxsize
        assert stuck.dropped > 0

        # It reads again: the rest arrives, every event lost is counted, and it goes on.
        bus.publish("load.end", {"n": BURST})
        events, dropped = await _read_events(slow.content, until="load.end")
        ticks = [e.data["n"] for e in events if e.topic == "load.tick"]
        assert ticks == sorted(ticks) and len(set(ticks)) == len(ticks)  # in order, no repeats
        assert dropped == stuck.dropped and len(ticks) + dropped == BURST
        bus.publish("load.later", {"n": -1})
        events, dropped = await _read_events(slow.content, until="load.later")
        assert [e.topic for e in events] == ["load.later"] and dropped == 0
        await fast.aclose()  # type: ignore[attr-defined]


def daemon_streams(daemon: Daemon) -> set[Subscription]:
    app = daemon._runner.app
    assert app is not None
    return app[sse.STREAMS]


async def test_the_http_client_counts_events_the_daemon_dropped_for_it(
    daemon: Daemon, client: HttpClient
) -> None:
    stream = client.subscribe(["burst"])
    await client.status()
    for n in range(BURST):  # one go, no await: more than a subscription's buffer holds
        daemon.service.bus.publish("burst.tick", {"n": n})
    daemon.service.bus.publish("burst.end", {})
    seen: list[int] = []
    async for event in stream:
        if event.topic == "burst.end":
            break
        seen.append(event.data["n"])
    assert stream.dropped > 0  # type: ignore[attr-defined]
    assert len(seen) + stream.dropped == BURST  # type: ignore[attr-defined]
    assert seen == list(range(BURST - len(seen), BURST))  # the newest survive, in order
    await stream.aclose()  # type: ignore[attr-defined]


async def test_dropped_markers_are_comments_a_plain_sse_reader_skips(daemon: Daemon) -> None:
    connector = aiohttp.UnixConnector(path=str(daemon.socket))
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.get("http://tierkeeper/v1/events?topics=burst") as resp,
    ):
        assert await resp.content.readline() == b": subscribed\n"
        for n in range(1500):
            daemon.service.bus.publish("burst.tick", {"n": n})
        lines = [await asyncio.wait_for(resp.content.readline(), 10) for _ in range(5)]
    assert lines[:3] == [b"\n", b": dropped 500\n", b"\n"]
    assert orjson.loads(lines[3].removeprefix(b"data: "))["data"] == {"n": 500}
