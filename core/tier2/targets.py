"""From a target in config.toml to a store object, and the check that it works."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from core.cache.objects import ObjectCache
from core.cache.store import CachingStore, cache_namespace
from core.config import TargetConfig
from core.errors import TierkeeperError
from core.metrics.registry import Metrics
from core.metrics.store import MeteredStore
from core.remote.base import ObjectNotFound, PutSource, Store
from core.remote.folder import FolderStore
from core.remote.retry import RetryingStore


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long one operation keeps trying before its job is parked as waiting.

    Short on purpose (about 4 s on average, under 8 s at worst): past that, the
    job's waiting state and the queue's own probe (backoff up to 5 minutes) are
    the better place to wait, and the user hears about it sooner."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 8.0


def open_store(
    target: TargetConfig,
    scope: str,
    retry: RetryPolicy | None = None,
    metrics: Metrics | None = None,
    cache: ObjectCache | None = None,
    *,
    read_through: bool = True,
) -> Store:
    """The target's store wrapped in the retry policy; `scope` names its keyring entries.

    With `metrics`, every attempt is timed (inside the retry, so retries show). With
    `cache`, reads go through it and writes invalidate it; it sits outside the retry and
    the timing, so a hit costs no remote call and is not counted as one.
    `read_through=False` keeps the invalidation but always reads the remote (verify)."""
    policy = retry or RetryPolicy()
    inner: Store
    if target.kind == "drive":
        from core.tier2.drive_target import open_drive  # the Drive client is slow to import

        inner = open_drive(target, scope)
    elif target.kind == "s3":
        from core.tier2.s3_target import open_s3  # boto3 is slow to import

        inner = open_s3(target, scope)
    else:
        assert target.path is not None  # the config refuses a folder target without one
        inner = FolderStore(Path(target.path).expanduser(), name=target.name)
    if metrics is not None:
        inner = MeteredStore(inner, metrics, target.kind)
    retrying = RetryingStore(
        inner,
        attempts=policy.attempts,
        base_delay=policy.base_delay,
        max_delay=policy.max_delay,
    )
    if cache is None:
        return retrying
    namespace = cache_namespace(target.kind, target.name, target.where, target.prefix)
    return CachingStore(retrying, cache, namespace, read_through=read_through)


def secrets_scope(workspace_root: Path) -> str:
    """A short stable tag of the workspace, part of every keyring entry's name."""
    return hashlib.sha256(str(workspace_root.resolve()).encode()).hexdigest()[:12]


def resource_of(target_name: str) -> str:
    """The job-queue resource a target is: jobs on it wait together while it is away."""
    return f"target:{target_name}"


async def reachable(store: Store) -> None:
    """Raises the store's error unless it answers; a missing object is an answer."""
    try:
        await store.stat(f"Tierkeeper/.reachable-{os.getpid()}")
    except ObjectNotFound:
        return


async def probe(store: Store) -> str:
    """Put, read back and delete a small object; returns a one-line report."""
    data = os.urandom(64 * 1024)
    key = f"Tierkeeper/.probe-{os.getpid()}"
    with tempfile.NamedTemporaryFile(prefix="tierkeeper-probe-") as fh:
        fh.write(data)
        fh.flush()
        # never a cold class: it is read back and deleted at once
        src = PutSource.of_bytes(Path(fh.name), data, keep_readable=True)
        await store.put(key, src)
    back = io.BytesIO()
    await store.get(key, back)
    await store.delete(key)
    if back.getvalue() != data:
        raise TierkeeperError("The target returned different bytes than were written")
    return "write, read back and delete of a 64 KiB probe: ok"
