"""What a desktop notification says about a job: whether to speak, and the next step.

Qt-free so the wording can be tested on plain `JobInfo` values. A notification
is for what happened while the user looked elsewhere; so a job that ends well
speaks only when the window is not in front, while a failure, a job that needs
the user, and sessions back from the archive always speak.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from core.models import JobInfo, JobState
from gui.job_summary import problems, summary

_NAMES = {
    "backup": "Backup",
    "verify": "Verify",
    "restore": "Restore",
    "import": "Import",
    "archive": "Archive",
    "archive-restore": "Restore from the archive",
}


class Level(Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Notice:
    title: str
    body: str
    level: Level
    always: bool
    """Also when the window is in front (the user must act, or waited hours for it)."""


def _name(job: JobInfo) -> str:
    return _NAMES.get(job.kind, job.kind.replace("-", " ").capitalize())


def notice_for(topic: str, job: JobInfo, before: JobState | None) -> Notice | None:
    """The notice for one job event, given the state the window knew before; None: stay quiet.

    Progress and queueing never notify; a waiting job notifies once, when it
    starts to wait; a cancelled job does not (the user did it).
    """
    name = _name(job)
    if topic == "job.waiting" and before != JobState.WAITING:
        reason = job.wait_reason or "its target is not reachable"
        if job.needs_user:
            return Notice(f"{name} needs you", reason, Level.WARNING, always=True)
        if job.resource and job.resource.startswith("thaw:"):
            body = f"{reason}. It continues by itself once the archive is readable."
            return Notice(f"{name} is waiting for the archive", body, Level.INFO, always=False)
        body = f"{reason}. It stays queued and continues when the target answers."
        return Notice(f"{name} is waiting", body, Level.WARNING, always=False)
    if topic == "job.started" and before == JobState.WAITING and job.kind == "archive-restore":
        return Notice(
            "The archive is readable",
            f"{job.title}: downloading now.",
            Level.INFO,
            always=True,
        )
    if topic != "job.finished":
        return None
    if job.state == JobState.FAILED:
        body = f"{summary(job)}\nOpen History for the job's log, or try again from the Dashboard."
        return Notice(f"{name} failed", body, Level.ERROR, always=True)
    if job.state != JobState.DONE:
        return None
    trouble = problems(job)
    if trouble:
        body = f"{summary(job)}\n{trouble[0]}" + (
            f" (and {len(trouble) - 1} more — see History)" if len(trouble) > 1 else ""
        )
        return Notice(f"{name} finished with problems", body, Level.WARNING, always=True)
    back_from_cold = job.kind == "archive-restore"
    return Notice(f"{name} finished", summary(job) or job.title, Level.INFO, always=back_from_cold)
