"""What crosses the client boundary about metrics: a live snapshot and stored series.

Latencies are in seconds. Totals count since the service started; percentiles
and rates cover the recent window (`window_s`), which is what a live graph draws.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Resolution = Literal["1s", "1m", "1h"]


class OpMetrics(BaseModel):
    op: str = Field(description="put, get, stat, list, delete, db.read, db.tx, …")
    tier: str = Field(description="local, folder, drive, s3")
    count: int = Field(description="operations since the service started")
    errors: int
    bytes: int
    sum_s: float = Field(description="total time spent in them")
    p50: float | None = Field(None, description="over the recent window")
    p95: float | None = None
    p99: float | None = None
    ops_per_s: float = 0.0
    bytes_per_s: float = 0.0
    errors_per_s: float = 0.0


class CacheMetrics(BaseModel):
    layer: str
    hits: int
    misses: int
    hit_rate: float | None = Field(None, description="hits / lookups since start")
    lookups_per_s: float = 0.0
    evictions: int = Field(0, description="entries pushed out by the size bounds since start")
    bytes: int = Field(0, description="what the layer holds now")


class RatioMetrics(BaseModel):
    kind: str = Field(description="the artifact kind the caller reported")
    raw_bytes: int
    stored_bytes: int
    ratio: float | None = Field(None, description="raw / stored: 4.0 means a quarter the size")


class QueueMetrics(BaseModel):
    queued: int = 0
    running: int = 0
    waiting: int = 0


class MetricsSnapshot(BaseModel):
    ts: datetime
    uptime_s: float
    window_s: float
    ops: list[OpMetrics] = Field(default_factory=list)
    cache: list[CacheMetrics] = Field(default_factory=list)
    ratios: list[RatioMetrics] = Field(default_factory=list)
    queue: QueueMetrics = Field(default_factory=QueueMetrics)


class SeriesPoint(BaseModel):
    ts: datetime = Field(description="start of the second, minute or hour it covers")
    count: int
    errors: int
    bytes: int
    mean: float | None = None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
