"""In-process publish/subscribe for job progress and change notices.

The publisher is the core (a job reporting progress many times a second); the
consumers are a GUI, a CLI progress bar, a daemon's socket. A slow consumer
must never slow the core down, so each subscriber has its own bounded buffer
that drops its oldest events when full: for progress, the newest value is the
one that matters. Subscriptions are registered the moment `subscribe()` is
called (not on the first iteration), so an event published right after
subscribing is never missed, and the bus holds them weakly, so a consumer that
walks away without closing leaks nothing.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections import deque
from collections.abc import AsyncIterator, Collection
from typing import Any

from core.models import Event


def topic_matches(topic: str, pattern: str) -> bool:
    """`pattern` names a topic or a family: "job" and "job." both match "job.progress"."""
    if topic == pattern:
        return True
    if pattern.endswith("."):
        return topic.startswith(pattern)
    return topic.startswith(pattern) and topic[len(pattern)] == "."


class Subscription(AsyncIterator[Event]):
    """One consumer's view of the bus: an async iterator with its own buffer."""

    def __init__(self, bus: EventBus, topics: Collection[str] | None, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._bus = bus
        self._patterns = None if topics is None else tuple(topics)
        self._maxsize = maxsize
        self._queue: deque[Event] = deque()
        self._wakeup = asyncio.Event()
        self._ended = False
        self.dropped = 0

    def wants(self, topic: str) -> bool:
        if self._patterns is None:
            return True
        return any(topic_matches(topic, p) for p in self._patterns)

    def _push(self, event: Event) -> bool:
        """Queues `event`; True when an older one had to be dropped for it."""
        dropped = len(self._queue) >= self._maxsize
        if dropped:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(event)
        self._wakeup.set()
        return dropped

    def _end(self) -> None:
        """The bus closed: deliver what is buffered, then stop."""
        self._ended = True
        self._wakeup.set()

    async def __anext__(self) -> Event:
        if self._bus._loop is None:
            self._bus._bind_loop()
        while not self._queue:
            if self._ended:
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._queue.popleft()

    def close(self) -> None:
        """Stops receiving at once; buffered events are discarded."""
        self._ended = True
        self._queue.clear()
        self._bus._forget(self)
        self._wakeup.set()

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    def __init__(self) -> None:
        self._subs: weakref.WeakSet[Subscription] = weakref.WeakSet()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._closed = False
        self.dropped = 0

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)

    def listening(self, topic: str) -> bool:
        """Whether a subscriber asked for `topic` (or its family) by name.

        Subscribers to everything do not count: a stream that costs work to produce
        (live metrics, four times a second) runs only for someone who asked for it."""
        return any(sub._patterns is not None and sub.wants(topic) for sub in list(self._subs))

    def _bind_loop(self) -> None:
        """Remembers the loop consumers live on, for publishers on other threads."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if loop is not self._loop:
            self._loop = loop
            self._loop_thread = threading.get_ident()

    def subscribe(self, topics: Collection[str] | None = None, maxsize: int = 1000) -> Subscription:
        """Events whose topic matches one of `topics` (all when None), from now on."""
        if isinstance(topics, str):
            topics = (topics,)
        sub = Subscription(self, topics, maxsize)
        if self._closed:
            sub._end()
        else:
            self._bind_loop()
            self._subs.add(sub)
        return sub

    def publish(self, topic: str, data: dict[str, Any]) -> None:
        """Delivers to every matching subscriber; must run on the loop's thread."""
        if self._closed:
            return
        if self._loop is None:
            self._bind_loop()
        event: Event | None = None
        for sub in list(self._subs):
            if not sub.wants(topic):
                continue
            if event is None:
                event = Event(topic=topic, data=data)
            if sub._push(event):
                self.dropped += 1

    def publish_threadsafe(self, topic: str, data: dict[str, Any]) -> None:
        """Like `publish`, from any thread: hands the event to the loop's thread."""
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread:
            # No loop seen yet means no subscriber to deliver to from another thread.
            if loop is not None:
                self.publish(topic, data)
            return
        try:
            loop.call_soon_threadsafe(self.publish, topic, data)
        except RuntimeError:
            pass  # the loop has closed: nobody is listening any more

    def close(self) -> None:
        """Ends every subscription's iteration once it has drained its buffer."""
        self._closed = True
        for sub in list(self._subs):
            sub._end()
        self._subs = weakref.WeakSet()

    def _forget(self, sub: Subscription) -> None:
        self._subs.discard(sub)
