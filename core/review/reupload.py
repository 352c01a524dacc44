"""A closed phase's review, written again, goes to Tier 2 again.

`phase close` uploads the review it writes to `<phase>/review/`; a later
`tierkeeper review PHASE` (new prices, a fixed rule, `--html` this time) must
not leave the old one there as the phase's record. So the review job ends by
replacing the uploaded review, the way phase close uploads it (same keys, each
file checked against what the store reports, the manifest last and read back),
on the target phase close uses. An open phase's review stays local: its close
uploads the final one.

A target that is away, or whose key or sign-in is missing, parks the job on it
as a backup is parked; it runs again once the target is back (the review is
rebuilt whole on each run, so there is nothing to resume).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from core.errors import JobMustWait
from core.jobs import JobContext
from core.phase_close import backup_target
from core.remote.base import NeedsReconnect, Store, TransientError
from core.review.layout import phase_folder
from core.tier2.encryption import KeyMissingError, target_key
from core.tier2.review_upload import upload_review
from core.tier2.targets import open_store, resource_of

if TYPE_CHECKING:
    from core.service import Service


async def reupload_review(svc: Service, ctx: JobContext, phase: str) -> dict[str, Any] | None:
    """The upload's record (as phase close's `upload` step gives it); None when the phase
    is open or no backup target is set up."""
    status = await svc.db.scalar("SELECT status FROM phases WHERE name = ?", (phase,))
    target = backup_target(svc.config)
    if status != "closed" or target is None:
        return None
    ctx.check_cancelled()
    ctx.progress(message=f"uploading the review to {target.name}")
    moved = int(ctx.counters.bytes_done)

    def on_bytes(n: int) -> None:
        nonlocal moved
        moved += n
        ctx.progress(bytes_done=moved)

    store: Store | None = None
    try:
        key = await asyncio.to_thread(target_key, target, svc.scope)
        store = open_store(target, svc.scope, svc.retry, svc.metrics, svc.objects)
        review = await upload_review(
            store, phase_folder(svc.workspace, phase), phase, key=key, progress=on_bytes
        )
    except (NeedsReconnect, KeyMissingError) as exc:
        raise JobMustWait(resource_of(target.name), str(exc), needs_user=True) from exc
    except TransientError as exc:
        raise JobMustWait(resource_of(target.name), f"{target.name} is unreachable: {exc}") from exc
    finally:
        if store is not None:
            await store.close()
    return {"target": target.name, "prefix": review.prefix, "files": review.files,
            "stored_bytes": review.stored_bytes, "encrypted": key is not None}  # fmt: skip
