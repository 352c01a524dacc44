"""What every command group shares: the common options and how a command opens the service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from core.cli.output import err
from core.errors import ExitCode
from core.service import Service

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option("--workspace", "-w", help="Workspace folder (default: $TIERKEEPER_HOME or "
                 "the user data dir).", envvar="TIERKEEPER_HOME", show_default=False),
]  # fmt: skip
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
TargetOpt = Annotated[
    str | None, typer.Option("--target", help="Target name (default: the only one).")
]


async def open_service(workspace: Path | None, *, write: bool) -> Service:
    # A command lives seconds: scheduled runs belong to the daemon or the window.
    return await Service.start(
        workspace, init=write, readonly=not write, run_jobs=write, schedule=False
    )


def explain_waiting(info: Any) -> None:
    """A parked job is not a failure: say why it waits and what brings it back."""
    err.print(f"[yellow]waiting:[/] {info.wait_reason}", highlight=False)
    if info.needs_user:
        err.print("once that is done, the job continues where it stopped", highlight=False)
        raise typer.Exit(int(ExitCode.NEEDS_USER))
    err.print(
        "the job stays queued and runs when the target answers again "
        "(at the next start of Tierkeeper, or now with `tierkeeper jobs retry`)",
        highlight=False,
    )
    raise typer.Exit(int(ExitCode.PARTIAL))
