"""The numbers above the Performance graphs: cache hit rates, compression, the queue.

These are totals since the service started rather than curves, so each is one
large figure with a line saying what it counts. The snapshot is read
defensively by field name: a daemon older than this window may not send cache
counters or ratios yet, and the row then says so rather than showing zeros.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from core.client import CacheMetrics, MetricsSnapshot, OpMetrics, RatioMetrics
from gui.format import human_count, human_size, plural
from gui.metric_series import human_latency, op_label, percent
from gui.palette import set_muted

NO_CACHE = "No cache activity yet"


class Figure(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("figure")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.value = QLabel(self)
        font = QFont(self.value.font())
        font.setPointSizeF(font.pointSizeF() * 1.45)
        font.setBold(True)
        self.value.setFont(font)
        self.caption = QLabel(self)
        self.caption.setWordWrap(True)
        self.caption.setTextFormat(Qt.TextFormat.PlainText)
        set_muted(self.caption)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.setSpacing(1)
        layout.addWidget(self.value)
        layout.addWidget(self.caption)

    def show_figure(self, value: str, caption: str, tooltip: str = "") -> None:
        self.value.setText(value)
        self.caption.setText(caption)
        self.setToolTip(tooltip)


def cache_figure(cache: CacheMetrics) -> tuple[str, str, str]:
    lookups = cache.hits + cache.misses
    return (
        percent(cache.hit_rate),
        f"{cache.layer} cache hits\n{human_count(lookups)} lookups",
        f"{cache.hits:,} hits, {cache.misses:,} misses since the service started",
    )


def ratio_figure(ratio: RatioMetrics) -> tuple[str, str, str]:
    value = "—" if ratio.ratio is None else f"{ratio.ratio:.1f}×"
    return (
        value,
        f"{ratio.kind} compression\n{human_size(ratio.raw_bytes)} → "
        f"{human_size(ratio.stored_bytes)}",
        "raw size ÷ stored size, for everything compressed since the service started",
    )


def op_figure(op: OpMetrics) -> tuple[str, str, str]:
    mean = op.sum_s / op.count if op.count else None
    errors = f", {plural(op.errors, 'error')}" if op.errors else ", no errors"
    return (
        human_latency(mean),
        f"mean {op_label((op.op, op.tier))}\n{plural(op.count, 'call')}{errors}",
        f"{human_size(op.bytes)} moved since the service started",
    )


class FigureRow(QWidget):
    """One row: the selected operation, each cache layer, each compression kind, the queue."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(8)
        self.op = Figure(self)
        self.queue = Figure(self)
        self.no_cache = Figure(self)
        self.no_cache.show_figure("—", f"cache hit rate\n{NO_CACHE.lower()}")
        self.cache: list[Figure] = []
        self.ratios: list[Figure] = []
        self._layout.addWidget(self.op)
        self._layout.addWidget(self.no_cache)
        self._layout.addWidget(self.queue)
        self._layout.addStretch(1)

    def show_snapshot(self, snapshot: MetricsSnapshot, op: OpMetrics | None) -> None:
        self.op.setVisible(op is not None)
        if op is not None:
            self.op.show_figure(*op_figure(op))
        caches: list[CacheMetrics] = list(getattr(snapshot, "cache", None) or [])
        ratios: list[RatioMetrics] = list(getattr(snapshot, "ratios", None) or [])
        self._fill(self.cache, [cache_figure(c) for c in caches], after=self.op)
        self.no_cache.setVisible(not caches)
        anchor = self.cache[-1] if self.cache else self.no_cache
        self._fill(self.ratios, [ratio_figure(r) for r in ratios], after=anchor)
        q = snapshot.queue
        self.queue.show_figure(
            str(q.queued + q.waiting),
            f"jobs waiting to run\n{q.running} running",
            f"{q.queued} queued, {q.waiting} waiting for a target, {q.running} running",
        )

    def _fill(self, figures: list[Figure], values: list[tuple[str, str, str]],
              *, after: QWidget) -> None:  # fmt: skip
        while len(figures) > len(values):
            gone = figures.pop()
            self._layout.removeWidget(gone)
            gone.deleteLater()
        while len(figures) < len(values):
            fig = Figure(self)
            index = self._layout.indexOf(figures[-1] if figures else after) + 1
            self._layout.insertWidget(index, fig)
            figures.append(fig)
        for fig, value in zip(figures, values, strict=True):
            fig.show_figure(*value)

    def cache_texts(self) -> list[str]:
        """What the cache part of the row says, for tests and accessibility checks."""
        if not self.cache:
            return [NO_CACHE] if self.no_cache.isVisibleTo(self) else []
        return [f"{f.value.text()} {f.caption.text()}" for f in self.cache]
