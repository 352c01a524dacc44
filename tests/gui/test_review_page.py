"""Phase review: the fixtures imported into a phase, that phase closed by the real job.

The page must list closed phases first, render the report with its charts
(fetched through the client, registered in the document under the names the
Markdown links to), write a review as a job with progress, and say plainly
what to do when no phase has been closed yet.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QImage, QTextDocument

from core.local import lifecycle
from core.service import Service
from tests.gui.conftest import FIXTURES

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def reviewed_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`p1`: the fixtures, closed by `phase close` (which wrote its review, with HTML);
    `p2`: the current phase, open, never reviewed."""
    ws = tmp_path_factory.mktemp("review") / "ws"

    async def build() -> None:
        async with await Service.start(ws, schedule=False) as svc:
            await lifecycle.phase_new(svc.db, svc.workspace, "p1")
            await svc.import_now([str(FIXTURES)])
            info = await svc.jobs.wait((await svc.start_phase_close("p1", html=True)).id)
            assert info.state.value == "done", info.error
            await lifecycle.phase_new(svc.db, svc.workspace, "p2")

    asyncio.run(build())
    return ws


@pytest.fixture
def reviewed_ws(reviewed_template: Path, tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    shutil.copytree(reviewed_template, ws)
    return ws


def _page(h):  # type: ignore[no-untyped-def]
    h.window.show_page("review")
    return h.window.review_page


def _image(page, name: str) -> QImage:  # type: ignore[no-untyped-def]
    res = page.report.document().resource(QTextDocument.ResourceType.ImageResource, QUrl(name))
    return res if isinstance(res, QImage) else QImage()


def test_a_closed_phase_shows_its_report_with_charts_and_html(make_window, reviewed_ws) -> None:
    h = make_window(reviewed_ws)
    page = _page(h)
    assert not page.showing_empty_state()
    box = page.phase_box
    assert [box.itemText(i) for i in range(box.count())] == ["p1", "p2 (open)"]
    assert page.current_phase() == "p1"
    h.wait(lambda: page.doc is not None)
    text = page.report.toPlainText()
    assert text.startswith("Phase review — p1") and "Recommendations" in text
    assert "sessions" in page.facts.text() and "closed" in page.facts.text()
    assert page.doc.charts and page.body.currentWidget() is page.report
    for name in page.doc.charts:  # every chart the report links to is in its document
        image = _image(page, f"charts/{name}")
        assert not image.isNull() and image.width() > 100
    assert page.html_button.isEnabled() and page.doc.html_path.endswith(".html")
    assert page.write_button.text() == "Refresh"


def test_writing_a_review_runs_a_job_with_progress_and_shows_it(make_window, reviewed_ws) -> None:
    h = make_window(reviewed_ws)
    page = _page(h)
    h.wait(lambda: page.doc is not None)
    page.phase_box.setCurrentIndex(1)  # p2: open, no review yet
    h.wait(lambda: page.body.currentWidget() is page.no_review)
    assert page.no_review.title.text() == "No review of p2 yet"
    assert page.write_button.text() == "Write review" and not page.html_button.isEnabled()

    page.no_review.button.click()
    h.wait(lambda: page.progress.isVisible() or page.doc is not None)
    h.wait(lambda: page.doc is not None and page.doc.phase == "p2")
    assert not page.progress.isVisible() and page.write_button.isEnabled()
    assert page.report.toPlainText().startswith("Phase review — p2")
    assert page.html_button.isEnabled()  # the page asks for the HTML too
    jobs = h.call(h.client.jobs())
    assert (jobs[0].kind, jobs[0].state.value) == ("review", "done")


def test_with_no_closed_phase_it_says_so_and_its_button_closes_one(make_window, tmp_path) -> None:
    ws = tmp_path / "fresh"
    h = make_window(ws)
    page = _page(h)
    assert page.showing_empty_state()
    assert "phase new" in page.empty.text.text() and not page.empty.button.isVisible()

    svc = h.client.service
    h.call(lifecycle.phase_new(svc.db, svc.workspace, "sprint-1"))
    h.call(page.refresh())
    assert page.showing_empty_state() and page.empty.title.text() == "No closed phase yet"
    assert page.empty.button.isVisible() and page.empty.button.text() == "Close phase sprint-1"

    page.empty.button.click()
    h.wait(lambda: not page.showing_empty_state())
    h.wait(lambda: page.doc is not None and page.doc.phase == "sprint-1")
    assert page.phase_box.itemText(0) == "sprint-1"  # closed now
    (phase,) = h.call(h.client.phases())
    assert phase.status == "closed" and phase.reviewed_at
    assert page.report.toPlainText().startswith("Phase review — sprint-1")
    assert page.phase_box.findText("sprint-1", Qt.MatchFlag.MatchExactly) == 0
