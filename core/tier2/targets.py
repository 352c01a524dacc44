"""From a target in config.toml to a store object, and the check that it works."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path

from core.config import TargetConfig
from core.errors import TierkeeperError
from core.remote.base import PutSource, Store
from core.remote.folder import FolderStore
from core.remote.retry import RetryingStore


def open_store(target: TargetConfig) -> Store:
    return RetryingStore(FolderStore(Path(target.path).expanduser(), name=target.name))


async def probe(store: Store) -> str:
    """Put, read back and delete a small object; returns a one-line report."""
    data = os.urandom(64 * 1024)
    key = f"Tierkeeper/.probe-{os.getpid()}"
    with tempfile.NamedTemporaryFile(prefix="tierkeeper-probe-") as fh:
        fh.write(data)
        fh.flush()
        src = PutSource(
            Path(fh.name),
            len(data),
            hashlib.sha256(data).hexdigest(),
            hashlib.md5(data, usedforsecurity=False).hexdigest(),
        )
        await store.put(key, src)
    back = io.BytesIO()
    await store.get(key, back)
    await store.delete(key)
    if back.getvalue() != data:
        raise TierkeeperError("The target returned different bytes than were written")
    return "write, read back and delete of a 64 KiB probe: ok"
