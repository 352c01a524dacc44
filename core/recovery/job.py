"""The rebuild as a job: progress per target (and per session restored), cancel between steps.

The window starts it from the wizard or from the banner of an empty catalog, and
the daemon runs it like any other job. A passphrase never reaches the job's
stored parameters: `start_recover` learns the key first (`ops.learn_key`), so the
job finds it in the keyring.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from core.errors import TierkeeperError
from core.jobs import JobContext
from core.recovery import ops

if TYPE_CHECKING:
    from core.service import Service

KIND = "recover"


async def run_recover(svc: Service, ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    names = [str(n) for n in p.get("targets") or []] or [t.name for t in svc.config.targets]
    restore = bool(p.get("restore"))
    steps = len(names) + (1 if restore else 0)
    ctx.progress(steps_total=steps, steps_done=0)
    reports = []
    for done, name in enumerate(names):
        ctx.check_cancelled()
        ctx.progress(message=f"Reading what {name} holds")
        reports += await ops.recover(svc, targets=[name])
        ctx.progress(steps_done=done + 1)
    restored = None
    if restore:
        restored = await _restore(svc, ctx, p.get("sessions"))
        ctx.progress(steps_done=steps)
    problems = [x for r in reports for x in r.problems]
    return {
        "targets": [asdict(r) for r in reports],
        "sessions_added": sum(r.sessions_added for r in reports),
        "problems": problems,
        "restore": None if restored is None else asdict(restored),
    }


async def _restore(svc: Service, ctx: JobContext, wanted: list[str] | None) -> ops.RecoveredRestore:
    """One session at a time, so the job shows how far it is and a cancel stops soon."""
    rows = await svc.db.fetchall(
        "SELECT session_id FROM recovered WHERE restored_at IS NULL ORDER BY session_id"
    )
    waiting = [str(r[0]) for r in rows]
    if wanted is not None:
        missing = sorted(set(wanted) - set(waiting))
        waiting = [s for s in waiting if s in set(wanted)]
    else:
        missing = []
    total = ops.RecoveredRestore(failed=[f"{s}: not waiting to be restored" for s in missing])
    ctx.progress(items_total=len(waiting), items_done=0)
    for n, sid in enumerate(waiting):
        ctx.check_cancelled()
        try:
            one = await ops.restore_recovered(svc, [sid])
        except TierkeeperError as exc:
            total.failed.append(f"{sid}: {exc}")
        else:
            total.restored += one.restored
            total.files += one.files
            total.messages += one.messages
            total.failed += one.failed
            for phase, ids in one.archived.items():
                total.archived.setdefault(phase, []).extend(ids)
        ctx.progress(items_done=n + 1)
    return total
