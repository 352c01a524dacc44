"""Performance: real backups to a real folder target, timed by the real service.

The page must list what the service timed, draw it live, find yesterday's
history after a restart, and stop the 4 Hz stream as soon as nobody looks.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette

from core.client import CacheMetrics, Client, MetricsSnapshot, OpMetrics, open_client
from gui.metric_series import RANGES, Trace
from gui.perf_figures import NO_CACHE
from tests.gui.tier2 import Disk, add_folder_target, back_up

pytestmark = pytest.mark.gui

PUT = ("put", "folder")


@pytest.fixture
def disk(run, imported_ws: Path, tmp_path: Path) -> Disk:
    return run(add_folder_target(imported_ws, tmp_path / "disk"))


def _performance(h):  # type: ignore[no-untyped-def]
    h.window.show_page("performance")
    page = h.window.performance
    h.wait(lambda: page.loaded)
    return page


def _listening(client: Client) -> bool:
    return bool(client._service.bus.listening("metrics"))  # type: ignore[attr-defined]


async def _backed_up_once(ws: Path) -> None:
    """A backup by another process's service: its timings reach the DB when it stops."""
    client = await open_client(ws)
    try:
        sessions = await client.list_sessions()
        await back_up(client, [s.id for s in sessions])
    finally:
        await client.close()


def test_back_up_now_from_the_empty_page_then_watch_it_live(
    make_window, qtbot, imported_ws: Path, disk: Disk
) -> None:
    h = make_window(imported_ws)
    page = _performance(h)
    assert page.showing_empty_state()  # the window's own DB reads are no reason to show graphs
    assert "Run a backup to see latency here" in page.empty.text.text()

    assert page.empty.button is not None
    qtbot.mouseClick(page.empty.button, Qt.MouseButton.LeftButton)  # → the window's Backup now
    h.wait(lambda: PUT in page.operations(), timeout=30)
    h.wait(lambda: page.drawn_points() > 0)
    assert not page.showing_empty_state()
    assert page.selected_op() == PUT  # the target's uploads come first
    assert ("db.tx", "local") in page.operations()  # the database's timings are there too
    assert page.selected_range().key == "5m"
    assert page.note.text().startswith("Live")
    h.wait(lambda: "session compression" in page.figures.ratios[0].caption.text()
           if page.figures.ratios else False)  # fmt: skip
    assert page.figures.ratios[0].value.text().endswith("×")
    assert "put · folder" in page.figures.op.caption.text()
    layers = [c.layer for c in h.call(h.client.metrics()).cache]
    texts = page.figures.cache_texts()
    if not layers:
        assert texts == [NO_CACHE]  # no cache counted: said, not shown as 0 %
    else:  # one figure per layer the service counts
        # "63 % memory cache hits", or "— listing cache hits" before its first lookup
        assert [t.split(" cache hits")[0].split(" ")[-1] for t in texts] == layers
    backups = h.call(h.client.backups())
    assert backups  # the button really backed up


def test_history_survives_a_restart_and_longer_ranges_load_it(
    make_window, run, imported_ws: Path, disk: Disk
) -> None:
    run(_backed_up_once(imported_ws))
    h = make_window(imported_ws)
    page = _performance(h)
    assert PUT in page.operations()  # found in the stored history, not in this run's timings
    page.select(PUT)
    h.wait(lambda: page.history_loads > 0 and page.selected_op() == PUT)
    assert page.point_count() == 0  # seconds are not stored: nothing live after a restart
    assert "longer range" in page.note.text()

    for key in ("24h", "30d"):
        before = page.history_loads
        page.select(range_key=key)
        h.wait(lambda b=before: page.history_loads > b)
        assert page.point_count() >= 1, key
        assert page.drawn_points() == page.point_count()
        assert page.note.text().startswith("Stored history")

    page.select(range_key="5m")
    h.wait(lambda: page.selected_range().key == "5m")
    assert page.point_count() == 0


def test_the_stream_runs_only_while_the_page_is_shown(
    make_window, imported_ws: Path, disk: Disk
) -> None:
    h = make_window(imported_ws)
    assert not _listening(h.client)  # the window opens on Sessions: no stream
    page = _performance(h)
    assert _listening(h.client)
    received: list[MetricsSnapshot] = []
    page.feed.snapshot.connect(received.append)
    h.wait(lambda: len(received) >= 2)  # live snapshots arrive

    h.window.show_page("history")
    h.wait(lambda: not _listening(h.client))
    assert not page.feed.running
    count = len(received)
    h.call(_sleep(0.6))  # two publish intervals
    assert len(received) == count

    h.window.show_page("performance")
    h.wait(lambda: _listening(h.client))
    h.wait(lambda: len(received) > count)


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


def test_cache_hit_rates_show_per_layer(make_window, imported_ws: Path) -> None:
    h = make_window(imported_ws)
    page = _performance(h)
    snapshot = MetricsSnapshot(
        ts=datetime.now(UTC), uptime_s=60, window_s=5,
        ops=[OpMetrics(op="get", tier="folder", count=4, errors=0, bytes=4000, sum_s=0.02)],
        cache=[CacheMetrics(layer="manifest", hits=3, misses=1, hit_rate=0.75),
               CacheMetrics(layer="blob", hits=0, misses=2, hit_rate=0.0)],
    )  # fmt: skip
    page.figures.show_snapshot(snapshot, snapshot.ops[0])
    texts = page.figures.cache_texts()
    assert texts[0].startswith("75 %") and "manifest cache hits" in texts[0]
    assert texts[1].startswith("0 %") and "blob" in texts[1]
    assert "4 lookups" in texts[0]
    assert not page.figures.ratios  # no ratios in the snapshot: no figure for them
    page.figures.show_snapshot(snapshot.model_copy(update={"cache": []}), None)
    assert page.figures.cache_texts() == [NO_CACHE]


def test_plots_follow_a_dark_palette(make_window, imported_ws: Path) -> None:
    h = make_window(imported_ws)
    page = _performance(h)
    dark = QPalette(page.palette())
    dark.setColor(QPalette.ColorRole.Base, QColor("#1e1e1e"))
    dark.setColor(QPalette.ColorRole.Window, QColor("#2b2b2b"))
    dark.setColor(QPalette.ColorRole.Text, QColor("#eeeeee"))
    dark.setColor(QPalette.ColorRole.WindowText, QColor("#eeeeee"))
    page.setPalette(dark)
    assert page.latency.backgroundBrush().color() == QColor("#1e1e1e")
    axis_text = page.latency.getAxis("left").textPen().color()
    assert axis_text == QColor("#eeeeee")
    p50 = page.curves["p50"].opts["pen"].color()
    assert p50.lightness() > 128  # the light variant, readable on the dark base


def test_a_second_in_both_history_and_stream_is_drawn_once() -> None:
    from core.client import SeriesPoint

    live = RANGES[0]
    trace = Trace(live, PUT)
    t = 1_700_000_000
    op = OpMetrics(op="put", tier="folder", count=9, errors=0, bytes=900, sum_s=0.1,
                   p50=0.01, p95=0.02, p99=0.03, bytes_per_s=300.0)  # fmt: skip
    later = op.model_copy(update={"count": 12, "bytes": 1500})
    assert trace.add_live(t + 5.3, op, None)  # the first calls ever
    assert trace.add_live(t + 5.8, later, op)  # the same second: one point, bytes summed
    assert trace.columns().bytes_per_s == [1500.0]
    assert not trace.add_live(t + 6.1, later, later)  # no calls since: no point
    assert trace.columns().ts == [t + 5]
    history = [SeriesPoint(ts=datetime.fromtimestamp(t + s, UTC), count=1, errors=0, bytes=100,
                           p50=0.005, p95=0.005, p99=0.005) for s in (1, 2, 5)]  # fmt: skip
    trace.load(history)
    cols = trace.columns()
    assert cols.ts == [t + 1, t + 2, t + 5]  # the stored second wins over the live one
    assert cols.p50 == [0.005] * 3
    trace.trim(t + 3 + live.span_s)  # the points before t + 3 have left the range
    assert trace.columns().ts == [t + 5]
