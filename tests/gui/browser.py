"""The test's web browser: where the window's "open this page" goes, and a visit to it."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest
from PySide6.QtCore import QObject, QUrl, Slot
from PySide6.QtGui import QDesktopServices


class Browser(QObject):
    """Where QDesktopServices sends http addresses during the test: the test's browser."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.urls.append(url.toString())


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    QDesktopServices.setUrlHandler("http", b, "open")
    yield b
    QDesktopServices.unsetUrlHandler("http")


def visit(url: str) -> str:
    """What the user's browser does with Google's page: follow it back home."""
    with urllib.request.urlopen(url, timeout=30) as page:
        return str(page.read().decode())
