"""Tier 3 prices as numbers, for a wizard that compares storage classes before choosing.

The same price table as the archive's own estimates (`core.tier3.costs`), so what the
wizard promised and what `archive` later warns about agree.
"""

from __future__ import annotations

from core.errors import BadInputError
from core.setup.models import CostParams, CostPreview
from core.tier3.costs import GB, StoragePrices

ARCHIVE_OBJECTS = 2
"""An archived phase is one tarball and one manifest."""
TIERS = ("Bulk", "Standard", "Expedited")


def previews(prices_file: str | None, params: CostParams) -> list[CostPreview]:
    """Blocking (it reads the price table)."""
    if params.size_bytes < 0:
        raise BadInputError("A size cannot be negative", hint="give it in bytes")
    if params.tier not in TIERS:
        raise BadInputError(f"No thaw tier {params.tier!r}", hint="Bulk, Standard or Expedited")
    prices = StoragePrices.load(prices_file)
    classes = [params.storage_class] if params.storage_class else list(prices.classes)
    return [_preview(prices, name, params) for name in classes]


def _preview(prices: StoragePrices, storage_class: str, params: CostParams) -> CostPreview:
    p = prices.of(storage_class)
    size = params.size_bytes
    monthly = size / GB * p.storage
    tier: str | None = None
    retrieval: float | None = None
    if p.retrieval:
        tier = params.tier if params.tier in p.retrieval else "Standard"
        per_gb, per_1000 = p.retrieval.get(tier, (0.0, 0.0))
        retrieval = round(size / GB * per_gb + per_1000 / 1000, 4)
    summary = prices.archive_estimate(size, storage_class, ARCHIVE_OBJECTS)
    if p.retrieval:
        summary += "; " + prices.restore_estimate(size, storage_class, params.tier)
    return CostPreview(
        storage_class=storage_class,
        size_bytes=size,
        monthly_usd=round(monthly, 4),
        upload_usd=round(ARCHIVE_OBJECTS * p.put / 1000, 6),
        min_days=p.min_days,
        minimum_charge_usd=round(monthly * p.min_days / 30, 4),
        retrieval_tier=tier,
        retrieval_usd=retrieval,
        summary=summary,
    )
