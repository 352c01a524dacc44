"""Percentiles over exact samples, by one stated definition.

Linear interpolation between closest ranks (numpy's default, Excel's
PERCENTILE.INC): a reader can reproduce every figure of the report with
`numpy.percentile` or a spreadsheet, which nearest-rank would not give them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """`p` in [0, 100] over values already sorted ascending; None when there are none."""
    if not sorted_values:
        return None
    if not 0.0 <= p <= 100.0:
        raise ValueError("p must be within [0, 100]")
    pos = (len(sorted_values) - 1) * p / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    low, high = sorted_values[lo], sorted_values[hi]
    return low + (high - low) * (pos - lo)
