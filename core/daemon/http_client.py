"""`core.client.Client` over the daemon's Unix socket.

Same methods, same models, same exceptions as the in-process client: an error body
becomes the exception class the service raised. Event subscriptions keep the in-process
promise too: the stream is opened as soon as `subscribe()` is called, and every other
call first waits (briefly) until the daemon confirms the subscription, so the events a
call causes are never missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import orjson
from pydantic import BaseModel, SecretStr, TypeAdapter, ValidationError
from yarl import URL

from core.daemon.command_requests import (
    ArchiveRequest,
    ArchiveRestoreRequest,
    ExportRequest,
    PhaseNewRequest,
    ReconnectRequest,
    UnlockRequest,
)
from core.daemon.errors import DaemonUnavailableError, error_from_body
from core.daemon.requests import (
    BackupRequest,
    CatalogRepairRequest,
    ImportRequest,
    PhaseCloseRequest,
    RecoverRequest,
    Requeued,
    RestoreRequest,
    ReviewRequest,
    SessionEndRequest,
    SessionStartRequest,
    VerifyRequest,
)
from core.daemon.socket_path import DaemonInfo, read_info, socket_candidates
from core.metrics.models import MetricsSnapshot, Resolution, SeriesPoint
from core.models import (
    ArchivePlan,
    BackupContents,
    BackupInfo,
    CatalogDriftReport,
    CatalogRepairResult,
    Event,
    ExportedCopy,
    JobInfo,
    JobState,
    PhaseStarted,
    SearchHit,
    SearchQuery,
    SessionDetail,
    SessionEnded,
    SessionStarted,
    SessionSummary,
    Status,
    TargetInfo,
    ThawEstimate,
    UsageStats,
)
from core.paths import resolve_workspace
from core.review.view import PhaseReviewDoc, PhaseSummary
from core.setup.models import (
    ConfigPatch,
    CostPreview,
    DetectedSource,
    DriveSignedIn,
    DriveTargetSpec,
    FolderTargetSpec,
    RecoveryKit,
    S3TargetSpec,
    Settings,
    SignInCancelledInfo,
    SignInStarted,
    TargetAdded,
    TargetTestResult,
)

log = logging.getLogger(__name__)

BASE = "http://tierkeeper/v1"
"""The host is never resolved: the connector always dials the socket."""
PROBE_TIMEOUT = 2.0
REQUEST_TIMEOUT = 120.0
SUBSCRIBE_TIMEOUT = 5.0
DROPPED_MARK = b": dropped "

M = TypeVar("M", bound=BaseModel)
UNSETTLED = (JobState.QUEUED, JobState.RUNNING)
"""A wait answered with one of these ran into the daemon's cap: ask again."""


async def connect_daemon(
    workspace: str | Path | None = None, *, socket: Path | None = None
) -> HttpClient | None:
    """A client of the daemon serving `workspace`, or None when none answers.

    A socket file left by a crashed daemon refuses the connection and is ignored."""
    candidates = [socket] if socket is not None else socket_candidates(resolve_workspace(workspace))
    for sock in candidates:
        if await asyncio.to_thread(sock.exists):
            client = await _probe(sock)
            if client is not None:
                return client
    return None


async def _probe(sock: Path) -> HttpClient | None:
    client = HttpClient(sock)
    try:
        async with client._http().get(
            f"{BASE}/status", timeout=aiohttp.ClientTimeout(total=PROBE_TIMEOUT)
        ) as resp:
            ok = resp.status == 200
            await resp.read()
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        log.debug("no daemon on %s: %s", sock, exc)
        ok = False
    if not ok:
        await client.close()
        return None
    client.info = await asyncio.to_thread(read_info, sock)
    return client


class HttpClient:
    def __init__(self, socket: Path) -> None:
        self.socket = socket
        self.info: DaemonInfo | None = None
        """What the daemon wrote beside its socket (its pid), when readable."""
        self._session: aiohttp.ClientSession | None = None
        self._streams: set[EventStream] = set()

    @property
    def pid(self) -> int | None:
        return self.info.pid if self.info is not None else None

    # the Client protocol --------------------------------------------------------------
    async def status(self) -> Status:
        return Status.model_validate(await self._call("GET", "/status"))

    async def list_sessions(self, phase: str | None = None) -> list[SessionSummary]:
        data = await self._call("GET", "/sessions", params={"phase": phase})
        return _many(SessionSummary, data)

    async def session(self, session_id: str, *, messages: bool = True) -> SessionDetail:
        data = await self._call("GET", f"/sessions/{_segment(session_id)}",
                                params={"messages": messages})  # fmt: skip
        return SessionDetail.model_validate(data)

    async def search(self, query: SearchQuery) -> list[SearchHit]:
        return _many(SearchHit, await self._call("POST", "/search", body=query))

    async def start_session(self, agent: str = "human") -> SessionStarted:
        body = SessionStartRequest.model_construct(agent=agent)
        return SessionStarted.model_validate(await self._call("POST", "/sessions/start", body=body))

    async def end_session(
        self,
        session_id: str | None = None,
        *,
        summary: str | None = None,
        open_items: Sequence[str] = (),
    ) -> SessionEnded:
        body = SessionEndRequest.model_construct(
            session_id=session_id, summary=summary, open_items=list(open_items)
        )
        return SessionEnded.model_validate(await self._call("POST", "/sessions/end", body=body))

    async def start_import(self, paths: list[str], fmt: str = "auto") -> JobInfo:
        body = ImportRequest.model_construct(paths=paths, format=fmt)
        return JobInfo.model_validate(await self._call("POST", "/imports", body=body))

    async def jobs(self, *, active_only: bool = False) -> list[JobInfo]:
        data = await self._call("GET", "/jobs", params={"active_only": active_only})
        return _many(JobInfo, data)

    async def cancel_job(self, job_id: int) -> JobInfo:
        return JobInfo.model_validate(await self._call("POST", f"/jobs/{int(job_id)}/cancel"))

    async def pause_job(self, job_id: int) -> JobInfo:
        return JobInfo.model_validate(await self._call("POST", f"/jobs/{int(job_id)}/pause"))

    async def resume_job(self, job_id: int) -> JobInfo:
        return JobInfo.model_validate(await self._call("POST", f"/jobs/{int(job_id)}/resume"))

    async def wait_job(self, job_id: int) -> JobInfo:
        # The daemon answers within its cap even while the job goes on: ask until it settled.
        while True:
            data = await self._call("GET", f"/jobs/{int(job_id)}/wait")
            info = JobInfo.model_validate(data)
            if info.state not in UNSETTLED:
                return info

    async def retry_waiting(self) -> int:
        return Requeued.model_validate(await self._call("POST", "/jobs/retry-waiting")).count

    async def metrics(self) -> MetricsSnapshot:
        return MetricsSnapshot.model_validate(await self._call("GET", "/metrics"))

    async def metrics_series(
        self, op: str, tier: str, since: datetime, resolution: Resolution = "1m"
    ) -> list[SeriesPoint]:
        query = {"op": op, "tier": tier, "since": since.isoformat(), "resolution": resolution}
        data = await self._call("GET", "/metrics/series", params=query)
        return _many(SeriesPoint, data)

    async def targets(self) -> list[TargetInfo]:
        return _many(TargetInfo, await self._call("GET", "/targets"))

    async def backups(
        self, *, session_id: str | None = None, target: str | None = None
    ) -> list[BackupInfo]:
        data = await self._call("GET", "/backups",
                                params={"session_id": session_id, "target": target})  # fmt: skip
        return _many(BackupInfo, data)

    async def start_backup(self, session_ids: list[str], target: str | None = None) -> JobInfo:
        body = BackupRequest.model_construct(session_ids=session_ids, target=target)
        return JobInfo.model_validate(await self._call("POST", "/backups", body=body))

    async def start_restore(
        self, session_id: str, dest: str | None, *, target: str | None = None,
        file: str | None = None, overwrite: bool = False,
    ) -> JobInfo:  # fmt: skip
        body = RestoreRequest.model_construct(session_id=session_id, dest=dest, target=target,
                                              file=file, overwrite=overwrite)  # fmt: skip
        return JobInfo.model_validate(await self._call("POST", "/restores", body=body))

    async def start_verify(self, target: str | None = None, *, deep: bool = False) -> JobInfo:
        body = VerifyRequest.model_construct(target=target, deep=deep)
        return JobInfo.model_validate(await self._call("POST", "/verifications", body=body))

    async def backup_contents(self, target: str | None = None) -> BackupContents:
        data = await self._call("GET", "/backup-contents", params={"target": target})
        return BackupContents.model_validate(data)

    async def start_recover(
        self, targets: Sequence[str] | None = None, *, secret: SecretStr | None = None,
        restore: bool = False, sessions: Sequence[str] | None = None,
    ) -> JobInfo:  # fmt: skip
        body = RecoverRequest.model_construct(
            targets=list(targets) if targets is not None else None, secret=secret,
            restore=restore, sessions=list(sessions) if sessions is not None else None,
        )  # fmt: skip
        data = await self._call("POST", "/recoveries", content=_revealed(body))
        return JobInfo.model_validate(data)

    async def catalog_drift(self, target: str | None = None) -> list[CatalogDriftReport]:
        data = await self._call("GET", "/catalog-drift", params={"target": target})
        return _many(CatalogDriftReport, data)

    async def catalog_repair(self, target: str | None = None) -> CatalogRepairResult:
        body = CatalogRepairRequest.model_construct(target=target)
        data = await self._call("POST", "/catalog-repairs", body=body)
        return CatalogRepairResult.model_validate(data)

    async def phases(self) -> list[PhaseSummary]:
        return _many(PhaseSummary, await self._call("GET", "/phases"))

    async def start_review(self, phase: str, *, html: bool = False) -> JobInfo:
        body = ReviewRequest.model_construct(phase=phase, html=html)
        return JobInfo.model_validate(await self._call("POST", "/reviews", body=body))

    async def start_phase_close(self, phase: str | None = None, *, html: bool = False) -> JobInfo:
        body = PhaseCloseRequest.model_construct(phase=phase, html=html)
        return JobInfo.model_validate(await self._call("POST", "/phase-closes", body=body))

    async def review(self, phase: str) -> PhaseReviewDoc:
        data = await self._call("GET", f"/phases/{_segment(phase)}/review")
        return PhaseReviewDoc.model_validate(data)

    async def review_chart(self, phase: str, name: str) -> bytes:
        path = f"/phases/{_segment(phase)}/review/charts/{_segment(name)}"
        data: bytes = await self._call("GET", path, raw=True)
        return data

    async def config(self) -> Settings:
        return Settings.model_validate(await self._call("GET", "/config"))

    async def update_config(self, patch: ConfigPatch) -> Settings:
        content = patch.model_dump_json(exclude_unset=True).encode("utf-8")
        return Settings.model_validate(await self._call("PATCH", "/config", content=content))

    async def detect_sources(self) -> list[DetectedSource]:
        return _many(DetectedSource, await self._call("GET", "/sources/detected"))

    async def add_target(self, spec: FolderTargetSpec | S3TargetSpec) -> TargetAdded:
        data = await self._call("POST", "/targets", content=_revealed({"spec": spec}))
        return TargetAdded.model_validate(data)

    async def remove_target(self, name: str) -> None:
        await self._call("DELETE", f"/targets/{_segment(name)}")

    async def test_target(
        self, target: str | FolderTargetSpec | S3TargetSpec | None = None
    ) -> TargetTestResult:
        body = {"name": target} if isinstance(target, str) or target is None else {"spec": target}
        data = await self._call("POST", "/targets/test", content=_revealed(body))
        return TargetTestResult.model_validate(data)

    async def recovery_kit(self, name: str) -> RecoveryKit:
        data = await self._call("GET", f"/targets/{_segment(name)}/recovery-kit")
        return RecoveryKit.model_validate(data)

    async def start_drive_sign_in(self, spec: DriveTargetSpec) -> SignInStarted:
        data = await self._call("POST", "/drive-sign-ins", content=_revealed(spec))
        return SignInStarted.model_validate(data)

    async def finish_drive_sign_in(self, flow_id: str) -> DriveSignedIn:
        data = await self._call("GET", f"/drive-sign-ins/{_segment(flow_id)}/wait", timeout=None)
        return DriveSignedIn.model_validate(data)

    async def cancel_drive_sign_in(self, flow_id: str) -> bool:
        data = await self._call("POST", f"/drive-sign-ins/{_segment(flow_id)}/cancel")
        return SignInCancelledInfo.model_validate(data).cancelled

    async def cost_preview(
        self, size_bytes: int, storage_class: str | None = None, tier: str = "Bulk"
    ) -> list[CostPreview]:
        query = {"size_bytes": size_bytes, "storage_class": storage_class, "tier": tier}
        return _many(CostPreview, await self._call("GET", "/costs/preview", params=query))

    async def stats(self, by: str = "model") -> list[dict[str, Any]]:
        data = await self._call("GET", "/stats", params={"by": by})
        return UsageStats.model_validate(data).rows

    async def export(
        self, session_id: str, dest: str, *, file: str | None = None
    ) -> list[ExportedCopy]:
        body = ExportRequest.model_construct(session_id=session_id, dest=dest, file=file)
        return _many(ExportedCopy, await self._call("POST", "/exports", body=body))

    async def phase_new(self, name: str) -> PhaseStarted:
        body = PhaseNewRequest.model_construct(name=name)
        return PhaseStarted.model_validate(await self._call("POST", "/phases", body=body))

    async def archive_plan(
        self, phase: str, *, target: str | None = None, source: str | None = None
    ) -> ArchivePlan:
        query = {"phase": phase, "target": target, "source": source}
        return ArchivePlan.model_validate(await self._call("GET", "/archives/plan", params=query))

    async def start_archive(
        self, phase: str, *, target: str | None = None, source: str | None = None,
        force: bool = False,
    ) -> JobInfo:  # fmt: skip
        body = ArchiveRequest.model_construct(phase=phase, target=target, source=source,
                                              force=force)  # fmt: skip
        return JobInfo.model_validate(await self._call("POST", "/archives", body=body))

    async def archive_restore_estimate(
        self, phase: str, *, target: str | None = None, tier: str = "Bulk"
    ) -> str | None:
        query = {"phase": phase, "target": target, "tier": tier}
        data = await self._call("GET", "/archive-restores/estimate", params=query)
        return ThawEstimate.model_validate(data).estimate

    async def start_archive_restore(
        self, phase: str, dest: str, *, target: str | None = None,
        sessions: list[str] | None = None, reimport: bool = True, tier: str = "Bulk",
        days: int = 7,
    ) -> JobInfo:  # fmt: skip
        body = ArchiveRestoreRequest.model_construct(
            phase=phase, dest=dest, target=target, sessions=sessions, reimport=reimport,
            tier=tier, days=days,
        )  # fmt: skip
        return JobInfo.model_validate(await self._call("POST", "/archive-restores", body=body))

    async def unlock_target(self, name: str, secret: SecretStr) -> None:
        body = UnlockRequest.model_construct(name=name, secret=secret)
        await self._call("POST", "/target-unlocks", content=_revealed(body))

    async def start_drive_reconnect(
        self, name: str, *, open_browser: bool = False
    ) -> SignInStarted:
        body = ReconnectRequest.model_construct(name=name, open_browser=open_browser)
        data = await self._call("POST", "/drive-reconnects", body=body)
        return SignInStarted.model_validate(data)

    def subscribe(self, topics: Sequence[str] | None = None) -> EventStream:
        stream = EventStream(self, topics=topics)
        self._streams.add(stream)
        return stream

    async def close(self) -> None:
        """Closes this client's connections; the daemon keeps running."""
        for stream in list(self._streams):
            await stream.aclose()
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # plumbing ---------------------------------------------------------------------------
    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=str(self.socket)),
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT, sock_connect=PROBE_TIMEOUT),
                json_serialize=lambda d: orjson.dumps(d).decode(),
            )
        return self._session

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: BaseModel | None = None,
        content: bytes | None = None,
        timeout: float | None = REQUEST_TIMEOUT,  # noqa: ASYNC109 - per request, None for long polls
        raw: bool = False,
    ) -> Any:
        """`content`: a JSON body already encoded (one carrying secrets, see `_revealed`);
        `raw`: the answer's bytes as they are (a chart), not JSON."""
        await self._subscriptions_ready()
        query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
        data = body.model_dump_json().encode("utf-8") if body is not None else content
        headers = {"Content-Type": "application/json"} if data is not None else None
        try:
            async with self._http().request(
                method, URL(BASE + path, encoded=True), params=query, data=data, headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=PROBE_TIMEOUT),
            ) as resp:  # fmt: skip
                body_bytes = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise DaemonUnavailableError(
                f"The Tierkeeper daemon on {self.socket} did not answer ({type(exc).__name__})",
                hint="is it still running? `tierkeeper status` says; `tierkeeper daemon` starts it",
            ) from exc
        if status >= 400:
            raise error_from_body(status, body_bytes)
        return body_bytes if raw else orjson.loads(body_bytes)

    async def _subscriptions_ready(self) -> None:
        pending = [f for f in (s.pending for s in self._streams) if f is not None]
        if pending:
            await asyncio.wait(pending, timeout=SUBSCRIBE_TIMEOUT)


class EventStream(AsyncIterator[Event]):
    """The daemon's event stream, buffered like a bus subscription (oldest dropped)."""

    def __init__(
        self, client: HttpClient, maxsize: int = 1000, *, topics: Sequence[str] | None = None
    ) -> None:
        self._client = client
        self._topics = ",".join(topics) if topics else None
        self._maxsize = maxsize
        self._queue: deque[Event] = deque()
        self._wakeup = asyncio.Event()
        self._ended = False
        self.dropped = 0
        self._task: asyncio.Task[None] | None = None
        self.ready: asyncio.Future[None] | None = None
        """Done once the daemon has registered the subscription (or the stream failed)."""
        with contextlib.suppress(RuntimeError):  # no loop yet: starts on the first read
            self._start(asyncio.get_running_loop())

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.ready = loop.create_future()
        self._task = loop.create_task(self._read(), name="tierkeeper-events")

    @property
    def pending(self) -> asyncio.Future[None] | None:
        """The confirmation a call should wait for first, if it has not come yet."""
        return self.ready if self.ready is not None and not self.ready.done() else None

    async def __anext__(self) -> Event:
        if self._task is None and not self._ended:
            self._start(asyncio.get_running_loop())
        while not self._queue:
            if self._ended:
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._queue.popleft()

    async def aclose(self) -> None:
        self._ended = True
        self._queue.clear()
        self._wakeup.set()
        self._client._streams.discard(self)
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _read(self) -> None:
        try:
            async with self._client._http().get(
                f"{BASE}/events",
                params={"topics": self._topics} if self._topics else None,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=2.0),
            ) as resp:
                if resp.status != 200:
                    log.warning("the daemon refused the event stream: HTTP %d", resp.status)
                    return
                await self._parse(resp.content)
        except (aiohttp.ClientError, OSError) as exc:
            log.info("the event stream ended: %s", exc)
        finally:
            self._ended = True
            self._wakeup.set()
            self._confirm()

    async def _parse(self, content: aiohttp.StreamReader) -> None:
        """SSE framing: lines; `data:` lines add up, a blank line ends the event."""
        buffer = b""
        data: list[bytes] = []
        async for chunk in content.iter_any():
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                line = line.removesuffix(b"\r")
                if line.startswith(b":"):
                    self._confirm()
                    if line.startswith(DROPPED_MARK):
                        self._count_dropped(line[len(DROPPED_MARK) :])
                elif line.startswith(b"data:"):
                    data.append(line[5:].removeprefix(b" "))
                elif not line and data:
                    self._deliver(b"\n".join(data))
                    data = []

    def _count_dropped(self, raw: bytes) -> None:
        """The daemon dropped events for this stream (it read too slowly): they count
        as dropped here too, as they would on an in-process subscription."""
        with contextlib.suppress(ValueError):
            self.dropped += int(raw)

    def _confirm(self) -> None:
        if self.ready is not None and not self.ready.done():
            self.ready.set_result(None)

    def _deliver(self, raw: bytes) -> None:
        try:
            event = Event.model_validate_json(raw)
        except ValidationError:
            log.warning("ignoring a malformed event from the daemon")
            return
        if len(self._queue) >= self._maxsize:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(event)
        self._wakeup.set()


def _many(model: type[M], data: Any) -> list[M]:
    return TypeAdapter(list[model]).validate_python(data)  # type: ignore[valid-type]


def _revealed(value: BaseModel | dict[str, Any]) -> bytes:
    """JSON with the secrets in clear: pydantic masks a `SecretStr` when it dumps, which is
    right everywhere but here, where the daemon (behind its owner-only socket) needs it."""

    def plain(obj: Any) -> Any:
        if isinstance(obj, BaseModel):
            return {k: getattr(obj, k) for k in type(obj).model_fields}
        if isinstance(obj, SecretStr):
            return obj.get_secret_value()
        raise TypeError(f"{type(obj).__name__} is not JSON serialisable")

    return orjson.dumps(value, default=plain)


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _segment(value: str) -> str:
    """One path segment, even for ids like ".." that a URL would otherwise resolve away."""
    return quote(value, safe="").replace(".", "%2E")
