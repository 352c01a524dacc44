"""Inputs of the routes that let every CLI command run through the daemon.

Kept apart from `requests.py` (the first routes) only so that the two grow without
stepping on each other; the rules are the same: one model per `Client` method, unknown
fields refused, no limits the service does not have itself (its checks give the same
message on either transport).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


WAIT_CAP = 60.0
"""Longest one `wait` request is held (seconds): a client asks again, so a vanished
client never pins a waiter in the daemon for longer than this."""


class WaitParams(_Strict):
    job_id: int
    timeout: float | None = Field(
        None, gt=0, le=WAIT_CAP,
        description=f"seconds to wait at most (and never more than {WAIT_CAP:g}); the job as "
        "it stands comes back when it has not settled by then",
    )  # fmt: skip


class StatsParams(_Strict):
    by: str = Field("model", description="model, agent, tool, project, session or day")


class ExportRequest(_Strict):
    session_id: str
    dest: str = Field(description="a file (one-file session) or a folder; absolute")
    file: str | None = Field(None, description="only the session's file of this name")


class PhaseNewRequest(_Strict):
    name: str


class ArchivePlanParams(_Strict):
    phase: str
    target: str | None = Field(None, description="null: the only archive target")
    source: str | None = Field(None, description="the backup target it comes from")


class ArchiveRequest(ArchivePlanParams):
    force: bool = Field(False, description="replace a young archive despite the charge")


class ThawParams(_Strict):
    phase: str
    target: str | None = None
    tier: str = "Bulk"


class ArchiveRestoreRequest(_Strict):
    phase: str
    dest: str = Field(description="the folder the phase's files go under; absolute")
    target: str | None = None
    sessions: list[str] | None = Field(None, description="null: every session of the phase")
    reimport: bool = True
    tier: str = "Bulk"
    days: int = 7


class UnlockRequest(_Strict):
    name: str = Field(description="the encrypted target")
    secret: SecretStr = Field(description="the passphrase or the recovery code")


class ReconnectRequest(_Strict):
    name: str = Field(description="the saved Drive target")
    open_browser: bool = Field(False, description="the service opens the address itself")
    sign_in_timeout: float = Field(300.0, ge=1, le=3600, description="seconds in the browser")
