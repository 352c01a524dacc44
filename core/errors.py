"""Error types that carry the CLI exit code and a message meant for a person.

Every failure a user can meet is one of these, so the CLI can print one clear
line and exit with the documented code instead of a traceback.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    BAD_INPUT = 2
    NEEDS_USER = 3
    PARTIAL = 4


class TierkeeperError(Exception):
    """Base: a failure with a message that says what happened and what to do."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message


class BadInputError(TierkeeperError):
    exit_code = ExitCode.BAD_INPUT


class NotFoundError(BadInputError):
    """A session, phase, job or path the user named does not exist."""


class WorkspaceLockedError(TierkeeperError):
    """Another process owns the workspace."""

    def __init__(self, path: str, pid: int | None) -> None:
        who = f"process {pid}" if pid else "another process"
        super().__init__(
            f"The workspace {path} is in use by {who}",
            hint="close the other Tierkeeper (or stop its daemon) and try again",
        )
        self.pid = pid


class CorruptDatabaseError(TierkeeperError):
    """The analytics DB file is not SQLite or is damaged."""


class StorageFullError(TierkeeperError):
    """The disk filled up; what was stored before stays intact."""


class PartialFailure(TierkeeperError):
    exit_code = ExitCode.PARTIAL


class JobCancelled(TierkeeperError):
    pass


class JobMustWait(TierkeeperError):
    """Raised by a job whose resource is unreachable: the runner parks it (state
    `waiting`) with its checkpoint instead of failing it, and requeues it, in order,
    once a probe of the resource succeeds."""

    def __init__(self, resource: str, reason: str, *, needs_user: bool = False) -> None:
        super().__init__(reason)
        self.resource = resource
        self.needs_user = needs_user
        if needs_user:
            self.exit_code = ExitCode.NEEDS_USER
