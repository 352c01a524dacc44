"""The read-through cache across tiers: memory, then the local disk, then the remote store.

Wrappers around the one small Store protocol (`CachingStore`) and around the
service's analytics queries (`QueryCache`); both are sized in bytes and entries,
both count hits, misses and evictions per layer into the metrics registry.
"""

from __future__ import annotations
