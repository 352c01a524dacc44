"""Archiving a phase from inside another job (`phase close` with `archive_on_close`).

The same work as the `archive` job: the phase's verified Tier 2 backups become
one tarball on the archive target, its upload handle kept in the caller's
checkpoint so a restart resumes it. A target that does not answer parks the
calling job on that target.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from core.config import TargetConfig
from core.errors import JobMustWait
from core.jobs import JobContext
from core.remote.base import NeedsReconnect, TransientError
from core.tier2.encryption import KeyMissingError, target_key
from core.tier2.resume import SharedCheckpoint
from core.tier2.targets import open_store, resource_of
from core.tier3.archive import archive_phase

if TYPE_CHECKING:
    from core.service import Service


async def archive_to(
    svc: Service,
    ctx: JobContext,
    phase: str,
    t3: TargetConfig,
    t2: TargetConfig,
    state: SharedCheckpoint,
) -> dict[str, Any]:
    moved = 0

    def on_bytes(n: int) -> None:
        nonlocal moved
        moved += n
        ctx.progress(bytes_done=moved)

    # A whole phase read once would only flush the cache: writes invalidate, reads pass.
    source = open_store(t2, svc.scope, svc.retry, svc.metrics, svc.objects, read_through=False)
    archive = open_store(t3, svc.scope, svc.retry, svc.metrics, svc.objects, read_through=False)
    try:
        source_key = await asyncio.to_thread(target_key, t2, svc.scope)
        archive_key = await asyncio.to_thread(target_key, t3, svc.scope)
        result = await archive_phase(
            svc.db, phase, source=source, source_name=t2.name, archive=archive,
            archive_name=t3.name, source_key=source_key, archive_key=archive_key,
            resume=state.slot, progress=on_bytes,
        )  # fmt: skip
    except (NeedsReconnect, KeyMissingError) as exc:
        raise JobMustWait(resource_of(t3.name), str(exc), needs_user=True) from exc
    except TransientError as exc:
        raise JobMustWait(resource_of(t3.name), f"{t3.name} is unreachable: {exc}") from exc
    finally:
        await source.close()
        await archive.close()
    return {"sessions": result.sessions, "raw_bytes": result.raw_bytes,
            "stored_bytes": result.stored_bytes, "key": result.key}  # fmt: skip
