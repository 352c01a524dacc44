"""`tierkeeper target …`: add, sign in again, list, test and remove backup targets.

The work is `Service.setup`'s, the same the set-up wizard reaches through the client
(so every command here works beside a running daemon too); this module only reads
options, asks for a passphrase and prints. A passphrase goes to the service in the
request body (the daemon's socket is the user's only), never on a command line or in
a log."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import SecretStr

from core.cli.common import JsonOpt, WorkspaceOpt, client_for
from core.cli.output import emit_json, err, out, table
from core.cli.progress import follow_job
from core.cli.runner import reported, run_async
from core.cli.through_daemon import absolute
from core.config import GOOGLE_API_ROOT, GOOGLE_AUTH_URI, GOOGLE_TOKEN_URI, TargetConfig
from core.errors import BadInputError, ExitCode
from core.models import JobInfo, JobState
from core.setup.models import (
    DriveSignedIn,
    DriveTargetSpec,
    FolderTargetSpec,
    S3TargetSpec,
    SignInStarted,
    spec_of,
)
from core.tier2.targets import resource_of

if TYPE_CHECKING:
    from core.client import Client

target_app = typer.Typer(
    rich_markup_mode="markdown", help="Backup targets (Tier 2).", no_args_is_help=True
)
target_add_app = typer.Typer(
    rich_markup_mode="markdown", help="Add a backup target.", no_args_is_help=True
)
target_app.add_typer(target_add_app, name="add")

NoBrowserOpt = Annotated[
    bool, typer.Option("--no-browser", help="Print the sign-in address instead of opening it.")
]


EncryptOpt = Annotated[
    bool,
    typer.Option("--encrypt", help="Encrypt everything stored there (AES-256-GCM); asks for a "
                 "passphrase, or reads TIERKEEPER_PASSPHRASE or a line piped to stdin."),
]  # fmt: skip
PASSPHRASE_ENV = "TIERKEEPER_PASSPHRASE"


def _secret(prompt: str, *, confirm: bool) -> str:
    """From the environment, else one line from stdin when it is not a terminal (`echo
    … | tierkeeper …`: a prompt there would warn about echo and then run out of input
    for the confirmation), else asked without echo."""
    given = os.environ.get(PASSPHRASE_ENV)
    if given is not None:
        return given
    if not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            with reported():
                raise BadInputError(
                    "No passphrase was given: stdin is not a terminal and held no line",
                    hint=f"pipe it in as one line, or set {PASSPHRASE_ENV}",
                )
        return line
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True))


def _new_passphrase() -> str:
    """From the environment or a pipe (scripts), else asked twice without echo."""
    given = _secret("Passphrase for the backups", confirm=True)
    if len(given) < 8:
        with reported():
            raise BadInputError("The passphrase is too short", hint="use at least 8 characters")
    return given


def _key_of(target: TargetConfig) -> str:
    return "no" if target.encryption is None else f"key {target.encryption.key_id}"


def _key_advice(target: TargetConfig, encrypt: bool) -> None:
    """After an add: where the key is, or (a target that holds encrypted backups made
    elsewhere, added without its passphrase) how to give it before backing up."""
    if target.encryption is None:
        return
    name = target.name
    if not encrypt:
        err.print(
            f"{name} holds backups encrypted with key {target.encryption.key_id}, made on "
            f"another computer or workspace. Give its passphrase or recovery code with "
            f"`tierkeeper target unlock {name}` before backing up to it: until then its "
            "jobs wait.",
            highlight=False,
        )
        return
    err.print(
        f"Backups on {name} are encrypted; the key is in this computer's keyring. Keep the "
        f"recovery kit on paper: `tierkeeper target recovery-kit {name}`. Without it or the "
        "passphrase, nobody (you included) can read these backups on another computer.",
        highlight=False,
    )


async def _parked(client: Client, name: str) -> list[int]:
    """Jobs waiting on this target for the user: the command about to run frees them."""
    here = resource_of(name)
    active = await client.jobs(active_only=True)
    return [j.id for j in active if j.state == JobState.WAITING and j.resource == here]


async def _continue(client: Client, parked: list[int], *, quiet: bool) -> list[JobInfo]:
    if parked:
        err.print(f"continuing {len(parked)} waiting job(s)", highlight=False)
    return [await follow_job(client, job_id, quiet=quiet) for job_id in sorted(parked)]


def _check_continued(done: list[JobInfo]) -> None:
    for info in done:
        if info.state != JobState.DONE:
            err.print(f"Job {info.id}: {info.state.value} {info.error or ''}", highlight=False)
            raise typer.Exit(int(ExitCode.PARTIAL))


async def _sign_in(client: Client, spec: DriveTargetSpec) -> DriveSignedIn:
    """Start and finish a sign-in through the client (the service opens the browser when
    asked to); Ctrl-C cancels it, so no sign-in is left waiting in a daemon."""
    return await _signed_in(client, await client.start_drive_sign_in(spec))


async def _signed_in(client: Client, started: SignInStarted) -> DriveSignedIn:
    _show_url(started.url)
    try:
        return await client.finish_drive_sign_in(started.flow_id)
    except (asyncio.CancelledError, KeyboardInterrupt):
        await client.cancel_drive_sign_in(started.flow_id)
        raise


def _show_url(url: str) -> None:
    err.print("Sign in to Google in your browser; if it does not open, visit:", highlight=False)
    err.print(url, highlight=False, soft_wrap=True)


@target_add_app.command("folder")
def target_add_folder(
    name: str,
    path: Path,
    encrypt: EncryptOpt = False,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Back up to a folder: an external disk, a NAS mount, a synced folder."""
    passphrase = _new_passphrase() if encrypt else None

    async def go() -> None:
        spec = spec_of(
            FolderTargetSpec, {"name": name, "path": absolute(path), "passphrase": passphrase}
        )
        async with client_for(workspace, write=True) as client:
            target = (await client.add_target(spec)).target
        emit_json(target) if json else err.print(f"Target {target.name} → {target.where}: ok")
        _key_advice(target, encrypt)

    run_async(go)


@target_app.command("list")
def target_list(workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """The backup targets."""

    async def go() -> None:
        async with client_for(workspace, write=False) as client:
            targets = (await client.config()).targets
        if json:
            emit_json(targets)
            return
        table(["name", "kind", "where", "encrypted"],
              [(t.name, t.kind, t.where, _key_of(t)) for t in targets])  # fmt: skip

    run_async(go)


@target_app.command("test")
def target_test(
    name: Annotated[str | None, typer.Argument()] = None,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Write, read back and delete a probe on the target."""

    async def go() -> None:
        async with client_for(workspace, write=False) as client:
            found = await client.test_target(name)
        report = "\n".join(found.report)
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
    encrypt: EncryptOpt = False,
    auth_uri: Annotated[str, typer.Option(hidden=True)] = GOOGLE_AUTH_URI,
    token_uri: Annotated[str, typer.Option(hidden=True)] = GOOGLE_TOKEN_URI,
    api_root: Annotated[str, typer.Option(hidden=True)] = GOOGLE_API_ROOT,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Back up to Google Drive (scope drive.file: Tierkeeper sees only its own files)."""
    passphrase = _new_passphrase() if encrypt else None

    async def go() -> None:
        spec = spec_of(
            DriveTargetSpec,
            {"name": name, "client_id": client_id, "client_secret": client_secret,
             "folder": folder, "passphrase": passphrase, "open_browser": not no_browser,
             "auth_uri": auth_uri, "token_uri": token_uri, "api_root": api_root}
        )  # fmt: skip
        async with client_for(workspace, write=True) as client:
            target = (await _sign_in(client, spec)).target
        emit_json(target) if json else err.print(f"Target {target.name} → {target.where}: ok")
        _key_advice(target, encrypt)

    run_async(go)


@target_add_app.command("s3")
def target_add_s3(
    name: str,
    bucket: Annotated[str, typer.Option(help="The bucket (it must exist).")],
    prefix: Annotated[str, typer.Option(help="Key prefix inside the bucket.")] = "",
    endpoint: Annotated[
        str | None, typer.Option(help="Endpoint URL of an S3-compatible service.")
    ] = None,
    region: Annotated[str | None, typer.Option(help="The bucket's region.")] = None,
    storage_class: Annotated[
        str, typer.Option(help="DEEP_ARCHIVE, GLACIER, GLACIER_IR, STANDARD_IA or STANDARD.")
    ] = "DEEP_ARCHIVE",
    addressing: Annotated[str, typer.Option(help="auto, path or virtual.")] = "auto",
    encrypt: EncryptOpt = False,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Archive to S3 (Tier 3). Keys in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are kept in
    the OS keyring; without them the standard AWS chain (profile, SSO, role) is used."""
    passphrase = _new_passphrase() if encrypt else None

    async def go() -> None:
        spec = spec_of(
            S3TargetSpec,
            {"name": name, "bucket": bucket, "prefix": prefix, "endpoint_url": endpoint,
             "region": region, "addressing": addressing, "storage_class": storage_class,
             "access_key": os.environ.get("AWS_ACCESS_KEY_ID"),
             "secret_key": os.environ.get("AWS_SECRET_ACCESS_KEY"), "passphrase": passphrase}
        )  # fmt: skip
        async with client_for(workspace, write=True) as client:
            added = await client.add_target(spec)
        target, report = added.target, added.report
        if json:
            emit_json({"target": target, "report": report})
            return
        for line in report:
            err.print(f"  {line}", highlight=False)
        err.print(f"Target {target.name} → {target.where}: ok", highlight=False)
        _key_advice(target, encrypt)

    run_async(go)


@target_app.command("reconnect")
def target_reconnect(
    name: str, no_browser: NoBrowserOpt = False, workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:  # fmt: skip
    """Sign in again (a revoked or expired sign-in); waiting jobs then continue."""

    async def go() -> None:
        async with client_for(workspace, write=True) as client:
            parked = await _parked(client, name)
            started = await client.start_drive_reconnect(name, open_browser=not no_browser)
            target = (await _signed_in(client, started)).target
            err.print(f"Target {target.name} → {target.where}: ok", highlight=False)
            done = await _continue(client, parked, quiet=json)
        if json:
            emit_json({"target": target, "jobs": done})
        _check_continued(done)

    run_async(go)


@target_app.command("remove")
def target_remove(name: str, workspace: WorkspaceOpt = None) -> None:
    """Forget a target and its sign-in (the backups on it stay where they are)."""

    async def go() -> None:
        async with client_for(workspace, write=True) as client:
            await client.remove_target(name)
        err.print(f"Target {name} removed; its backups were left in place")

    run_async(go)


@target_app.command("unlock")
def target_unlock(name: str, workspace: WorkspaceOpt = None) -> None:
    """Give an encrypted target's passphrase (or recovery code) on this computer."""
    secret = _secret(f"Passphrase or recovery code for {name}", confirm=False)

    async def go() -> None:
        async with client_for(workspace, write=True) as client:
            parked = await _parked(client, name)
            await client.unlock_target(name, SecretStr(secret))
            err.print(f"{name} unlocked: its key is in this computer's keyring", highlight=False)
            done = await _continue(client, parked, quiet=False)
        _check_continued(done)

    run_async(go)


@target_app.command("recovery-kit")
def target_recovery_kit(
    name: str,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write it here.")] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Print the page that recovers an encrypted target's backups (keep it on paper)."""

    async def go() -> None:
        async with client_for(workspace, write=False) as client:
            page = (await client.recovery_kit(name)).text
        if output is None:
            out.print(page, highlight=False, markup=False)
            return
        try:
            fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise BadInputError(f"{output} exists already", hint="choose a new file") from None
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(page)
        err.print(f"Recovery kit written to {output} (readable only by you)", highlight=False)

    run_async(go)
