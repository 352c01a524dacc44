from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import AsyncIterator

import pytest

from core.events import EventBus, topic_matches
from core.models import Event


async def drain(sub: AsyncIterator[Event], count: int) -> list[Event]:
    out: list[Event] = []
    async for event in sub:
        out.append(event)
        if len(out) == count:
            break
    return out


async def test_every_subscriber_gets_every_event_in_order() -> None:
    bus = EventBus()
    a, b = bus.subscribe(), bus.subscribe()
    for n in range(5):
        bus.publish("job.progress", {"n": n})
    for sub in (a, b):
        events = await drain(sub, 5)
        assert [e.data["n"] for e in events] == [0, 1, 2, 3, 4]
        assert {e.topic for e in events} == {"job.progress"}


async def test_an_event_published_right_after_subscribing_is_not_missed() -> None:
    bus = EventBus()
    sub = bus.subscribe()  # not iterated yet
    bus.publish("job.queued", {"id": 1})
    assert (await drain(sub, 1))[0].data == {"id": 1}


def test_topic_patterns() -> None:
    assert topic_matches("job.progress", "job.")
    assert topic_matches("job.progress", "job")
    assert topic_matches("job.progress", "job.progress")
    assert not topic_matches("jobs.changed", "job")
    assert not topic_matches("job", "job.")
    assert not topic_matches("job.progress", "job.progress.x")


async def test_topic_filter_delivers_only_matching_events() -> None:
    bus = EventBus()
    jobs = bus.subscribe(["job."])
    finished = bus.subscribe(["job.finished", "session"])
    everything = bus.subscribe()
    bus.publish("job.progress", {"n": 1})
    bus.publish("session.imported", {"n": 2})
    bus.publish("jobs.other", {"n": 3})
    bus.publish("job.finished", {"n": 4})
    bus.close()
    assert [e.data["n"] async for e in jobs] == [1, 4]
    assert [e.data["n"] async for e in finished] == [2, 4]
    assert [e.data["n"] async for e in everything] == [1, 2, 3, 4]


async def test_slow_consumer_loses_its_oldest_events_and_nobody_else_does() -> None:
    bus = EventBus()
    slow = bus.subscribe(maxsize=3)
    fast = bus.subscribe()
    for n in range(10):
        bus.publish("job.progress", {"n": n})  # synchronous: returns without a consumer running
    assert bus.dropped == 7
    assert slow.dropped == 7
    assert fast.dropped == 0
    assert [e.data["n"] for e in await drain(slow, 3)] == [7, 8, 9]
    assert [e.data["n"] for e in await drain(fast, 10)] == list(range(10))


async def test_close_ends_iteration_after_delivering_what_was_buffered() -> None:
    bus = EventBus()
    received: list[int] = []

    async def consume() -> None:
        async for event in bus.subscribe():
            received.append(event.data["n"])

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0)  # the consumer is now waiting for an event
    bus.publish("x", {"n": 1})
    bus.publish("x", {"n": 2})
    bus.close()
    await asyncio.wait_for(consumer, 5)
    assert received == [1, 2]
    bus.publish("x", {"n": 3})  # after close: a no-op, not an error
    assert [e async for e in bus.subscribe()] == []


async def test_closing_a_subscription_unsubscribes_it() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    other = bus.subscribe()
    assert bus.subscriber_count == 2
    bus.publish("x", {"n": 1})
    await sub.aclose()
    assert bus.subscriber_count == 1
    bus.publish("x", {"n": 2})
    assert [e async for e in sub] == []  # ended, its buffer discarded
    async with other:
        assert (await drain(other, 2))[-1].data == {"n": 2}
    assert bus.subscriber_count == 0


async def test_a_consumer_that_walks_away_leaks_no_subscription() -> None:
    bus = EventBus()

    async def first_event() -> Event:
        async for event in bus.subscribe():
            return event  # leaves without closing the subscription
        raise AssertionError("no event")

    task = asyncio.create_task(first_event())
    await asyncio.sleep(0)
    bus.publish("x", {"n": 1})
    assert (await task).data == {"n": 1}
    del task
    gc.collect()
    assert bus.subscriber_count == 0
    for n in range(5000):
        bus.publish("x", {"n": n})  # nothing buffers them any more
    assert bus.dropped == 0


async def test_publish_threadsafe_from_worker_threads() -> None:
    bus = EventBus()
    sub = bus.subscribe(["t"])

    def produce(start: int) -> None:
        for n in range(start, start + 100):
            bus.publish_threadsafe("t", {"n": n})

    threads = [threading.Thread(target=produce, args=(k * 100,)) for k in range(3)]
    for thread in threads:
        thread.start()
    events = await drain(sub, 300)
    for thread in threads:
        thread.join()
    numbers = [e.data["n"] for e in events]
    assert sorted(numbers) == list(range(300))
    for k in range(3):  # each thread's events keep their order
        mine = [n for n in numbers if k * 100 <= n < (k + 1) * 100]
        assert mine == sorted(mine)
    bus.publish_threadsafe("t", {"n": -1})  # from the loop's own thread: delivered directly
    assert (await drain(sub, 1))[0].data == {"n": -1}


def test_maxsize_must_be_positive() -> None:
    with pytest.raises(ValueError):
        EventBus().subscribe(maxsize=0)
