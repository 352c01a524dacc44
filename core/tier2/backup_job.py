"""The `backup` job: sessions to one target, resumable, parked while the target is away.

A target that stops answering (the disk unplugged, the network gone, Drive's
servers failing past the retry budget) does not fail the job: it raises
`JobMustWait` and the runner parks it, with the sessions already done and the
handles of uploads in flight kept in its checkpoint. A revoked sign-in parks it
too, marked as needing the user, so nothing is left half-done and the queue
runs on after `target reconnect`.
"""

from __future__ import annotations

from typing import Any

from core.config import Config
from core.errors import BadInputError, JobMustWait
from core.events import EventBus
from core.jobs import JobContext
from core.local.db.database import Database
from core.packing import IntegrityError
from core.remote.base import NeedsReconnect, TransientError
from core.tier2.backup import backup_session
from core.tier2.resume import CheckpointSlot
from core.tier2.targets import RetryPolicy, open_store, resource_of

DONE = "done"


async def run_backup(
    ctx: JobContext, db: Database, bus: EventBus, config: Config, retry: RetryPolicy
) -> dict[str, Any]:
    target = config.target(str(ctx.params["target"]))
    sessions = [str(s) for s in ctx.params["sessions"]]
    state = ctx.checkpoint or {}
    done = int(state.get(DONE, 0))
    failed: list[str] = list(state.get("failed", []))
    raw = int(state.get("raw_bytes", 0))
    stored = int(state.get("stored_bytes", 0))
    moved = 0

    def on_bytes(n: int) -> None:
        nonlocal moved
        moved += n
        ctx.progress(bytes_done=moved)

    ctx.progress(items_done=done, items_total=len(sessions), steps_total=len(sessions))
    store = open_store(target, retry)
    try:
        for i in range(done, len(sessions)):
            ctx.check_cancelled()
            try:
                result = await backup_session(
                    db,
                    store,
                    target.name,
                    sessions[i],
                    slot_for=lambda key, sha: CheckpointSlot(ctx, key, sha),
                    progress=on_bytes,
                )
                raw += result.raw_bytes
                stored += result.stored_bytes
            except (BadInputError, IntegrityError) as exc:
                failed.append(f"{sessions[i]}: {exc}")
            except NeedsReconnect as exc:
                raise JobMustWait(resource_of(target.name), str(exc), needs_user=True) from exc
            except TransientError as exc:
                raise JobMustWait(
                    resource_of(target.name), f"{target.name} is unreachable: {exc}"
                ) from exc
            await ctx.save_checkpoint(
                {DONE: i + 1, "failed": failed, "raw_bytes": raw, "stored_bytes": stored},
                steps_done=i + 1,
            )
            ctx.progress(items_done=i + 1, items_total=len(sessions))
    finally:
        await store.close()
    bus.publish("backups.changed", {"target": target.name})
    return {"sessions": len(sessions) - len(failed), "failed": failed,
            "raw_bytes": raw, "stored_bytes": stored}  # fmt: skip
