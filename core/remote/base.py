"""The one protocol every remote store implements: put, get, stat, list, delete.

Jobs never branch on which store they talk to. Errors say what a caller can
do about them: `ObjectNotFound` (the key is not there), `TransientError`
(try again later: network, 429, 5xx), `PermanentError` (retrying cannot
help: bad request, quota, permission), `NeedsReconnect` (the user must sign
in again). Retry, rate limiting, caching, logging and metrics are wrappers
around a store, never inside it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from core.errors import ExitCode, TierkeeperError

ProgressFn = Callable[[int], None]
"""Called with the number of bytes moved since the last call."""


class RemoteError(TierkeeperError):
    """Base of every store error."""


class ObjectNotFound(RemoteError):
    pass


class TransientError(RemoteError):
    """Worth retrying after a pause (network drop, timeout, 429, 5xx)."""


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


class Store(Protocol):
    """Keys are relative POSIX paths ('phase/sessions/session_x/manifest.json')."""

    name: str

    async def put(self, key: str, source: PutSource, progress: ProgressFn | None = None
                  ) -> ObjectInfo: ...  # fmt: skip

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
