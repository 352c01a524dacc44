"""`tierkeeper review PHASE`: the end-of-phase review, as a job with progress (in the
daemon when one serves the workspace: the report is written in the workspace either way)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from core.cli.common import JsonOpt, WorkspaceOpt, client_for, explain_waiting, in_process
from core.cli.output import emit_json, err
from core.cli.progress import follow_job
from core.cli.runner import run_async
from core.errors import ExitCode
from core.models import JobState


def review(
    phase: Annotated[str, typer.Argument(help="The phase to review (open or closed).")],
    html: Annotated[
        bool, typer.Option("--html", help="Also write phase_insights.html (self-contained).")
    ] = False,
    open_: Annotated[
        bool, typer.Option("--open", help="Open the report when it is written.")
    ] = False,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Write the phase's review: phase_insights.md, phase_analytics.db, phase_metadata.json."""

    async def go() -> None:
        async with client_for(workspace, write=True) as client:
            job = await client.start_review(phase, html=html)
            info = await follow_job(client, job.id, quiet=json)
        result = info.result or {}
        if json:
            emit_json({"job": info, "result": result})
        elif info.state == JobState.DONE:
            o = result.get("overview", {})
            err.print(
                f"Phase {phase}: {o.get('sessions', 0)} sessions, ${o.get('cost_usd', 0):,.2f}, "
                f"{result.get('recommendations', 0)} recommendations → {result.get('folder')}",
                highlight=False,
            )
        if info.state == JobState.WAITING:  # written here; its upload waits for the target
            if result.get("folder"):
                err.print(f"Phase {phase}: review written → {result['folder']}", highlight=False)
            explain_waiting(info, daemon=in_process(client) is None)
        if info.state != JobState.DONE:
            err.print(f"[bold red]error:[/] {info.error or info.state.value}", highlight=False)
            raise typer.Exit(int(ExitCode.FAILED))
        if open_:
            name = "phase_insights.html" if html else "phase_insights.md"
            typer.launch(str(Path(str(result["folder"])) / name))

    run_async(go)
