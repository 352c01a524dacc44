"""The one door into the core for the GUI and the CLI.

`Client` is the interface; `InProcessClient` runs a `Service` in this process
(the embedded default), `HttpClient` talks to a running daemon over its Unix
socket. Both return the same models and raise the same errors, so a caller
never knows which one it holds: `open_client` picks the daemon when one serves
the workspace.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import SecretStr

from core.metrics.models import (
    CacheMetrics,
    MetricsSnapshot,
    OpMetrics,
    QueueMetrics,
    RatioMetrics,
    Resolution,
    SeriesPoint,
)
from core.models import (
    ArchivePlan,
    BackupContents,
    BackupInfo,
    CatalogDriftReport,
    CatalogRepairResult,
    Event,
    ExportedCopy,
    ImportReport,
    JobInfo,
    PhaseHeld,
    PhaseStarted,
    SearchHit,
    SearchQuery,
    SessionDetail,
    SessionEnded,
    SessionStarted,
    SessionSummary,
    Status,
    TargetInfo,
)
from core.review.view import PhaseReviewDoc, PhaseSummary
from core.setup.models import (
    ConfigPatch,
    CostParams,
    CostPreview,
    DetectedSource,
    DriveSignedIn,
    DriveTargetSpec,
    FolderTargetSpec,
    PhasesPatch,
    RecoveryKit,
    RetentionPatch,
    S3TargetSpec,
    SchedulePatch,
    Settings,
    SignInStarted,
    TargetAdded,
    TargetTestResult,
)

if TYPE_CHECKING:
    from core.daemon.http_client import HttpClient
    from core.service import Service

__all__ = [
    "ArchivePlan",
    "BackupContents",
    "BackupInfo",
    "CacheMetrics",
    "Client",
    "ConfigPatch",
    "CostPreview",
    "DetectedSource",
    "DriveSignedIn",
    "DriveTargetSpec",
    "Event",
    "ExportedCopy",
    "FolderTargetSpec",
    "HttpClient",
    "ImportReport",
    "InProcessClient",
    "JobInfo",
    "MetricsSnapshot",
    "OpMetrics",
    "PhaseHeld",
    "PhaseReviewDoc",
    "PhaseStarted",
    "PhaseSummary",
    "PhasesPatch",
    "QueueMetrics",
    "RatioMetrics",
    "RecoveryKit",
    "Resolution",
    "RetentionPatch",
    "S3TargetSpec",
    "SchedulePatch",
    "SearchHit",
    "SearchQuery",
    "SecretStr",
    "SeriesPoint",
    "SessionDetail",
    "SessionEnded",
    "SessionStarted",
    "SessionSummary",
    "Settings",
    "SignInStarted",
    "Status",
    "TargetAdded",
    "TargetInfo",
    "TargetTestResult",
    "connect_daemon",
    "open_client",
    "open_in_process",
]


class Client(Protocol):
    async def status(self) -> Status: ...

    async def list_sessions(self, phase: str | None = None) -> list[SessionSummary]: ...

    async def session(self, session_id: str, *, messages: bool = True) -> SessionDetail: ...

    async def search(self, query: SearchQuery) -> list[SearchHit]: ...

    async def start_import(self, paths: list[str], fmt: str = "auto") -> JobInfo: ...

    async def start_session(self, agent: str = "human") -> SessionStarted: ...

    async def end_session(
        self,
        session_id: str | None = None,
        *,
        summary: str | None = None,
        open_items: Sequence[str] = (),
    ) -> SessionEnded:
        """Writes the handoff note and imports the session now; its backup runs as a job."""
        ...

    async def jobs(self, *, active_only: bool = False) -> list[JobInfo]: ...

    async def targets(self) -> list[TargetInfo]: ...

    async def backups(
        self, *, session_id: str | None = None, target: str | None = None
    ) -> list[BackupInfo]: ...

    async def start_backup(self, session_ids: list[str], target: str | None = None) -> JobInfo: ...

    async def start_restore(
        self, session_id: str, dest: str | None, *, target: str | None = None,
        file: str | None = None, overwrite: bool = False,
    ) -> JobInfo: ...  # fmt: skip

    async def start_verify(self, target: str | None = None, *, deep: bool = False) -> JobInfo: ...

    async def retry_waiting(self) -> int: ...

    # disaster recovery (a new machine, a lost DB) ------------------------------------------
    async def backup_contents(self, target: str | None = None) -> BackupContents:
        """What a saved target holds (sessions per phase, encryption), read from its listing
        and index: shown before a rebuild from it."""
        ...

    async def start_recover(
        self, targets: Sequence[str] | None = None, *, secret: SecretStr | None = None,
        restore: bool = False, sessions: Sequence[str] | None = None,
    ) -> JobInfo:  # fmt: skip
        """Rebuilds the catalog from the targets (all when None) as a job; recovered sessions
        list as `in_backup_only`. `secret`: an encrypted target's passphrase or recovery
        code, checked now (a wrong one raises here) and never stored with the job.
        `restore`: then bring the sessions' files back into the workspace (all, or those
        named) and re-import them."""
        ...

    async def catalog_drift(self, target: str | None = None) -> list[CatalogDriftReport]:
        """Each target's records (index, manifests) against the local DB; changes nothing."""
        ...

    async def catalog_repair(self, target: str | None = None) -> CatalogRepairResult:
        """Brings the local DB in line with the targets (adds what they hold, marks what
        they lost); nothing on a target is written or deleted."""
        ...

    async def metrics(self) -> MetricsSnapshot: ...

    async def metrics_series(
        self, op: str, tier: str, since: datetime, resolution: Resolution = "1m"
    ) -> list[SeriesPoint]: ...

    async def cancel_job(self, job_id: int) -> JobInfo: ...

    async def pause_job(self, job_id: int) -> JobInfo:
        """Parks the job (a running one stops, its checkpoint kept) until `resume_job`;
        jobs after it on the same target wait behind it."""
        ...

    async def resume_job(self, job_id: int) -> JobInfo:
        """Requeues a paused job; it goes on where it stopped. Other jobs are left alone."""
        ...

    # phases and their review (the Phase review page) ------------------------------------
    async def phases(self) -> list[PhaseSummary]:
        """Closed phases first (newest first), then open ones."""
        ...

    async def start_review(self, phase: str, *, html: bool = False) -> JobInfo: ...

    async def start_phase_close(self, phase: str | None = None, *, html: bool = False) -> JobInfo:
        """Close → back up → review → upload → archive (per config) → retention, one job;
        the current phase when `phase` is None."""
        ...

    async def review(self, phase: str) -> PhaseReviewDoc:
        """The written review; NotFoundError when the phase has none yet."""
        ...

    async def review_chart(self, phase: str, name: str) -> bytes:
        """A chart of the review (one of `review(phase).charts`) as PNG bytes."""
        ...

    # set-up and settings (the wizard, the Settings page) ----------------------------------
    async def config(self) -> Settings: ...

    async def update_config(self, patch: ConfigPatch) -> Settings:
        """Only the fields set in `patch` change; publishes `config.changed`."""
        ...

    async def detect_sources(self) -> list[DetectedSource]: ...

    async def add_target(self, spec: FolderTargetSpec | S3TargetSpec) -> TargetAdded:
        """Checks it (a real round trip), keeps its secrets in the keyring, then saves it.
        Drive targets are added by `start_drive_sign_in`."""
        ...

    async def remove_target(self, name: str) -> None: ...

    async def test_target(
        self, target: str | FolderTargetSpec | S3TargetSpec | None = None
    ) -> TargetTestResult:
        """A saved target by name (the only one when None), or one not added yet."""
        ...

    async def recovery_kit(self, name: str) -> RecoveryKit: ...

    async def start_drive_sign_in(self, spec: DriveTargetSpec) -> SignInStarted:
        """Returns the address to open in the browser; the sign-in then runs in the service."""
        ...

    async def finish_drive_sign_in(self, flow_id: str) -> DriveSignedIn:
        """Waits for the browser (cancelling the wait leaves the sign-in running), then the
        target is saved: the account and its quota come back."""
        ...

    async def cancel_drive_sign_in(self, flow_id: str) -> bool: ...

    async def cost_preview(
        self, size_bytes: int, storage_class: str | None = None, tier: str = "Bulk"
    ) -> list[CostPreview]:
        """Tier 3 prices of `size_bytes` in one storage class, or in each one priced."""
        ...

    # what the remaining CLI commands need (so they work beside a daemon too) --------------
    async def stats(self, by: str = "model") -> list[dict[str, Any]]:
        """Tokens and cost per model, agent, tool, project, session or day."""
        ...

    async def export(
        self, session_id: str, dest: str, *, file: str | None = None
    ) -> list[ExportedCopy]:
        """The session's original files, byte for byte, written at `dest` (absolute: the
        daemon runs in another folder)."""
        ...

    async def phase_new(self, name: str) -> PhaseStarted: ...

    async def archive_plan(
        self, phase: str, *, target: str | None = None, source: str | None = None
    ) -> ArchivePlan: ...

    async def start_archive(
        self, phase: str, *, target: str | None = None, source: str | None = None,
        force: bool = False,
    ) -> JobInfo: ...  # fmt: skip

    async def archive_restore_estimate(
        self, phase: str, *, target: str | None = None, tier: str = "Bulk"
    ) -> str | None:
        """What thawing the phase's archive costs, said for a person; None: nothing."""
        ...

    async def start_archive_restore(
        self, phase: str, dest: str, *, target: str | None = None,
        sessions: list[str] | None = None, reimport: bool = True, tier: str = "Bulk",
        days: int = 7,
    ) -> JobInfo: ...  # fmt: skip

    async def unlock_target(self, name: str, secret: SecretStr) -> None:
        """Puts an encrypted target's key in the keyring (from its passphrase or recovery
        code); jobs waiting for it continue."""
        ...

    async def start_drive_reconnect(
        self, name: str, *, open_browser: bool = False
    ) -> SignInStarted:
        """Signs a saved Drive target in again: finish (or cancel) it as a new target's
        sign-in; jobs waiting for it then continue."""
        ...

    async def wait_job(self, job_id: int) -> JobInfo: ...

    def subscribe(self, topics: Sequence[str] | None = None) -> AsyncIterator[Event]:
        """Events from now on: all, or those whose topic matches (`"job."` is a family).
        Costly streams (`metrics`, four times a second) run only when named."""
        ...

    async def close(self) -> None: ...


async def connect_daemon(
    workspace: str | Path | None = None, *, socket: Path | None = None
) -> HttpClient | None:
    """A client of the daemon serving `workspace`, or None when none answers.

    The HTTP stack (aiohttp) is loaded only when a daemon's socket is there: the window
    and the CLI on their own service start without it."""
    import asyncio

    from core.daemon.socket_path import socket_candidates
    from core.paths import resolve_workspace

    candidates = [socket] if socket is not None else socket_candidates(resolve_workspace(workspace))
    if not any([await asyncio.to_thread(p.exists) for p in candidates]):
        return None
    from core.daemon.http_client import connect_daemon as connect

    return await connect(workspace, socket=socket)


def __getattr__(name: str) -> object:
    """`HttpClient` on first use (see `connect_daemon`)."""
    if name == "HttpClient":
        from core.daemon.http_client import HttpClient

        return HttpClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


async def open_in_process(
    workspace: str | Path | None = None, *, init: bool = True, set_aside_damaged: bool = False
) -> Client:
    """A service of this process on `workspace`, even if a daemon could be found."""
    from core.service import Service

    service = await Service.start(workspace, init=init, set_aside_damaged=set_aside_damaged)
    return InProcessClient(service)


async def open_client(
    workspace: str | Path | None = None, *, init: bool = True, set_aside_damaged: bool = False
) -> Client:
    """The daemon's client when a daemon serves `workspace` (the default one when None),
    else an in-process service on it. A crashed daemon's socket file is ignored.
    `set_aside_damaged`: a DB that cannot be opened is moved aside and an empty one
    started (`Status.db_state` says so): the window then offers the rebuild."""
    daemon = await connect_daemon(workspace)
    if daemon is not None:
        return daemon
    from core.service import Service

    service = await Service.start(workspace, init=init, set_aside_damaged=set_aside_damaged)
    return InProcessClient(service)


class InProcessClient:
    def __init__(self, service: object) -> None:
        from core.service import Service

        assert isinstance(service, Service)
        self._service = service

    @property
    def service(self) -> Service:
        """For the few CLI commands the protocol has no call for yet (read-only ones)."""
        return self._service

    async def status(self) -> Status:
        return await self._service.status()

    async def list_sessions(self, phase: str | None = None) -> list[SessionSummary]:
        return await self._service.list_sessions(phase)

    async def session(self, session_id: str, *, messages: bool = True) -> SessionDetail:
        return await self._service.session(session_id, messages=messages)

    async def search(self, query: SearchQuery) -> list[SearchHit]:
        return await self._service.search(query)

    async def start_import(self, paths: list[str], fmt: str = "auto") -> JobInfo:
        return await self._service.start_import(paths, fmt)

    async def start_session(self, agent: str = "human") -> SessionStarted:
        return await self._service.start_session(agent)

    async def end_session(
        self,
        session_id: str | None = None,
        *,
        summary: str | None = None,
        open_items: Sequence[str] = (),
    ) -> SessionEnded:
        return await self._service.end_session(
            session_id, summary=summary, open_items=list(open_items)
        )

    async def jobs(self, *, active_only: bool = False) -> list[JobInfo]:
        return await self._service.jobs.list(active_only=active_only)

    async def cancel_job(self, job_id: int) -> JobInfo:
        return await self._service.jobs.cancel(job_id)

    async def pause_job(self, job_id: int) -> JobInfo:
        return await self._service.jobs.pause(job_id)

    async def resume_job(self, job_id: int) -> JobInfo:
        return await self._service.jobs.resume(job_id)

    async def targets(self) -> list[TargetInfo]:
        return await self._service.targets()

    async def backups(
        self, *, session_id: str | None = None, target: str | None = None
    ) -> list[BackupInfo]:
        return await self._service.backups(session_id=session_id, target=target)

    async def start_backup(self, session_ids: list[str], target: str | None = None) -> JobInfo:
        return await self._service.start_backup(session_ids, target)

    async def start_restore(
        self, session_id: str, dest: str | None, *, target: str | None = None,
        file: str | None = None, overwrite: bool = False,
    ) -> JobInfo:  # fmt: skip
        return await self._service.start_restore(
            session_id, dest, target=target, file=file, overwrite=overwrite
        )

    async def start_verify(self, target: str | None = None, *, deep: bool = False) -> JobInfo:
        return await self._service.start_verify(target, deep=deep)

    async def retry_waiting(self) -> int:
        return await self._service.jobs.resume_waiting()

    async def backup_contents(self, target: str | None = None) -> BackupContents:
        return await self._service.backup_contents(target)

    async def start_recover(
        self, targets: Sequence[str] | None = None, *, secret: SecretStr | None = None,
        restore: bool = False, sessions: Sequence[str] | None = None,
    ) -> JobInfo:  # fmt: skip
        return await self._service.start_recover(
            list(targets) if targets is not None else None,
            secret=secret.get_secret_value() if secret is not None else None,
            restore=restore, sessions=list(sessions) if sessions is not None else None,
        )  # fmt: skip

    async def catalog_drift(self, target: str | None = None) -> list[CatalogDriftReport]:
        return [
            CatalogDriftReport(**asdict(d), clean=d.clean)
            for d in await self._service.catalog_drift(target)
        ]

    async def catalog_repair(self, target: str | None = None) -> CatalogRepairResult:
        return CatalogRepairResult(**await self._service.catalog_repair(target))

    async def metrics(self) -> MetricsSnapshot:
        return await self._service.recorder.live()

    async def metrics_series(
        self, op: str, tier: str, since: datetime, resolution: Resolution = "1m"
    ) -> list[SeriesPoint]:
        return await self._service.recorder.series(op, tier, since, resolution)

    async def wait_job(self, job_id: int) -> JobInfo:
        return await self._service.jobs.wait(job_id)

    async def phases(self) -> list[PhaseSummary]:
        return await self._service.phases()

    async def start_review(self, phase: str, *, html: bool = False) -> JobInfo:
        return await self._service.start_review(phase, html=html)

    async def start_phase_close(self, phase: str | None = None, *, html: bool = False) -> JobInfo:
        return await self._service.start_phase_close(phase, html=html)

    async def review(self, phase: str) -> PhaseReviewDoc:
        return await self._service.review(phase)

    async def review_chart(self, phase: str, name: str) -> bytes:
        return await self._service.review_chart(phase, name)

    async def config(self) -> Settings:
        return await self._service.setup.settings()

    async def update_config(self, patch: ConfigPatch) -> Settings:
        return await self._service.setup.update_config(patch)

    async def detect_sources(self) -> list[DetectedSource]:
        return await self._service.setup.detect_sources()

    async def add_target(self, spec: FolderTargetSpec | S3TargetSpec) -> TargetAdded:
        return await self._service.setup.add_target(spec)

    async def remove_target(self, name: str) -> None:
        await self._service.setup.remove_target(name)

    async def test_target(
        self, target: str | FolderTargetSpec | S3TargetSpec | None = None
    ) -> TargetTestResult:
        return await self._service.setup.test_target(target)

    async def recovery_kit(self, name: str) -> RecoveryKit:
        return await self._service.setup.recovery_kit(name)

    async def start_drive_sign_in(self, spec: DriveTargetSpec) -> SignInStarted:
        return await self._service.setup.start_drive_sign_in(spec)

    async def finish_drive_sign_in(self, flow_id: str) -> DriveSignedIn:
        return await self._service.setup.finish_drive_sign_in(flow_id)

    async def cancel_drive_sign_in(self, flow_id: str) -> bool:
        return await self._service.setup.cancel_drive_sign_in(flow_id)

    async def cost_preview(
        self, size_bytes: int, storage_class: str | None = None, tier: str = "Bulk"
    ) -> list[CostPreview]:
        params = CostParams.model_validate(
            {"size_bytes": size_bytes, "storage_class": storage_class, "tier": tier}
        )
        return await self._service.setup.cost_preview(params)

    async def stats(self, by: str = "model") -> list[dict[str, Any]]:
        return await self._service.stats(by)

    async def export(
        self, session_id: str, dest: str, *, file: str | None = None
    ) -> list[ExportedCopy]:
        done = await self._service.export(session_id, Path(dest), file)
        return [ExportedCopy.model_validate(f, from_attributes=True) for f in done]

    async def phase_new(self, name: str) -> PhaseStarted:
        return await self._service.phase_new(name)

    async def archive_plan(
        self, phase: str, *, target: str | None = None, source: str | None = None
    ) -> ArchivePlan:
        plan = await self._service.archive_plan(phase, target=target, source=source)
        return ArchivePlan.model_validate(plan)

    async def start_archive(
        self, phase: str, *, target: str | None = None, source: str | None = None,
        force: bool = False,
    ) -> JobInfo:  # fmt: skip
        return await self._service.start_archive(phase, target=target, source=source,
                                                  force=force)  # fmt: skip

    async def archive_restore_estimate(
        self, phase: str, *, target: str | None = None, tier: str = "Bulk"
    ) -> str | None:
        return await self._service.archive_restore_estimate(phase, target=target, tier=tier)

    async def start_archive_restore(
        self, phase: str, dest: str, *, target: str | None = None,
        sessions: list[str] | None = None, reimport: bool = True, tier: str = "Bulk",
        days: int = 7,
    ) -> JobInfo:  # fmt: skip
        return await self._service.start_archive_restore(
            phase, dest, target=target, sessions=sessions, reimport=reimport, tier=tier,
            days=days,
        )  # fmt: skip

    async def unlock_target(self, name: str, secret: SecretStr) -> None:
        await self._service.unlock_target(name, secret.get_secret_value())

    async def start_drive_reconnect(
        self, name: str, *, open_browser: bool = False
    ) -> SignInStarted:
        return await self._service.start_drive_reconnect(name, open_browser=open_browser)

    def subscribe(self, topics: Sequence[str] | None = None) -> AsyncIterator[Event]:
        return self._service.bus.subscribe(topics)

    async def close(self) -> None:
        await self._service.stop()
