"""Live metrics: latency per operation and tier, cache hits, ratios, queue depth."""

from __future__ import annotations
