"""Search: typed words find messages, matches show in bold, a hit opens its session."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from core.client import SearchQuery
from gui.conversation import message_anchor
from gui.search_page import HIT_ROLE

pytestmark = pytest.mark.gui

WORD = "error"


def _search_page(h):  # type: ignore[no-untyped-def]
    h.window.show_page("search")
    return h.window.search


def test_typing_shows_hits_with_the_word_in_bold(make_window, qtbot, imported_ws: Path) -> None:
    h = make_window(imported_ws)
    page = _search_page(h)
    expected = h.call(h.client.search(SearchQuery(text=WORD, limit=100)))
    assert expected, "the fixtures should contain the word"

    qtbot.keyClicks(page.query_edit, WORD)  # no Enter: the pause starts the search
    h.wait(lambda: page.hit_count() > 0)

    assert page.hit_count() == len(expected)
    for row in range(page.hit_count()):
        bold = re.findall(r"<b>(.*?)</b>", page.snippet_html(row))
        assert bold, page.snippet_html(row)
        assert all(WORD in b.lower() for b in bold)
    assert page.status.text().startswith(f"{len(expected)} result")


def test_enter_searches_at_once_and_newest_query_wins(
    make_window, qtbot, imported_ws: Path
) -> None:
    h = make_window(imported_ws)
    page = _search_page(h)
    page.query_edit.setText("zzzunlikelyword")
    qtbot.keyClick(page.query_edit, Qt.Key.Key_Return)
    h.wait(lambda: page.status.text() == "No results")
    assert "No messages match" in page.hint.title.text()
    page.query_edit.setText(WORD)
    task = page.search_now()
    assert task is not None
    h.call(task)
    assert page.hit_count() > 0


def test_a_query_the_service_rejects_shows_the_reason(make_window, imported_ws: Path) -> None:
    h = make_window(imported_ws)
    page = _search_page(h)
    page.query_edit.setText('"')  # a lone quote holds no word
    page.search_now()
    h.wait(lambda: h.window.banner.message() != "")
    assert "search is empty" in h.window.banner.message()
    assert page.status.text() == "Search failed"


def test_activating_a_hit_opens_its_session_at_the_message(
    make_window, qtbot, imported_ws: Path
) -> None:
    h = make_window(imported_ws)
    page = _search_page(h)
    page.query_edit.setText(WORD)
    h.call(page.search_now())
    row = min(3, page.hit_count() - 1)
    session_id, message_id = page.hit_at(row)
    assert page.results.item(row).data(HIT_ROLE) == (session_id, message_id)

    page.results.itemActivated.emit(page.results.item(row))  # as a double-click or Enter

    sessions = h.window.sessions
    h.wait(lambda: sessions.current_session_id() == session_id)
    assert h.window.current_page() == "sessions"
    h.wait(lambda: f'name="{message_anchor(message_id)}"' in sessions.details_html())
