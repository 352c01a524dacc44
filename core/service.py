"""The core service: owns one workspace and does all the work.

The GUI and the CLI hold a client on it (in-process, or later over the
daemon's socket). A read-only service opens the DB without the workspace lock
and runs no jobs, so `search` or `sessions` work while another process owns
the workspace.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from core import __version__
from core.cache.objects import ObjectCache
from core.cache.query import QueryCache
from core.config import CacheConfig, TargetConfig
from core.errors import BadInputError, CorruptDatabaseError, JobMustWait, NotFoundError
from core.events import EventBus
from core.jobs import JobContext, JobRunner
from core.local import lifecycle
from core.local.db.database import Database
from core.local.export import ExportedFile, export_session
from core.local.importers import default_formats
from core.local.importers.engine import ImportEngine
from core.local.pricing import PriceTable
from core.local.search import search as fts_search
from core.local.stats import session_costs, usage_stats
from core.lock import WorkspaceLock
from core.metrics.persist import MetricsRecorder
from core.metrics.registry import Metrics
from core.models import (
    BackupContents,
    BackupInfo,
    ImportReport,
    JobInfo,
    MessageView,
    PhaseStarted,
    SearchHit,
    SearchQuery,
    SessionDetail,
    SessionEnded,
    SessionStarted,
    SessionSummary,
    SourceInfo,
    Status,
    TargetInfo,
)
from core.packing.crypto import Key
from core.paths import user_path
from core.recovery import apply as recovered
from core.recovery import ops as recovery_ops
from core.recovery.ops import CatalogDrift, RecoveredRestore
from core.recovery.publish import TIER2_INDEX, TIER3_INDEX, publish_tier2_index
from core.recovery.rebuild import RebuildReport
from core.remote.base import NeedsReconnect, Store, TransientError
from core.review.view import PhaseReviewDoc, PhaseSummary
from core.scheduler import Scheduler
from core.setup.models import (
    DriveSignedIn,
    DriveTargetSpec,
    FolderTargetSpec,
    S3TargetSpec,
    SignInStarted,
    TargetTestResult,
    spec_of,
)
from core.setup.ops import SetupOps
from core.tier2.backup import (
    VerifyResult,
    latest_backup,
    restore_session,
    verify_backup,
)
from core.tier2.backup_job import run_backup
from core.tier2.encryption import KeyMissingError, target_key
from core.tier2.encryption_claim import claimed_by, refuse_other_key
from core.tier2.history import backup_infos, target_infos
from core.tier2.resume import SharedCheckpoint
from core.tier2.targets import (
    RetryPolicy,
    open_store,
    probe,
    reachable,
    resource_of,
    secrets_scope,
)
from core.tier3.archive import archive_phase, phase_sources
from core.tier3.archive_restore import latest_archive, restore_from_archive, session_members
from core.tier3.costs import StoragePrices
from core.tier3.thaw import expected_wait, thaw_control
from core.tier3.tier2_retention import prune_archived_phases
from core.workspace import Workspace

log = logging.getLogger(__name__)


class Service:
    def __init__(
        self,
        workspace: Workspace,
        db: Database,
        bus: EventBus,
        jobs: JobRunner,
        lock: WorkspaceLock | None,
    ) -> None:
        self.workspace = workspace
        self.db = db
        self.bus = bus
        self.jobs = jobs
        self._lock = lock
        self.config = workspace.config()
        self.prices = PriceTable.load(self.config.pricing_file)
        self.retry = RetryPolicy()
        self.scope = secrets_scope(workspace.root)
        self.metrics = Metrics()
        db.on_query = self.metrics.db_timer
        self.objects = _object_cache(workspace, self.config.cache, self.metrics, lock is None)
        """Remote objects and listings, read through memory and disk (core/cache)."""
        self.queries = QueryCache(db, self.metrics, enabled=lock is not None)
        """Analytics answers until a table they read is written; off when read-only."""
        self.recorder = MetricsRecorder(db, self.metrics, bus)
        self.scheduler = Scheduler(self)
        self.setup = SetupOps(self)
        """Settings, targets, Drive sign-in, cost previews: the wizard's and the CLI's."""
        self.db_state = "ok"
        """ok, new (created empty at this start) or set-aside (a damaged one moved away)."""
        self.db_set_aside: Path | None = None

    @property
    def readonly(self) -> bool:
        return self._lock is None

    @classmethod
    async def start(
        cls,
        workspace: str | Path | Workspace | None = None,
        *,
        init: bool = True,
        readonly: bool = False,
        run_jobs: bool = True,
        retry: RetryPolicy | None = None,
        probe_delay: float = 2.0,
        schedule: bool = True,
        set_aside_damaged: bool = False,
    ) -> Service:
        """`set_aside_damaged`: a DB that cannot be opened is moved aside, untouched, and an
        empty one started (the window then offers the rebuild from a target).

        `retry` bounds how long a store call retries before its job waits;
        `probe_delay` is the first pause before a waiting target is tried again;
        `schedule` runs the backup/verify schedule (while jobs run): the long-lived
        owner (daemon, window) wants it, a one-shot command does not."""
        ws = workspace if isinstance(workspace, Workspace) else Workspace.at(workspace)
        if init and not readonly:
            await asyncio.to_thread(ws.init)
        else:
            ws.require()
        config = ws.config()  # a broken config fails here, before anything is held
        lock = None if readonly else ws.lock()
        if lock is not None:
            lock.acquire()
        db: Database | None = None
        db_state, aside = ("ok" if ws.db_path.exists() else "new"), None
        try:
            try:
                db = await Database.open(ws.db_path, migrate=not readonly)
            except CorruptDatabaseError:
                if not set_aside_damaged or lock is None:
                    raise
                aside = await asyncio.to_thread(recovery_ops.set_aside_damaged_db, ws)
                if aside is None:
                    raise
                db_state = "set-aside"
                db = await Database.open(ws.db_path, migrate=True)
            bus = EventBus()
            jobs = JobRunner(db, bus, concurrency=config.job_concurrency, probe_delay=probe_delay)
            service = cls(ws, db, bus, jobs, lock)
            service.retry = retry or RetryPolicy()
            service.db_state, service.db_set_aside = db_state, aside
            jobs.register("import", service._import_job)
            jobs.register("backup", service._backup_job)
            jobs.register("restore", service._restore_job)
            jobs.register("verify", service._verify_job)
            jobs.register("archive", service._archive_job)
            jobs.register("archive-restore", service._archive_restore_job)
            jobs.register("review", service._review_job)
            jobs.register("phase-close", service._phase_close_job)
            jobs.register("recover", service._recover_job)
            jobs.register_probe("target:", service._probe_target)
            jobs.register_probe("thaw:", service._probe_thaw)
            if run_jobs and not readonly:
                await jobs.start()
                service.recorder.start()
                if schedule:
                    service.scheduler.start()
        except BaseException:
            if db is not None:
                await db.close()
            if lock is not None:
                lock.release()
            raise
        return service

    async def stop(self) -> None:
        try:
            await self.setup.close()
            await self.scheduler.stop()
            await self.jobs.stop()
            await self.recorder.stop()
        finally:
            self.bus.close()
            await self.db.close()
            if self._lock is not None:
                self._lock.release()

    async def __aenter__(self) -> Service:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # status -----------------------------------------------------------------
    async def status(self) -> Status:
        sessions, messages, last = await self.queries.get(
            "status.counts", (), ("sessions", "messages", "sources"), self._status_counts
        )
        running = await self.db.scalar("SELECT count(*) FROM jobs WHERE state = 'running'")
        queued = await self.db.scalar("SELECT count(*) FROM jobs WHERE state = 'queued'")
        db_bytes = await asyncio.to_thread(_db_size, self.workspace.db_path)
        phase = await asyncio.to_thread(lifecycle.current_phase, self.workspace)
        return Status(
            workspace=str(self.workspace.root),
            version=__version__,
            sessions=int(sessions or 0),
            messages=int(messages or 0),
            db_bytes=db_bytes,
            current_phase=phase.name if phase else None,
            jobs_running=int(running or 0),
            jobs_queued=int(queued or 0),
            last_import=datetime.fromisoformat(last) if last else None,
            db_state=self.db_state,
            db_set_aside=str(self.db_set_aside) if self.db_set_aside else None,
        )

    async def _status_counts(self) -> tuple[Any, Any, Any]:
        """The costly part of `status` (counting messages scans a big table)."""
        return (
            await self.db.scalar("SELECT count(*) FROM sessions"),
            await self.db.scalar("SELECT count(*) FROM messages"),
            await self.db.scalar("SELECT max(imported_at) FROM sources"),
        )

    # sessions ---------------------------------------------------------------
    async def list_sessions(self, phase: str | None = None) -> list[SessionSummary]:
        found = await self.queries.get(
            "sessions", phase, ("sessions", "sources", "usage", "recovered"),
            lambda: self._list_sessions(phase),
        )  # fmt: skip
        return list(found)

    async def _list_sessions(self, phase: str | None) -> list[SessionSummary]:
        where = "WHERE s.phase = ?" if phase else ""
        rows = await self.db.fetchall(
            f"""SELECT s.*, (SELECT COALESCE(sum(size), 0) FROM sources WHERE session_id = s.id)
                 AS raw_bytes, {_IN_BACKUP_ONLY} FROM sessions s {where}
                 ORDER BY COALESCE(s.started_at, s.updated_at) DESC, s.id""",
            (phase,) if phase else (),
        )
        costs = await session_costs(self.db, self.prices)
        return [_summary(r, costs.get(r["id"])) for r in rows]

    async def session(self, session_id: str, *, messages: bool = True) -> SessionDetail:
        row = await self.db.fetchone(
            f"""SELECT s.*, (SELECT COALESCE(sum(size), 0) FROM sources WHERE session_id = s.id)
               AS raw_bytes, {_IN_BACKUP_ONLY} FROM sessions s WHERE id = ?""",
            (session_id,),
        )
        if row is None:
            raise NotFoundError(
                f"No session {session_id!r}", hint="`tierkeeper sessions` lists the ids"
            )
        costs = await session_costs(self.db, self.prices)
        sources = await self.db.fetchall(
            "SELECT * FROM sources WHERE session_id = ? ORDER BY role, path", (session_id,)
        )
        msgs: list[MessageView] = []
        if messages:
            mrows = await self.db.fetchall(
                """SELECT id, seq, type, role, ts, model, text, tools, parse_error
                   FROM messages WHERE session_id = ? ORDER BY source_id, seq""",
                (session_id,),
            )
            msgs = [MessageView(**dict(r)) for r in mrows]
        return SessionDetail(
            session=_summary(row, costs.get(session_id)),
            sources=[
                SourceInfo(
                    path=s["path"],
                    format=s["format"],
                    role=s["role"],
                    size=s["size"],
                    lines_read=s["lines_read"],
                    rows_stored=s["rows_stored"],
                    bad_lines=s["bad_lines"],
                    sha256=s["sha256"],
                )
                for s in sources
            ],
            messages=msgs,
        )

    async def search(self, query: SearchQuery) -> list[SearchHit]:
        found = await self.queries.get(
            "search", query.model_dump_json(), ("messages", "sessions", "tool_calls"),
            lambda: fts_search(self.db, query),
        )  # fmt: skip
        return list(found)

    async def stats(self, by: str) -> list[dict[str, Any]]:
        found = await self.queries.get(
            "stats", by, ("usage", "sessions", "tool_calls"),
            lambda: usage_stats(self.db, by, self.prices),
        )  # fmt: skip
        return [dict(row) for row in found]

    async def export(
        self, session_id: str, dest: Path | None, file: str | None = None
    ) -> list[ExportedFile]:
        if dest is not None and "\0" in str(dest):  # os calls would raise ValueError
            raise BadInputError("A path cannot contain a NUL character", hint="check the path")
        try:
            return await export_session(self.db, session_id, dest, file=file)
        except OSError as exc:  # a folder not writable, a name too long: the caller's to fix
            raise BadInputError(f"{dest}: {exc.strerror or exc}", hint="check the path") from None

    async def phase_new(self, name: str) -> PhaseStarted:
        """Starts a phase and makes it the current one: new sessions join it."""
        self._writable()
        info = await lifecycle.phase_new(self.db, self.workspace, name)
        return PhaseStarted(name=info.name, started_at=info.started_at)

    # import -----------------------------------------------------------------
    def _engine(
        self, ctx: JobContext | None = None, *, restored_phase: str | None = None
    ) -> ImportEngine:
        """`restored_phase`: importing files brought back from that phase's archive."""
        current = lifecycle.current_phase(self.workspace)
        phase = restored_phase or (current.name if current else None)

        def progress(done: int, total: int) -> None:
            if ctx is not None:
                ctx.progress(bytes_done=done, bytes_total=total)

        return ImportEngine(
            self.db,
            default_formats(),
            phase=phase,
            on_progress=progress,
            check_cancel=ctx.check_cancelled if ctx is not None else None,
            skip_known_content=restored_phase is not None,
        )

    async def start_session(self, agent: str = "human") -> SessionStarted:
        from core.local import lifecycle

        return SessionStarted(
            session=await lifecycle.session_start(self.db, self.workspace, agent=agent)
        )

    async def end_session(
        self, session_id: str | None, *, summary: str | None = None, open_items: list[str]
    ) -> SessionEnded:
        """The note is written and the session's files imported before this returns; the
        session then leaves the machine by a backup job (unless backups are off)."""
        from core.local import lifecycle

        path = await lifecycle.session_end(
            self.db, self.workspace, session_id, summary=summary, open_items=open_items
        )
        sid = path.name.removeprefix("session_").removesuffix("_handoff.md")
        report = await self.import_now([str(self.workspace.log_path(sid)), str(path)], "tierkeeper")
        backup = None
        targets = [t for t in self.config.targets if t.kind != "s3"]
        if targets and self.config.schedule.backup_every != "off":
            backup = await self.start_backup([sid], targets[0].name)
        return SessionEnded(session=sid, handoff=str(path), imported=report, backup=backup)

    async def import_now(self, paths: list[str], fmt: str = "auto") -> ImportReport:
        self._writable()
        report = await self._engine().run(paths, fmt)
        self.bus.publish("sessions.changed", {"sessions": report.sessions})
        return report

    async def start_import(self, paths: list[str], fmt: str = "auto") -> JobInfo:
        self._writable()
        if not paths:
            raise BadInputError("Nothing to import", hint="name at least one folder or file")
        resolved = await asyncio.to_thread(_resolve_existing, paths)
        title = "Import " + ", ".join(Path(p).name or p for p in resolved)
        return await self.jobs.submit("import", {"paths": resolved, "format": fmt}, title=title)

    async def _import_job(self, ctx: JobContext) -> dict[str, Any]:
        params = ctx.params
        report = await self._engine(ctx).run(list(params["paths"]), str(params["format"]))
        self.bus.publish("sessions.changed", {"sessions": report.sessions})
        result: dict[str, Any] = orjson.loads(report.model_dump_json())
        return result

    # Tier 2 -------------------------------------------------------------------
    async def add_folder_target(
        self, name: str, path: str, *, passphrase: str | None = None
    ) -> TargetConfig:
        """`passphrase` turns on client-side encryption of everything stored there."""
        spec = spec_of(FolderTargetSpec, {"name": name, "path": path, "passphrase": passphrase})
        return (await self.setup.add_target(spec)).target

    async def add_drive_target(
        self,
        name: str,
        *,
        client_id: str,
        client_secret: str | None,
        on_url: Callable[[str], None],
        open_browser: bool = True,
        endpoints: dict[str, str] | None = None,
        timeout: float = 300.0,  # noqa: ASYNC109 - the user's time in the browser
        passphrase: str | None = None,
    ) -> TargetConfig:
        """Signs in through the browser, checks the Drive answers, then saves the target.

        `endpoints` (folder, auth_uri, token_uri, api_root) point at another server."""
        spec = spec_of(
            DriveTargetSpec,
            {"name": name, "client_id": client_id, "client_secret": client_secret,
             "open_browser": open_browser, "sign_in_timeout": timeout,
             "passphrase": passphrase, **(endpoints or {})}
        )  # fmt: skip
        return (await self.setup.add_drive(spec, on_url)).target

    async def reconnect_target(
        self,
        name: str,
        *,
        on_url: Callable[[str], None],
        open_browser: bool = True,
        timeout: float = 300.0,  # noqa: ASYNC109 - the user's time in the browser
    ) -> TargetConfig:
        """Signs in again; jobs parked for the sign-in then continue where they stopped."""
        started = await self.start_drive_reconnect(name, open_browser=open_browser,
                                                   timeout=timeout)  # fmt: skip
        on_url(started.url)
        try:
            return (await self.setup.finish_drive_sign_in(started.flow_id)).target
        except asyncio.CancelledError:
            await self.setup.cancel_drive_sign_in(started.flow_id)
            raise

    async def start_drive_reconnect(
        self,
        name: str,
        *,
        open_browser: bool = False,
        timeout: float = 300.0,  # noqa: ASYNC109 - the user's time in the browser
    ) -> SignInStarted:
        """A saved Drive target's sign-in again (revoked, expired), finished or cancelled
        like a new target's; its old tokens stay until the new ones work."""
        self._writable()
        target = self.config.target(name)
        if target.kind != "drive":
            raise BadInputError(f"{name} is a {target.kind} target: there is nothing to sign in to")
        if self.setup.sign_ins.busy(name):
            raise BadInputError(f"A sign-in of {name} is under way already",
                                hint="finish it in the browser, or cancel it")  # fmt: skip
        spec = DriveTargetSpec.model_validate(
            {"name": name, "client_id": target.client_id, "open_browser": open_browser,
             "sign_in_timeout": timeout}
        )  # fmt: skip
        return await self.setup.sign_ins.start(target, spec, complete=self._reconnected)

    async def _reconnected(self, target: TargetConfig, spec: DriveTargetSpec) -> DriveSignedIn:
        from core.tier2.drive_target import open_drive

        drive = await asyncio.to_thread(open_drive, target, self.scope)
        try:
            account = await drive.account()
            used, limit = await drive.quota()
            await probe(drive)
        finally:
            await drive.close()
        signed = target.model_copy(update={"account": account})
        self.config.targets = [signed if t.name == target.name else t for t in self.config.targets]
        await asyncio.to_thread(self.config.save, self.workspace.config_path)
        await self.jobs.resume_waiting(resource_of(target.name))
        return DriveSignedIn(target=signed, account=account, quota_used=used, quota_limit=limit)

    async def unlock_target(self, name: str, passphrase_or_code: str) -> None:
        """Puts the target's key in this computer's keyring; waiting jobs then continue."""
        self._writable()
        await self.setup.unlock(name, passphrase_or_code)
        await self.jobs.resume_waiting(resource_of(name))

    async def recovery_kit(self, name: str) -> str:
        return (await self.setup.recovery_kit(name)).text

    async def add_s3_target(
        self,
        name: str,
        *,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        addressing: str = "auto",
        storage_class: str = "DEEP_ARCHIVE",
        access_key: str | None = None,
        secret_key: str | None = None,
        passphrase: str | None = None,
    ) -> tuple[TargetConfig, list[str]]:
        """Checks the bucket (exists, writable, versioning, object lock) and a probe object,
        then saves the target; returns it with the setup report."""
        spec = spec_of(
            S3TargetSpec,
            {"name": name, "bucket": bucket, "prefix": prefix, "endpoint_url": endpoint_url,
             "region": region, "addressing": addressing, "storage_class": storage_class,
             "access_key": access_key, "secret_key": secret_key, "passphrase": passphrase}
        )  # fmt: skip
        added = await self.setup.add_target(spec)
        return added.target, added.report

    async def remove_target(self, name: str) -> None:
        """Forgets the target and its sign-in or keys; the backups on it are left alone."""
        await self.setup.remove_target(name)

    async def test_target(self, name: str | None) -> TargetTestResult:
        return await self.setup.test_target(name)

    async def start_backup(self, session_ids: list[str], target: str | None) -> JobInfo:
        self._writable()
        chosen = self.config.backup_target(target)
        if not session_ids:
            rows = await self.db.fetchall(
                "SELECT id FROM sessions s WHERE EXISTS (SELECT 1 FROM sources WHERE session_id"
                " = s.id) ORDER BY started_at"
            )
            session_ids = [r[0] for r in rows]
        else:  # a mistyped id is refused now, not queued as a job that fails
            unknown = await self.db.fetchall(
                "SELECT value FROM json_each(?) WHERE value NOT IN (SELECT id FROM sessions)",
                (orjson.dumps(session_ids).decode(),),
            )
            if unknown:
                more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
                raise NotFoundError(f"No session {unknown[0][0]!r}{more}",
                                    hint="`tierkeeper sessions` lists them")  # fmt: skip
        if not session_ids:
            raise BadInputError("There are no sessions to back up", hint="import some first")
        title = f"Back up {len(session_ids)} session(s) to {chosen.name}"
        return await self.jobs.submit(
            "backup",
            {"sessions": session_ids, "target": chosen.name},
            title=title,
            resource=resource_of(chosen.name),
        )

    async def _backup_job(self, ctx: JobContext) -> dict[str, Any]:
        return await run_backup(
            ctx, self.db, self.bus, self.config,
            workspace=self.workspace, scope=self.scope, retry=self.retry, metrics=self.metrics,
            cache=self.objects,
        )  # fmt: skip

    async def _probe_target(self, resource: str) -> None:
        name = resource.split(":", 1)[1]
        store = open_store(
            self.config.target(name), self.scope, RetryPolicy(attempts=1), self.metrics
        )
        try:
            await reachable(store)
        finally:
            await store.close()

    async def verify(self, target: str | None, *, deep: bool = False) -> list[VerifyResult]:
        chosen = self.config.backup_target(target)
        rows = await self.db.fetchall(
            "SELECT max(id) FROM backups WHERE target = ? GROUP BY session_id", (chosen.name,)
        )
        # Reads bypass the cache (a verify of our own copy proves nothing); what the
        # remote answers still drops cached objects it no longer matches.
        store = open_store(chosen, self.scope, self.retry, self.metrics, self.objects,
                           read_through=False)  # fmt: skip
        try:
            return [await verify_backup(self.db, store, int(r[0]), deep=deep) for r in rows]
        finally:
            await store.close()

    async def restore(
        self,
        session_id: str,
        dest: Path | None,
        *,
        target: str | None = None,
        file: str | None = None,
        overwrite: bool = False,
    ) -> list[Path]:
        chosen = await self._holding(session_id, target)
        backup_id = await latest_backup(self.db, session_id, chosen.name)
        prefix = await self.db.scalar("SELECT prefix FROM backups WHERE id = ?", (backup_id,))
        moved = await self.db.fetchone(
            "SELECT a.phase, a.target FROM archives a JOIN backups b ON b.phase = a.phase "
            "WHERE b.id = ? AND a.source_target = ? AND a.tier2_deleted_at IS NOT NULL",
            (backup_id, chosen.name),
        )
        if moved is not None:
            raise NotFoundError(
                f"Session {session_id} is no longer on {chosen.name}: its phase {moved[0]} "
                f"was archived to {moved[1]} and removed from {chosen.name}",
                hint=f"its copy is in {moved[1]}'s {moved[0]}.tar.zst",
            )
        key = await asyncio.to_thread(target_key, chosen, self.scope)
        # The cache stands in front of stores whose reads cost round trips, quota or money
        # (Drive, S3). A folder is read as fast as the cache's own copy would be: keeping
        # one of every restored file doubled a restore's time.
        store = open_store(chosen, self.scope, self.retry, self.metrics, self.objects,
                           read_through=chosen.kind != "folder")  # fmt: skip
        try:
            return await restore_session(
                self.db, store, session_id, str(prefix), dest, file=file, overwrite=overwrite,
                key=key, state_dir=self.workspace.state,
            )  # fmt: skip
        finally:
            await store.close()

    async def targets(self) -> list[TargetInfo]:
        return await target_infos(self.db, self.config.targets)

    async def backups(
        self, *, session_id: str | None = None, target: str | None = None, limit: int = 500
    ) -> list[BackupInfo]:
        return await backup_infos(self.db, session_id=session_id, target=target, limit=limit)

    async def start_restore(
        self,
        session_id: str,
        dest: str | None,
        *,
        target: str | None = None,
        file: str | None = None,
        overwrite: bool = False,
    ) -> JobInfo:
        """Restore as a job (progress, cancel): what a window's Restore button starts."""
        self._writable()
        chosen = await self._holding(session_id, target)
        await latest_backup(self.db, session_id, chosen.name)  # fails now, not in the job
        params = {"session": session_id, "dest": dest, "target": chosen.name, "file": file,
                  "overwrite": overwrite}  # fmt: skip
        return await self.jobs.submit("restore", params, title=f"Restore {session_id}",
                                      resource=resource_of(chosen.name))  # fmt: skip

    async def _holding(self, session_id: str, target: str | None) -> TargetConfig:
        """The named target, else the one holding the session's newest backup: a restore
        should not ask which target when only one of them has the session."""
        if target is not None or len(self.config.targets) <= 1:
            return self.config.backup_target(target)
        names = [t.name for t in self.config.targets]
        newest = await self.db.scalar(
            "SELECT target FROM backups WHERE session_id = ? AND target IN "
            "(SELECT value FROM json_each(?)) ORDER BY id DESC LIMIT 1",
            (session_id, orjson.dumps(names).decode()),
        )
        return self.config.target(str(newest)) if newest else self.config.backup_target(None)

    async def _restore_job(self, ctx: JobContext) -> dict[str, Any]:
        p = ctx.params
        dest = p.get("dest")
        written = await self.restore(
            str(p["session"]), None if dest is None else Path(str(dest)), target=str(p["target"]),
            file=p.get("file"), overwrite=bool(p.get("overwrite")),
        )  # fmt: skip
        return {"written": [str(w) for w in written]}

    async def start_verify(self, target: str | None, *, deep: bool = False) -> JobInfo:
        self._writable()
        chosen = self.config.backup_target(target)
        kind = "Deep-verify" if deep else "Verify"
        return await self.jobs.submit("verify", {"target": chosen.name, "deep": deep},
                                      title=f"{kind} {chosen.name}",
                                      resource=resource_of(chosen.name))  # fmt: skip

    async def _verify_job(self, ctx: JobContext) -> dict[str, Any]:
        results = await self.verify(str(ctx.params["target"]), deep=bool(ctx.params["deep"]))
        failed = [{"session": r.session_id, "problems": r.problems} for r in results if not r.ok]
        self.bus.publish("backups.changed", {"target": ctx.params["target"]})
        return {"verified": len(results) - len(failed), "failed": failed}

    # Tier 3 -------------------------------------------------------------------
    def _archive_targets(self, target: str | None, source: str | None) -> tuple[str, str]:
        """(archive target, Tier 2 target): named, or the obvious choice when there is one."""
        targets = self.config.targets
        if target is None:
            s3 = [t.name for t in targets if t.kind == "s3"]
            if len(s3) != 1:
                raise BadInputError(
                    "Say which target archives the phase" if s3 else "No archive target is set up",
                    hint="--target NAME" if s3 else "add one with `tierkeeper target add s3 …`",
                )
            target = s3[0]
        if source is None:
            others = [t.name for t in targets if t.name != target and t.kind != "s3"]
            if len(others) != 1:
                raise BadInputError("Say which backup target the phase comes from",
                                    hint="--from NAME")  # fmt: skip
            source = others[0]
        self.config.target(target)
        self.config.target(source)
        return target, source

    async def archive_plan(
        self, phase: str, *, target: str | None = None, source: str | None = None
    ) -> dict[str, Any]:
        """What archiving will store and cost, and what an overwrite would throw away."""
        target, source = self._archive_targets(target, source)
        sources = await phase_sources(self.db, phase, source)
        size = sum(f.stored_size for s in sources for f in s.manifest.files)
        t3 = self.config.target(target)
        prices = StoragePrices.load(self.config.storage_prices_file)
        plan: dict[str, Any] = {"phase": phase, "target": target, "source": source,
                                "sessions": len(sources), "tier2_bytes": size,
                                "overwrite_charge": 0.0}  # fmt: skip
        storage_class = t3.storage_class if t3.kind == "s3" else None
        if storage_class:
            plan["estimate"] = "at most " + prices.archive_estimate(size, storage_class)
        old = await self.db.fetchone(
            "SELECT created_at, stored_bytes FROM archives WHERE phase = ? AND target = ? "
            "AND verify_status = 'ok' ORDER BY id DESC LIMIT 1", (phase, target))  # fmt: skip
        if old is not None and storage_class:
            charge = prices.early_deletion(
                int(old[1]), storage_class, datetime.fromisoformat(str(old[0]))
            )
            plan["overwrite_charge"] = round(charge, 2)
            plan["overwrite"] = (
                f"{phase} is already archived on {target} (since {str(old[0])[:10]}); "
                f"replacing it now is billed about ${charge:,.2f} for {storage_class}'s "
                "minimum storage time"
            )
        return plan

    async def start_archive(
        self,
        phase: str,
        *,
        target: str | None = None,
        source: str | None = None,
        force: bool = False,
    ) -> JobInfo:
        """`force` accepts the early-deletion charge of replacing a young archive."""
        self._writable()
        plan = await self.archive_plan(phase, target=target, source=source)
        target, source = plan["target"], plan["source"]
        if plan["overwrite_charge"] >= 0.01 and not force:
            raise BadInputError(plan["overwrite"], hint="add --force to replace it anyway")
        return await self.jobs.submit(
            "archive", {"phase": phase, "target": target, "source": source},
            title=f"Archive phase {phase} to {target}", resource=resource_of(target),
        )  # fmt: skip

    async def _archive_job(self, ctx: JobContext) -> dict[str, Any]:
        phase = str(ctx.params["phase"])
        t3 = self.config.target(str(ctx.params["target"]))
        t2 = self.config.target(str(ctx.params["source"]))
        state = SharedCheckpoint(ctx)
        source_key = await asyncio.to_thread(target_key, t2, self.scope)
        archive_key = await asyncio.to_thread(target_key, t3, self.scope)
        # A whole phase read once would only flush the cache: writes invalidate, reads pass.
        source = open_store(t2, self.scope, self.retry, self.metrics, self.objects,
                            read_through=False)  # fmt: skip
        archive = open_store(t3, self.scope, self.retry, self.metrics, self.objects,
                             read_through=False)  # fmt: skip
        moved = 0

        def on_bytes(n: int) -> None:
            nonlocal moved
            moved += n
            ctx.progress(bytes_done=moved)

        try:
            total = await self.db.scalar(
                "SELECT sum(b.raw_bytes) FROM backups b JOIN sessions s ON s.id = b.session_id "
                "WHERE s.phase = ? AND b.id IN (SELECT max(id) FROM backups WHERE target = ? "
                "GROUP BY session_id)", (phase, t2.name))  # fmt: skip
            ctx.progress(bytes_total=int(total or 0) or None)

            async def same_key() -> None:  # never a plain phase beside encrypted ones
                refuse_other_key(t3, await claimed_by(archive, TIER3_INDEX))

            check = asyncio.ensure_future(same_key())  # while the phase's sources are read
            try:
                result = await archive_phase(
                    self.db, phase, source=source, source_name=t2.name, archive=archive,
                    archive_name=t3.name, source_key=source_key, archive_key=archive_key,
                    resume=state.slot, progress=on_bytes, encryption=t3.encryption,
                    before_writing=check,
                )  # fmt: skip
            except (NeedsReconnect, KeyMissingError) as exc:
                raise JobMustWait(resource_of(t3.name), str(exc), needs_user=True) from exc
            except TransientError as exc:
                raise JobMustWait(resource_of(t3.name), f"{t3.name} is unreachable: {exc}") from exc
            finally:  # a failure before the check was awaited: it is not left behind
                check.cancel()
                await asyncio.gather(check, return_exceptions=True)
            pruned = await prune_archived_phases(
                self.db, source, t2.name, self.config.retention.backup_phases
            )
            if pruned:  # the index must not promise sessions that left for the archive
                await self._republish_tier2_index(t2, source, source_key)
        finally:
            await source.close()
            await archive.close()
        self.bus.publish("archives.changed", {"phase": phase, "target": t3.name})
        return {"phase": phase, "sessions": result.sessions, "raw_bytes": result.raw_bytes,
                "stored_bytes": result.stored_bytes, "key": result.key,
                "tier2_phases_removed": pruned}  # fmt: skip

    async def _republish_tier2_index(
        self, t2: TargetConfig, source: Store, source_key: Key | None
    ) -> None:
        """Unless the folder's index now names a key this workspace does not use for it:
        another computer encrypted the folder since and wrote that index, which lists its
        own sessions and never listed the ones just let go. Writing ours over it would
        turn it plain (or to our key), and that computer's next backup would wait for a
        key nobody changed."""
        try:
            refuse_other_key(t2, await claimed_by(source, TIER2_INDEX))
        except KeyMissingError as exc:
            log.info("%s: the index is left as it is: %s", t2.name, exc)
            return
        await publish_tier2_index(self.db, source, t2.name, t2.encryption, source_key,
                                  self.workspace)  # fmt: skip

    async def archive_restore_estimate(
        self, phase: str, *, target: str | None = None, tier: str = "Bulk"
    ) -> str | None:
        """The thaw cost of the phase's archive, for the user to see before asking."""
        rows = await self.db.fetchall(
            "SELECT DISTINCT target FROM archives WHERE phase = ? AND verify_status = 'ok'",
            (phase,),
        )
        names = [str(r[0]) for r in rows] if target is None else [target]
        if len(names) != 1:
            return None
        t3 = self.config.target(names[0])
        if t3.kind != "s3":
            return None
        _, manifest = await latest_archive(self.db, phase, t3.name)
        prices = StoragePrices.load(self.config.storage_prices_file)
        return prices.restore_estimate(manifest.files[0].stored_size, t3.storage_class, tier)

    async def start_archive_restore(
        self,
        phase: str,
        dest: str,
        *,
        target: str | None = None,
        sessions: list[str] | None = None,
        reimport: bool = True,
        tier: str = "Bulk",
        days: int = 7,
    ) -> JobInfo:
        self._writable()
        if target is None:
            rows = await self.db.fetchall(
                "SELECT DISTINCT target FROM archives WHERE phase = ? AND verify_status = 'ok'",
                (phase,),
            )
            if len(rows) != 1:
                raise BadInputError(
                    f"Phase {phase!r} has no archive" if not rows else "Several archives hold it",
                    hint=f"archive it first: tierkeeper archive {phase}" if not rows
                    else "name one with --target",
                )  # fmt: skip
            target = str(rows[0][0])
        _, manifest = await latest_archive(self.db, phase, target)
        session_members(manifest, phase, sessions)  # unknown sessions refused now
        if tier not in ("Bulk", "Standard", "Expedited") or not 1 <= days <= 365:
            raise BadInputError("Thaw with tier Bulk, Standard or Expedited, for 1–365 days")
        params = {"phase": phase, "dest": dest, "target": target, "sessions": sessions,
                  "reimport": reimport, "tier": tier, "days": days}  # fmt: skip
        return await self.jobs.submit("archive-restore", params,
                                      title=f"Restore phase {phase} from {target}",
                                      resource=resource_of(target))  # fmt: skip

    async def _archive_restore_job(self, ctx: JobContext) -> dict[str, Any]:
        p = ctx.params
        phase, target = str(p["phase"]), self.config.target(str(p["target"]))
        key, manifest = await latest_archive(self.db, phase, target.name)
        secret = await asyncio.to_thread(target_key, target, self.scope)
        store = open_store(target, self.scope, self.retry, self.metrics, self.objects)
        dest = Path(str(p["dest"]))
        try:
            await self._thawed(store, target.name, key, p)
            try:
                written = await restore_from_archive(
                    store, key, manifest, dest, sessions=p.get("sessions"), secret=secret
                )
            except NeedsReconnect as exc:
                raise JobMustWait(resource_of(target.name), str(exc), needs_user=True) from exc
            except TransientError as exc:
                raise JobMustWait(resource_of(target.name), f"{target.name}: {exc}") from exc
        finally:
            await store.close()
        report = None
        if p.get("reimport", True):
            folder = dest / phase / "sessions"
            # sessions known only from a rebuilt catalog: their placeholders make way
            waiting = await recovered.waiting_in_phase(self.db, phase, p.get("sessions"))
            await recovered.release(self.db, waiting)
            report = await self._engine(ctx, restored_phase=phase).run([str(folder)], "auto")
            await recovered.settle(self.db, waiting)
            self.bus.publish("sessions.changed", {"sessions": report.sessions})
        imported = None if report is None else orjson.loads(report.model_dump_json())
        return {"written": len(written), "dest": str(dest), "import": imported}

    async def _thawed(self, store: Store, target: str, key: str, params: dict[str, Any]) -> None:
        """An archive in a cold storage class must be thawed first: ask once, then wait in
        the queue (across restarts) while the probe polls the store."""
        cold = thaw_control(store)
        if cold is None:
            return
        status = await cold.restore_status(key)
        if status.readable:
            return
        tier = str(params.get("tier") or "Bulk")
        if status.state == "not_requested":
            await cold.request_restore(key, int(params.get("days") or 7), tier)  # type: ignore[arg-type]
        raise JobMustWait(
            f"thaw:{target}:{key}",
            f"{target} is thawing {key} from {status.storage_class} ({tier}: "
            f"{expected_wait(status.storage_class, tier)}); the restore continues by itself",
        )

    async def _probe_thaw(self, resource: str) -> None:
        _, target, key = resource.split(":", 2)
        store = open_store(
            self.config.target(target), self.scope, RetryPolicy(attempts=1), self.metrics
        )
        try:
            cold = thaw_control(store)
            if cold is not None and not (await cold.restore_status(key)).readable:
                raise TransientError(f"{key} is still thawing")
        finally:
            await store.close()

    # disaster recovery (core/recovery) -------------------------------------------------
    async def recover(
        self, *, targets: list[str] | None = None, secret: str | None = None
    ) -> list[RebuildReport]:
        """Rebuilds the catalog from the targets' manifests and catalogs (no data read)."""
        return await recovery_ops.recover(self, targets=targets, secret=secret)

    async def restore_recovered(self, session_ids: list[str] | None = None) -> RecoveredRestore:
        """Brings recovered sessions back from Tier 2 and re-imports them (search returns)."""
        return await recovery_ops.restore_recovered(self, session_ids)

    async def catalog_drift(self, target: str | None = None) -> list[CatalogDrift]:
        return await recovery_ops.catalog_drift(self, target)

    async def catalog_repair(self, target: str | None = None) -> dict[str, Any]:
        return await recovery_ops.catalog_repair(self, target)

    async def backup_contents(self, target: str | None = None) -> BackupContents:
        """What a target holds (sessions per phase, encryption), before a rebuild from it."""
        from core.recovery.contents import backup_contents

        return await backup_contents(self, target)

    async def start_recover(
        self, targets: list[str] | None = None, *, secret: str | None = None,
        restore: bool = False, sessions: list[str] | None = None,
    ) -> JobInfo:  # fmt: skip
        """The rebuild (then, with `restore`, the sessions' files) as a job. An encrypted
        target's passphrase is checked and its key kept now; a wrong one fails here."""
        from core.recovery.job import KIND

        self._writable()
        chosen = [self.config.target(n) for n in targets] if targets else list(self.config.targets)
        if not chosen:
            raise BadInputError(
                "No target is set up to rebuild from",
                hint="add the target that holds the backups first (the set-up wizard's "
                "Restore choice, or `tierkeeper target add folder NAME PATH`)",
            )
        for t in chosen:
            await recovery_ops.learn_key(self, t.name, secret)
        names = [t.name for t in chosen]
        params = {"targets": names, "restore": restore, "sessions": sessions}
        title = f"Rebuild the catalog from {', '.join(names)}"
        if restore and sessions:  # the window's "Bring back": the rebuild is the lesser part
            count = f"{len(sessions)} session" + ("s" if len(sessions) != 1 else "")
            title = f"Bring back {count} from {', '.join(names)}"
        resource = resource_of(names[0]) if len(names) == 1 else None
        return await self.jobs.submit(KIND, params, title=title, resource=resource)

    async def _recover_job(self, ctx: JobContext) -> dict[str, Any]:
        from core.recovery.job import run_recover

        return await run_recover(self, ctx)

    # phase review -------------------------------------------------------------------
    async def start_review(self, phase: str, *, html: bool = False) -> JobInfo:
        """Writes the phase's review (insights, analytics slice, metadata) in the workspace."""
        from core.review.review import check_phase

        self._writable()
        await check_phase(self.db, phase)
        return await self.jobs.submit("review", {"phase": phase, "html": html},
                                      title=f"Review phase {phase}")  # fmt: skip

    async def _review_job(self, ctx: JobContext) -> dict[str, Any]:
        from core.review.job import review_job
        from core.review.reupload import reupload_review

        result = await review_job(ctx, self.db, self.workspace, self.prices, self.metrics)
        self.bus.publish("review.changed", {"phase": result["phase"]})
        upload = await reupload_review(self, ctx, result["phase"])  # a closed phase's, again
        return result if upload is None else {**result, "upload": upload}

    async def review(self, phase: str) -> PhaseReviewDoc:
        """The written review (report, HTML, chart names, metadata) as a page shows it."""
        from core.review.view import read_review

        return await read_review(self.workspace, phase)

    async def review_chart(self, phase: str, name: str) -> bytes:
        from core.review.view import read_chart

        return await read_chart(self.workspace, phase, name)

    async def phases(self) -> list[PhaseSummary]:
        from core.review.view import list_phases

        return await list_phases(self.db, self.workspace)

    # phase close (core/phase_close.py) -------------------------------------------------
    async def start_phase_close(self, phase: str | None = None, *, html: bool = False) -> JobInfo:
        """Close → back up → review → upload → (archive) → retention, as one resumable job."""
        from core.phase_close import KIND, backup_target, resolve_phase

        self._writable()
        name = await resolve_phase(self, phase)
        target = backup_target(self.config)
        params = {"phase": name, "html": html, "target": target.name if target else None}
        return await self.jobs.submit(KIND, params, title=f"Close phase {name}")

    async def _phase_close_job(self, ctx: JobContext) -> dict[str, Any]:
        from core.phase_close import run_phase_close

        return await run_phase_close(self, ctx)

    def _writable(self) -> None:
        if self.readonly:
            raise BadInputError("This service was opened read-only")


_IN_BACKUP_ONLY = (
    "EXISTS (SELECT 1 FROM recovered r WHERE r.session_id = s.id AND r.restored_at IS NULL) "
    "AS in_backup_only"
)
"""Known from a catalog a rebuild read, its files not brought back yet (core/recovery)."""


def _resolve_existing(paths: list[str]) -> list[str]:
    """Paths come from users and callers of the API: any string must get a clear refusal."""
    resolved: list[str] = []
    for raw in paths:
        try:
            p = user_path(raw).resolve()
            found = p.exists()
        except OSError as exc:  # a name too long for the file system, a loop of links
            raise BadInputError(f"{raw}: {exc.strerror}", hint="check the path") from None
        if not found:
            raise NotFoundError(f"{p} does not exist", hint="check the path and try again")
        resolved.append(str(p))
    return resolved


def _object_cache(
    workspace: Workspace, sizes: CacheConfig, metrics: Metrics, readonly: bool
) -> ObjectCache:
    """A read-only service shares the workspace with its owner: memory only, no disk files."""
    return ObjectCache(
        memory_bytes=sizes.memory_mib << 20,
        disk_dir=None if readonly else workspace.root / "cache",
        disk_bytes=sizes.disk_mib << 20,
        metrics=metrics,
    )


def _db_size(path: Path) -> int:
    total = 0
    for suffix in ("", "-wal", "-shm"):
        p = path.with_name(path.name + suffix)
        if p.exists():
            total += p.stat().st_size
    return total


def _summary(row: Any, cost: dict[str, Any] | None) -> SessionSummary:
    c = cost or {}
    return SessionSummary(
        id=row["id"],
        source=row["source"],
        source_id=row["source_id"],
        parent_id=row["parent_id"],
        project=row["project"],
        agent=row["agent"],
        phase=row["phase"],
        title=row["title"],
        model=row["model"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        message_count=row["message_count"],
        is_subagent=bool(row["is_subagent"]),
        input_tokens=int(c.get("input_tokens", 0)),
        output_tokens=int(c.get("output_tokens", 0)),
        cache_write_tokens=int(c.get("cache_write_tokens", 0)),
        cache_read_tokens=int(c.get("cache_read_tokens", 0)),
        cost_usd=float(c.get("cost_usd", 0.0)),
        raw_bytes=int(row["raw_bytes"]),
        in_backup_only=bool(row["in_backup_only"]),
    )
