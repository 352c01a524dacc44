"""`tierkeeper phase close [NAME]`: the phase-close job (core/phase_close.py) with progress.

The job may end before everything is done on purpose: a target away parks it
(it goes on by itself when the target answers), and with `archive_on_close =
"ask"` the archive waits for `tierkeeper archive PHASE`. Both are said plainly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from core.cli.common import client_for, explain_waiting, in_process
from core.cli.output import emit_json, err, human_bytes
from core.cli.progress import follow_job
from core.cli.runner import run_async
from core.errors import ExitCode
from core.models import JobState


def run(name: str | None, *, html: bool, workspace: Path | None, json: bool) -> None:
    async def go() -> None:
        async with client_for(workspace, write=True) as client:
            job = await client.start_phase_close(name, html=html)
            info = await follow_job(client, job.id, quiet=json)
        result = info.result or {}
        if json:
            emit_json({"job": info, "result": result})
        elif info.state == JobState.DONE:
            _report(result)
        if info.state == JobState.WAITING:
            explain_waiting(info, daemon=in_process(client) is None)
        if info.state != JobState.DONE:
            err.print(f"[bold red]error:[/] {info.error or info.state.value}", highlight=False)
            raise typer.Exit(int(ExitCode.FAILED))
        if (result.get("backup") or {}).get("failed"):
            raise typer.Exit(int(ExitCode.PARTIAL))

    run_async(go)


def _report(result: dict[str, Any]) -> None:
    def say(text: str) -> None:
        err.print(text, highlight=False)

    phase = result.get("phase")
    close = result.get("close") or {}
    say(f"Phase {phase} {'was already closed' if close.get('already_closed') else 'closed'}")
    backup = result.get("backup") or {}
    if backup.get("target"):
        say(f"  backup: {backup.get('sessions', 0)} session(s) on {backup['target']}")
        for failed in backup.get("failed", []):
            say(f"    [yellow]![/] {failed}")
    review = result.get("review") or {}
    say(f"  review: {review.get('recommendations', 0)} recommendation(s) → {review.get('folder')}")
    upload = result.get("upload") or {}
    if upload.get("target"):
        size = human_bytes(upload.get("stored_bytes", 0))
        files = len(upload.get("files", []))
        where = f"{upload['target']}: {upload.get('prefix')}/"
        say(f"  review uploaded to {where} ({files} files, {size})")
    else:
        say(f"  review not uploaded: {upload.get('note', 'no backup target')}")
    archive = result.get("archive") or {}
    status = archive.get("status")
    if status == "awaits-confirmation":
        say(f"  archive: waits for you — run `{archive.get('hint')}` "
            "(or set [phases] archive_on_close)")  # fmt: skip
    elif status == "archived":
        say(f"  archive: on {archive.get('target')} ({archive.get('key', 'already there')})")
    elif status == "skipped":
        say(f"  archive: not made ({archive.get('reason')})")
    removed = (result.get("retention") or {}).get("tier2_phases_removed") or []
    for gone in removed:
        say(f"  phase {gone} removed from the backup target (archived, verified; review kept)")
