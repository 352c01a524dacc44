"""A written review as a client reads it: the report's text, its charts, its metadata.

The GUI never touches files (DESIGN: it asks the service), so the service reads
the review folder and hands over what a page renders; charts go by name, one
request each, so the document arrives at once and the pictures as they load.
Only names the review itself published (`phase_metadata.json` lists them) are
served: a chart name is never a path into the workspace.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, Field

from core.errors import BadInputError, NotFoundError
from core.local import lifecycle
from core.local.db.database import Database
from core.review.layout import CHARTS, HTML, INSIGHTS, METADATA, phase_folder
from core.workspace import Workspace


class PhaseSummary(BaseModel):
    """One phase as a picker lists it."""

    name: str
    status: str = Field(description="open or closed")
    created_at: str | None = None
    closed_at: str | None = None
    sessions: int = 0
    current: bool = False
    reviewed_at: str | None = Field(None, description="when its review was written, if it was")


class PhaseReviewDoc(BaseModel):
    phase: str
    markdown: str = Field(description="phase_insights.md; charts as `charts/<name>` links")
    html: str | None = Field(None, description="phase_insights.html, when it was written")
    html_path: str | None = Field(None, description="where that file is, to open it")
    charts: list[str] = Field(default_factory=list, description="names for `review_chart`")
    metadata: dict[str, Any] = Field(default_factory=dict, description="phase_metadata.json")
    folder: str


def _read_metadata(folder: Path, phase: str) -> dict[str, Any]:
    try:
        data = orjson.loads((folder / METADATA).read_bytes())
    except FileNotFoundError:
        raise NotFoundError(
            f"Phase {phase!r} has no review yet",
            hint=f"write it with `tierkeeper review {phase}` or close the phase",
        ) from None
    except orjson.JSONDecodeError as exc:
        raise BadInputError(f"The review of {phase!r} is damaged ({exc})",
                            hint=f"write it again: tierkeeper review {phase}") from exc  # fmt: skip
    if not isinstance(data, dict):
        raise BadInputError(f"The review of {phase!r} is damaged", hint="write it again")
    return data


def _chart_names(metadata: dict[str, Any]) -> list[str]:
    prefix = f"{CHARTS}/"
    names = []
    for entry in metadata.get("files") or []:
        name = entry.get("name") if isinstance(entry, dict) else None
        if isinstance(name, str) and name.startswith(prefix) and "/" not in name[len(prefix) :]:
            names.append(name[len(prefix) :])
    return names


def _load(ws: Workspace, phase: str) -> PhaseReviewDoc:
    folder = phase_folder(ws, phase)
    metadata = _read_metadata(folder, phase)
    try:
        markdown = (folder / INSIGHTS).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(
            f"The review of {phase!r} has no {INSIGHTS}",
            hint=f"write it again: tierkeeper review {phase}",
        ) from None
    html_file = folder / HTML
    html = html_file.read_text(encoding="utf-8") if html_file.is_file() else None
    return PhaseReviewDoc(
        phase=phase,
        markdown=markdown,
        html=html,
        html_path=str(html_file) if html is not None else None,
        charts=_chart_names(metadata),
        metadata=metadata,
        folder=str(folder),
    )


async def read_review(ws: Workspace, phase: str) -> PhaseReviewDoc:
    lifecycle.validate_phase_name(phase)
    return await asyncio.to_thread(_load, ws, phase)


def _chart(ws: Workspace, phase: str, name: str) -> bytes:
    folder = phase_folder(ws, phase)
    if name not in _chart_names(_read_metadata(folder, phase)):
        raise NotFoundError(f"The review of {phase!r} has no chart {name!r}")
    try:
        return (folder / CHARTS / name).read_bytes()
    except FileNotFoundError:
        raise NotFoundError(
            f"The chart {name!r} of {phase!r} is missing",
            hint=f"write the review again: tierkeeper review {phase}",
        ) from None


async def read_chart(ws: Workspace, phase: str, name: str) -> bytes:
    lifecycle.validate_phase_name(phase)
    return await asyncio.to_thread(_chart, ws, phase, name)


def _reviewed_at(ws: Workspace, phase: str) -> str | None:
    try:
        value = orjson.loads((phase_folder(ws, phase) / METADATA).read_bytes()).get("generated_at")
    except (OSError, orjson.JSONDecodeError, AttributeError, BadInputError):
        return None
    return value if isinstance(value, str) else None


async def list_phases(db: Database, ws: Workspace) -> list[PhaseSummary]:
    """Closed phases first (newest closed first), then open ones, newest first."""
    rows = await lifecycle.phase_list(db, ws)
    out = [
        PhaseSummary(
            name=r["name"],
            status=r["status"],
            created_at=r["created_at"],
            closed_at=r["closed_at"],
            sessions=int(r["sessions"]),
            current=bool(r["current"]),
            reviewed_at=await asyncio.to_thread(_reviewed_at, ws, r["name"]),
        )
        for r in rows
    ]
    closed = sorted((p for p in out if p.status == "closed"),
                    key=lambda p: p.closed_at or "", reverse=True)  # fmt: skip
    open_ = sorted((p for p in out if p.status != "closed"),
                   key=lambda p: p.created_at or "", reverse=True)  # fmt: skip
    return closed + open_
