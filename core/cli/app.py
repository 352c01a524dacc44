"""The `tierkeeper` command line (Tier 1 commands).

Every command takes --workspace and --json. Exit codes: 0 ok, 1 failed,
2 bad usage or input, 3 needs the user, 4 partial (some items failed).
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from core import __version__
from core.cli.common import (
    JsonOpt,
    TargetOpt,
    WorkspaceOpt,
    client_for,
    daemon_client,
    explain_waiting,
    in_process,
)
from core.cli.daemon_cmd import daemon
from core.cli.output import (
    NO_TARGET,
    backup_line,
    emit_json,
    err,
    human_bytes,
    out,
    short_ts,
    table,
)
from core.cli.progress import follow_job
from core.cli.recover_cmd import catalog_app, recover, verify_catalog
from core.cli.review_cmd import review
from core.cli.runner import run_async
from core.cli.targets import target_app
from core.cli.through_daemon import absolute, export_to_stdout, restore_through, verify_through
from core.cli.tree_cmd import tree_app
from core.errors import BadInputError, ExitCode
from core.models import HIT_END, HIT_START, JobState, SearchQuery
from core.service import Service
from core.workspace import Workspace

app = typer.Typer(
    rich_markup_mode="markdown",
    name="tierkeeper",
    help="Keep AI coding-agent sessions in three tiers: local, backup, archive.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
hook_app = typer.Typer(
    rich_markup_mode="markdown", help="Claude Code hooks (the payload arrives on stdin)."
)
session_app = typer.Typer(
    rich_markup_mode="markdown", help="Start and end working sessions.", no_args_is_help=True
)
phase_app = typer.Typer(
    rich_markup_mode="markdown", help="Phases group sessions into milestones.", no_args_is_help=True
)
jobs_app = typer.Typer(rich_markup_mode="markdown", help="Background jobs: list, cancel, resume.")
app.add_typer(hook_app, name="hook")
app.add_typer(session_app, name="session")
app.add_typer(phase_app, name="phase")
app.add_typer(jobs_app, name="jobs")
app.add_typer(target_app, name="target")
app.add_typer(tree_app, name="tree")
app.add_typer(catalog_app, name="catalog")
app.command()(daemon)
app.command()(recover)
app.command()(review)


def _version(value: bool) -> None:
    if value:
        print(f"tierkeeper {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    if debug:
        os.environ["TIERKEEPER_DEBUG"] = "1"


# init / status ----------------------------------------------------------------
@app.command()
def init(workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """Create a workspace (safe to run again)."""

    async def go() -> None:
        ws = Workspace.at(workspace)
        created = ws.init()
        daemon = await daemon_client(ws.root)
        if daemon is not None:  # it holds the workspace: ask it
            try:
                status = await daemon.status()
            finally:
                await daemon.close()
        else:
            async with await Service.start(ws, run_jobs=False) as svc:
                status = await svc.status()
        if json:
            emit_json({"workspace": str(ws.root), "created": created, "status": status})
        else:
            word = "Created" if created else "Already set up:"
            err.print(f"{word} workspace {ws.root}")

    run_async(go)


@app.command()
def status(workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """What the workspace holds and what is running."""

    async def go() -> None:
        async with client_for(workspace, write=False) as client:
            st = await client.status()
            targets = await client.targets()
        by_daemon = in_process(client) is None
        pid = getattr(client, "pid", None) if by_daemon else None
        served_by = f"daemon (pid {pid})" if by_daemon else "in-process (no daemon running)"
        if json:
            emit_json({**st.model_dump(mode="json"), "daemon_pid": pid})
            return
        table(
            ["", ""],
            [
                ("workspace", st.workspace),
                ("served by", served_by),
                ("version", st.version),
                ("sessions", st.sessions),
                ("messages", st.messages),
                ("database", human_bytes(st.db_bytes)),
                ("current phase", st.current_phase or "(none)"),
                ("jobs", f"{st.jobs_running} running, {st.jobs_queued} queued"),
                (
                    "last import",
                    st.last_import.isoformat(" ", "seconds") if st.last_import else "never",
                ),
                *(
                    [(f"backup: {t.name}", backup_line(t)) for t in targets]
                    or [("backup", NO_TARGET)]
                ),
            ],
        )

    run_async(go)


# import -----------------------------------------------------------------------
@app.command("import")
def import_(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Folders or files of agent history (default: the ones detected)."),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="auto, claude-code, roo, cline or tierkeeper.")
    ] = "auto",
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Import agent history incrementally (re-runs read only what changed)."""

    async def go() -> None:
        targets = [absolute(p) for p in paths or []]
        if not targets:
            from core.local.sources import detected_sources

            found = detected_sources()
            if not found:
                raise BadInputError(
                    "No agent history found in the usual places",
                    hint="name a folder: tierkeeper import ~/path/to/transcripts",
                )
            for src in found:
                err.print(f"importing {src.format} history from {src.path}", highlight=False)
            targets = [str(src.path) for src in found]
        async with client_for(workspace, write=True) as client:
            job = await client.start_import(targets, fmt)
            info = await follow_job(client, job.id, quiet=json)
        result = info.result or {}
        if json:
            emit_json({"job": info, "report": result})
        else:
            _print_import(result)
        if info.state == JobState.CANCELLED:
            raise typer.Exit(int(ExitCode.PARTIAL))
        if info.state == JobState.FAILED:
            err.print(f"[bold red]error:[/] {info.error}", highlight=False)
            raise typer.Exit(int(ExitCode.FAILED))
        if result.get("files_failed"):
            raise typer.Exit(int(ExitCode.PARTIAL))

    run_async(go)


def _print_import(r: dict[str, Any]) -> None:
    if not r:
        return
    err.print(
        f"{r.get('files_imported', 0)} files imported, {r.get('files_skipped', 0)} unchanged, "
        f"{r.get('files_failed', 0)} failed · {r.get('lines_read', 0)} lines read, "
        f"{r.get('rows_stored', 0)} stored, {r.get('bad_lines', 0)} kept raw as unparsable · "
        f"{r.get('sessions', 0)} sessions touched",
        highlight=False,
    )
    for e in r.get("errors", []):
        err.print(f"  [yellow]![/] {e}", highlight=False)


# reading ----------------------------------------------------------------------
@app.command()
def sessions(
    phase: Annotated[str | None, typer.Option(help="Only this phase.")] = None,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """List sessions: id, source, phase, and size."""

    async def go() -> None:
        async with client_for(workspace, write=False) as client:
            rows = await client.list_sessions(phase)
            targets = [] if json else await client.targets()
        if json:
            emit_json(rows)
            return
        table(
            ["id", "source", "project", "phase", "started", "messages", "tokens", "cost"],
            [
                (
                    s.id,
                    s.source,
                    s.project,
                    s.phase or "",
                    short_ts(s.started_at),
                    s.message_count,
                    s.input_tokens + s.output_tokens,
                    f"${s.cost_usd:.2f}",
                )
                for s in rows
            ],
        )
        err.print(f"{len(rows)} sessions", highlight=False)
        for t in targets:
            err.print(f"  backed up on {t.name}: {backup_line(t)}", highlight=False)
        if not targets:
            err.print(f"  {NO_TARGET}", highlight=False)
        if not rows:  # a new or lost DB: the backups may still hold everything
            err.print("if your backups hold sessions, `tierkeeper recover` rebuilds the list "
                      "from them", highlight=False)  # fmt: skip

    run_async(go)


@app.command()
def show(
    session_id: Annotated[str, typer.Argument(metavar="SESSION")],
    messages: Annotated[bool, typer.Option(help="Include the conversation.")] = False,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """One session: its metadata, files and (with --messages) the conversation."""

    async def go() -> None:
        async with client_for(workspace, write=False) as client:
            detail = await client.session(session_id, messages=messages)
        if json:
            emit_json(detail)
            return
        s = detail.session
        table(["", ""], [(k, v) for k, v in s.model_dump().items() if v not in (None, "")])
        table(
            ["file", "role", "size", "lines", "stored", "unparsable"],
            [
                (f.path, f.role, human_bytes(f.size), f.lines_read, f.rows_stored, f.bad_lines)
                for f in detail.sources
            ],
        )
        for m in detail.messages:
            text = (m.text or m.tools or m.parse_error or "").strip().replace("\n", " ")
            print(f"{short_ts(m.ts)}  {m.role or m.type or '?':>9}  {text[:160]}")

    run_async(go)


@app.command()
def export(
    session_id: Annotated[str, typer.Argument(metavar="SESSION")],
    original: Annotated[
        bool,
        typer.Option(
            "--original/--no-original",
            help="The source file(s) byte for byte (the only kind of export so far).",
        ),
    ] = True,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="File or folder.")] = None,
    file: Annotated[str | None, typer.Option(help="Only this file of the session.")] = None,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Export a session's original files, byte for byte."""
    if not original:
        raise typer.BadParameter("only exports of the original files exist so far",
                                 param_hint="--no-original")  # fmt: skip

    async def go() -> None:
        async with client_for(workspace, write=False) as client:
            if output is None:
                await export_to_stdout(client, session_id)
                return
            results = await client.export(session_id, absolute(output), file=file)
        if json:
            emit_json(results)
        for r in results:
            if not r.matches_source:
                err.print(
                    f"[yellow]note:[/] {r.written_to} differs from the source: "
                    f"{r.redacted_lines} lines had secrets redacted on import",
                    highlight=False,
                )
            elif not json:
                err.print(f"{r.written_to}  {human_bytes(r.size)}  sha256 {r.sha256[:16]}… ✓")

    run_async(go)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help='Words to find; "a phrase", prefix*.')],
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    project: Annotated[str | None, typer.Option()] = None,
    session: Annotated[str | None, typer.Option()] = None,
    agent: Annotated[str | None, typer.Option()] = None,
    role: Annotated[str | None, typer.Option()] = None,
    tool: Annotated[str | None, typer.Option()] = None,
    since: Annotated[str | None, typer.Option(help="YYYY-MM-DD or ISO time.")] = None,
    until: Annotated[str | None, typer.Option(help="YYYY-MM-DD or ISO time.")] = None,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Full-text search over every conversation, best matches first."""

    async def go() -> None:
        q = SearchQuery(text=query, limit=limit, project=project, session=session, agent=agent,
                        role=role, tool=tool, since=since, until=until)  # fmt: skip
        async with client_for(workspace, write=False) as client:
            hits = await client.search(q)
        if json:
            emit_json(hits)
            return
        for h in hits:
            snippet = escape(" ".join(h.snippet.split()))
            snippet = snippet.replace(HIT_START, "[bold yellow]").replace(HIT_END, "[/]")
            out.print(f"{h.session_id}  {short_ts(h.ts)}  {h.role or ''}", highlight=False)
            out.print(f"    {snippet}", highlight=False)
        err.print(f"{len(hits)} results")

    run_async(go)


@app.command()
def stats(
    by: Annotated[str, typer.Option(help="model, agent, tool, project, session or day.")] = "model",
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Tokens and cost (deduplicated per message and request), or tool use."""

    async def go() -> None:
        async with client_for(workspace, write=False) as client:
            rows = await client.stats(by)
        if json:
            emit_json(rows)
            return
        if not rows:
            err.print("No data yet — import some sessions first")
            return
        cols = list(rows[0].keys())
        table(cols, [[_fmt(r[c]) for c in cols] for r in rows])

    run_async(go)


def _fmt(v: Any) -> Any:
    return f"{v:.4f}" if isinstance(v, float) else v


# hooks ------------------------------------------------------------------------
@hook_app.callback(invoke_without_command=True)
def hook(ctx: typer.Context) -> None:
    """With no sub-command: record the hook payload on stdin (always exits 0)."""
    if ctx.invoked_subcommand is None:
        from core.hooks.record import main as record

        raise typer.Exit(record())


def _hook_command() -> str:
    from core.hooks.install import frozen_hook_command

    frozen = frozen_hook_command()  # the installed bundle's faster hook program
    if frozen is not None:
        return frozen
    exe = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    if exe is not None and exe.name == "tierkeeper" and exe.exists():
        return f"{exe} hook"
    return "tierkeeper hook"


@hook_app.command("install")
def hook_install(
    settings: Annotated[Path | None, typer.Option(help="Claude Code settings.json.")] = None,
    command: Annotated[str | None, typer.Option(help="Command Claude Code runs.")] = None,
    json: JsonOpt = False,
) -> None:
    """Add Tierkeeper's hooks to Claude Code's settings (idempotent, keeps yours)."""
    from core.hooks.install import default_settings_path, install

    def go() -> Any:
        return install(settings or default_settings_path(), command or _hook_command())

    _report_install(go, json, "installed")


@hook_app.command("uninstall")
def hook_uninstall(
    settings: Annotated[Path | None, typer.Option(help="Claude Code settings.json.")] = None,
    json: JsonOpt = False,
) -> None:
    """Remove Tierkeeper's hooks, leaving every other hook in place."""
    from core.hooks.install import default_settings_path, uninstall

    def go() -> Any:
        return uninstall(settings or default_settings_path())

    _report_install(go, json, "removed")


def _report_install(fn: Any, json: bool, verb: str) -> None:
    async def go() -> None:
        result = fn()
        if json:
            emit_json(result)
        elif result.changed:
            backup = f" (backup: {result.backup})" if result.backup else ""
            err.print(f"Hooks {verb} for {', '.join(result.events)}{backup}")
        else:
            err.print("Nothing to change")

    run_async(go)


# sessions and phases ------------------------------------------------------------
@session_app.command("start")
def session_start(
    agent: Annotated[str, typer.Option(help="Who works in this session.")] = "human",
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Start a session; prints its id."""

    async def go() -> None:
        async with client_for(workspace, write=True) as client:
            sid = (await client.start_session(agent)).session
        emit_json({"session": sid}) if json else print(sid)

    run_async(go)


@session_app.command("end")
def session_end(
    session_id: Annotated[str | None, typer.Argument(metavar="[SESSION]")] = None,
    summary: Annotated[str | None, typer.Option(help="What was done.")] = None,
    open_item: Annotated[
        list[str] | None, typer.Option("--open-item", help="Left to do (repeatable).")
    ] = None,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """End a session: log it, write the handoff note, import the session's files."""

    async def go() -> None:
        async with client_for(workspace, write=True) as client:
            ended = await client.end_session(
                session_id, summary=summary, open_items=open_item or []
            )
            # the handoff note is written: the session leaves the machine (unless told not to)
            backup = None
            if ended.backup is not None:
                backup = await follow_job(client, ended.backup.id, quiet=json)
        if json:
            emit_json({"session": ended.session, "handoff": ended.handoff,
                       "import": ended.imported, "backup": backup})  # fmt: skip
        else:
            err.print(f"Session {ended.session} ended; handoff note: {ended.handoff}")
            if backup is not None:
                where = (backup.resource or "").removeprefix("target:") or "the backup target"
                err.print(f"Backup to {where}: {backup.state.value}")

    run_async(go)


@phase_app.command("new")
def phase_new(name: str, workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """Start a phase; new sessions join it."""

    async def go() -> None:
        async with client_for(workspace, write=True) as client:
            info = await client.phase_new(name)
        emit_json(info) if json else err.print(f"Phase {info.name} started")

    run_async(go)


@phase_app.command("close")
def phase_close(
    name: Annotated[str | None, typer.Argument()] = None,
    html: Annotated[bool, typer.Option("--html", help="Also write the review as HTML.")] = False,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Close a phase (the current one by default): back up its sessions, write its review,
    upload it, archive it if [phases] archive_on_close says so, apply retention."""
    from core.cli import phase_close_cmd

    phase_close_cmd.run(name, html=html, workspace=workspace, json=json)


@phase_app.command("list")
def phase_list(workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """Phases with their state and session counts."""

    async def go() -> None:
        async with client_for(workspace, write=False) as client:
            phases = await client.phases()
        # as they were started (the client lists them for a picker: closed ones first)
        rows = [p.model_dump(exclude={"reviewed_at"})
                for p in sorted(phases, key=lambda p: p.created_at or "")]  # fmt: skip
        if json:
            emit_json(rows)
            return
        table(
            ["name", "status", "started", "closed", "sessions", "current"],
            [
                (
                    r["name"],
                    r["status"],
                    short_ts(r["created_at"]),
                    short_ts(r["closed_at"]),
                    r["sessions"],
                    "●" if r["current"] else "",
                )
                for r in rows
            ],
        )

    run_async(go)


# jobs -------------------------------------------------------------------------
@jobs_app.callback(invoke_without_command=True)
def jobs(
    ctx: typer.Context,
    active: Annotated[bool, typer.Option(help="Only queued and running.")] = False,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """List jobs (the default)."""
    if ctx.invoked_subcommand is not None:
        return

    async def go() -> None:
        async with client_for(workspace, write=False) as client:
            rows = await client.jobs(active_only=active)
        if json:
            emit_json(rows)
            return
        table(
            ["id", "kind", "state", "title", "progress", "created", "error"],
            [
                (
                    j.id,
                    j.kind,
                    j.state.value,
                    j.title,
                    _job_progress(j),
                    short_ts(j.created_at),
                    j.error or j.wait_reason or "",
                )
                for j in rows
            ],
        )

    run_async(go)


def _job_progress(j: Any) -> str:
    if j.bytes_total:
        return f"{100 * j.bytes_done / j.bytes_total:.0f}%"
    if j.items_total:
        return f"{j.items_done}/{j.items_total}"
    return ""


@jobs_app.command("cancel")
def jobs_cancel(job_id: int, workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """Cancel a queued or running job."""

    async def go() -> None:
        async with client_for(workspace, write=True) as client:
            info = await client.cancel_job(job_id)
        emit_json(info) if json else err.print(f"Job {info.id}: {info.state.value}")

    run_async(go)


@jobs_app.command("retry")
def jobs_retry(workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """Try waiting jobs again now (a target came back), and wait for them."""

    async def go() -> None:
        async with client_for(workspace, write=True) as client:
            await client.retry_waiting()
            pending = await client.jobs(active_only=True)
            done = [await follow_job(client, j.id, quiet=json) for j in reversed(pending)]
        if json:
            emit_json(done)
            return
        for info in done:
            err.print(f"Job {info.id}: {info.state.value}", highlight=False)
        still = [i for i in done if i.state == JobState.WAITING]
        if still:
            explain_waiting(still[0], daemon=in_process(client) is None)

    run_async(go)


@jobs_app.command("pause")
def jobs_pause(job_id: int, workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """Pause a job: it stops (finished work is kept) until `jobs resume ID`."""

    async def go() -> None:
        async with client_for(workspace, write=True) as client:
            info = await client.pause_job(job_id)
        if json:
            emit_json(info)
            return
        err.print(f"Job {info.id}: {info.state.value}", highlight=False)
        if info.state == JobState.PAUSED:
            err.print(f"continue it with `tierkeeper jobs resume {info.id}`", highlight=False)

    run_async(go)


@jobs_app.command("resume")
def jobs_resume(
    job_id: Annotated[
        int | None,
        typer.Argument(help="A paused job; none: every job left unfinished by a crash or a stop."),
    ] = None,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Continue a paused job, or run jobs left unfinished by a crash or a stop; waits for them."""

    async def go() -> None:
        async with client_for(workspace, write=True) as client:
            if job_id is not None:
                await client.resume_job(job_id)
                pending = [job_id]
            else:  # paused jobs stay paused until asked for by id
                active = await client.jobs(active_only=True)
                pending = [j.id for j in active if j.state != JobState.PAUSED]
            done = [await follow_job(client, i, quiet=json) for i in pending]
        if json:
            emit_json(done)
        elif job_id is not None:
            err.print(f"Job {done[0].id}: {done[0].state.value}", highlight=False)
        else:
            err.print(f"{len(done)} jobs resumed")

    run_async(go)


# Tier 2 -------------------------------------------------------------------------


@app.command()
def backup(
    sessions: Annotated[list[str] | None, typer.Argument(metavar="[SESSION]...")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every session (the default).")] = False,
    target: TargetOpt = None,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Compress, upload and verify sessions on a backup target."""

    async def go() -> None:
        async with client_for(workspace, write=True) as client:
            job = await client.start_backup([] if all_ else list(sessions or []), target)
            info = await follow_job(client, job.id, quiet=json)
        result = info.result or {}
        if json:
            emit_json({"job": info, "result": result})
        elif info.state == JobState.DONE:
            same = int(result.get("unchanged", 0))
            err.print(
                f"{result.get('sessions', 0)} sessions backed up"
                + (f" ({same} unchanged since their last backup)" if same else "")
                + f": {human_bytes(result.get('raw_bytes', 0))} → "
                f"{human_bytes(result.get('stored_bytes', 0))}",
                highlight=False,
            )
        for failure in result.get("failed", []):
            err.print(f"  [yellow]![/] {failure}", highlight=False)
        if info.state == JobState.WAITING:
            explain_waiting(info, daemon=in_process(client) is None)
        if info.state != JobState.DONE:
            err.print(f"[bold red]error:[/] {info.error or info.state.value}", highlight=False)
            raise typer.Exit(int(ExitCode.FAILED))
        if result.get("failed"):
            raise typer.Exit(int(ExitCode.PARTIAL))

    run_async(go)


@app.command()
def archive(
    phase: str,
    target: TargetOpt = None,
    source: Annotated[
        str | None, typer.Option("--from", help="The backup target the phase comes from.")
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Replace a young archive despite the early-deletion charge.")
    ] = False,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Archive a closed phase: one long-window tarball on the archive target, verified."""

    async def go() -> None:
        async with client_for(workspace, write=True) as client:
            plan = await client.archive_plan(phase, target=target, source=source)
            if not json:
                err.print(f"Archiving {plan.sessions} sessions of {phase} from "
                          f"{plan.source} to {plan.target}", highlight=False)  # fmt: skip
                if plan.estimate is not None:
                    err.print(f"  cost: {plan.estimate}", highlight=False)
                if plan.overwrite is not None:
                    err.print(f"  [yellow]![/] {plan.overwrite}", highlight=False)
            job = await client.start_archive(phase, target=target, source=source, force=force)
            info = await follow_job(client, job.id, quiet=json)
        result = info.result or {}
        if json:
            emit_json({"job": info, "result": result})
        elif info.state == JobState.DONE:
            err.print(
                f"Phase {phase}: {result.get('sessions', 0)} sessions, "
                f"{human_bytes(result.get('raw_bytes', 0))} → "
                f"{human_bytes(result.get('stored_bytes', 0))} in {result.get('key')}",
                highlight=False,
            )
            for gone in result.get("tier2_phases_removed", []):
                err.print(f"  phase {gone} removed from the backup target (archived, verified)",
                          highlight=False)  # fmt: skip
        if info.state == JobState.WAITING:
            explain_waiting(info, daemon=in_process(client) is None)
        if info.state != JobState.DONE:
            err.print(f"[bold red]error:[/] {info.error or info.state.value}", highlight=False)
            raise typer.Exit(int(ExitCode.FAILED))

    run_async(go)


@app.command("archive-restore")
def archive_restore(
    phase: str,
    session: Annotated[
        list[str] | None, typer.Option("--session", help="Only these sessions (repeatable).")
    ] = None,
    to: Annotated[Path | None, typer.Option("--to", help="Where the files go.")] = None,
    target: TargetOpt = None,
    no_import: Annotated[
        bool, typer.Option("--no-import", help="Extract only; do not import into the DB.")
    ] = False,
    tier: Annotated[
        str, typer.Option(help="Thaw speed for cold storage: Bulk, Standard or Expedited.")
    ] = "Bulk",
    days: Annotated[int, typer.Option(help="Days the thawed copy stays readable.")] = 7,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Bring a phase (or some of its sessions) back from the archive, checked, and re-import it."""
    dest = to or Path.home() / "Tierkeeper restores"

    async def go() -> None:
        async with client_for(workspace, write=True) as client:
            estimate = await client.archive_restore_estimate(phase, target=target, tier=tier)
            if estimate and not json:
                err.print(f"cost: {estimate}", highlight=False)
            job = await client.start_archive_restore(
                phase, absolute(dest), target=target, sessions=session or None,
                reimport=not no_import, tier=tier, days=days,
            )  # fmt: skip
            info = await follow_job(client, job.id, quiet=json)
        result = info.result or {}
        if json:
            emit_json({"job": info, "result": result})
        elif info.state == JobState.DONE:
            err.print(f"{result.get('written', 0)} files restored to {dest / phase}",
                      highlight=False)  # fmt: skip
        if info.state == JobState.WAITING:
            explain_waiting(info, daemon=in_process(client) is None)
        if info.state != JobState.DONE:
            err.print(f"[bold red]error:[/] {info.error or info.state.value}", highlight=False)
            raise typer.Exit(int(ExitCode.FAILED))

    run_async(go)


@app.command()
def verify(
    deep: Annotated[bool, typer.Option(help="Download, hash and unpack every file too.")] = False,
    catalog: Annotated[
        bool, typer.Option("--catalog", help="Compare the local DB with the targets instead.")
    ] = False,
    target: TargetOpt = None,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Check every backup on a target against its manifest."""
    if catalog:
        return verify_catalog(target, workspace, json)

    async def go() -> None:
        async with client_for(workspace, write=True) as client:
            svc = in_process(client)
            if svc is not None:
                results = [asdict(r) for r in await svc.verify(target, deep=deep)]
            else:
                results = await verify_through(client, target, deep=deep)
        bad = [r for r in results if not r["ok"]]
        if json:
            emit_json(results)
        else:
            err.print(f"{len(results) - len(bad)} of {len(results)} backups verified")
            for r in bad:
                err.print(f"  [red]✗[/] {r['session_id']}: {'; '.join(r['problems'])}",
                          highlight=False)  # fmt: skip
        if bad:
            raise typer.Exit(int(ExitCode.PARTIAL))

    run_async(go)


@app.command()
def restore(
    session_id: Annotated[str, typer.Argument(metavar="SESSION")],
    to: Annotated[
        Path | None, typer.Option("--to", help="Folder to restore into (default: here).")
    ] = None,
    original: Annotated[
        bool, typer.Option("--original", help="Put each file back where it came from.")
    ] = False,
    file: Annotated[str | None, typer.Option(help="Only this file.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace files that exist.")] = False,
    target: TargetOpt = None,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Restore a session's files from its latest backup, each checked first."""
    dest = None if original else (to if to is not None else Path())

    async def go() -> None:
        if original and to is not None:
            raise BadInputError("Say --to DIR or --original, not both")
        async with client_for(workspace, write=False) as client:
            svc = in_process(client)
            if svc is not None:  # read-only: it runs beside a window that holds the workspace
                written = await svc.restore(
                    session_id, dest, target=target, file=file, overwrite=overwrite
                )
            else:
                written = await restore_through(
                    client, session_id, dest, target=target, file=file, overwrite=overwrite,
                    quiet=json,
                )  # fmt: skip
        if json:
            emit_json([str(p) for p in written])
        else:
            for p in written:
                err.print(f"restored {p}", highlight=False)

    run_async(go)


# gui ----------------------------------------------------------------------------
@app.command()
def gui(
    workspace: WorkspaceOpt = None,
    color_scheme: Annotated[
        str,
        typer.Option(
            "--color-scheme",
            help="system, light or dark: colours where the desktop does not choose them.",
        ),
    ] = "system",
) -> None:
    """Open the desktop window (a separate process: the core never loads Qt)."""
    import subprocess

    if color_scheme not in ("system", "light", "dark"):
        raise typer.BadParameter("system, light or dark", param_hint="--color-scheme")
    argv = [sys.executable, "-m", "gui", "--color-scheme", color_scheme]
    if workspace is not None:
        argv += ["--workspace", str(workspace)]
    raise typer.Exit(subprocess.call(argv))


def run(argv: list[str]) -> int:
    try:
        app(args=argv, prog_name="tierkeeper", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0
