"""`phase close` as one resumable job: close → review → Tier 2 → (archive) → retention.

Ending a phase is several slow steps that touch three tiers, and any of them
can meet a target that is away or a laptop lid that closes. So it is a job
whose checkpoint records each finished step with what it produced: a restart
goes on at the step it was in, and the review (the costly, rebuilt-whole step)
is never written twice. Within the upload step, the sessions already backed
up and the handles of uploads in flight are kept too (the backup job's shared
checkpoint), so a big phase resumes mid-way rather than from its first file.

A target that does not answer parks the job (`JobMustWait`) on that target,
as backups are parked, and the queue's probe brings it back.

The archive to Tier 3 follows `[phases] archive_on_close`: "always" does it
here; "ask" (the default) ends the job saying it awaits the user, because a
Deep Archive object is billed for months whether kept or not, and
`tierkeeper archive PHASE` then does it; "never" leaves it out.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.config import Config, TargetConfig
from core.errors import BadInputError, JobMustWait, NotFoundError
from core.jobs import JobContext
from core.local import lifecycle
from core.local.snapshots import SnapshotStore
from core.packing import IntegrityError
from core.packing.crypto import Key
from core.remote.base import NeedsReconnect, Store, TransientError
from core.tier2.backup import backup_session
from core.tier2.encryption import KeyMissingError, target_key
from core.tier2.resume import SharedCheckpoint
from core.tier2.retention import prune_local
from core.tier2.review_upload import upload_review
from core.tier2.targets import open_store, resource_of

if TYPE_CHECKING:
    from core.service import Service

KIND = "phase-close"
STEPS = ("close", "backup", "review", "upload", "archive", "retention")
"""The sessions go to Tier 2 before the review is written, so its storage figures (and
its advice about sessions without a backup) describe the phase as it is archived."""
_TITLES = {
    "close": "closing the phase",
    "backup": "backing up the phase's sessions",
    "review": "writing the review",
    "upload": "uploading the review",
    "archive": "archiving",
    "retention": "applying retention",
}
DONE = "done"
"""Checkpoint key: step name → what the step produced (the job's result is built from it)."""

Step = Callable[["Service", JobContext, SharedCheckpoint], Awaitable[dict[str, Any]]]


def backup_target(config: Config) -> TargetConfig | None:
    """The default Tier 2 target: the first one that is not an archive (S3) target,
    the one a session's end backs up to."""
    return next((t for t in config.targets if t.kind != "s3"), None)


def archive_target(config: Config) -> TargetConfig | None:
    s3 = [t for t in config.targets if t.kind == "s3"]
    return s3[0] if len(s3) == 1 else None


def _snapshots(state_dir: Path, session_id: str) -> list[Path]:
    try:
        return [info.path for info in SnapshotStore(state_dir).list(session_id)]
    except BadInputError:  # an imported session's id that no snapshot could carry
        return []


async def resolve_phase(svc: Service, name: str | None) -> str:
    """The named phase, or the current one; refused now rather than inside the job."""
    if name is None:
        current = await asyncio.to_thread(lifecycle.current_phase, svc.workspace)
        if current is None:
            raise BadInputError(
                "No phase is current", hint="name the phase to close: tierkeeper phase close NAME"
            )
        name = current.name
    lifecycle.validate_phase_name(name)
    row = await svc.db.fetchone("SELECT status FROM phases WHERE name = ?", (name,))
    if row is None:
        raise NotFoundError(f"No phase {name!r}", hint="`tierkeeper phase list` shows them")
    return name


async def run_phase_close(svc: Service, ctx: JobContext) -> dict[str, Any]:
    state = SharedCheckpoint(ctx)
    done: dict[str, Any] = dict(state.data.get(DONE) or {})
    ctx.progress(steps_total=len(STEPS), steps_done=len(done))
    for n, name in enumerate(STEPS):
        if name in done:
            continue
        ctx.check_cancelled()
        ctx.log(_TITLES[name])
        ctx.progress(steps_done=n, message=_TITLES[name])
        result = await _STEPS[name](svc, ctx, state)

        def record(data: dict[str, Any], name: str = name, result: dict[str, Any] = result) -> bool:
            data[DONE] = {**dict(data.get(DONE) or {}), name: result}
            return True

        await state.update(record, steps_done=n + 1)
        done[name] = result
    return {"phase": ctx.params["phase"], **done}


# the steps ---------------------------------------------------------------------------------
async def _close(svc: Service, ctx: JobContext, state: SharedCheckpoint) -> dict[str, Any]:
    phase = str(ctx.params["phase"])
    row = await svc.db.fetchone("SELECT status, closed_at FROM phases WHERE name = ?", (phase,))
    if row is None:
        raise NotFoundError(f"No phase {phase!r}", hint="`tierkeeper phase list` shows them")
    already = row[0] == "closed"
    if not already:
        await lifecycle.phase_close(svc.db, svc.workspace, phase)
        svc.bus.publish("phases.changed", {"phase": phase, "status": "closed"})
    closed_at = await svc.db.scalar("SELECT closed_at FROM phases WHERE name = ?", (phase,))
    return {"closed_at": closed_at, "already_closed": already}


async def _review(svc: Service, ctx: JobContext, state: SharedCheckpoint) -> dict[str, Any]:
    from core.review.job import live_cache_rates
    from core.review.review import run_review

    phase = str(ctx.params["phase"])

    def progress(done: int, total: int, what: str) -> None:
        ctx.check_cancelled()  # in the review's thread: stops before its next step

    out = await run_review(
        svc.db, svc.workspace, phase, svc.prices, html=bool(ctx.params.get("html")),
        live_cache=live_cache_rates(svc.metrics), progress=progress,
    )  # fmt: skip
    svc.bus.publish("review.changed", {"phase": phase})
    return {
        "folder": str(out.folder),
        "files": len(out.files),
        "recommendations": len(out.review.recommendations),
        "generated_at": out.review.generated_at,
        "sessions": out.review.overview.sessions,
        "cost_usd": out.review.overview.cost_usd,
    }


async def _backup(svc: Service, ctx: JobContext, state: SharedCheckpoint) -> dict[str, Any]:
    """The phase's sessions that the target does not hold as they are now."""
    phase = str(ctx.params["phase"])
    sessions = [r[0] for r in await svc.db.fetchall(
        "SELECT id FROM sessions WHERE phase = ? ORDER BY id", (phase,))]  # fmt: skip
    target = _target(svc, ctx)
    if target is None:
        return {"target": None, "note": "no backup target is set up"}
    async with _on_target(svc, ctx, target) as (store, key):
        ctx.progress(items_total=len(sessions),
                     items_done=len(state.data.get("sessions_done", [])))  # fmt: skip
        for sid in sessions:
            if sid in state.data.get("sessions_done", []):
                continue
            ctx.check_cancelled()
            await _back_up(svc, store, target.name, sid, state, key, _byte_counter(ctx))
            ctx.progress(items_done=len(state.data.get("sessions_done", [])))
    if sessions:
        svc.bus.publish("backups.changed", {"target": target.name})
    failed = list(state.data.get("sessions_failed", []))
    return {"target": target.name, "sessions": len(sessions) - len(failed), "failed": failed}


async def _upload(svc: Service, ctx: JobContext, state: SharedCheckpoint) -> dict[str, Any]:
    from core.review.layout import phase_folder

    phase = str(ctx.params["phase"])
    target = _target(svc, ctx)
    if target is None:
        return {"target": None, "note": "no backup target is set up: the review stays local"}
    async with _on_target(svc, ctx, target) as (store, key):
        review = await upload_review(
            store, phase_folder(svc.workspace, phase), phase, key=key, slot_for=state.slot,
            progress=_byte_counter(ctx),
        )  # fmt: skip
    return {"target": target.name, "prefix": review.prefix, "files": review.files,
            "stored_bytes": review.stored_bytes, "encrypted": key is not None}  # fmt: skip


def _target(svc: Service, ctx: JobContext) -> TargetConfig | None:
    name = ctx.params.get("target")
    return svc.config.target(str(name)) if name else None


def _byte_counter(ctx: JobContext) -> Callable[[int], None]:
    moved = int(ctx.counters.bytes_done)

    def on_bytes(n: int) -> None:
        nonlocal moved
        moved += n
        ctx.progress(bytes_done=moved)

    return on_bytes


@contextlib.asynccontextmanager
async def _on_target(
    svc: Service, ctx: JobContext, target: TargetConfig
) -> AsyncIterator[tuple[Store, Key | None]]:
    """The target's store and key; a target away (or a sign-in or key missing) parks the
    job on it instead of failing it."""
    store: Store | None = None
    try:
        key = await asyncio.to_thread(target_key, target, svc.scope)
        store = open_store(target, svc.scope, svc.retry, svc.metrics, svc.objects)
        yield store, key
    except (NeedsReconnect, KeyMissingError) as exc:
        raise JobMustWait(resource_of(target.name), str(exc), needs_user=True) from exc
    except TransientError as exc:
        raise JobMustWait(resource_of(target.name), f"{target.name} is unreachable: {exc}") from exc
    finally:
        if store is not None:
            await store.close()


async def _back_up(
    svc: Service, store: Store, target: str, sid: str, state: SharedCheckpoint,
    key: Key | None, on_bytes: Callable[[int], None],
) -> None:  # fmt: skip
    failure: str | None = None
    try:
        await backup_session(
            svc.db, store, target, sid, slot_for=state.slot, progress=on_bytes,
            snapshots=await asyncio.to_thread(_snapshots, svc.workspace.state, sid), key=key,
        )  # fmt: skip
    except (BadInputError, IntegrityError) as exc:  # nothing stored to back up, or damaged
        failure = f"{sid}: {exc}"

    def change(data: dict[str, Any]) -> bool:
        data["sessions_done"] = [*data.get("sessions_done", []), sid]
        if failure is not None:
            data["sessions_failed"] = [*data.get("sessions_failed", []), failure]
        return True

    await state.update(change)


async def _archive(svc: Service, ctx: JobContext, state: SharedCheckpoint) -> dict[str, Any]:
    phase = str(ctx.params["phase"])
    policy = svc.config.phases.archive_on_close
    if policy == "never":
        return {"status": "off"}
    t2_name = ctx.params.get("target")
    t3 = archive_target(svc.config)
    hint = f"tierkeeper archive {phase}"
    if t3 is None or not t2_name:
        why = "no backup target" if not t2_name else "no single archive (S3) target"
        return {"status": "skipped", "reason": f"{why} is set up", "hint": hint}
    if policy == "ask":
        return {"status": "awaits-confirmation", "target": t3.name, "hint": hint}
    archived = await svc.db.scalar(
        "SELECT count(*) FROM archives WHERE phase = ? AND target = ? AND verify_status = 'ok'",
        (phase, t3.name),
    )
    if archived:
        return {"status": "archived", "target": t3.name, "note": "already archived"}
    sessions = await svc.db.scalar("SELECT count(*) FROM sessions WHERE phase = ?", (phase,))
    if not sessions:
        return {"status": "skipped", "reason": "the phase has no sessions"}
    from core.tier3.archive_step import archive_to

    done = await archive_to(svc, ctx, phase, t3, svc.config.target(str(t2_name)), state)
    svc.bus.publish("archives.changed", {"phase": phase, "target": t3.name})
    return {"status": "archived", "target": t3.name, **done}


async def _retention(svc: Service, ctx: JobContext, state: SharedCheckpoint) -> dict[str, Any]:
    from core.tier3.tier2_retention import prune_archived_phases

    pruned = await prune_local(svc.db, svc.workspace, svc.config.retention.local_sessions)
    removed: list[str] = []
    target = _target(svc, ctx)
    if target is not None:
        async with _on_target(svc, ctx, target) as (store, _key):
            removed = await prune_archived_phases(
                svc.db, store, target.name, svc.config.retention.backup_phases
            )
    return {"local_files_pruned": len(pruned), "tier2_phases_removed": removed}


_STEPS: dict[str, Step] = {
    "close": _close,
    "backup": _backup,
    "review": _review,
    "upload": _upload,
    "archive": _archive,
    "retention": _retention,
}
