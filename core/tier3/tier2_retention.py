"""Tier 2 retention: whole phases leave the backup target once Tier 3 holds them, verified.

The backup target keeps the newest `keep` phases. An older phase is deleted
from it only when an archive of that phase, made from this very target,
passed its verify; the deletion is recorded on the archive row, so the
history says where each phase went and when. Sessions with no phase are
never deleted here: nothing archives them. A phase's review (`<phase>/review/`)
is never deleted either: Tier 2 keeps the insights of every phase for good.
"""

from __future__ import annotations

from datetime import UTC, datetime

from core.local.db.database import Database
from core.remote.base import ObjectNotFound, Store
from core.tier2.backup import ROOT
from core.tier2.review_upload import review_prefix


async def prune_archived_phases(db: Database, store: Store, target: str, keep: int) -> list[str]:
    phases = [r[0] for r in await db.fetchall(
        "SELECT name FROM phases ORDER BY created_at DESC, name DESC")]  # fmt: skip
    deleted: list[str] = []
    for phase in phases[keep:]:
        row = await db.fetchone(
            "SELECT id FROM archives WHERE phase = ? AND source_target = ? "
            "AND verify_status = 'ok' AND tier2_deleted_at IS NULL ORDER BY id DESC LIMIT 1",
            (phase, target),
        )
        if row is None:
            continue
        kept = f"{review_prefix(phase)}/"
        keys = [
            info.key
            async for info in store.list(f"{ROOT}/{phase}/")
            if not info.key.startswith(kept)
        ]
        for key in keys:
            try:
                await store.delete(key)
            except ObjectNotFound:
                pass  # gone already: what we wanted
        await db.execute(
            "UPDATE archives SET tier2_deleted_at = ? WHERE phase = ? AND source_target = ?",
            (datetime.now(UTC).isoformat(), phase, target),
        )
        deleted.append(phase)
    return deleted
