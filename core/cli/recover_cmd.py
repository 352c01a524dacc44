"""`tierkeeper recover` and `tierkeeper catalog repair`: the catalog back from the remotes."""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace
from typing import Annotated, Any

import typer
from pydantic import SecretStr

from core.cli.common import (
    JsonOpt,
    TargetOpt,
    WorkspaceOpt,
    client_for,
    daemon_client,
)
from core.cli.output import emit_json, err, human_bytes
from core.cli.progress import follow_job
from core.cli.runner import run_async
from core.cli.targets import PASSPHRASE_ENV
from core.errors import BadInputError, ExitCode, TierkeeperError
from core.models import JobState
from core.recovery.ops import set_aside_damaged_db
from core.workspace import Workspace

catalog_app = typer.Typer(
    rich_markup_mode="markdown", help="The local catalog against the remotes.", no_args_is_help=True
)


def recover(
    target: Annotated[
        list[str] | None, typer.Option("--target", help="Only this target (repeatable).")
    ] = None,
    passphrase_stdin: Annotated[
        bool,
        typer.Option(
            "--passphrase-stdin",
            help="Read an encrypted target's passphrase or recovery code from stdin "
            "(else TIERKEEPER_PASSPHRASE).",
        ),
    ] = False,
    restore: Annotated[
        bool, typer.Option("--restore", help="Then bring Tier 2 sessions back and re-import.")
    ] = False,
    session: Annotated[
        list[str] | None, typer.Option("--session", help="With --restore: only these.")
    ] = None,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Rebuild the catalog from the targets' manifests (no data downloaded); never writes
    to a remote. A damaged local DB is moved aside first, untouched. Runs as a job, in
    the daemon when one serves the workspace."""
    secret = sys.stdin.readline().strip() if passphrase_stdin else os.environ.get(PASSPHRASE_ENV)

    async def go() -> None:
        ws = Workspace.at(workspace)
        aside = None
        daemon = await daemon_client(workspace)
        if daemon is None:  # a daemon holds its DB open: never move it from under it
            ws.init()
            aside = set_aside_damaged_db(ws)
        else:
            await daemon.close()
        if aside is not None and not json:
            err.print(f"The catalog DB was damaged; it was moved aside to {aside}",
                      highlight=False)  # fmt: skip
        async with client_for(workspace, write=True) as client:
            job = await client.start_recover(
                target or None, secret=SecretStr(secret) if secret else None,
                restore=restore, sessions=session or None,
            )  # fmt: skip
            info = await follow_job(client, job.id, quiet=json)
        if info.state != JobState.DONE:
            raise TierkeeperError(info.error or f"The rebuild {info.state.value}",
                                  hint=f"`tierkeeper jobs` lists job {info.id}")  # fmt: skip
        result = info.result or {}
        reports = [SimpleNamespace(**r) for r in result.get("targets", [])]
        raw_restore = result.get("restore")
        restored = SimpleNamespace(**raw_restore) if raw_restore is not None else None
        problems = [p for r in reports for p in r.problems]
        if json:
            emit_json({"set_aside": str(aside) if aside else None,
                       "targets": result.get("targets", []),
                       "restore": raw_restore})  # fmt: skip
        else:
            _print(reports, restored)
        if problems or (restored is not None and restored.failed):
            raise typer.Exit(int(ExitCode.PARTIAL))

    run_async(go)


def _print(reports: list[Any], restored: Any) -> None:
    for r in reports:
        err.print(
            f"{r.target} (tier {r.tier}): {r.sessions_added} sessions added, "
            f"{r.already_known} already known · index {r.index} · read {r.objects_read} "
            f"records, {human_bytes(r.bytes_read)}",
            highlight=False,
        )
        if r.without_catalog:
            err.print(f"  {r.without_catalog} backed up before catalogs existed: listed by id "
                      "until restored", highlight=False)  # fmt: skip
        for p in r.problems:
            err.print(f"  [yellow]![/] {p}", highlight=False)
    if restored is None:
        err.print("Sessions are listed and totalled; `tierkeeper recover --restore` brings "
                  "their files back (and search with them)", highlight=False)  # fmt: skip
        return
    err.print(f"{len(restored.restored)} sessions restored ({restored.files} files, "
              f"{restored.messages} messages re-imported)", highlight=False)  # fmt: skip
    for f in restored.failed:
        err.print(f"  [red]✗[/] {f}", highlight=False)
    for phase, ids in restored.archived.items():
        err.print(f"  {len(ids)} sessions of {phase} are in the archive: "
                  f"`tierkeeper archive-restore {phase}` brings them", highlight=False)  # fmt: skip


def verify_catalog(target: str | None, workspace: Any, json: bool) -> None:
    """`verify --catalog`: drift both ways, nothing changed."""

    async def go() -> None:
        async with client_for(workspace, write=False) as client:
            drifts = await client.catalog_drift(target)
        if json:
            emit_json([d.model_dump(mode="json") for d in drifts])
        for d in drifts:
            if json:
                break
            err.print(f"{d.target}: " + ("the catalog matches" if d.clean else "drift"),
                      highlight=False)  # fmt: skip
            for label, items in (("missing on the target", d.missing_remotely),
                                 ("on the target, unknown here", d.unknown_locally),
                                 ("manifest differs", d.differs)):  # fmt: skip
                for item in items:
                    err.print(f"  {label}: {item}", highlight=False)
        if not all(d.clean for d in drifts):
            if not json:
                err.print("`tierkeeper catalog repair --yes` fixes the local side", highlight=False)
            raise typer.Exit(int(ExitCode.PARTIAL))

    run_async(go)


@catalog_app.command("repair")
def catalog_repair(
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: change the local DB.")] = False,
    target: TargetOpt = None,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Repair the local catalog from the targets: add what they hold, mark what they lost.
    Nothing on a target is written or deleted."""

    async def go() -> None:
        if not yes:
            raise BadInputError(
                "catalog repair changes the local DB",
                hint="see `tierkeeper verify --catalog` first, then run again with --yes",
            )
        async with client_for(workspace, write=True) as client:
            result = await client.catalog_repair(target)
        if json:
            emit_json(result.model_dump(mode="json"))
        else:
            err.print(f"{result.added} sessions added, {result.marked_missing} backups "
                      "marked missing", highlight=False)  # fmt: skip
            for p in result.problems:
                err.print(f"  [yellow]![/] {p}", highlight=False)

    run_async(go)
