"""A snapshot in Prometheus' text exposition format (version 0.0.4), for the daemon to serve.

Latencies are a summary: the quantiles cover the snapshot's recent window (as a
Prometheus client's sliding-window summary does) while `_sum` and `_count` are
totals since start, so `rate()` over them works in PromQL as usual.
"""

from __future__ import annotations

import math

from core.metrics.models import MetricsSnapshot

PREFIX = "tierkeeper_"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _value(value: float | int | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NaN"
    if isinstance(value, float) and math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


class _Out:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {PREFIX}{name} {help_text}")
        self.lines.append(f"# TYPE {PREFIX}{name} {kind}")

    def sample(self, name: str, value: float | int | None, **labels: str) -> None:
        self.lines.append(f"{PREFIX}{name}{_labels(**labels)} {_value(value)}")


def prometheus_text(snapshot: MetricsSnapshot) -> str:
    out = _Out()
    out.family("uptime_seconds", "gauge", "Seconds since the service started.")
    out.sample("uptime_seconds", snapshot.uptime_s)
    if snapshot.ops:
        out.family(
            "op_seconds",
            "summary",
            "Latency of store calls and DB queries; quantiles over the recent window.",
        )
        for op in snapshot.ops:
            for q, v in (("0.5", op.p50), ("0.95", op.p95), ("0.99", op.p99)):
                out.sample("op_seconds", v, op=op.op, tier=op.tier, quantile=q)
            out.sample("op_seconds_sum", op.sum_s, op=op.op, tier=op.tier)
            out.sample("op_seconds_count", op.count, op=op.op, tier=op.tier)
        out.family("op_errors_total", "counter", "Operations that failed.")
        for op in snapshot.ops:
            out.sample("op_errors_total", op.errors, op=op.op, tier=op.tier)
        out.family("op_bytes_total", "counter", "Bytes moved by operations.")
        for op in snapshot.ops:
            out.sample("op_bytes_total", op.bytes, op=op.op, tier=op.tier)
    if snapshot.cache:
        out.family("cache_hits_total", "counter", "Cache lookups answered by the layer.")
        for c in snapshot.cache:
            out.sample("cache_hits_total", c.hits, layer=c.layer)
        out.family("cache_misses_total", "counter", "Cache lookups the layer could not answer.")
        for c in snapshot.cache:
            out.sample("cache_misses_total", c.misses, layer=c.layer)
        out.family("cache_evictions_total", "counter", "Entries pushed out by the size bounds.")
        for c in snapshot.cache:
            out.sample("cache_evictions_total", c.evictions, layer=c.layer)
        out.family("cache_bytes", "gauge", "Bytes the layer holds.")
        for c in snapshot.cache:
            out.sample("cache_bytes", c.bytes, layer=c.layer)
    if snapshot.ratios:
        out.family("compression_ratio", "gauge", "Raw bytes per stored byte, per artifact kind.")
        for r in snapshot.ratios:
            out.sample("compression_ratio", r.ratio, kind=r.kind)
    out.family("jobs", "gauge", "Jobs in the queue by state.")
    for state in ("queued", "running", "waiting"):
        out.sample("jobs", getattr(snapshot.queue, state), state=state)
    return "\n".join(out.lines) + "\n"
