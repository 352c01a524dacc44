"""What every command group shares: the common options and how a command reaches the core.

Every command that touches the workspace goes through `client_for`: the daemon when one
serves the workspace (it holds the workspace, so the work must be its), else a service
opened here for the command's few seconds. Both are a `core.client.Client`, so a command
prints the same and exits the same either way; the few that need this process's own
stdout or files (`export` to a pipe, `restore`, `verify`) say so in `through_daemon`.
Paths a command passes on are made absolute first (`through_daemon.absolute`): the
daemon runs in another folder, as the same user.

`open_service` is what `client_for` opens without a daemon; no command calls it directly
any more. Should one need to again, it fails on the workspace lock under a daemon, and the
error then says to stop the daemon.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from core.cli.output import err
from core.errors import ExitCode, TierkeeperError, WorkspaceLockedError
from core.service import Service

if TYPE_CHECKING:
    from core.client import Client, HttpClient

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option("--workspace", "-w", help="Workspace folder (default: $TIERKEEPER_HOME or "
                 "the user data dir).", envvar="TIERKEEPER_HOME", show_default=False),
]  # fmt: skip
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
TargetOpt = Annotated[
    str | None, typer.Option("--target", help="Target name (default: the only one).")
]


class DaemonHoldsWorkspaceError(TierkeeperError):
    """The command needs the workspace itself, and a daemon holds it."""

    exit_code = ExitCode.NEEDS_USER


async def open_service(workspace: Path | None, *, write: bool) -> Service:
    # A command lives seconds: scheduled runs belong to the daemon or the window.
    try:
        return await Service.start(
            workspace, init=write, readonly=not write, run_jobs=write, schedule=False
        )
    except WorkspaceLockedError as exc:
        # Only now is the daemon looked for: the common path (no daemon) pays nothing.
        daemon = await daemon_client(workspace)
        if daemon is None:
            raise
        pid = daemon.pid
        await daemon.close()
        who = f"A Tierkeeper daemon (pid {pid})" if pid else "A Tierkeeper daemon"
        raise DaemonHoldsWorkspaceError(
            f"{who} serves this workspace, and this command cannot go through it yet",
            hint=f"stop the daemon ({'kill ' + str(pid) if pid else 'Ctrl-C in its terminal'}"
            " or `systemctl --user stop tierkeeper`), run the command, then start it again",
        ) from exc


@asynccontextmanager
async def client_for(workspace: Path | None, *, write: bool) -> AsyncIterator[Client]:
    """The daemon's client when a daemon serves `workspace`, else a service in this
    process opened as `open_service` opens it (read-only unless `write`)."""
    from core.client import InProcessClient

    client: Client | None = await daemon_client(workspace)
    if client is None:
        client = InProcessClient(await open_service(workspace, write=write))
    try:
        yield client
    finally:
        await client.close()


def in_process(client: Client) -> Service | None:
    """The service behind an in-process client; None for the daemon's."""
    from core.client import InProcessClient

    return client.service if isinstance(client, InProcessClient) else None


async def daemon_client(workspace: Path | None) -> HttpClient | None:
    """The daemon serving `workspace`, if one answers (the caller closes it)."""
    from core.client import connect_daemon

    return await connect_daemon(workspace)


def explain_waiting(info: Any, *, daemon: bool) -> None:
    """A parked job is not a failure: say why it waits and what brings it back (a daemon
    tries the target again by itself; without one, the next start of Tierkeeper does)."""
    err.print(f"[yellow]waiting:[/] {info.wait_reason}", highlight=False)
    if info.needs_user:
        err.print("once that is done, the job continues where it stopped", highlight=False)
        raise typer.Exit(int(ExitCode.NEEDS_USER))
    when = (
        "the daemon runs it as soon as the target answers again"
        if daemon
        else "it runs when the target answers again, at the next start of Tierkeeper"
    )
    err.print(f"the job stays queued: {when} (or now: `tierkeeper jobs retry`)", highlight=False)
    raise typer.Exit(int(ExitCode.PARTIAL))
