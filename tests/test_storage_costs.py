"""Storage cost estimates: the shipped table, a user's own, and the early-deletion charge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.errors import BadInputError
from core.tier3.costs import GB, StoragePrices


def test_deep_archive_estimates_name_the_price_and_the_minimum_time() -> None:
    prices = StoragePrices.load()
    text = prices.archive_estimate(100 * GB, "DEEP_ARCHIVE")
    assert "$0.10 a month" in text and "180 days" in text  # 100 GB × $0.00099
    assert "$0.25" in prices.restore_estimate(100 * GB, "DEEP_ARCHIVE", "Bulk")


def test_deleting_early_costs_the_rest_of_the_minimum_time() -> None:
    prices = StoragePrices.load()
    young = prices.early_deletion(1000 * GB, "DEEP_ARCHIVE", datetime.now(UTC) - timedelta(30))
    assert young == pytest.approx(1000 * 0.00099 * 150 / 30, rel=0.01)
    old = prices.early_deletion(1000 * GB, "DEEP_ARCHIVE", datetime.now(UTC) - timedelta(200))
    assert old == 0.0


def test_a_user_table_overrides_and_a_broken_one_is_a_clear_error(tmp_path: Path) -> None:
    mine = tmp_path / "prices.toml"
    mine.write_text("[class.DEEP_ARCHIVE]\nstorage = 0.002\nput = 0.05\nmin_days = 180\n")
    assert "$0.20 a month" in StoragePrices.load(mine).archive_estimate(100 * GB, "DEEP_ARCHIVE")
    mine.write_text("[class.DEEP_ARCHIVE]\nstorage = 'cheap'\n")
    with pytest.raises(BadInputError, match="not valid"):
        StoragePrices.load(mine)
    with pytest.raises(BadInputError, match="No prices"):
        StoragePrices.load().of("MOON_ARCHIVE")
