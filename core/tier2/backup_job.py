"""The `backup` job: sessions to one target, resumable, parked while the target is away.

Sessions are packed and uploaded a few at a time: most of a session's cost is
waiting (fsyncs on a disk, round trips to Drive), and overlapping the waits is
what brings the job near the speed of a plain `tar | zstd`.

A target that stops answering (the disk unplugged, the network gone, Drive's
servers failing past the retry budget) does not fail the job: it raises
`JobMustWait` and the runner parks it, with the sessions already done and the
handles of uploads in flight kept in its checkpoint. A revoked sign-in parks it
too, marked as needing the user, so nothing is left half-done and the queue
runs on after `target reconnect`.
"""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any

from core.cache.objects import ObjectCache
from core.config import Config
from core.errors import BadInputError, JobMustWait
from core.events import EventBus
from core.jobs import JobContext
from core.local.db.database import Database
from core.local.db.read_pool import ReadPool
from core.local.snapshots import SnapshotStore
from core.metrics.registry import Metrics
from core.packing import IntegrityError
from core.packing.crypto import Key
from core.recovery.publish import TIER2_INDEX, publish_tier2_index
from core.remote.base import NeedsReconnect, Store, TransientError, concurrency, folder_maker
from core.tier2.backup import BackupResult, backup_session
from core.tier2.backup_rows import BackupRows
from core.tier2.encryption import KeyMissingError, target_key
from core.tier2.encryption_claim import claimed_by, refuse_other_key
from core.tier2.resume import SharedCheckpoint
from core.tier2.retention import prune_local
from core.tier2.session_layout import session_prefixes
from core.tier2.targets import RetryPolicy, open_store, resource_of
from core.workspace import Workspace


def _snapshots(state_dir: Path, session_id: str) -> list[Path]:
    try:
        return [info.path for info in SnapshotStore(state_dir).list(session_id)]
    except BadInputError:  # an imported session's id that no snapshot could carry
        return []


async def run_backup(
    ctx: JobContext,
    db: Database,
    bus: EventBus,
    config: Config,
    *,
    workspace: Workspace,
    scope: str,
    retry: RetryPolicy,
    metrics: Metrics | None = None,
    cache: ObjectCache | None = None,
) -> dict[str, Any]:
    target = config.target(str(ctx.params["target"]))
    sessions = [str(s) for s in ctx.params["sessions"]]
    state = SharedCheckpoint(ctx)
    done: set[str] = set(state.data.get("done_ids", []))
    todo = [s for s in sessions if s not in done]
    moved = 0

    def on_bytes(n: int) -> None:
        nonlocal moved
        moved += n
        ctx.progress(bytes_done=moved)

    ctx.progress(items_done=len(done), items_total=len(sessions), steps_total=len(sessions))
    store: Store | None = None
    queue: asyncio.Queue[str] = asyncio.Queue()
    for sid in todo:
        queue.put_nowait(sid)

    async def one(sid: str, group: asyncio.TaskGroup) -> None:
        failure: str | None = None
        result = None
        assert store is not None
        try:
            result = await backup_session(
                db,
                store,
                target.name,
                sid,
                slot_for=state.slot,
                progress=on_bytes,
                snapshots=functools.partial(_snapshots, workspace.state, sid),
                key=key,
                reads=reads,
                rows=rows,
            )
        except (BadInputError, IntegrityError) as exc:
            failure = f"{sid}: {exc}"
        if result is not None and metrics is not None:
            metrics.ratio("session", result.raw_bytes, result.stored_bytes)
        if result is not None and result.recorded is not None:
            # done once its row is written; this worker goes on to the next session
            group.create_task(finished(sid, result, failure))
        else:
            await finished(sid, result, failure)

    async def finished(sid: str, result: BackupResult | None, failure: str | None) -> None:
        if result is not None and result.recorded is not None:
            await result.recorded

        def change(data: dict[str, Any]) -> bool:
            data["done_ids"] = [*data.get("done_ids", []), sid]
            if result is not None and result.unchanged:
                data["unchanged"] = int(data.get("unchanged", 0)) + 1
            if failure is not None:
                data["failed"] = [*data.get("failed", []), failure]
            if result is not None:
                data["raw_bytes"] = int(data.get("raw_bytes", 0)) + result.raw_bytes
                data["stored_bytes"] = int(data.get("stored_bytes", 0)) + result.stored_bytes
            return True

        count = len(state.data.get("done_ids", [])) + 1
        await state.update(change, soon=True, steps_done=count)
        ctx.progress(items_done=len(state.data["done_ids"]), items_total=len(sessions))

    async def worker(group: asyncio.TaskGroup) -> None:
        # A pause lets the sessions in flight finish and checkpoint: none is redone.
        while not queue.empty() and not ctx.pause_requested:
            ctx.check_cancelled()
            await one(queue.get_nowait(), group)

    ctx.pauses_at_checkpoints = True

    key: Key | None = None
    reads = ReadPool(db.path)
    rows = BackupRows(db)
    try:
        if todo:
            key = await asyncio.to_thread(target_key, target, scope)
            store = open_store(target, scope, retry, metrics, cache)
            # never plain sessions into a target another computer encrypts, nor two keys
            refuse_other_key(target, await claimed_by(store, TIER2_INDEX))
            maker = folder_maker(store)
            if maker is not None:  # the sessions' folders in a few round trips, not two each
                await maker(await db.call(lambda conn: session_prefixes(conn, todo)))
            async with asyncio.TaskGroup() as group:
                for _ in range(min(concurrency(store), len(todo))):
                    group.create_task(worker(group))
            ctx.check_cancelled()  # paused between sessions: park now, the rest later
            # what a fresh machine reads first to rebuild its catalog (core/recovery)
            await publish_tier2_index(db, store, target.name, target.encryption, key, workspace)
    except (NeedsReconnect, KeyMissingError) as exc:  # no sign-in, or no key, at all
        raise JobMustWait(resource_of(target.name), str(exc), needs_user=True) from exc
    except TransientError as exc:  # gone after the sessions (the index), or before them
        raise JobMustWait(resource_of(target.name), f"{target.name} is unreachable: {exc}") from exc
    except BaseExceptionGroup as group:
        raise _one_error(group, target.name) from None
    finally:
        await state.flush()  # before the job ends, parks or pauses: done stays done
        reads.close()
        if store is not None:
            await store.close()
    bus.publish("backups.changed", {"target": target.name})
    # Only now, with every upload verified, may Tier 1 let go of raw files.
    pruned = await prune_local(db, workspace, config.retention.local_sessions)
    failed = list(state.data.get("failed", []))
    return {"sessions": len(sessions) - len(failed), "failed": failed,
            "unchanged": int(state.data.get("unchanged", 0)),
            "pruned_files": len(pruned), "pruned_bytes": sum(p.size for p in pruned),
            "raw_bytes": int(state.data.get("raw_bytes", 0)),
            "stored_bytes": int(state.data.get("stored_bytes", 0))}  # fmt: skip


def _one_error(group: BaseExceptionGroup[BaseException], target: str) -> BaseException:
    """What the runner should see when sessions failed together: a parked job when the
    target is away (a sign-in beats a network as the reason), else the first error."""
    errors = list(group.exceptions)
    for exc in errors:
        if isinstance(exc, NeedsReconnect):
            return JobMustWait(resource_of(target), str(exc), needs_user=True)
    for exc in errors:
        if isinstance(exc, TransientError):
            return JobMustWait(resource_of(target), f"{target} is unreachable: {exc}")
    return errors[0]
