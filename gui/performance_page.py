"""Performance: how fast each tier answers, how much moves, how well caches and compression do.

The graphs show one operation on one tier at a time (p50/p95/p99 latency and
throughput), over a range the person picks: the last five minutes live, or the
stored history by minute or by hour. History comes from `metrics_series`; the
live range then grows from the `metrics` stream, which the page subscribes to
only while it is on screen (the service builds those snapshots only for a
subscriber, four times a second). Queue depth is never stored, so its graph
holds what the stream said while the page was open.

The operations offered are those the running service has timed plus the
target calls found in the stored history, so yesterday's backup can be looked
at after a restart.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from PySide6.QtCore import QEvent, Signal
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from core.client import Client, MetricsSnapshot, OpMetrics
from gui.empty_state import EmptyState
from gui.metric_series import (
    LOCAL_TIER,
    RANGES,
    STORE_OPS,
    OpKey,
    QueueTrace,
    TimeRange,
    Trace,
    op_label,
    order_ops,
    range_by_key,
    x_window,
)
from gui.metrics_feed import MetricsFeed
from gui.palette import set_muted
from gui.perf_figures import FigureRow
from gui.perf_plots import TimePlot, bars, finite_max, line, recolor_line, set_bars
from gui.reloader import Reloader
from gui.tasks import TaskRunner

HISTORY_LAG_S = 3
"""A minute's row is written at the first fold after it ends: reload a little later."""
PERCENTILES = ("p50", "p95", "p99")


class PerformancePage(QWidget):
    backup_requested = Signal()

    def __init__(self, client: Client, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._client = client
        self._runner = runner
        self.reload = Reloader(self._load)
        self.feed = MetricsFeed(client, runner, self)
        self.feed.snapshot.connect(self._on_snapshot)
        self.loaded = False
        self.history_loads = 0
        """How many times history was fetched (a test can see a range switch reach the client)."""
        self._snapshot: MetricsSnapshot | None = None
        self._live: dict[OpKey, OpMetrics] = {}
        self._streamed: dict[OpKey, OpMetrics] | None = None
        """The last streamed snapshot's ops: what the next one's calls are counted from."""
        self._stored: set[OpKey] = set()
        self._keys: list[OpKey] = []
        self._range = RANGES[0]
        self._trace = Trace(self._range, None)
        self._queue = QueueTrace()
        self._history_minute: int | None = None

        self.op_combo = QComboBox(self)
        self.op_combo.setMinimumContentsLength(16)
        self.op_combo.setToolTip("The operation and tier the graphs show")
        self.op_combo.currentIndexChanged.connect(self._selection_changed)
        self.range_combo = QComboBox(self)
        for rng in RANGES:
            self.range_combo.addItem(rng.label, rng.key)
        self.range_combo.currentIndexChanged.connect(self._selection_changed)
        self.note = QLabel(self)
        set_muted(self.note)
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(QLabel("Operation", self))
        bar.addWidget(self.op_combo)
        bar.addSpacing(12)
        bar.addWidget(QLabel("Range", self))
        bar.addWidget(self.range_combo)
        bar.addSpacing(12)
        bar.addWidget(self.note, 1)

        self.figures = FigureRow(self)
        pal = self.palette()
        self.latency = TimePlot("Latency", "Latency", "s", self)
        self.latency.add_legend()
        self.curves = {name: line(self.latency, name, name, pal) for name in PERCENTILES}
        self.throughput = TimePlot("Throughput", "Throughput", "B/s", self)
        self.bars = bars(self.throughput, pal)
        self.queue = TimePlot("Queue depth (while this page is open)", "Jobs", None, self)
        self.queue.add_legend()
        self.queue_curves = {
            "running": line(self.queue, "running", "running", pal, dots=False),
            "waiting": line(self.queue, "waiting", "waiting to run", pal, dots=False),
        }
        lower = QHBoxLayout()
        lower.setSpacing(10)
        lower.addWidget(self.throughput, 1)
        lower.addWidget(self.queue, 1)

        content = QWidget(self)
        column = QVBoxLayout(content)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(10)
        column.addWidget(self.figures)
        column.addWidget(self.latency, 3)
        column.addLayout(lower, 2)
        self.content = content

        self.empty = EmptyState(
            "No timings yet",
            "Latency, throughput, cache hit rates and compression show here while "
            "backups and restores run. Run a backup to see latency here.",
            action="Back up now",
            parent=self,
        )
        assert self.empty.button is not None
        self.empty.button.clicked.connect(self.backup_requested)
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.empty)
        self.stack.addWidget(content)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 10)
        layout.setSpacing(10)
        layout.addLayout(bar)
        layout.addWidget(self.stack, 1)
        self._apply_palette()
        self._show_empty(True)

    # visibility: the live stream runs only while the page is on screen ---------------
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._streamed = None
        self.feed.start()
        self._runner.spawn(self.refresh())

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self.feed.stop()
        self._streamed = None

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()

    # data ------------------------------------------------------------------------------
    async def refresh(self) -> None:
        """The snapshot, the operations with stored history, and the graphs' history."""
        await self.reload()

    async def _load(self) -> None:
        snapshot, stored = await asyncio.gather(self._client.metrics(), self._stored_ops())
        self._stored = stored
        self._show_snapshot(snapshot)
        if self._streamed is None:  # the stream's first calls count from this one
            self._streamed = dict(self._live)
        await self._load_history()
        self.loaded = True

    async def _stored_ops(self) -> set[OpKey]:
        """The targets' calls that have stored points in the longest range."""
        tiers = sorted({t.kind for t in await self._client.targets()})
        keys = [(op, tier) for tier in tiers for op in STORE_OPS]
        since = datetime.fromtimestamp(RANGES[-1].start(time.time()), UTC)
        found = await asyncio.gather(
            *(self._client.metrics_series(op, tier, since, "1h") for op, tier in keys)
        )
        return {key for key, points in zip(keys, found, strict=True) if points}

    async def _load_history(self) -> None:
        trace = self._trace
        if trace.key is None:
            self._draw()
            return
        op, tier = trace.key
        rng = trace.range
        since = datetime.fromtimestamp(rng.start(time.time()), UTC)
        points = await self._client.metrics_series(op, tier, since, rng.resolution)
        self.history_loads += 1
        if trace is not self._trace:
            return  # another operation or range was chosen meanwhile
        trace.load(points)
        self._draw()

    def _on_snapshot(self, snapshot: MetricsSnapshot) -> None:
        self._show_snapshot(snapshot)
        before, self._streamed = self._streamed, dict(self._live)
        now = snapshot.ts.timestamp()
        self._queue.add(now, snapshot.queue)
        trace = self._trace
        if trace.range.live:
            if trace.key is not None and before is not None:
                trace.add_live(now, self._live.get(trace.key), before.get(trace.key))
            trace.trim(now)
        else:
            minute = int((now - HISTORY_LAG_S) // 60)
            if self._history_minute is None:
                self._history_minute = minute
            elif minute != self._history_minute:
                self._history_minute = minute
                self._runner.spawn(self._load_history())
        self._draw(now)

    def _show_snapshot(self, snapshot: MetricsSnapshot) -> None:
        self._snapshot = snapshot
        self._live = {(o.op, o.tier): o for o in snapshot.ops}
        self._sync_ops()
        key = self.selected_op()
        self.figures.show_snapshot(snapshot, self._live.get(key) if key else None)

    def _sync_ops(self) -> None:
        keys = order_ops([*self._live, *self._stored])
        if keys != self._keys:
            current = self.selected_op()
            if not _has_store_ops(self._keys):
                current = None  # the first target call replaces the database's timings
            self._keys = keys
            self.op_combo.blockSignals(True)
            self.op_combo.clear()
            for key in keys:
                self.op_combo.addItem(op_label(key), key)
            if current in keys:
                self.op_combo.setCurrentIndex(keys.index(current))
            self.op_combo.blockSignals(False)
            if self.selected_op() != self._trace.key:
                self._selection_changed()
        self._show_empty(not _has_store_ops(keys))

    def _selection_changed(self) -> None:
        key = self.selected_op()
        rng = self.selected_range()
        if (key, rng) == (self._trace.key, self._trace.range):
            return
        self._trace = Trace(rng, key)
        self._history_minute = None
        what = f" of {op_label(key)}" if key else ""
        self.latency.set_title(f"Latency{what}")
        self.throughput.set_title(f"Throughput{what}")
        self._draw()
        self._runner.spawn(self._load_history())

    # drawing ---------------------------------------------------------------------------
    def _draw(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        rng, cols = self._trace.range, self._trace.columns()
        start, end = x_window(rng, now, cols.ts[0] if cols.ts else None)
        for name in PERCENTILES:
            self.curves[name].setData(cols.ts, getattr(cols, name))
        self.latency.show_span(start, end, finite_max(cols.p50, cols.p95, cols.p99))
        set_bars(self.bars, cols.ts, cols.bytes_per_s, rng.step_s, self.palette())
        self.throughput.show_span(start, end, finite_max(cols.bytes_per_s))
        qx, running, waiting = self._queue.columns(start)
        self.queue_curves["running"].setData(qx, running)
        self.queue_curves["waiting"].setData(qx, waiting)
        top = max(finite_max(running, waiting), 3.0)
        self.queue.whole_ticks(top)
        self.queue.show_span(start, end, top)
        self.note.setText(self._note(rng, len(cols)))

    def _note(self, rng: TimeRange, points: int) -> str:
        key = self._trace.key
        if key is None:
            return ""
        what = f"{key[0]} calls on {key[1]}"
        if not points:
            if rng.live:
                return f"No {what} in the last 5 min; a longer range shows the stored history."
            return f"No {what} stored for this range yet (minutes are saved as they end)."
        if rng.live:
            window = self._snapshot.window_s if self._snapshot else 5.0
            return f"Live: percentiles over the last {window:.0f} s, a point per second."
        return f"Stored history: a point per {'minute' if rng.step_s == 60 else 'hour'}."

    def _apply_palette(self) -> None:
        pal = self.palette()
        for plot in (self.latency, self.throughput, self.queue):
            plot.apply_palette(pal)
        for name, item in self.curves.items():
            recolor_line(item, name, pal)
        for name, item in self.queue_curves.items():
            recolor_line(item, name, pal)
        if hasattr(self, "stack"):
            self._draw()

    def _show_empty(self, empty: bool) -> None:
        self.stack.setCurrentWidget(self.empty if empty else self.content)

    # for the window and tests ----------------------------------------------------------
    def selected_op(self) -> OpKey | None:
        data = self.op_combo.currentData()
        return (str(data[0]), str(data[1])) if data else None

    def selected_range(self) -> TimeRange:
        return range_by_key(str(self.range_combo.currentData() or RANGES[0].key))

    def operations(self) -> list[OpKey]:
        return list(self._keys)

    def select(self, key: OpKey | None = None, *, range_key: str | None = None) -> None:
        if key is not None:
            self.op_combo.setCurrentIndex(self._keys.index(key))
        if range_key is not None:
            self.range_combo.setCurrentIndex(self.range_combo.findData(range_key))

    def point_count(self) -> int:
        """Latency points the graph holds for the selected operation and range."""
        return len(self._trace)

    def drawn_points(self) -> int:
        """Points the p50 curve actually has (what is on screen, not what is held)."""
        xs, _ys = self.curves["p50"].getData()
        return 0 if xs is None else len(xs)

    def showing_empty_state(self) -> bool:
        return self.stack.currentWidget() is self.empty


def _has_store_ops(keys: list[OpKey]) -> bool:
    """Whether a target was called (the database alone is no reason to show graphs)."""
    return any(tier != LOCAL_TIER for _op, tier in keys)
