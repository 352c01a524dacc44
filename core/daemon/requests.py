"""The shapes of what a caller sends: bodies of the POST routes, and path/query parameters.

Each mirrors the arguments of one `Client` method, so the HTTP client builds them from
the same names and the daemon validates them before the service sees anything. Unknown
fields are refused: a misspelt option must fail loudly, not be ignored. They add no
limits of their own: the service's checks give the same message on either transport.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImportRequest(_Strict):
    paths: list[str] = Field(description="folders or files of agent history")
    format: str = "auto"


class SessionStartRequest(_Strict):
    agent: str = Field("human", description="who works in this session")


class SessionEndRequest(_Strict):
    session_id: str | None = Field(None, description="null: the session in progress")
    summary: str | None = None
    open_items: list[str] = Field(default_factory=list)


class BackupRequest(_Strict):
    session_ids: list[str] = Field(default_factory=list, description="empty: every session")
    target: str | None = None


class RestoreRequest(_Strict):
    session_id: str
    dest: str | None
    """None: each file back where it came from."""
    target: str | None = None
    file: str | None = None
    overwrite: bool = False


class VerifyRequest(_Strict):
    target: str | None = None
    deep: bool = False


class RecoverRequest(_Strict):
    targets: list[str] | None = Field(None, description="null: every target")
    secret: SecretStr | None = Field(
        None, description="an encrypted target's passphrase or recovery code; never stored"
    )
    restore: bool = False
    sessions: list[str] | None = Field(None, description="with restore: only these")


class ContentsParams(_Strict):
    target: str | None = Field(None, description="null: the only target")


class CatalogRepairRequest(_Strict):
    target: str | None = Field(None, description="null: every target")


class SessionsParams(_Strict):
    phase: str | None = None


class SessionParams(_Strict):
    session_id: str
    messages: bool = True


class JobsParams(_Strict):
    active_only: bool = False


class JobParams(_Strict):
    job_id: int


class BackupsParams(_Strict):
    session_id: str | None = None
    target: str | None = None


class EventsParams(_Strict):
    topics: str | None = None
    """Comma-separated topics or families ("job.,metrics"); all events when absent."""


class SeriesParams(_Strict):
    op: str
    tier: str
    since: datetime
    resolution: Literal["1s", "1m", "1h"] = "1m"


class Requeued(BaseModel):
    """How many waiting jobs went back to the queue."""

    count: int


class ReviewRequest(_Strict):
    phase: str
    html: bool = False


class PhaseCloseRequest(_Strict):
    phase: str | None = Field(None, description="null: the current phase")
    html: bool = False


class PhaseParams(_Strict):
    phase: str


class ChartParams(_Strict):
    phase: str
    name: str
