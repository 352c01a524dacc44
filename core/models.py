"""Typed shapes that cross the client boundary (GUI, CLI, daemon API).

Pydantic so the daemon can serialise them and publish an OpenAPI document from
the same definitions the in-process client returns.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class SessionSummary(BaseModel):
    id: str
    source: str
    source_id: str | None = None
    parent_id: str | None = None
    project: str | None = None
    agent: str | None = None
    phase: str | None = None
    title: str | None = None
    model: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    message_count: int = 0
    is_subagent: bool = False
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: float = 0.0
    raw_bytes: int = 0
    in_backup_only: bool = Field(
        False, description="known from a backup's catalog (a rebuild); its files are not here"
    )


class MessageView(BaseModel):
    id: int
    seq: int
    type: str | None
    role: str | None
    ts: str | None
    model: str | None = None
    text: str | None
    tools: str | None
    parse_error: str | None = None


class SessionDetail(BaseModel):
    session: SessionSummary
    sources: list[SourceInfo]
    messages: list[MessageView] = Field(default_factory=list)


class SourceInfo(BaseModel):
    path: str
    format: str
    role: str
    size: int
    lines_read: int
    rows_stored: int
    bad_lines: int
    sha256: str | None


class SearchQuery(BaseModel):
    text: str
    limit: int = Field(20, ge=1, le=1000)
    project: str | None = None
    session: str | None = None
    agent: str | None = None
    role: str | None = None
    tool: str | None = None
    since: str | None = Field(None, description="ISO date or datetime, inclusive")
    until: str | None = Field(None, description="ISO date or datetime, exclusive")


HIT_START = "\x02"
HIT_END = "\x03"
"""Marks around each match in a search snippet: control characters never found in
transcript text, unlike brackets, so a client can highlight without guessing."""


class SearchHit(BaseModel):
    message_id: int
    session_id: str
    project: str | None
    role: str | None
    ts: str | None
    snippet: str = Field(description="text with each match between HIT_START and HIT_END")
    rank: float


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"
    """Parked until something outside comes back: a target that is offline, a sign-in."""
    PAUSED = "paused"
    """Parked until the user resumes it; keeps its checkpoint and its place in the queue."""
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class JobInfo(BaseModel):
    id: int
    kind: str
    title: str
    state: JobState
    steps_total: int | None = None
    steps_done: int = 0
    items_total: int | None = None
    items_done: int = 0
    bytes_total: int | None = None
    bytes_done: int = 0
    rate: float | None = Field(None, description="bytes (or items) per second")
    eta_seconds: float | None = None
    error: str | None = None
    result: dict[str, Any] | None = None
    resource: str | None = Field(None, description="what the job needs, e.g. 'target:nas'")
    wait_reason: str | None = None
    needs_user: bool = Field(False, description="waiting for the user (sign in), not a network")
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None


class ImportReport(BaseModel):
    files_seen: int = 0
    files_skipped: int = 0
    files_imported: int = 0
    files_rewritten: int = 0
    files_failed: int = 0
    lines_read: int = 0
    rows_stored: int = 0
    bad_lines: int = 0
    bytes_read: int = 0
    sessions: int = 0
    errors: list[str] = Field(default_factory=list)


class SessionStarted(BaseModel):
    session: str


class SessionEnded(BaseModel):
    """`session end`: the note written, the session's files imported, its backup started."""

    session: str
    handoff: str = Field(description="path of the handoff note")
    imported: ImportReport
    backup: JobInfo | None = Field(
        None, description="the backup job started for it; null when none is set up or wanted"
    )


class Status(BaseModel):
    workspace: str
    version: str
    sessions: int
    messages: int
    db_bytes: int
    current_phase: str | None
    jobs_running: int
    jobs_queued: int
    last_import: datetime | None = None
    db_state: str = Field(
        "ok",
        description="ok; new: the DB was created empty at this start; set-aside: a "
        "damaged DB was moved aside (db_set_aside) and an empty one started",
    )
    db_set_aside: str | None = None


class TargetInfo(BaseModel):
    """A Tier 2 target as the GUI's tier card shows it."""

    name: str
    kind: str
    where: str
    encrypted: bool = False
    sessions: int = Field(0, description="sessions with at least one backup here")
    stored_bytes: int = Field(0, description="bytes of the newest backup of each session")
    last_backup_at: str | None = None
    last_verified_at: str | None = None
    verify_failures: int = Field(0, description="sessions whose newest backup failed a verify")
    waiting_jobs: int = 0
    needs_user: bool = Field(False, description="a job waits for a sign-in or a key")
    wait_reason: str | None = None


class BackupInfo(BaseModel):
    """One backup of one session on one target (a row of the history)."""

    id: int
    session_id: str
    target: str
    phase: str | None = None
    raw_bytes: int
    stored_bytes: int
    created_at: str
    verified_at: str | None = None
    verify_status: str | None = None
    verify_error: str | None = None


class PhaseHeld(BaseModel):
    name: str
    status: str | None = Field(None, description="open or closed, as the index last said")
    sessions: int = 0


class CatalogDriftReport(BaseModel):
    """One target's records compared with the local DB (`verify --catalog`): nothing
    is changed by asking."""

    target: str
    missing_remotely: list[str] = Field(default_factory=list)
    """Sessions (or archived phases) the DB says are there, that the target lacks."""
    unknown_locally: list[str] = Field(default_factory=list)
    """What the target holds that the DB does not know."""
    differs: list[str] = Field(default_factory=list)
    """A manifest on the target other than the one the DB recorded."""
    clean: bool


class CatalogRepairResult(BaseModel):
    """What `catalog repair` changed in the local DB (never anything on a target)."""

    added: int
    marked_missing: int
    problems: list[str] = Field(default_factory=list)


class BackupContents(BaseModel):
    """What a target holds, read from its listing and index (no data): what a rebuild
    would bring, shown before it runs."""

    target: str
    index: str = Field(description="ok, missing, or why it could not be read")
    encrypted: bool = False
    unlocked: bool = Field(False, description="its key is on this computer already")
    sessions: int = Field(0, description="sessions with a backup on the target")
    known_here: int = Field(0, description="of those, sessions this workspace knows already")
    phases: list[PhaseHeld] = Field(default_factory=list)
    archived_phases: list[str] = Field(default_factory=list, description="Tier 3 archives")
    current_phase: str | None = None
    written_at: str | None = Field(None, description="when the index was last written")
    written_by: str | None = Field(None, description="the Tierkeeper version that wrote it")


class Event(BaseModel):
    """What the event bus carries to subscribers (job progress, changes)."""

    topic: str
    data: dict[str, Any] = Field(default_factory=dict)


class UsageStats(BaseModel):
    """`stats`: one row per model, agent, tool, … (the columns depend on `by`)."""

    by: str
    rows: list[dict[str, Any]]


class ExportedCopy(BaseModel):
    """One file an export wrote, checked against the hash taken at import."""

    source_path: str
    written_to: str
    size: int
    sha256: str
    matches_source: bool = Field(description="false: secrets were redacted on import")
    redacted_lines: int


class PhaseStarted(BaseModel):
    name: str
    started_at: str


class ArchivePlan(BaseModel):
    """What archiving a phase will store and cost, before it starts."""

    phase: str
    target: str
    source: str = Field(description="the backup target the phase comes from")
    sessions: int
    tier2_bytes: int
    overwrite_charge: float = Field(description="billed for replacing a young archive")
    estimate: str | None = Field(None, description="the cost, said for a person (S3 only)")
    overwrite: str | None = Field(None, description="what replacing the archive throws away")


class ThawEstimate(BaseModel):
    estimate: str | None = Field(None, description="null: nothing is billed, or unknown")


class TargetUnlocked(BaseModel):
    name: str


SessionDetail.model_rebuild()
