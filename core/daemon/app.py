"""The daemon's routes: one per `Client` method, plus the event stream and the API document.

Handlers are thin: validated inputs in, the service's own models out. Everything about
HTTP (parsing, status codes, errors) lives in the dispatcher and the error middleware.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar, get_args

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from core.daemon import sse
from core.daemon.command_requests import (
    WAIT_CAP,
    ArchivePlanParams,
    ArchiveRequest,
    ArchiveRestoreRequest,
    ExportRequest,
    PhaseNewRequest,
    ReconnectRequest,
    StatsParams,
    ThawParams,
    UnlockRequest,
    WaitParams,
)
from core.daemon.errors import DaemonUnavailableError, describe, error_middleware
from core.daemon.registry import SERVICE, Call, Registry, Route
from core.daemon.requests import (
    BackupRequest,
    BackupsParams,
    CatalogRepairRequest,
    ChartParams,
    ContentsParams,
    EventsParams,
    ImportRequest,
    JobParams,
    JobsParams,
    PhaseCloseRequest,
    PhaseParams,
    RecoverRequest,
    Requeued,
    RestoreRequest,
    ReviewRequest,
    SeriesParams,
    SessionEndRequest,
    SessionParams,
    SessionsParams,
    SessionStartRequest,
    VerifyRequest,
)
from core.daemon.setup_requests import FlowParams, TargetParams
from core.errors import BadInputError
from core.metrics.models import MetricsSnapshot, SeriesPoint
from core.metrics.prometheus import CONTENT_TYPE as PROMETHEUS_TYPE
from core.metrics.prometheus import prometheus_text
from core.models import (
    ArchivePlan,
    BackupContents,
    BackupInfo,
    CatalogDriftReport,
    CatalogRepairResult,
    Event,
    ExportedCopy,
    JobInfo,
    PhaseStarted,
    SearchHit,
    SearchQuery,
    SessionDetail,
    SessionEnded,
    SessionStarted,
    SessionSummary,
    Status,
    TargetInfo,
    TargetUnlocked,
    ThawEstimate,
    UsageStats,
)
from core.review.view import PhaseReviewDoc, PhaseSummary
from core.service import Service
from core.setup.models import (
    AddTargetRequest,
    ConfigPatch,
    CostParams,
    CostPreview,
    DetectedSource,
    DriveSignedIn,
    DriveTargetSpec,
    RecoveryKit,
    Settings,
    SignInCancelledInfo,
    SignInStarted,
    TargetAdded,
    TargetRemoved,
    TargetTestRequest,
    TargetTestResult,
)

MAX_BODY = 1024 * 1024
STOPPING = web.AppKey("stopping", asyncio.Event)
OPENAPI = web.AppKey[dict[str, Any]]("openapi")

T = TypeVar("T")
api = Registry()


@api.route("GET", "/status", summary="What the workspace holds and what is running",
           response=Status)  # fmt: skip
async def status(call: Call) -> Status:
    return await call.svc.status()


@api.route("GET", "/sessions", summary="Sessions, newest first", response=SessionSummary,
           many=True, params=SessionsParams)  # fmt: skip
async def list_sessions(call: Call) -> list[SessionSummary]:
    return await call.svc.list_sessions(call.param(SessionsParams).phase)


@api.route("GET", "/sessions/{session_id}", summary="One session with its files and messages",
           response=SessionDetail, params=SessionParams)  # fmt: skip
async def session(call: Call) -> SessionDetail:
    p = call.param(SessionParams)
    return await call.svc.session(p.session_id, messages=p.messages)


@api.route("POST", "/search", summary="Full-text search, best matches first",
           response=SearchHit, many=True, body=SearchQuery)  # fmt: skip
async def search(call: Call) -> list[SearchHit]:
    return await call.svc.search(call.payload(SearchQuery))


@api.route("POST", "/sessions/start", summary="Start a session (an agent's working stretch)",
           response=SessionStarted, body=SessionStartRequest, status=201)  # fmt: skip
async def start_session(call: Call) -> SessionStarted:
    return await call.svc.start_session(call.payload(SessionStartRequest).agent)


@api.route("POST", "/sessions/end", summary="End a session: handoff note, import, backup job",
           response=SessionEnded, body=SessionEndRequest)  # fmt: skip
async def end_session(call: Call) -> SessionEnded:
    b = call.payload(SessionEndRequest)
    return await _unless_stopping(
        call, call.svc.end_session(b.session_id, summary=b.summary, open_items=b.open_items)
    )


@api.route("POST", "/imports", summary="Start an import job", response=JobInfo,
           body=ImportRequest, status=202)  # fmt: skip
async def start_import(call: Call) -> JobInfo:
    b = call.payload(ImportRequest)
    return await call.svc.start_import(b.paths, b.format)


@api.route("GET", "/jobs", summary="Jobs, newest first", response=JobInfo, many=True,
           params=JobsParams)  # fmt: skip
async def jobs(call: Call) -> list[JobInfo]:
    return await call.svc.jobs.list(active_only=call.param(JobsParams).active_only)


@api.route("POST", "/jobs/{job_id}/cancel", summary="Cancel a job; answers once it stopped",
           response=JobInfo, params=JobParams)  # fmt: skip
async def cancel_job(call: Call) -> JobInfo:
    return await call.svc.jobs.cancel(call.param(JobParams).job_id)


@api.route("POST", "/jobs/{job_id}/pause",
           summary="Pause a job (it keeps its checkpoint and place); answers once it is parked",
           response=JobInfo, params=JobParams)  # fmt: skip
async def pause_job(call: Call) -> JobInfo:
    return await call.svc.jobs.pause(call.param(JobParams).job_id)


@api.route("POST", "/jobs/{job_id}/resume", summary="Put a paused job back in the queue",
           response=JobInfo, params=JobParams)  # fmt: skip
async def resume_job(call: Call) -> JobInfo:
    return await call.svc.jobs.resume(call.param(JobParams).job_id)


@api.route("GET", "/jobs/{job_id}/wait",
           summary="Answers once the job is done, failed, cancelled, waiting or paused, or "
           f"after {WAIT_CAP:g} s at most with the job as it stands (long poll: ask again)",
           response=JobInfo, params=WaitParams)  # fmt: skip
async def wait_job(call: Call) -> JobInfo:
    p = call.param(WaitParams)
    return await _unless_stopping(call, _settled_or_now(call.svc, p.job_id, p.timeout))


async def _settled_or_now(svc: Service, job_id: int, at_most: float | None) -> JobInfo:
    """A request is held for WAIT_CAP at most: a client that went away leaves no waiter
    behind for longer, and one still there simply asks again."""
    limit = min(at_most or WAIT_CAP, WAIT_CAP)
    try:
        return await asyncio.wait_for(svc.jobs.wait(job_id), limit)
    except TimeoutError:
        return await svc.jobs.get(job_id)


@api.route("POST", "/jobs/retry-waiting", summary="Requeue every waiting job now",
           response=Requeued)  # fmt: skip
async def retry_waiting(call: Call) -> Requeued:
    return Requeued(count=await call.svc.jobs.resume_waiting())


@api.route("GET", "/targets", summary="Backup targets as the tier cards show them",
           response=TargetInfo, many=True)  # fmt: skip
async def targets(call: Call) -> list[TargetInfo]:
    return await call.svc.targets()


@api.route("GET", "/backups", summary="Backup history, newest first", response=BackupInfo,
           many=True, params=BackupsParams)  # fmt: skip
async def backups(call: Call) -> list[BackupInfo]:
    p = call.param(BackupsParams)
    return await call.svc.backups(session_id=p.session_id, target=p.target)


@api.route("POST", "/backups", summary="Start a backup job", response=JobInfo,
           body=BackupRequest, status=202)  # fmt: skip
async def start_backup(call: Call) -> JobInfo:
    b = call.payload(BackupRequest)
    return await call.svc.start_backup(b.session_ids, b.target)


@api.route("POST", "/restores", summary="Start a restore job", response=JobInfo,
           body=RestoreRequest, status=202)  # fmt: skip
async def start_restore(call: Call) -> JobInfo:
    b = call.payload(RestoreRequest)
    return await call.svc.start_restore(b.session_id, b.dest, target=b.target, file=b.file,
                                        overwrite=b.overwrite)  # fmt: skip


@api.route("POST", "/verifications", summary="Start a verify job", response=JobInfo,
           body=VerifyRequest, status=202)  # fmt: skip
async def start_verify(call: Call) -> JobInfo:
    b = call.payload(VerifyRequest)
    return await call.svc.start_verify(b.target, deep=b.deep)


@api.route("GET", "/backup-contents", summary="What a target holds (sessions per "
           "phase, encryption), from its listing and index: before a rebuild from it",
           response=BackupContents, params=ContentsParams)  # fmt: skip
async def backup_contents(call: Call) -> BackupContents:
    return await call.svc.backup_contents(call.param(ContentsParams).target)


@api.route("POST", "/recoveries", summary="Start rebuilding the catalog from the targets "
           "(then, with restore, the sessions' files); a passphrase is checked first",
           response=JobInfo, body=RecoverRequest, status=202)  # fmt: skip
async def start_recover(call: Call) -> JobInfo:
    b = call.payload(RecoverRequest)
    secret = b.secret.get_secret_value() if b.secret is not None else None
    return await call.svc.start_recover(b.targets, secret=secret, restore=b.restore,
                                        sessions=b.sessions)  # fmt: skip


@api.route("GET", "/catalog-drift", summary="Each target's records against the local DB "
           "(`verify --catalog`); nothing is changed", response=CatalogDriftReport,
           many=True, params=ContentsParams)  # fmt: skip
async def catalog_drift(call: Call) -> list[CatalogDriftReport]:
    drifts = await call.svc.catalog_drift(call.param(ContentsParams).target)
    return [CatalogDriftReport(**asdict(d), clean=d.clean) for d in drifts]


@api.route("POST", "/catalog-repairs", summary="Bring the local DB in line with the targets; "
           "nothing on a target changes", response=CatalogRepairResult,
           body=CatalogRepairRequest)  # fmt: skip
async def catalog_repair(call: Call) -> CatalogRepairResult:
    result = await call.svc.catalog_repair(call.payload(CatalogRepairRequest).target)
    return CatalogRepairResult(**result)


@api.route("GET", "/metrics", summary="Live metrics: latency per operation and tier, "
           "throughput, errors, ratios, queue depth", response=MetricsSnapshot)  # fmt: skip
async def metrics(call: Call) -> MetricsSnapshot:
    return await call.svc.recorder.live()


@api.route("GET", "/metrics/series", summary="One operation's history, oldest first",
           response=SeriesPoint, many=True, params=SeriesParams)  # fmt: skip
async def metrics_series(call: Call) -> list[SeriesPoint]:
    p = call.param(SeriesParams)
    return await call.svc.recorder.series(p.op, p.tier, p.since, p.resolution)


@api.route("GET", "/metrics/prometheus", summary="Live metrics in Prometheus' text format "
           "(version 0.0.4), for a scraper", response=None, media="text/plain")  # fmt: skip
async def metrics_prometheus(call: Call) -> web.Response:
    text = prometheus_text(await call.svc.recorder.live())
    # aiohttp's content_type takes no parameters: the header is set whole
    return web.Response(body=text.encode("utf-8"), headers={"Content-Type": PROMETHEUS_TYPE})


# phases and their review ----------------------------------------------------------------------
@api.route("GET", "/phases", summary="Phases, closed ones first, with when each was reviewed",
           response=PhaseSummary, many=True)  # fmt: skip
async def phases(call: Call) -> list[PhaseSummary]:
    return await call.svc.phases()


@api.route("POST", "/reviews", summary="Start a review job (writes the phase's review)",
           response=JobInfo, body=ReviewRequest, status=202)  # fmt: skip
async def start_review(call: Call) -> JobInfo:
    b = call.payload(ReviewRequest)
    return await call.svc.start_review(b.phase, html=b.html)


@api.route("POST", "/phase-closes", summary="Start closing a phase: back up, review, upload, "
           "archive (per config), retention, as one job", response=JobInfo,
           body=PhaseCloseRequest, status=202)  # fmt: skip
async def start_phase_close(call: Call) -> JobInfo:
    b = call.payload(PhaseCloseRequest)
    return await call.svc.start_phase_close(b.phase, html=b.html)


@api.route("GET", "/phases/{phase}/review", summary="A phase's written review: the report, "
           "its HTML, chart names, metadata", response=PhaseReviewDoc,
           params=PhaseParams)  # fmt: skip
async def review(call: Call) -> PhaseReviewDoc:
    return await call.svc.review(call.param(PhaseParams).phase)


@api.route("GET", "/phases/{phase}/review/charts/{name}", summary="One chart of a review",
           response=None, params=ChartParams, media="image/png")  # fmt: skip
async def review_chart(call: Call) -> web.Response:
    p = call.param(ChartParams)
    png = await call.svc.review_chart(p.phase, p.name)
    return web.Response(body=png, content_type="image/png")


# set-up and settings ------------------------------------------------------------------------
@api.route("GET", "/config", summary="The workspace's settings (never a secret)",
           response=Settings)  # fmt: skip
async def config(call: Call) -> Settings:
    return await call.svc.setup.settings()


@api.route("PATCH", "/config", summary="Change the settings given; publishes config.changed",
           response=Settings, body=ConfigPatch)  # fmt: skip
async def update_config(call: Call) -> Settings:
    return await call.svc.setup.update_config(call.payload(ConfigPatch))


@api.route("GET", "/sources/detected", summary="Agent history folders found on this machine",
           response=DetectedSource, many=True)  # fmt: skip
async def detect_sources(call: Call) -> list[DetectedSource]:
    return await call.svc.setup.detect_sources()


@api.route("POST", "/targets", summary="Check and save a folder or S3 target; secrets go to "
           "the OS keyring", response=TargetAdded, body=AddTargetRequest, status=201)  # fmt: skip
async def add_target(call: Call) -> TargetAdded:
    return await call.svc.setup.add_target(call.payload(AddTargetRequest).spec)


@api.route("DELETE", "/targets/{name}", summary="Forget a target and its secrets (its backups "
           "stay where they are)", response=TargetRemoved, params=TargetParams)  # fmt: skip
async def remove_target(call: Call) -> TargetRemoved:
    name = call.param(TargetParams).name
    await call.svc.setup.remove_target(name)
    return TargetRemoved(name=name)


@api.route("POST", "/targets/test", summary="Write, read back and delete a probe on a saved "
           "target or on a spec not saved yet", response=TargetTestResult,
           body=TargetTestRequest)  # fmt: skip
async def test_target(call: Call) -> TargetTestResult:
    b = call.payload(TargetTestRequest)
    if b.spec is not None and b.name is not None:
        raise BadInputError("Bad request: give a target's name or a spec, not both")
    return await call.svc.setup.test_target(b.spec if b.spec is not None else b.name)


@api.route("GET", "/targets/{name}/recovery-kit", summary="The page that opens an encrypted "
           "target's backups on another computer", response=RecoveryKit,
           params=TargetParams)  # fmt: skip
async def recovery_kit(call: Call) -> RecoveryKit:
    return await call.svc.setup.recovery_kit(call.param(TargetParams).name)


@api.route("POST", "/drive-sign-ins", summary="Start signing a new Drive target in: the "
           "address to open comes back", response=SignInStarted, body=DriveTargetSpec,
           status=201)  # fmt: skip
async def start_drive_sign_in(call: Call) -> SignInStarted:
    return await call.svc.setup.start_drive_sign_in(call.payload(DriveTargetSpec))


@api.route("GET", "/drive-sign-ins/{flow_id}/wait", summary="Answers once the browser came "
           "back and the target is saved (long poll)", response=DriveSignedIn,
           params=FlowParams)  # fmt: skip
async def finish_drive_sign_in(call: Call) -> DriveSignedIn:
    flow = call.param(FlowParams).flow_id
    return await _unless_stopping(call, call.svc.setup.finish_drive_sign_in(flow))


@api.route("POST", "/drive-sign-ins/{flow_id}/cancel", summary="Stop a sign-in under way",
           response=SignInCancelledInfo, params=FlowParams)  # fmt: skip
async def cancel_drive_sign_in(call: Call) -> SignInCancelledInfo:
    flow = call.param(FlowParams).flow_id
    cancelled = await call.svc.setup.cancel_drive_sign_in(flow)
    return SignInCancelledInfo(flow_id=flow, cancelled=cancelled)


@api.route("GET", "/costs/preview", summary="What Tier 3 would cost for a size, per storage "
           "class", response=CostPreview, many=True, params=CostParams)  # fmt: skip
async def cost_preview(call: Call) -> list[CostPreview]:
    return await call.svc.setup.cost_preview(call.param(CostParams))


# what the remaining CLI commands need ------------------------------------------------------
@api.route("GET", "/stats", summary="Tokens and cost per model, agent, tool, project, session "
           "or day", response=UsageStats, params=StatsParams)  # fmt: skip
async def stats(call: Call) -> UsageStats:
    by = call.param(StatsParams).by
    return UsageStats(by=by, rows=await call.svc.stats(by))


@api.route("POST", "/exports", summary="Write a session's original files, byte for byte, at "
           "a path of this computer", response=ExportedCopy, many=True,
           body=ExportRequest)  # fmt: skip
async def export(call: Call) -> list[ExportedCopy]:
    b = call.payload(ExportRequest)
    done = await call.svc.export(b.session_id, Path(b.dest), b.file)
    return [ExportedCopy.model_validate(f, from_attributes=True) for f in done]


@api.route("POST", "/phases", summary="Start a phase; it becomes the current one",
           response=PhaseStarted, body=PhaseNewRequest, status=201)  # fmt: skip
async def phase_new(call: Call) -> PhaseStarted:
    return await call.svc.phase_new(call.payload(PhaseNewRequest).name)


@api.route("GET", "/archives/plan", summary="What archiving a closed phase will store and "
           "cost, and what replacing an archive would throw away", response=ArchivePlan,
           params=ArchivePlanParams)  # fmt: skip
async def archive_plan(call: Call) -> ArchivePlan:
    p = call.param(ArchivePlanParams)
    return ArchivePlan.model_validate(
        await call.svc.archive_plan(p.phase, target=p.target, source=p.source)
    )


@api.route("POST", "/archives", summary="Start archiving a closed phase to Tier 3",
           response=JobInfo, body=ArchiveRequest, status=202)  # fmt: skip
async def start_archive(call: Call) -> JobInfo:
    b = call.payload(ArchiveRequest)
    return await call.svc.start_archive(b.phase, target=b.target, source=b.source,
                                        force=b.force)  # fmt: skip


@api.route("GET", "/archive-restores/estimate", summary="What thawing a phase's archive "
           "costs", response=ThawEstimate, params=ThawParams)  # fmt: skip
async def archive_restore_estimate(call: Call) -> ThawEstimate:
    p = call.param(ThawParams)
    found = await call.svc.archive_restore_estimate(p.phase, target=p.target, tier=p.tier)
    return ThawEstimate(estimate=found)


@api.route("POST", "/archive-restores", summary="Start bringing a phase (or some of its "
           "sessions) back from its archive", response=JobInfo, body=ArchiveRestoreRequest,
           status=202)  # fmt: skip
async def start_archive_restore(call: Call) -> JobInfo:
    b = call.payload(ArchiveRestoreRequest)
    return await call.svc.start_archive_restore(
        b.phase, b.dest, target=b.target, sessions=b.sessions, reimport=b.reimport,
        tier=b.tier, days=b.days,
    )  # fmt: skip


@api.route("POST", "/target-unlocks", summary="Give an encrypted target's passphrase or "
           "recovery code; its key goes to the keyring and waiting jobs continue",
           response=TargetUnlocked, body=UnlockRequest)  # fmt: skip
async def unlock_target(call: Call) -> TargetUnlocked:
    b = call.payload(UnlockRequest)
    await call.svc.unlock_target(b.name, b.secret.get_secret_value())
    return TargetUnlocked(name=b.name)


@api.route("POST", "/drive-reconnects", summary="Sign a saved Drive target in again: the "
           "address to open comes back; finish or cancel it as a new target's sign-in",
           response=SignInStarted, body=ReconnectRequest, status=201)  # fmt: skip
async def start_drive_reconnect(call: Call) -> SignInStarted:
    b = call.payload(ReconnectRequest)
    return await call.svc.start_drive_reconnect(b.name, open_browser=b.open_browser,
                                                timeout=b.sign_in_timeout)  # fmt: skip


@api.route("GET", "/events", summary="Events of the bus (all, or the topics named), as "
           "Server-Sent Events", response=Event, stream=True, params=EventsParams)  # fmt: skip
async def subscribe(call: Call) -> web.StreamResponse:
    topics = call.param(EventsParams).topics
    wanted = [t for t in topics.split(",") if t] if topics else None
    return await sse.stream(call.request, call.svc.bus, wanted)


@api.route("GET", "/openapi.json", summary="This document", response=None)
async def openapi(call: Call) -> web.StreamResponse:
    return web.json_response(call.request.app[OPENAPI], dumps=lambda d: orjson.dumps(d).decode())


async def _unless_stopping(call: Call, work: Awaitable[T]) -> T:
    """A long poll must not hold the daemon's shutdown until its timeout."""
    task = asyncio.ensure_future(work)
    stop = asyncio.ensure_future(call.request.app[STOPPING].wait())
    try:
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    if task.cancelled():
        raise DaemonUnavailableError(
            "The daemon is stopping", hint="the job carries on when Tierkeeper starts again"
        )
    return task.result()


# dispatch ---------------------------------------------------------------------------------
def _endpoint(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        params = _params(route, request) if route.params is not None else None
        body = await _body(route, request) if route.body is not None else None
        result = await route.handler(Call(request, params, body))
        if isinstance(result, web.StreamResponse):
            return result
        return web.Response(status=route.status, body=_dump(result),
                            content_type="application/json")  # fmt: skip

    return handle


def _params(route: Route, request: web.Request) -> BaseModel:
    assert route.params is not None
    raw: dict[str, str] = {}
    for key in request.query:
        values = request.query.getall(key)
        if len(values) > 1:
            raise BadInputError(f"Bad request: the parameter {key!r} is given more than once")
        raw[key] = values[0]
    raw.update(request.match_info)
    _refuse_unknown(route.params, raw)
    _as_the_document_writes(route.params, raw)
    try:
        return route.params.model_validate(raw)
    except ValidationError as exc:
        raise BadInputError(f"Bad request: {describe(exc)}") from None


async def _body(route: Route, request: web.Request) -> BaseModel:
    assert route.body is not None
    raw = await request.read()
    try:
        data = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError as exc:
        raise BadInputError(f"Bad request: the body is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BadInputError("Bad request: the body must be a JSON object")
    _refuse_unknown(route.body, data)
    try:
        # Strict: JSON has real booleans and numbers, so `"deep": 0.0` or `"limit": "5"`
        # is a caller's mistake to report, not to guess at (the document says so too).
        return route.body.model_validate_json(raw or b"{}", strict=True)
    except ValidationError as exc:
        raise BadInputError(f"Bad request: {describe(exc)}") from None


def _refuse_unknown(model: type[BaseModel], data: dict[str, Any]) -> None:
    """A misspelt option must fail, even for models that ignore extras elsewhere."""
    unknown = sorted(set(data) - set(model.model_fields))
    if unknown:
        names = ", ".join(unknown)
        raise BadInputError(f"Bad request: {names}: Extra inputs are not permitted",
                            hint=f"known: {', '.join(model.model_fields)}")  # fmt: skip


_WHOLE_NUMBER = re.compile(r"0|-?[1-9][0-9]*")
_MOMENT = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")
"""RFC 3339's date-time, the API document's format: a full time and its offset."""


def _as_the_document_writes(model: type[BaseModel], raw: dict[str, str]) -> None:
    """A path or query value is read only in the form the API document gives (and the
    client writes): pydantic also reads `+1`, `01`, `1.0` or `1_0` as a whole number,
    `yes` or `1` as true and `0` as a moment in 1970, so a value mangled on the way (or
    typed by hand) could pause or cancel a job nobody named."""
    for key, value in raw.items():
        field = model.model_fields.get(key)
        if field is None:
            continue
        kinds = (field.annotation, *get_args(field.annotation))
        if bool in kinds:
            if value not in ("true", "false"):
                raise BadInputError(f"Bad request: {key} must be true or false, not {value!r}")
        elif int in kinds:
            if not _WHOLE_NUMBER.fullmatch(value):
                raise BadInputError(f"Bad request: {key} must be a whole number, not {value!r}")
        elif datetime in kinds and not _moment(value):
            raise BadInputError(
                f"Bad request: {key} must be a date and time with its offset, not {value!r}",
                hint="as in 2026-11-27T10:00:00Z (RFC 3339)",
            )


def _moment(value: str) -> bool:
    if not _MOMENT.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value.upper())  # a 30 February matches the pattern too
    except ValueError:
        return False
    return True


def _dump(result: BaseModel | Sequence[BaseModel]) -> bytes:
    if isinstance(result, BaseModel):
        return result.model_dump_json().encode("utf-8")
    return b"[" + b",".join(m.model_dump_json().encode("utf-8") for m in result) + b"]"


# the application ------------------------------------------------------------------------------
def build_app(
    service: Service, *, heartbeat: float = 15.0, max_body: int = MAX_BODY
) -> web.Application:
    from core.daemon.openapi import openapi_document

    app = web.Application(client_max_size=max_body, middlewares=[error_middleware])
    app[SERVICE] = service
    app[STOPPING] = asyncio.Event()
    app[sse.STREAMS] = set()
    app[sse.HEARTBEAT] = heartbeat
    app[OPENAPI] = openapi_document(api.routes)
    for route in api.routes:
        app.router.add_route(route.method, route.url, _endpoint(route), name=route.name)
    app.on_shutdown.append(_stopping)
    app.on_shutdown.append(sse.end_streams)
    return app


async def _stopping(app: web.Application) -> None:
    app[STOPPING].set()
