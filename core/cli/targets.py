"""`tierkeeper target …`: add, sign in again, list, test and remove backup targets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from core.cli.common import JsonOpt, WorkspaceOpt, open_service
from core.cli.output import emit_json, err, table
from core.cli.progress import follow_job
from core.cli.runner import run_async
from core.config import GOOGLE_API_ROOT, GOOGLE_AUTH_URI, GOOGLE_TOKEN_URI
from core.errors import ExitCode
from core.models import JobState
from core.tier2.targets import resource_of

target_app = typer.Typer(help="Backup targets (Tier 2).", no_args_is_help=True)
target_add_app = typer.Typer(help="Add a backup target.", no_args_is_help=True)
target_app.add_typer(target_add_app, name="add")

NoBrowserOpt = Annotated[
    bool, typer.Option("--no-browser", help="Print the sign-in address instead of opening it.")
]


def _show_url(url: str) -> None:
    err.print("Sign in to Google in your browser; if it does not open, visit:", highlight=False)
    err.print(url, highlight=False, soft_wrap=True)


@target_add_app.command("folder")
def target_add_folder(
    name: str,
    path: Path,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Back up to a folder: an external disk, a NAS mount, a synced folder."""

    async def go() -> None:
        async with await open_service(workspace, write=True) as svc:
            target = await svc.add_folder_target(name, str(path))
        emit_json(target) if json else err.print(f"Target {target.name} → {target.where}: ok")

    run_async(go)


@target_app.command("list")
def target_list(workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """The backup targets."""

    async def go() -> None:
        async with await open_service(workspace, write=False) as svc:
            targets = svc.config.targets
        if json:
            emit_json(targets)
            return
        table(["name", "kind", "where"], [(t.name, t.kind, t.where) for t in targets])

    run_async(go)


@target_app.command("test")
def target_test(
    name: Annotated[str | None, typer.Argument()] = None,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Write, read back and delete a probe on the target."""

    async def go() -> None:
        async with await open_service(workspace, write=False) as svc:
            report = await svc.test_target(name)
        emit_json({"result": report}) if json else err.print(report)

    run_async(go)


@target_add_app.command("drive")
def target_add_drive(
    name: str,
    client_id: Annotated[
        str,
        typer.Option(
            envvar="TIERKEEPER_GOOGLE_CLIENT_ID",
            help="OAuth client id of a 'Desktop app' client in Google Cloud.",
        ),
    ],
    client_secret: Annotated[
        str | None,
        typer.Option(
            envvar="TIERKEEPER_GOOGLE_CLIENT_SECRET",
            help="That client's secret (kept in the OS keyring).",
            show_default=False,
        ),
    ] = None,
    folder: Annotated[str, typer.Option(help="Top folder in My Drive.")] = "Tierkeeper-backup",
    no_browser: NoBrowserOpt = False,
    auth_uri: Annotated[str, typer.Option(hidden=True)] = GOOGLE_AUTH_URI,
    token_uri: Annotated[str, typer.Option(hidden=True)] = GOOGLE_TOKEN_URI,
    api_root: Annotated[str, typer.Option(hidden=True)] = GOOGLE_API_ROOT,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Back up to Google Drive (scope drive.file: Tierkeeper sees only its own files)."""

    async def go() -> None:
        async with await open_service(workspace, write=True) as svc:
            target = await svc.add_drive_target(
                name,
                client_id=client_id,
                client_secret=client_secret,
                on_url=_show_url,
                open_browser=not no_browser,
                endpoints={"folder": folder, "auth_uri": auth_uri, "token_uri": token_uri,
                           "api_root": api_root},
            )  # fmt: skip
        emit_json(target) if json else err.print(f"Target {target.name} → {target.where}: ok")

    run_async(go)


@target_app.command("reconnect")
def target_reconnect(
    name: str, no_browser: NoBrowserOpt = False, workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:  # fmt: skip
    """Sign in again (a revoked or expired sign-in); waiting jobs then continue."""

    async def go() -> None:
        async with await open_service(workspace, write=True) as svc:
            active = await svc.jobs.list(active_only=True)
            here = resource_of(name)
            parked = [j.id for j in active if j.state == JobState.WAITING and j.resource == here]
            target = await svc.reconnect_target(name, on_url=_show_url, open_browser=not no_browser)
            err.print(f"Target {target.name} → {target.where}: ok", highlight=False)
            if parked:
                err.print(f"continuing {len(parked)} waiting job(s)", highlight=False)
            done = [await follow_job(svc, job_id, quiet=json) for job_id in parked]
        if json:
            emit_json({"target": target, "jobs": done})
        for info in done:
            if info.state != JobState.DONE:
                err.print(f"Job {info.id}: {info.state.value} {info.error or ''}", highlight=False)
                raise typer.Exit(int(ExitCode.PARTIAL))

    run_async(go)


@target_app.command("remove")
def target_remove(name: str, workspace: WorkspaceOpt = None) -> None:
    """Forget a target and its sign-in (the backups on it stay where they are)."""

    async def go() -> None:
        async with await open_service(workspace, write=True) as svc:
            await svc.remove_target(name)
        err.print(f"Target {name} removed; its backups were left in place")

    run_async(go)
