"""Search: one box over every imported message, results with the matches in bold.

Typing searches after a short pause (so each keystroke does not start a
query); Enter searches at once. Only the newest query's answer is shown, so a
slow early query can never overwrite a later one.
"""

from __future__ import annotations

import asyncio
import html

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from core.client import Client, SearchHit, SearchQuery, SessionSummary
from gui.empty_state import EmptyState
from gui.format import DASH, human_time, plural, shorten
from gui.palette import muted, set_muted
from gui.rich_delegate import HTML_ROLE, RichTextDelegate
from gui.snippet import snippet_html
from gui.tasks import TaskRunner

DEBOUNCE_MS = 200
LIMIT = 100
HIT_ROLE = Qt.ItemDataRole.UserRole + 1
SNIPPET_ROLE = Qt.ItemDataRole.UserRole + 2
ROLES = ("any role", "user", "assistant", "system")


class SearchPage(QWidget):
    open_requested = Signal(str, int)
    """(session id, message id) of an activated result."""

    def __init__(self, client: Client, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._client = client
        self._runner = runner
        self._generation = 0
        self._titles: dict[str, str] = {}
        self._have_sessions = True

        self.query_edit = QLineEdit(self)
        self.query_edit.setPlaceholderText("Search every imported message (Enter searches at once)")
        self.query_edit.setClearButtonEnabled(True)
        self.role_box = QComboBox(self)
        self.role_box.addItems(ROLES)
        self.role_box.setToolTip("Only messages with this role")
        self.status = QLabel(self)
        set_muted(self.status)
        self.status.setMinimumWidth(140)
        self.status.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self.search_now)
        self.query_edit.textChanged.connect(lambda _text: self._debounce.start())
        self.query_edit.returnPressed.connect(self.search_now)
        self.role_box.currentIndexChanged.connect(lambda _i: self.search_now())

        self.results = QListWidget(self)
        self.results.setItemDelegate(RichTextDelegate(self.results))
        self.results.setResizeMode(QListView.ResizeMode.Adjust)
        self.results.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.results.setAlternatingRowColors(True)
        self.results.setWordWrap(True)
        self.results.itemActivated.connect(self._activate)

        self.hint = EmptyState("", "", parent=self)
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.hint)
        self.stack.addWidget(self.results)

        bar = QHBoxLayout()
        bar.addWidget(self.query_edit, 1)
        bar.addWidget(self.role_box)
        bar.addWidget(self.status)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 10)
        layout.addLayout(bar)
        layout.addWidget(self.stack, 1)
        self._show_hint()

    def set_sessions(self, sessions: list[SessionSummary]) -> None:
        """Titles to show beside each hit; also tells whether there is anything to search."""
        self._titles = {s.id: s.title or s.id for s in sessions}
        self._have_sessions = bool(sessions)
        if not self.query_edit.text().strip():
            self._show_hint()

    def _show_hint(self) -> None:
        if self._have_sessions:
            self.hint.title.setText("Search your sessions")
        else:
            self.hint.title.setText("Nothing to search yet")
        self.hint.text.setText(
            "Each word matches whole words in every imported message; end a word with * "
            'to match its beginning, or quote "a phrase". Double-click a result (or press '
            "Enter on it) to read the conversation there."
            if self._have_sessions
            else "Import sessions on the Sessions page first; their messages appear here."
        )
        self.stack.setCurrentWidget(self.hint)

    def search_now(self) -> asyncio.Task[None] | None:
        """Run the query in the box now; the task is returned for callers that wait."""
        self._debounce.stop()
        text = self.query_edit.text().strip()
        self._generation += 1
        if not text:
            self.results.clear()
            self.status.clear()
            self._show_hint()
            return None
        role = self.role_box.currentText() if self.role_box.currentIndex() > 0 else None
        query = SearchQuery(text=text, limit=LIMIT, role=role, since=None, until=None)
        return self._runner.spawn(self._search(query, self._generation))

    async def _search(self, query: SearchQuery, generation: int) -> None:
        self.status.setText("Searching…")
        try:
            hits = await self._client.search(query)
        except BaseException:
            if generation == self._generation:
                self.status.setText("Search failed")
            raise
        if generation != self._generation:
            return  # a newer query is on its way
        self._show_hits(query.text, hits)

    def _show_hits(self, text: str, hits: list[SearchHit]) -> None:
        self.results.clear()
        muted_color = muted(self.results.palette(), on_base=True).name()
        for hit in hits:
            snippet = snippet_html(hit.snippet)
            title = html.escape(
                shorten(self._titles.get(hit.session_id, hit.session_id), 90), quote=False
            )
            meta = " · ".join(
                html.escape(x, quote=False)
                for x in (hit.project or DASH, hit.role or DASH, human_time(hit.ts))
            )
            item = QListWidgetItem()
            item.setData(
                HTML_ROLE,
                f"<div>{title} <span style='color:{muted_color}'>· {meta}</span></div>"
                f"<div>{snippet}</div>",
            )
            item.setData(SNIPPET_ROLE, snippet)
            item.setData(HIT_ROLE, (hit.session_id, hit.message_id))
            item.setToolTip(f"session {hit.session_id}")
            self.results.addItem(item)
        if hits:
            more = " (first results)" if len(hits) >= LIMIT else ""
            self.status.setText(plural(len(hits), "result") + more)
            self.stack.setCurrentWidget(self.results)
        else:
            self.status.setText("No results")
            self.hint.title.setText(f"No messages match “{text}”")
            self.hint.text.setText(
                "Try fewer or different words; a word matches whole words only."
                if self._have_sessions
                else "Nothing is imported yet: import sessions on the Sessions page first."
            )
            self.stack.setCurrentWidget(self.hint)

    def hit_count(self) -> int:
        return self.results.count() if self.stack.currentWidget() is self.results else 0

    def snippet_html(self, row: int) -> str:
        return str(self.results.item(row).data(SNIPPET_ROLE))

    def hit_at(self, row: int) -> tuple[str, int]:
        session_id, message_id = self.results.item(row).data(HIT_ROLE)
        return str(session_id), int(message_id)

    def _activate(self, item: QListWidgetItem) -> None:
        session_id, message_id = item.data(HIT_ROLE)
        self.open_requested.emit(session_id, message_id)
