"""`tierkeeper tree …`: back up a whole folder exactly as it is, list and restore snapshots.

Runs in this process, not as a queued job: it needs no database, only the
workspace's config (for the target) and its manifest cache. It imports as
little as it can (rich only for a progress bar on a terminal), since an
incremental run is over in about half a second and start-up would dominate it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from core.config import Config, TargetConfig
from core.errors import BadInputError, ExitCode, NotFoundError, TierkeeperError
from core.paths import resolve_workspace
from core.remote.base import Store
from core.tree import catalog

tree_app = typer.Typer(
    rich_markup_mode="markdown",
    help="Back up a whole folder tree exactly as it is (any target).",
    no_args_is_help=True,
)

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option("--workspace", "-w", help="Workspace folder (default: $TIERKEEPER_HOME or "
                 "the user data dir).", envvar="TIERKEEPER_HOME", show_default=False),
]  # fmt: skip
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
TargetOpt = Annotated[
    str | None, typer.Option("--target", help="Target name (default: the only one).")
]
LabelOpt = Annotated[
    str | None,
    typer.Option("--label", help="Name of the tree on the target (default: DIR's name)."),
]


def _open(workspace: Path | None, target_name: str | None) -> tuple[Path, TargetConfig, Store]:
    from core.tier2.targets import open_store, secrets_scope

    root = resolve_workspace(workspace)
    config = Config.load(root / "config.toml")
    target = config.target(target_name)
    if target.encryption is not None:
        raise BadInputError(
            f"{target.name} is an encrypted target; tree backups cannot encrypt yet",
            hint="use an unencrypted target for tree backups",
        )
    return root, target, open_store(target, secrets_scope(root))


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")


def _emit(data: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"  # pragma: no cover


def run_async(fn: Callable[[], Awaitable[Any]]) -> None:
    """What core.cli.runner does, without loading rich: one line and an exit code."""
    debug = os.environ.get("TIERKEEPER_DEBUG", "") not in ("", "0")
    try:
        asyncio.run(_call(fn))
    except TierkeeperError as exc:
        _say(f"error: {exc.message}")
        if exc.hint:
            _say(f"  {exc.hint}")
        if debug:
            _say(traceback.format_exc())
        raise typer.Exit(int(exc.exit_code)) from None
    except KeyboardInterrupt:
        _say("interrupted; nothing half-done is left as a snapshot")
        raise typer.Exit(130) from None
    except Exception as exc:
        _say(f"internal error: {type(exc).__name__}: {exc}")
        _say(traceback.format_exc() if debug else "  re-run with --debug for the details")
        raise typer.Exit(int(ExitCode.FAILED)) from None


async def _call(fn: Callable[[], Awaitable[Any]]) -> None:
    await fn()


@contextmanager
def _bar(what: str, quiet: bool) -> Iterator[Callable[[int, int], None] | None]:
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    bar = Progress(
        what, BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
        transient=True,
    )  # fmt: skip
    task = bar.add_task(what, total=None)
    with bar:
        yield lambda done, total: bar.update(task, completed=done, total=total)


@tree_app.command("backup")
def tree_backup(
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="The folder to back up.")],
    target: TargetOpt = None,
    label: LabelOpt = None,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Snapshot DIR on a target; unchanged files are reused, grown files add their tail."""

    async def go() -> None:
        from core.tree.backup import backup_tree

        name = catalog.check_label(label or catalog.label_for(folder))
        root, tgt, store = _open(workspace, target)
        started = time.monotonic()
        try:
            with _bar(f"backing up {folder}", json) as progress:
                report = await backup_tree(
                    store, folder, name, cache=catalog.cache_dir(root, tgt.name, name),
                    progress=progress,
                )  # fmt: skip
        finally:
            await store.close()
        if json:
            _emit(dataclasses.asdict(report))
            return
        _say(
            f"{name}: snapshot {report.snapshot} on {tgt.name} · {report.files} files, "
            f"{report.dirs} folders, {report.links} links · {_size(report.bytes_in)} · "
            f"{report.reused} unchanged, {report.grown} grown · "
            f"{_size(report.stored)} stored · {time.monotonic() - started:.1f} s"
        )
        for note in report.skipped:
            _say(f"  skipped {note}")

    run_async(go)


@tree_app.command("restore")
def tree_restore(
    label: Annotated[str | None, typer.Argument(help="Which tree (default: the only one).")] = None,
    to: Annotated[Path | None, typer.Option("--to", help="The folder to restore into.")] = None,
    snapshot: Annotated[
        str | None, typer.Option("--snapshot", help="Snapshot id (default: the newest).")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Restore into a non-empty folder, replacing files.")
    ] = False,
    target: TargetOpt = None,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Restore a snapshot into a folder; every file is checked before it is in place."""

    async def go() -> None:
        from core.tree.restore import restore_tree

        if to is None:
            raise BadInputError("Say where the files go", hint="add --to DIR")

        root, tgt, store = _open(workspace, target)
        try:
            name = label or await _only_label(store)
            ids = await catalog.snapshots(store, name)
            if not ids:
                raise NotFoundError(f"No snapshot of {name} on {tgt.name}")
            chosen = snapshot or ids[-1]
            if chosen not in ids:
                raise NotFoundError(
                    f"No snapshot {chosen} of {name} on {tgt.name}",
                    hint="`tierkeeper tree list` shows them",
                )
            manifest = await catalog.load(
                store, name, chosen, catalog.cache_dir(root, tgt.name, name)
            )
            with _bar(f"restoring {name}", json) as progress:
                report = await restore_tree(
                    store, manifest, to, overwrite=overwrite, progress=progress
                )
        finally:
            await store.close()
        if json:
            _emit(dataclasses.asdict(report))
        else:
            _say(
                f"{name} {report.snapshot} → {to}: {report.files} files "
                f"({_size(report.bytes)}), {report.dirs} folders, {report.links} links, "
                "all verified"
            )

    run_async(go)


async def _only_label(store: Store) -> str:
    found = await catalog.labels(store)
    if len(found) == 1:
        return found[0]
    if not found:
        raise NotFoundError(f"No tree backups on {store.name}")
    raise BadInputError(f"Several trees on {store.name}: {', '.join(found)}", hint="name one")


@tree_app.command("list")
def tree_list(
    label: Annotated[str | None, typer.Argument(help="Only this tree.")] = None,
    target: TargetOpt = None,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """The snapshots of each tree on a target, oldest first."""

    async def go() -> None:
        root, tgt, store = _open(workspace, target)
        rows: list[dict[str, Any]] = []
        try:
            for name in [label] if label else await catalog.labels(store):
                cache = catalog.cache_dir(root, tgt.name, name)
                for sid in await catalog.snapshots(store, name):
                    m = await catalog.load(store, name, sid, cache)
                    files = m.files()
                    rows.append({
                        "label": name, "snapshot": sid, "created": m.created,
                        "files": len(files), "bytes": sum(f.size for f in files),
                        "source": m.source,
                    })  # fmt: skip
        finally:
            await store.close()
        if json:
            _emit(rows)
            return
        from core.cli.output import table

        table(
            ["label", "snapshot", "created", "files", "size", "from"],
            [
                (
                    r["label"],
                    r["snapshot"],
                    r["created"],
                    r["files"],
                    _size(int(r["bytes"])),
                    r["source"],
                )
                for r in rows
            ],
        )

    run_async(go)


def run(argv: list[str]) -> int:
    """`tierkeeper tree …` without loading the rest of the CLI (see core/cli/entry.py)."""
    try:
        tree_app(args=argv, prog_name="tierkeeper tree", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0
