"""Durable, resumable, cancellable background work (see runner.py for the design)."""

from __future__ import annotations

from core.jobs.context import JobContext
from core.jobs.progress import JobMeter, RateEstimator
from core.jobs.runner import JobFunc, JobRunner

__all__ = ["JobContext", "JobFunc", "JobMeter", "JobRunner", "RateEstimator"]
