"""The append-only activity log: `logs/session_<id>.jsonl`, one JSON event a line.

Several writers share one file: this class (in the service or the CLI) and the
Claude Code hook, a separate short-lived process per tool call. They never wait
for each other; what keeps the file whole is that every line goes out in a
single `write` on an `O_APPEND` descriptor, which the kernel places at the end
of the file as one piece, so lines from different processes interleave only at
line boundaries.

Durability is grouped: an fsync costs ~100x an append, so at most one fsync
runs per `fsync_interval` (an append after a quiet spell fsyncs at once; a
burst is covered by one timer-driven fsync at most an interval later). A crash
loses at most that interval of events, never a line in the middle.

A crash can still leave a torn last line (a writer killed mid-`write`, or a
disk that filled up). `open` sets those bytes aside in `<log>.torn` before
truncating, so they are never silently dropped and the next line starts clean.

But an unterminated last line is not always torn: `open` runs at session start
and end while hooks may be appending, and Linux grows the file page by page
during a large write, so a line in progress looks exactly like a torn one.
Cutting it would lose an event and leave its second half glued to nothing. So
every write holds a shared advisory lock and the repair looks only under the
exclusive one (`core.local.log_lock`); when writers keep it busy past a bound,
the repair is left for the next open rather than delaying a session start.
Without locks (Windows) the repair runs unguarded, as it always did.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from core.durable import fsync_dir as _fsync_dir
from core.errors import BadInputError, StorageFullError
from core.local import log_lock
from core.redact import redact_obj, redact_text

__all__ = [
    "ActivityEvent",
    "ActivityLog",
    "BadLogLineError",
    "TornTail",
    "read_events",
]

FIELDS = (
    "ts",
    "session",
    "agent",
    "type",
    "tool",
    "duration_ms",
    "tokens_in",
    "tokens_out",
    "payload",
)
"""The keys of every line, in this order (the hook writes the same shape)."""

TORN_SUFFIX = ".torn"
_FILE_MODE = 0o600  # events hold prompts, commands and file contents
_OPEN_FLAGS = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
_SCAN_CHUNK = 64 * 1024


def now_iso() -> str:
    """UTC with microseconds, e.g. `2026-01-31T09:15:02.123456+00:00`."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass
class ActivityEvent:
    session: str
    type: str
    agent: str | None = None
    tool: str | None = None
    duration_ms: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    payload: dict[str, Any] | None = None
    ts: str | None = None

    def to_line(self) -> bytes:
        """The redacted JSON line, `\\n` included, exactly as it goes to disk."""
        if not isinstance(self.session, str) or not isinstance(self.type, str):
            raise BadInputError("an activity event needs a string session and type")
        record = {
            "ts": self.ts if self.ts is not None else now_iso(),
            "session": self.session,
            "agent": _redact_opt(self.agent),
            "type": redact_text(self.type),
            "tool": _redact_opt(self.tool),
            "duration_ms": self.duration_ms,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "payload": None if self.payload is None else redact_obj(self.payload),
        }
        try:
            return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
        except orjson.JSONEncodeError as exc:
            raise BadInputError(f"activity event cannot be written as JSON: {exc}") from exc


def _redact_opt(value: str | None) -> str | None:
    return None if value is None else redact_text(value)


@dataclass(frozen=True)
class TornTail:
    """An unterminated last line that `ActivityLog.open` moved to the sidecar."""

    offset: int
    """Where the torn bytes started in the log (the log's size after recovery)."""
    size: int
    sidecar: Path
    data: bytes


class BadLogLineError(BadInputError):
    """A log line that is not a valid event; reading stops there instead of skipping it."""

    def __init__(self, path: Path, line_no: int, offset: int, reason: str) -> None:
        super().__init__(
            f"{path}: line {line_no} (byte {offset}) is not a valid activity event: {reason}",
            hint="the raw line is kept; an import keeps it and flags it",
        )
        self.path = path
        self.line_no = line_no
        self.offset = offset


class ActivityLog:
    """One open log file. Thread-safe; several instances/processes may share the file."""

    def __init__(
        self,
        path: Path,
        fd: int,
        fsync_interval: float,
        recovered: TornTail | None,
        *,
        repair_deferred: bool = False,
    ) -> None:
        self.path = path
        self.recovered = recovered
        self.repair_deferred = repair_deferred
        """True when the last line was unterminated but writers kept the lock busy."""
        self._fd = fd
        self._interval = fsync_interval
        self._lock = threading.Lock()  # the fd, the dirty flag, the timer
        self._sync_lock = threading.Lock()  # one fsync at a time; close waits for it
        self._dirty = False
        self._last_sync = time.monotonic()
        self._timer: threading.Timer | None = None
        self._sync_error: OSError | None = None

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        fsync_interval: float = 0.1,
        repair_wait: float | None = None,
    ) -> ActivityLog:
        """Open (creating it and its folder) and set aside a torn last line, if any.

        Safe while other processes append: a line still being written is left
        alone. If writers hold the lock for all of `repair_wait` seconds
        (default `log_lock.REPAIR_WAIT`) the repair is skipped
        (`repair_deferred`) and the next open tries again.
        """
        if fsync_interval < 0:
            raise ValueError("fsync_interval must be >= 0")
        try:
            fd = os.open(path, _OPEN_FLAGS, _FILE_MODE)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, _OPEN_FLAGS, _FILE_MODE)
        try:
            recovered, deferred = _repair_tail(path, fd, repair_wait)
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd, fsync_interval, recovered, repair_deferred=deferred)

    # writing -----------------------------------------------------------------------
    def append(self, event: ActivityEvent) -> None:
        """Redact, encode and write one line; fsync when the last fsync is old enough."""
        line = event.to_line()
        with self._lock:
            if self._fd < 0:
                raise ValueError(f"activity log {self.path} is closed")
            _write_line(self._fd, line, self.path)
            self._dirty = True
            due = time.monotonic() - self._last_sync >= self._interval
            if not due:
                self._arm_timer()
        if due:
            self._sync(wait=False)

    def sync(self) -> None:
        """fsync now (if anything was written since the last one)."""
        self._sync(wait=True)

    def close(self) -> None:
        """fsync what is pending and close; safe to call twice."""
        with self._sync_lock:
            with self._lock:
                if self._fd < 0:
                    return
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
                fd, dirty = self._fd, self._dirty
                self._fd = -1
                self._dirty = False
            try:
                if dirty:
                    os.fsync(fd)
            finally:
                os.close(fd)
        self._raise_sync_error()

    def __enter__(self) -> ActivityLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # group fsync -------------------------------------------------------------------
    def _arm_timer(self) -> None:
        """Make sure a pending write is fsynced within the interval (caller holds _lock)."""
        if self._timer is not None:
            return
        delay = max(0.0, self._interval - (time.monotonic() - self._last_sync))
        timer = threading.Timer(delay, self._on_timer)
        timer.daemon = True
        self._timer = timer
        timer.start()

    def _on_timer(self) -> None:
        with self._lock:
            self._timer = None
        try:
            self._sync(wait=True)
        except OSError as exc:  # reported by the next sync() or close()
            self._sync_error = exc

    def _sync(self, *, wait: bool) -> None:
        if not self._sync_lock.acquire(blocking=wait):
            with self._lock:  # an fsync is running; make sure one follows it
                if self._fd >= 0:
                    self._arm_timer()
            return
        try:
            with self._lock:
                if self._fd < 0 or not self._dirty:
                    return
                self._dirty = False
                fd = self._fd
            # outside _lock so appends go on during the fsync; close() waits on _sync_lock
            try:
                os.fsync(fd)
            except OSError:
                with self._lock:
                    self._dirty = True
                raise
            self._last_sync = time.monotonic()
        finally:
            self._sync_lock.release()
        if wait:
            self._raise_sync_error()

    def _raise_sync_error(self) -> None:
        error, self._sync_error = self._sync_error, None
        if error is not None:
            raise error


def _write_line(fd: int, line: bytes, path: Path) -> None:
    """One `write` under the writers' lock, so `open` elsewhere never cuts it short."""
    locked = log_lock.lock_shared(fd) == log_lock.HELD  # not held: write anyway
    try:
        _write_whole(fd, line, path)
    finally:
        if locked:
            log_lock.unlock(fd)


def _write_whole(fd: int, line: bytes, path: Path) -> None:
    try:
        written = os.write(fd, line)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFullError(f"The disk is full; could not append to {path}") from exc
        raise
    if written != len(line):
        try:  # end the stub so the next event starts on a line of its own
            os.write(fd, b"\n")
        except OSError:
            pass
        raise StorageFullError(
            f"Only {written} of {len(line)} bytes reached {path}; the disk may be full"
        )


def _repair_tail(path: Path, fd: int, wait: float | None) -> tuple[TornTail | None, bool]:
    """Set aside an unterminated tail that no writer owns; True when writers kept it busy."""
    if not _unterminated(fd, os.fstat(fd).st_size):
        return None, False  # the usual case: no lock needed, writers never wait
    state = log_lock.lock_exclusive(fd, wait)
    if state == log_lock.BUSY:
        return None, True
    try:
        return _set_aside_torn_tail(path, fd), False
    finally:
        if state == log_lock.HELD:
            log_lock.unlock(fd)


def _unterminated(fd: int, size: int) -> bool:
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"


def _set_aside_torn_tail(path: Path, fd: int) -> TornTail | None:
    """Move the bytes after the last newline to `<path>.torn`, then truncate to that newline.

    The caller holds the exclusive lock (or there are no locks here): a tail
    seen now is no writer's line in progress.
    """
    size = os.fstat(fd).st_size
    if not _unterminated(fd, size):
        return None  # the write we saw in progress has finished
    start = _after_last_newline(fd, size)
    data = os.pread(fd, size - start, start)
    sidecar = path.with_name(path.name + TORN_SUFFIX)
    header = (
        f"# torn tail of {path.name}: {len(data)} bytes from byte offset {start}, "
        f"set aside {now_iso()}; the raw bytes follow, then a newline\n"
    ).encode()
    side_fd = os.open(sidecar, os.O_WRONLY | os.O_APPEND | os.O_CREAT, _FILE_MODE)
    try:
        os.write(side_fd, header + data + b"\n")
        os.fsync(side_fd)
    finally:
        os.close(side_fd)
    _fsync_dir(path.parent)
    if os.fstat(fd).st_size != size:
        # A writer without the lock (no locks here, or it gave up waiting) appended
        # meanwhile: truncating would take its line too. The sidecar keeps a copy.
        return None
    os.ftruncate(fd, start)  # only after the bytes are safe in the sidecar
    os.fsync(fd)
    return TornTail(offset=start, size=len(data), sidecar=sidecar, data=data)


def _after_last_newline(fd: int, size: int) -> int:
    end = size
    while end > 0:
        begin = max(0, end - _SCAN_CHUNK)
        chunk = os.pread(fd, end - begin, begin)
        idx = chunk.rfind(b"\n")
        if idx >= 0:
            return begin + idx + 1
        end = begin
    return 0


def read_events(path: Path) -> Iterator[ActivityEvent]:
    """Every event in file order; raises `BadLogLineError` at the first bad line.

    An unterminated last line is bad too (a torn tail that `open` has not set
    aside yet, or a write still in progress): nothing is skipped silently.
    """
    offset = 0
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            if not raw.endswith(b"\n"):
                raise BadLogLineError(path, line_no, offset, "the last line is unterminated")
            yield _parse_line(raw, path, line_no, offset)
            offset += len(raw)


def _parse_line(raw: bytes, path: Path, line_no: int, offset: int) -> ActivityEvent:
    def bad(reason: str) -> BadLogLineError:
        return BadLogLineError(path, line_no, offset, reason)

    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad(f"invalid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise bad("not a JSON object")
    unknown = set(obj) - set(FIELDS)
    if unknown:
        raise bad(f"unknown keys {sorted(unknown)}")
    for key in ("ts", "session", "type"):
        if not isinstance(obj.get(key), str):
            raise bad(f"{key!r} is missing or not a string")
    for key in ("agent", "tool"):
        if obj.get(key) is not None and not isinstance(obj[key], str):
            raise bad(f"{key!r} is not a string or null")
    duration = obj.get("duration_ms")
    if duration is not None and (
        isinstance(duration, bool) or not isinstance(duration, int | float)
    ):
        raise bad("'duration_ms' is not a number or null")
    for key in ("tokens_in", "tokens_out"):
        value = obj.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise bad(f"{key!r} is not an integer or null")
    payload = obj.get("payload")
    if payload is not None and not isinstance(payload, dict):
        raise bad("'payload' is not an object or null")
    return ActivityEvent(
        session=obj["session"],
        type=obj["type"],
        agent=obj.get("agent"),
        tool=obj.get("tool"),
        duration_ms=None if duration is None else float(duration),
        tokens_in=obj.get("tokens_in"),
        tokens_out=obj.get("tokens_out"),
        payload=payload,
        ts=obj["ts"],
    )
