"""A finished job in one line: its mark, what it did, how long it took.

Qt-free so the wording can be tested on plain `JobInfo` values. Results are
the dicts the core's jobs return (see `core/service.py`); a key that is
missing only shortens the line, since a job from an older version may lack it.
"""

from __future__ import annotations

from typing import Any

from core.models import JobInfo, JobState
from gui.format import human_size, parse_ts, plural

MARKS = {JobState.DONE: "✓", JobState.FAILED: "✗", JobState.CANCELLED: "⊘"}


PARTIAL = "!"
"""Done, but some parts failed (a session not backed up, a backup failing its verify)."""


def mark(job: JobInfo) -> str:
    if job.state == JobState.DONE and problems(job):
        return PARTIAL
    return MARKS.get(job.state, "…")


def duration(job: JobInfo) -> float | None:
    start, end = parse_ts(job.started_at), parse_ts(job.finished_at)
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def _count(value: Any) -> int:
    if isinstance(value, list):
        return len(value)
    return int(value) if isinstance(value, int | float) else 0


def _sizes(r: dict[str, Any]) -> str | None:
    raw, stored = r.get("raw_bytes"), r.get("stored_bytes")
    if not isinstance(raw, int) or not isinstance(stored, int) or not raw:
        return None
    return f"{human_size(raw)} → {human_size(stored)}"


def summary(job: JobInfo) -> str:
    """ "73 sessions · 6.1 MB → 2.0 MB", "3 files restored", or why it did not finish."""
    if job.state == JobState.CANCELLED:
        return "cancelled"
    if job.state == JobState.FAILED:
        return job.error or "failed"
    r = job.result or {}
    parts: list[str | None] = []
    if job.kind == "backup":
        parts = [plural(_count(r.get("sessions")), "session"), _sizes(r)]
        if _count(r.get("failed")):
            parts.append(f"{_count(r.get('failed'))} failed")
    elif job.kind == "import":
        imported = _count(r.get("files_imported")) + _count(r.get("files_rewritten"))
        parts = [
            plural(imported, "file") + " imported" if imported else "nothing new",
            f"{_count(r.get('files_skipped'))} unchanged" if r.get("files_skipped") else None,
            f"{_count(r.get('files_failed'))} failed" if r.get("files_failed") else None,
        ]
    elif job.kind == "restore":
        parts = [plural(_count(r.get("written")), "file") + " restored"]
    elif job.kind == "verify":
        failed = _count(r.get("failed"))
        parts = [f"{_count(r.get('verified'))} verified", f"{failed} failed" if failed else None]
    return " · ".join(p for p in parts if p)


def problems(job: JobInfo) -> list[str]:
    """What went wrong inside a job that still finished (a session that failed, say)."""
    if job.state != JobState.DONE or not job.result:
        return []
    failed = job.result.get("failed")
    if not isinstance(failed, list):
        return []
    out = []
    for item in failed:
        if isinstance(item, dict):  # verify: {"session": …, "problems": […]}
            out.append(f"{item.get('session')}: {'; '.join(map(str, item.get('problems', [])))}")
        else:
            out.append(str(item))
    return out
