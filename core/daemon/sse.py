"""The event bus as Server-Sent Events: one `data:` line of JSON per event.

A comment line goes out as soon as the subscription exists, so a client can wait for it
before its next call and never miss that call's events; another every `heartbeat`
seconds keeps idle proxies and dead peers from going unnoticed. A slow reader loses
the oldest events, never the daemon's memory or anyone else's time. At shutdown the
daemon closes every open subscription, which ends each stream with a clean EOF.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from core.events import EventBus, Subscription

STREAMS = web.AppKey[set[Subscription]]("event_streams")
HEARTBEAT = web.AppKey("heartbeat", float)

SUBSCRIBED = b": subscribed\n\n"
PING = b": heartbeat\n\n"
DROPPED = b": dropped %d\n\n"
"""Events this stream lost because its reader was slow: a comment, so a plain SSE
reader skips it; `HttpClient` adds it to the stream's `dropped` count."""


async def stream(
    request: web.Request, bus: EventBus, topics: list[str] | None = None
) -> web.StreamResponse:
    streams = request.app[STREAMS]
    sub = bus.subscribe(topics)
    streams.add(sub)
    try:
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                     "X-Accel-Buffering": "no"}
        )  # fmt: skip
        await resp.prepare(request)
        with contextlib.suppress(ConnectionError):  # the client went away: nothing to say
            await resp.write(SUBSCRIBED)
            await _relay(sub, resp, request.app[HEARTBEAT])
            await resp.write_eof()
        return resp
    finally:
        streams.discard(sub)
        sub.close()


async def _relay(sub: Subscription, resp: web.StreamResponse, heartbeat: float) -> None:
    """Writing waits while the socket is full, so a reader that falls behind holds at
    most the subscription's bounded buffer here: the oldest events give way, and the
    reader is told how many with a `: dropped N` comment before the next event."""
    told = 0
    while True:
        try:
            event = await asyncio.wait_for(sub.__anext__(), heartbeat)
        except TimeoutError:
            await resp.write(PING)
            continue
        except StopAsyncIteration:
            return
        if sub.dropped > told:
            await resp.write(DROPPED % (sub.dropped - told))
            told = sub.dropped
        await resp.write(b"data: " + event.model_dump_json().encode("utf-8") + b"\n\n")


async def end_streams(app: web.Application) -> None:
    """on_shutdown: ends every stream now instead of after the shutdown timeout."""
    streams = app[STREAMS]
    for sub in list(streams):
        sub.close()
