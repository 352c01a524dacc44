"""Commands that work one way in the command's own service and another through the daemon.

`restore` and `verify` call the service straight away when the command opens it (restore
read-only, so it works beside a window holding the workspace). The daemon offers them as
jobs; these functions run the job and give back what the direct call returns, so the
command prints the same either way. `export` to stdout streams from the DB here; the
daemon cannot write to this process's stdout, so it writes a file this process copies.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.cli.common import explain_waiting, in_process
from core.cli.progress import follow_job
from core.errors import BadInputError, TierkeeperError
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
    dest: Path | None,
    *,
    target: str | None,
    file: str | None,
    overwrite: bool,
    quiet: bool,
) -> list[Path]:
    """The files written, named as the caller named `dest` (relative stays relative;
    None, back where each came from)."""
    where = None if dest is None else Path(absolute(dest))
    job = await client.start_restore(session_id, None if where is None else str(where),
                                     target=target, file=file, overwrite=overwrite)  # fmt: skip
    info = _finished(await follow_job(client, job.id, quiet=quiet))
    written = [Path(p) for p in (info.result or {}).get("written", [])]
    if dest is None or where is None or dest.is_absolute():
        return written
    return [dest / p.relative_to(where) if p.is_relative_to(where) else p for p in written]


async def export_to_stdout(client: Client, session_id: str) -> None:
    """A one-file session's original bytes on stdout (for a pipe)."""
    detail = await client.session(session_id, messages=False)
    if len(detail.sources) != 1:
        raise BadInputError(f"Session {session_id} has {len(detail.sources)} files",
                            hint="pass -o DIR (or --file NAME -o FILE)")  # fmt: skip
    svc = in_process(client)
    if svc is not None:
        from core.local.export import export_source

        sid = await svc.db.scalar("SELECT id FROM sources WHERE path = ?",
                                  (detail.sources[0].path,))  # fmt: skip
        await export_source(svc.db, int(sid), sys.stdout.buffer)
    else:  # a folder only this user can enter (the daemon runs as this user)
        with tempfile.TemporaryDirectory(prefix="tierkeeper-export-") as tmp:
            (copy,) = await client.export(session_id, tmp)
            await asyncio.to_thread(_cat, Path(copy.written_to))
    sys.stdout.flush()


def _cat(path: Path) -> None:
    with path.open("rb") as fh:
        shutil.copyfileobj(fh, sys.stdout.buffer)


def _finished(info: JobInfo) -> JobInfo:
    """A job that did not finish fails the command the way the direct call would have."""
    if info.state == JobState.WAITING:
        explain_waiting(info, daemon=True)
    if info.state != JobState.DONE:
        raise TierkeeperError(info.error or f"The job {info.state.value}",
                              hint=f"`tierkeeper jobs` lists job {info.id}")  # fmt: skip
    return info
