"""The Performance page's graphs: pyqtgraph plots that follow the window's palette.

pyqtgraph draws with its own colours (black background, grey axes) unless told
otherwise, which looks foreign in a light theme; here every plot takes its
background, axes and text from the Qt palette, and the curve colours are picked
for the palette's lightness so each stays readable on it. Values go in in base
units (seconds, bytes per second), so the axes scale their own prefixes:
"Latency (ms)", "Throughput (MB/s)".
"""

from __future__ import annotations

from collections.abc import Sequence

import pyqtgraph as pg  # type: ignore[import-untyped]
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QWidget

from gui.palette import muted

# Okabe–Ito hues (told apart with colour-blindness too), a light and a dark variant each.
_CURVES_LIGHT = {"p50": "#0072b2", "p95": "#c77c00", "p99": "#c0392b", "bars": "#009e73",
                 "running": "#0072b2", "waiting": "#c77c00"}  # fmt: skip
_CURVES_DARK = {"p50": "#56b4e9", "p95": "#e69f00", "p99": "#ff7b6b", "bars": "#3fcf9f",
                "running": "#56b4e9", "waiting": "#e69f00"}  # fmt: skip


def is_dark(pal: QPalette) -> bool:
    return pal.color(QPalette.ColorRole.Base).lightness() < 128


def curve_color(pal: QPalette, name: str) -> QColor:
    return QColor((_CURVES_DARK if is_dark(pal) else _CURVES_LIGHT)[name])


class TimePlot(pg.PlotWidget):  # type: ignore[misc]
    """A plot over wall-clock time; the range selector, not the mouse, zooms it."""

    def __init__(self, title: str, label: str, units: str | None, parent: QWidget | None) -> None:
        super().__init__(parent=parent, axisItems={"bottom": pg.DateAxisItem(orientation="bottom")})
        self._title = title
        self._label = label
        self._units = units
        self.setMouseEnabled(x=False, y=False)
        self.setMenuEnabled(False)
        self.hideButtons()
        self.showGrid(x=True, y=True, alpha=0.12)
        self.getAxis("left").setWidth(64)
        self.setMinimumHeight(150)
        self.legend: pg.LegendItem | None = None
        self._text = "#000000"

    def add_legend(self) -> pg.LegendItem:
        self.legend = self.addLegend(offset=(8, 6), colCount=3, labelTextSize="8pt")
        return self.legend

    def apply_palette(self, pal: QPalette) -> None:
        base = pal.color(QPalette.ColorRole.Base)
        text = pal.color(QPalette.ColorRole.Text)
        faint = muted(pal, on_base=True)
        self.setBackground(base)
        for name in ("left", "bottom"):
            axis = self.getAxis(name)
            axis.setPen(pg.mkPen(faint))
            axis.setTextPen(pg.mkPen(text))
        self._text = text.name()
        self.setLabel("left", self._label, units=self._units, color=self._text)
        self.setTitle(self._title, color=self._text, size="10pt")
        if self.legend is not None:
            self.legend.setLabelTextColor(text)
            for _sample, label in self.legend.items:  # the colour applies at the next render
                label.setText(label.text)
            self.legend.setBrush(pg.mkBrush(QColor(base.red(), base.green(), base.blue(), 200)))

    def set_title(self, title: str) -> None:
        self._title = title
        self.setTitle(title, color=self._text, size="10pt")

    def whole_ticks(self, top: float) -> None:
        """Counts (jobs) get ticks at whole numbers, not 0.5 jobs."""
        self.getAxis("left").setTickSpacing(*((1, 1) if top <= 10 else (None, None)))

    def show_span(self, start: float, end: float, top: float) -> None:
        self.setXRange(start, end, padding=0)
        self.setYRange(0, top if top > 0 else 1.0, padding=0.08)


def line(
    plot: TimePlot, name: str, label: str, pal: QPalette, *, dots: bool = True
) -> pg.PlotDataItem:
    """A curve with a dot per measured point (a lone second still shows), gaps at NaN."""
    color = curve_color(pal, name)
    return plot.plot(
        [], [], name=label, pen=pg.mkPen(color, width=2), symbol="o" if dots else None,
        symbolSize=5, symbolPen=None, symbolBrush=color, connect="finite",
    )  # fmt: skip


def recolor_line(item: pg.PlotDataItem, name: str, pal: QPalette) -> None:
    color = curve_color(pal, name)
    item.setPen(pg.mkPen(color, width=2))
    item.setSymbolBrush(color)


def bars(plot: TimePlot, pal: QPalette) -> pg.BarGraphItem:
    item = pg.BarGraphItem(x=[], height=[], width=1.0, brush=curve_color(pal, "bars"),
                           pen=pg.mkPen(None))  # fmt: skip
    plot.addItem(item)
    return item


def set_bars(item: pg.BarGraphItem, xs: Sequence[float], heights: Sequence[float],
             step: float, pal: QPalette) -> None:  # fmt: skip
    """Bars centred on each bucket: a bucket's bytes over its step, no line across idle time."""
    item.setOpts(x=[x + step / 2 for x in xs], height=list(heights), width=step * 0.85,
                 brush=curve_color(pal, "bars"))  # fmt: skip


def finite_max(*columns: Sequence[float]) -> float:
    values = [v for col in columns for v in col if v == v]  # NaN != NaN
    return max(values, default=0.0)
