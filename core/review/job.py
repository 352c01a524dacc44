"""The `review` job: the review with progress, cancellable between its steps.

The review is rebuilt whole on each run (it only reads the DB and replaces its
own files), so a job interrupted by a crash simply runs again from the start:
there is no checkpoint to keep.
"""

from __future__ import annotations

from typing import Any

from core.jobs import JobContext
from core.local.db.database import Database
from core.local.pricing import PriceTable
from core.metrics.registry import Metrics
from core.review.models import CacheRate
from core.review.review import run_review
from core.workspace import Workspace


def live_cache_rates(metrics: Metrics) -> list[CacheRate]:
    """The storage caches' hit rates. They are not persisted per phase, so the report
    says what they count: lookups since the service started."""
    return [
        CacheRate(name=f"{c.layer} cache", basis="lookups since the service started",
                  hits=c.hits, lookups=c.hits + c.misses, hit_rate=c.hit_rate)
        for c in metrics.snapshot().cache
        if c.hits + c.misses
    ]  # fmt: skip


async def review_job(
    ctx: JobContext, db: Database, ws: Workspace, prices: PriceTable, metrics: Metrics
) -> dict[str, Any]:
    phase = str(ctx.params["phase"])

    def progress(done: int, total: int, what: str) -> None:
        ctx.check_cancelled()  # runs in the worker thread: stops before the next step
        ctx.progress(steps_done=done, steps_total=total, message=what)

    out = await run_review(
        db, ws, phase, prices, html=bool(ctx.params.get("html")),
        live_cache=live_cache_rates(metrics), progress=progress,
    )  # fmt: skip
    return {
        "phase": phase,
        "folder": str(out.folder),
        "files": [str(p) for p in out.files],
        "recommendations": len(out.review.recommendations),
        "overview": out.review.overview.model_dump(mode="json"),
    }
