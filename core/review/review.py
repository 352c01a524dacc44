"""The end-of-phase review: slice, figures, advice, charts, report, metadata.

Everything is computed from the phase's slice, which is written first, so
the numbers in the report are the ones anyone gets by querying the uploaded
`phase_analytics.db`. All files are built in a staging folder beside their
final place and then renamed in, charts first and `phase_metadata.json` last:
a crash leaves either the previous review or the new one's files with a
metadata file that vouches for them (a half-written report is never there).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from core import __version__
from core.errors import NotFoundError
from core.local.db.database import Database
from core.local.lifecycle import validate_phase_name
from core.local.pricing import PriceTable
from core.review import charts as chart_mod
from core.review import document, metadata, queries, render_html, render_md, rules
from core.review.layout import ANALYTICS, HTML, INSIGHTS, METADATA, phase_folder
from core.review.models import CacheRate, PhaseReview
from core.review.slice import write_slice
from core.workspace import Workspace

CHARTS = render_md.CHARTS_DIR
STEPS = 5

Progress = Callable[[int, int, str], None]
"""(steps done, steps total, what is being done)."""


@dataclass(slots=True)
class ReviewOutput:
    folder: Path
    review: PhaseReview
    files: list[Path] = field(default_factory=list)


async def check_phase(db: Database, phase: str) -> None:
    validate_phase_name(phase)
    known = await db.scalar(
        "SELECT EXISTS (SELECT 1 FROM phases WHERE name = ?) "
        "OR EXISTS (SELECT 1 FROM sessions WHERE phase = ?)",
        (phase, phase),
    )
    if not known:
        raise NotFoundError(f"No phase {phase!r}", hint="`tierkeeper phase list` shows them")


async def run_review(
    db: Database,
    ws: Workspace,
    phase: str,
    prices: PriceTable,
    *,
    html: bool = False,
    live_cache: list[CacheRate] | None = None,
    progress: Progress | None = None,
) -> ReviewOutput:
    import asyncio

    await check_phase(db, phase)
    return await asyncio.to_thread(
        write_review,
        db.path,
        phase_folder(ws, phase),
        phase,
        prices,
        html=html,
        live_cache=live_cache,
        progress=progress,
    )


def compute(
    conn: sqlite3.Connection,
    phase: str,
    prices: PriceTable,
    live_cache: list[CacheRate] | None = None,
) -> tuple[PhaseReview, list[float]]:
    """Every figure from a slice connection, plus the latency chart's samples."""
    review = PhaseReview(
        overview=queries.overview(conn, phase, prices),
        latency=[
            *queries.tool_latency(conn),
            *queries.agent_latency(conn),
            *queries.operation_latency(conn),
        ],
        slowest_calls=queries.slowest_calls(conn),
        slowest_sessions=queries.slowest_sessions(conn),
        errors=queries.top_errors(conn),
        tools=queries.tool_usage(conn),
        agents=queries.agent_performance(conn, prices),
        cost_by_model=queries.cost_by(conn, prices, "model"),
        cost_by_agent=queries.cost_by(conn, prices, "agent"),
        cost_by_session=queries.cost_by(conn, prices, "session"),
        cost_by_day=queries.cost_by(conn, prices, "day"),
        storage=queries.storage(conn),
        cache=[*queries.prompt_cache(conn), *(live_cache or [])],
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        tool_version=__version__,
    )
    review.recommendations = rules.recommend(review)
    return review, queries.tool_durations(conn)


def open_slice(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def write_review(
    db_path: Path,
    folder: Path,
    phase: str,
    prices: PriceTable,
    *,
    html: bool = False,
    live_cache: list[CacheRate] | None = None,
    progress: Progress | None = None,
) -> ReviewOutput:
    def step(n: int, what: str) -> None:
        if progress is not None:
            progress(n, STEPS, what)

    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / f".review-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        step(0, "copying the phase's rows")
        slice_rows = write_slice(db_path, phase, staging / ANALYTICS)
        step(1, "computing the figures")
        conn = open_slice(staging / ANALYTICS)
        try:
            review, durations = compute(conn, phase, prices, live_cache)
            session_rows = metadata.sessions(conn)
        finally:
            conn.close()
        step(2, "drawing the charts")
        pngs = chart_mod.draw_all(review, durations)
        (staging / CHARTS).mkdir()
        for name, png in pngs.items():
            _write(staging / CHARTS / name, png)
        step(3, "writing the report")
        title, sections = document.build(review, set(pngs))
        _write(staging / INSIGHTS, render_md.render(title, sections).encode("utf-8"))
        if html:
            _write(staging / HTML, render_html.render(title, sections, pngs).encode("utf-8"))
        step(4, "publishing")
        names = [f"{CHARTS}/{n}" for n in sorted(pngs)] + [ANALYTICS, INSIGHTS]
        names += [HTML] if html else []
        entries = [metadata.file_entry(staging / n, n) for n in names]
        _write(staging / METADATA, metadata.build(review, session_rows, slice_rows, entries))
        files = _publish(staging, folder, [*names, METADATA], stale_html=not html)
        step(5, "done")
        return ReviewOutput(folder=folder, review=review, files=files)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _publish(staging: Path, folder: Path, names: list[str], *, stale_html: bool) -> list[Path]:
    """Renames the staged files in, in order (metadata last); drops charts and an HTML
    export the new review no longer has, so nothing in the folder contradicts it."""
    charts = folder / CHARTS
    charts.mkdir(exist_ok=True)
    keep = {n.split("/", 1)[1] for n in names if n.startswith(f"{CHARTS}/")}
    for old in charts.iterdir():
        if old.name not in keep:
            old.unlink(missing_ok=True)
    if stale_html:
        (folder / HTML).unlink(missing_ok=True)
    out = []
    for name in names:
        dest = folder / name
        (staging / name).replace(dest)
        out.append(dest)
    _fsync_dir(charts)
    _fsync_dir(folder)
    return out


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
