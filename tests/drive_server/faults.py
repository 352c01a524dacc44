"""Fault injection: failures Google produces that a test cannot provoke for real.

A test queues rules from its own thread; the server thread consults them for every request.
A rule matches by endpoint name, HTTP method and/or a path regex, and fires on the `nth`
matching request (counted from when the rule was added) and the `times - 1` after it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypedDict, Unpack

from tests.drive_server import errors

# Endpoint names the server reports (also the keys of the request counters).
ENDPOINTS = (
    "token",
    "auth",
    "about.get",
    "files.list",
    "files.create",
    "files.get",
    "files.get_media",
    "files.update",
    "files.delete",
    "upload.multipart",
    "upload.media",
    "upload.start",
    "upload.chunk",
    "upload.status",
)


@dataclass(frozen=True)
class Respond:
    """Answer with this Google error instead of handling the request."""

    error: errors.DriveError


@dataclass(frozen=True)
class Drop:
    """Read `after_bytes` of the body, then reset the connection without a response.

    With `keep_received`, bytes read from an upload chunk are kept in the session first, so a
    status query then reports an offset in the middle of the chunk.
    """

    after_bytes: int = 0
    keep_received: bool = False


@dataclass(frozen=True)
class Delay:
    """Wait this long, then handle the request normally (or apply the next matching fault)."""

    seconds: float


@dataclass(frozen=True)
class SlowAnswer:
    """Handle the request (its effects happen), then hold the answer this long: a client
    that gives up first has lost the answer to something Google did."""

    seconds: float


Action = Respond | Drop | Delay | SlowAnswer


class Match(TypedDict, total=False):
    """Which requests a rule applies to; omitted criteria match everything."""

    endpoint: str | Iterable[str] | None
    method: str | None
    path: str | None
    nth: int
    times: int | None


@dataclass
class FaultRule:
    action: Action
    endpoints: frozenset[str] | None
    method: str | None
    path: re.Pattern[str] | None
    nth: int
    times: int | None  # None: forever
    seen: int = 0
    fired: int = 0

    def matches(self, method: str, path: str, endpoint: str) -> bool:
        if self.endpoints is not None and endpoint not in self.endpoints:
            return False
        if self.method is not None and method.upper() != self.method:
            return False
        return self.path is None or self.path.search(path) is not None

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times


@dataclass(frozen=True)
class Fired:
    endpoint: str
    method: str
    path: str
    action: Action


@dataclass
class FaultInjector:
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _rules: list[FaultRule] = field(default_factory=list)
    _fired: list[Fired] = field(default_factory=list)
    _wrong_md5: int = 0

    def add(
        self,
        action: Action,
        *,
        endpoint: str | Iterable[str] | None = None,
        method: str | None = None,
        path: str | None = None,
        nth: int = 1,
        times: int | None = 1,
    ) -> FaultRule:
        if nth < 1:
            raise ValueError("nth counts from 1")
        names: frozenset[str] | None = None
        if endpoint is not None:
            names = frozenset([endpoint] if isinstance(endpoint, str) else endpoint)
            unknown = names - set(ENDPOINTS)
            if unknown:
                raise ValueError(f"unknown endpoint(s) {sorted(unknown)}; known: {ENDPOINTS}")
        rule = FaultRule(
            action=action,
            endpoints=names,
            method=method.upper() if method else None,
            path=re.compile(path) if path else None,
            nth=nth,
            times=times,
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    # --- the failures Drive is known for ----------------------------------------------

    def user_rate_limit(
        self, *, retry_after: float | None = None, **match: Unpack[Match]
    ) -> FaultRule:
        """403 userRateLimitExceeded (retryable; the client must back off).

        `retry_after` adds a `Retry-After: <seconds>` header, as Google sometimes sends.
        """
        return self.add(Respond(errors.user_rate_limit(retry_after)), **match)

    def rate_limit(self, *, retry_after: float | None = None, **match: Unpack[Match]) -> FaultRule:
        """429 rateLimitExceeded (optionally with a `Retry-After: <seconds>` header)."""
        return self.add(Respond(errors.rate_limit(retry_after)), **match)

    def server_error(self, status: int = 500, **match: Unpack[Match]) -> FaultRule:
        """500 internalError / 502, 503 backendError."""
        return self.add(Respond(errors.backend_error(status)), **match)

    def expired_token(self, **match: Unpack[Match]) -> FaultRule:
        """401 authError even for a good token (the token itself stays valid)."""
        return self.add(Respond(errors.auth_error()), **match)

    def quota_exceeded(self, **match: Unpack[Match]) -> FaultRule:
        """403 storageQuotaExceeded (not retryable)."""
        return self.add(Respond(errors.quota_exceeded()), **match)

    def drop_connection(
        self, *, after_bytes: int = 0, keep_received: bool = False, **match: Unpack[Match]
    ) -> FaultRule:
        return self.add(Drop(after_bytes, keep_received), **match)

    def delay(self, seconds: float, **match: Unpack[Match]) -> FaultRule:
        return self.add(Delay(seconds), **match)

    def slow_answer(self, seconds: float, **match: Unpack[Match]) -> FaultRule:
        return self.add(SlowAnswer(seconds), **match)

    def error(
        self, status: int, reason: str, message: str = "Injected error", **match: Unpack[Match]
    ) -> FaultRule:
        """Any other Google-shaped error."""
        return self.add(Respond(errors.DriveError(status, reason, message)), **match)

    def wrong_md5(self, count: int = 1) -> None:
        """The next `count` files given content report an md5Checksum that does not match it.

        The stored bytes stay correct; only the reported checksum lies (and keeps lying on
        later files.get), which is what a product's verify-after-upload step must catch.
        """
        with self._lock:
            self._wrong_md5 += count

    def consume_wrong_md5(self) -> bool:
        with self._lock:
            if self._wrong_md5 <= 0:
                return False
            self._wrong_md5 -= 1
            return True

    # --- bookkeeping ------------------------------------------------------------------

    def take(self, method: str, path: str, endpoint: str) -> list[Action]:
        """Called by the server once per request: the actions that fire for it, in order."""
        fired: list[Action] = []
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, path, endpoint):
                    continue
                rule.seen += 1
                if rule.seen >= rule.nth and not rule.exhausted:
                    rule.fired += 1
                    fired.append(rule.action)
                    self._fired.append(Fired(endpoint, method, path, rule.action))
            self._rules = [r for r in self._rules if not r.exhausted]
        return fired

    def pending(self) -> list[FaultRule]:
        """Rules that have not fired as often as asked — a test can assert this is empty."""
        with self._lock:
            return list(self._rules)

    def fired(self) -> list[Fired]:
        with self._lock:
            return list(self._fired)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
