"""The filterable, sortable table both list pages use: a proxy over a model, and its box.

Models expose `SORT_ROLE` (the value to sort by) and `FILTER_ROLE` (the text a
filter matches) on column 0; the roles are shared so every table sorts and
filters the same way.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QAbstractItemModel, QSortFilterProxyModel, Qt
from PySide6.QtWidgets import QLineEdit, QWidget

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
FILTER_ROLE = Qt.ItemDataRole.UserRole + 2


def filter_proxy(model: QAbstractItemModel, parent: QWidget) -> QSortFilterProxyModel:
    proxy = QSortFilterProxyModel(parent)
    proxy.setSourceModel(model)
    proxy.setSortRole(SORT_ROLE)
    proxy.setFilterRole(FILTER_ROLE)
    proxy.setFilterKeyColumn(0)
    proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
    return proxy


def filter_box(placeholder: str, parent: QWidget, on_change: Callable[[str], None]) -> QLineEdit:
    edit = QLineEdit(parent)
    edit.setPlaceholderText(placeholder)
    edit.setClearButtonEnabled(True)
    edit.textChanged.connect(on_change)
    return edit
