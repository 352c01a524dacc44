"""The two commands that run directly in a command's own service but as jobs in the daemon.

`restore` and `verify` call the service straight away when the command opens it (restore
read-only, so it works beside a window holding the workspace). The daemon offers them as
jobs; these functions run the job and give back what the direct call returns, so the
command prints the same either way.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.cli.common import explain_waiting
from core.cli.progress import follow_job
from core.errors import TierkeeperError
from core.models import JobInfo, JobState

if TYPE_CHECKING:
    from core.client import Client


def absolute(path: Path | str) -> str:
    """The daemon runs in another folder: a relative path must mean the caller's.
    `~` is left for the service to expand (it says clearly when a user is unknown)."""
    text = str(path)
    return text if text.startswith("~") else str(Path(text).absolute())


async def verify_through(client: Client, target: str | None, *, deep: bool) -> list[dict[str, Any]]:
    """One result per session's latest backup on the target, as `Service.verify` gives."""
    job = await client.start_verify(target, deep=deep)
    info = _finished(await follow_job(client, job.id, quiet=True))
    name = (info.resource or "").removeprefix("target:")
    failed = {str(f["session"]): list(f["problems"]) for f in (info.result or {}).get("failed", [])}
    latest: dict[str, int] = {}
    for b in await client.backups(target=name):
        latest[b.session_id] = max(b.id, latest.get(b.session_id, 0))
    return [
        {"backup_id": latest[sid], "session_id": sid, "ok": sid not in failed,
         "problems": failed.get(sid, [])}
        for sid in sorted(latest)
    ]  # fmt: skip


async def restore_through(
    client: Client,
    session_id: str,
    dest: Path,
    *,
    target: str | None,
    file: str | None,
    overwrite: bool,
    quiet: bool,
) -> list[Path]:
    """The files written, named as the caller named `dest` (relative stays relative)."""
    where = Path(absolute(dest))
    job = await client.start_restore(session_id, str(where), target=target, file=file,
                                     overwrite=overwrite)  # fmt: skip
    info = _finished(await follow_job(client, job.id, quiet=quiet))
    written = [Path(p) for p in (info.result or {}).get("written", [])]
    if dest.is_absolute():
        return written
    return [dest / p.relative_to(where) if p.is_relative_to(where) else p for p in written]


def _finished(info: JobInfo) -> JobInfo:
    """A job that did not finish fails the command the way the direct call would have."""
    if info.state == JobState.WAITING:
        explain_waiting(info)
    if info.state != JobState.DONE:
        raise TierkeeperError(info.error or f"The job {info.state.value}",
                              hint=f"`tierkeeper jobs` lists job {info.id}")  # fmt: skip
    return info
