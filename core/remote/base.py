"""The one protocol every remote store implements: put, get, stat, list, delete.

Jobs never branch on which store they talk to. Errors say what a caller can
do about them: `ObjectNotFound` (the key is not there), `TransientError`
(try again later: network, 429, 5xx), `PermanentError` (retrying cannot
help: bad request, quota, permission), `NeedsReconnect` (the user must sign
in again). Retry, rate limiting, caching, logging and metrics are wrappers
around a store, never inside it.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol, TypeGuard, cast, runtime_checkable

from core.errors import ExitCode, TierkeeperError

ProgressFn = Callable[[int], None]
"""Called with the number of bytes moved since the last call."""


class RemoteError(TierkeeperError):
    """Base of every store error."""


class ObjectNotFound(RemoteError):
    pass


class TransientError(RemoteError):
    """Worth retrying after a pause (network drop, timeout, 429, 5xx).

    `retry_after` carries the pause the server asked for (a `Retry-After`
    header), which a retry wrapper must honour rather than its own guess.
    """

    def __init__(self, message: str, *, hint: str | None = None,
                 retry_after: float | None = None) -> None:  # fmt: skip
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class PermanentError(RemoteError):
    """Retrying cannot help (bad request, permission denied, quota exceeded)."""


class NeedsReconnect(RemoteError):
    """The account's token was revoked or expired for good: the user must sign in."""

    exit_code = ExitCode.NEEDS_USER


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    md5: str | None = None
    """Hex MD5 the store reports (Drive `md5Checksum`, S3 single-part ETag), if any."""
    sha256: str | None = None
    """Hex SHA-256 the store reports (S3 checksum), or that a folder store recorded."""
    modified: float | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PutSource:
    """What to upload: a file on disk (resumable) and its digests, computed beforehand."""

    path: Path
    size: int
    sha256: str
    md5: str
    keep_readable: bool = False
    """Must stay readable at once (a manifest): an archive store keeps it out of cold
    storage classes; other stores ignore it."""

    @classmethod
    def of_bytes(cls, path: Path, data: bytes, *, keep_readable: bool = False) -> PutSource:
        """A small file (a manifest, an index, a probe) already written at `path` from
        `data`, its digests taken from the bytes in memory."""
        return cls(path, len(data), hashlib.sha256(data).hexdigest(),
                   hashlib.md5(data, usedforsecurity=False).hexdigest(),
                   keep_readable=keep_readable)  # fmt: skip


class ResumeSlot(Protocol):
    """Where a store parks the handle of an upload in flight (a Drive session URI,
    an S3 upload id), so a job restarted after a crash resumes instead of restarting.

    The job owns the slot and persists it in its row; a slot belongs to one key
    and one content (`PutSource.sha256`), so a handle is never applied to other bytes.
    A store that resumes without help (a folder) may ignore it.
    """

    def load(self) -> str | None: ...

    async def save(self, handle: str | None) -> None:
        """Called with the new handle once the upload exists remotely, and with
        None once it has finished (or was found to be dead)."""
        ...


class Store(Protocol):
    """Keys are relative POSIX paths ('phase/sessions/session_x/manifest.json')."""

    name: str

    async def put(
        self,
        key: str,
        source: PutSource,
        progress: ProgressFn | None = None,
        *,
        resume: ResumeSlot | None = None,
    ) -> ObjectInfo:
        """Uploads atomically: a reader sees the old object or the whole new one.

        Putting a key that exists replaces it (one object per key, never two)."""
        ...

    async def get(
        self,
        key: str,
        dest: BinaryIO,
        *,
        offset: int = 0,
        length: int | None = None,
        progress: ProgressFn | None = None,
    ) -> int: ...

    async def stat(self, key: str) -> ObjectInfo: ...

    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]: ...

    async def delete(self, key: str) -> None: ...

    async def close(self) -> None: ...


@runtime_checkable
class BlockingBatch(Protocol):
    """A store that can also be driven from one worker thread, several objects a call
    (a folder target). A job that finds it (through the wrappers: `blocking_batch`) may
    do a whole small session in one thread instead of crossing to the loop per object;
    it asks for the capability, never for the kind of store."""

    root: Path

    def scratch(self) -> Path: ...

    def kept_scratch(self) -> Path: ...

    def put_many(
        self, items: Sequence[tuple[str, PutSource]], cancel: threading.Event
    ) -> list[ObjectInfo]: ...

    def read_small(self, key: str, cancel: threading.Event) -> bytes: ...

    def write_error(self, err: OSError, path: Path) -> RemoteError: ...


_BATCHING: dict[type, bool] = {}


def takes_batches(store: object) -> TypeGuard[BlockingBatch]:
    """`isinstance(store, BlockingBatch)`, asked once per class: a check against a
    runtime protocol inspects every member, and a backup asks it for every session of
    every wrapper around its store, on the event loop. Stores set their members in
    `__init__`, so one instance answers for its class."""
    kind = type(store)
    known = _BATCHING.get(kind)
    if known is None:
        known = _BATCHING[kind] = isinstance(store, BlockingBatch)
    return known


def blocking_batch(store: object) -> BlockingBatch | None:
    """The store under the wrappers when it takes blocking batches (a folder target)."""
    inner: object = store
    while inner is not None:
        if takes_batches(inner):
            return inner
        inner = getattr(inner, "inner", None)
    return None


SESSIONS_AT_ONCE = 4
"""Sessions a job keeps in flight on a store that does not ask for another number."""


def concurrency(store: object) -> int:
    """Sessions a job should keep in flight on `store`: its `concurrency` attribute, or
    that of the store it wraps (wrappers keep theirs in `inner`), else SESSIONS_AT_ONCE.

    A store whose cost is round trips (Drive) gains from many at once; a disk, whose
    cost is fsyncs and CPU, does not. Jobs ask this instead of asking what the store is."""
    inner: object = store
    while inner is not None:
        wanted = getattr(inner, "concurrency", None)
        if isinstance(wanted, int) and wanted > 0:
            return wanted
        inner = getattr(inner, "inner", None)
    return SESSIONS_AT_ONCE


def digests_what_it_holds(store: object) -> bool:
    """Whether the MD5 a put of `store` reports was computed by the store itself from the
    bytes it keeps (Drive's `md5Checksum`), looking through the wrappers. A store that
    passes on the digest it was given (a folder) or does not say leaves it False.

    Such an answer proves the bytes landed as sent, so a manifest need not be read back
    (a round trip per session, after all the others): see core/tier2/manifest_landing.py."""
    inner: object = store
    while inner is not None:
        said = getattr(inner, "digests_what_it_holds", None)
        if isinstance(said, bool):
            return said
        inner = getattr(inner, "inner", None)
    return False


def local_files(store: object) -> Callable[[str], Path | None] | None:
    """The store's `local_file(key)` when it keeps objects as plain files on this machine
    (a folder target), looking through the wrappers; else None.

    A reader that only reads (an archive build) then opens the object where it lies
    instead of copying it: the wrappers' retries and cache have nothing to add there."""
    return cast("Callable[[str], Path | None] | None", _method(store, "local_file"))


def folder_maker(store: object) -> Callable[[list[str]], Awaitable[None]] | None:
    """The store's `make_folders(paths)` when making many folders in one go saves it
    round trips (Drive, where a put into a new folder pays two for it), looking through
    the wrappers; else None (a disk makes a folder as cheaply as it writes a file)."""
    return cast("Callable[[list[str]], Awaitable[None]] | None", _method(store, "make_folders"))


def _method(store: object, name: str) -> object | None:
    """The first store from the outside in (wrappers keep theirs in `inner`) with a
    method of that name, as that bound method."""
    inner: object = store
    while inner is not None:
        found: object = getattr(inner, name, None)
        if callable(found):
            return found
        inner = getattr(inner, "inner", None)
    return None


def check_key(key: str) -> str:
    """Keys must stay inside the store's root whatever the store is."""
    parts = key.split("/")
    if (
        not key
        or key.startswith("/")
        or "\\" in key
        or "\x00" in key
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise PermanentError(f"{key!r} is not a valid object key")
    return key
