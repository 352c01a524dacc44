"""A manifest put last, and proof that it landed as written.

A manifest is what a restore reads first and what says a backup is complete, so
a backup is recorded only once the store holds it byte for byte. A store that
digests what it keeps (Drive computes `md5Checksum` from the bytes it stored)
has said so in the put's own answer; any other store is asked to give the
manifest back. On Drive that read was one round trip per session after all the
others, on the path of every session.
"""

from __future__ import annotations

import io
from pathlib import Path

from core.cache.store import CachingStore
from core.packing import IntegrityError
from core.remote.base import PutSource, Store, digests_what_it_holds

_RETRY = "run the backup again; if it persists, check the target"


def uncached(store: Store) -> Store:
    """The store under any read cache wrapped around it (retry and metering stay)."""
    while isinstance(store, CachingStore):
        store = store.inner
    return store


async def put_manifest(
    store: Store, key: str, path: Path, data: bytes, *, keep_readable: bool = False
) -> None:
    """Puts `data` (already written at `path`) under `key`; raises IntegrityError unless
    the store then holds exactly those bytes."""
    source = PutSource.of_bytes(path, data, keep_readable=keep_readable)
    info = await store.put(key, source)
    if digests_what_it_holds(store):
        md5 = source.md5
        if info.size != len(data) or info.md5 != md5:
            raise IntegrityError(
                f"The store reports a manifest other than the one written ({key}: "
                f"{info.size} bytes, MD5 {info.md5}; sent {len(data)} bytes, MD5 {md5})",
                hint=_RETRY,
            )
        return
    # Past the cache: a copy of what was just written proves nothing, and keeping one
    # would cost a cache file per session.
    back = io.BytesIO()
    await uncached(store).get(key, back)
    if back.getvalue() != data:
        raise IntegrityError(
            "The manifest read back from the store differs from the one written", hint=_RETRY
        )
