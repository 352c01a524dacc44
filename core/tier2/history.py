"""What the backups table says about each target and session, for clients to show."""

from __future__ import annotations

from core.config import TargetConfig
from core.local.db.database import Database
from core.models import BackupInfo, TargetInfo
from core.tier2.targets import resource_of

_LATEST = (
    "SELECT * FROM backups WHERE id IN (SELECT max(id) FROM backups GROUP BY session_id, target)"
)


async def target_infos(db: Database, targets: list[TargetConfig]) -> list[TargetInfo]:
    infos = []
    for t in targets:
        row = await db.fetchone(
            f"""SELECT count(*), coalesce(sum(stored_bytes), 0), max(created_at),
                   max(verified_at), sum(verify_status = 'failed')
                FROM ({_LATEST}) WHERE target = ?""",
            (t.name,),
        )
        wait = await db.fetchone(
            """SELECT count(*), max(needs_user), max(wait_reason) FROM jobs
               WHERE state = 'waiting' AND resource = ?""",
            (resource_of(t.name),),
        )
        assert row is not None and wait is not None
        infos.append(
            TargetInfo(
                name=t.name,
                kind=t.kind,
                where=t.where,
                encrypted=t.encryption is not None,
                sessions=int(row[0]),
                stored_bytes=int(row[1]),
                last_backup_at=row[2],
                last_verified_at=row[3],
                verify_failures=int(row[4] or 0),
                waiting_jobs=int(wait[0]),
                needs_user=bool(wait[1]),
                wait_reason=wait[2],
            )
        )
    return infos


async def backup_infos(
    db: Database, *, session_id: str | None = None, target: str | None = None, limit: int = 500
) -> list[BackupInfo]:
    """Newest first."""
    where, args = [], []
    if session_id is not None:
        where.append("session_id = ?")
        args.append(session_id)
    if target is not None:
        where.append("target = ?")
        args.append(target)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = await db.fetchall(
        f"""SELECT id, session_id, target, phase, raw_bytes, stored_bytes, created_at,
               verified_at, verify_status, verify_error FROM backups {clause}
            ORDER BY id DESC LIMIT ?""",
        (*args, limit),
    )
    return [BackupInfo(**dict(r)) for r in rows]
