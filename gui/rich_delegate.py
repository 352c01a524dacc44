"""Paints list items whose text is (escaped) rich text, wrapped to the view's width.

Qt's item views draw plain text only; search results need bold matches.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSize, Qt
from PySide6.QtGui import QAbstractTextDocumentLayout, QPainter, QPalette, QTextDocument
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
)

HTML_ROLE = Qt.ItemDataRole.UserRole + 10
PADDING = 8


class RichTextDelegate(QStyledItemDelegate):
    def _document(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QTextDocument:
        doc = QTextDocument()
        doc.setDocumentMargin(0)
        doc.setDefaultFont(option.font)
        doc.setHtml(str(index.data(HTML_ROLE) or ""))
        width = option.rect.width() - 2 * PADDING
        widget = option.widget
        if width <= 0 and isinstance(widget, QAbstractItemView):
            width = widget.viewport().width() - 2 * PADDING
        doc.setTextWidth(max(width, 100))
        return doc

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        style = opt.widget.style() if opt.widget else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)

        doc = self._document(opt, index)
        ctx = QAbstractTextDocumentLayout.PaintContext()
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        ctx.palette.setColor(QPalette.ColorRole.Text, opt.palette.color(role))
        rect = opt.rect.adjusted(PADDING, PADDING // 2, -PADDING, 0)
        painter.save()
        painter.translate(rect.topLeft())
        doc.documentLayout().draw(painter, ctx)
        painter.restore()

    def sizeHint(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:
        doc = self._document(option, index)
        return QSize(int(doc.idealWidth()) + 2 * PADDING, int(doc.size().height()) + PADDING)
