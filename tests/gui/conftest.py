"""Real widgets on a real qasync loop, against a real in-process service.

Tests are synchronous and drive the loop themselves (`run(coro)`), the
pattern TESTING-NOTES recommends: no blocking wait inside an async test, and
teardown closes the window, the client and the loop in that order.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")

import pytest
import pytestqt.plugin
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from core.client import Client, open_client
from gui.main_window import MainWindow
from gui.qt_loop import close_loop, new_loop
from tests.gui.browser import browser  # noqa: F401 - a fixture for every window test

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "claude-code"
T = TypeVar("T")

Run = Callable[..., Any]


@pytest.fixture
def loop(
    qapp: QApplication, monkeypatch: pytest.MonkeyPatch
) -> Iterator[asyncio.AbstractEventLoop]:
    loop = new_loop(qapp)

    def process_events() -> None:
        # pytest-qt processes Qt events between a test's steps, outside any `run`:
        # asyncio callbacks due then (a job's timer) must still find their loop.
        asyncio.events._set_running_loop(loop)
        try:
            qapp.processEvents()
        finally:
            asyncio.events._set_running_loop(None)

    monkeypatch.setattr(pytestqt.plugin, "_process_events", process_events)
    try:
        yield loop
    finally:
        close_loop(loop)


@pytest.fixture
def run(loop: asyncio.AbstractEventLoop) -> Callable[..., Any]:
    """`run(coro, timeout=30)`: runs the Qt+asyncio loop until `coro` is done."""

    def _run(coro: Awaitable[T], timeout: float = 30) -> T:
        return loop.run_until_complete(asyncio.wait_for(coro, timeout))

    return _run


async def until(predicate: Callable[[], bool], timeout: float = 20) -> None:
    """Lets the loop (Qt events and asyncio tasks) turn until `predicate` holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


class Harness:
    """A window on its own workspace, with the means to drive it."""

    def __init__(self, window: MainWindow, client: Client, run: Run) -> None:
        self.window = window
        self.client = client
        self.run = run

    def wait(self, predicate: Callable[[], bool], timeout: float = 20) -> None:
        self.run(until(predicate, timeout), timeout + 5)

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        result: T = self.run(coro)
        return result


@pytest.fixture
def make_window(qtbot: Any, run: Run, tmp_path: Path) -> Iterator[Callable[[Path], Harness]]:
    opened: list[Harness] = []

    def _make(workspace: Path, *, client: Client | None = None) -> Harness:
        """`client`: one opened on `workspace` with other settings (a fast retry policy)."""
        client = client if client is not None else run(open_client(workspace))
        settings = QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)
        window = MainWindow(client, settings=settings)
        qtbot.addWidget(window)
        window.show()
        harness = Harness(window, client, run)
        opened.append(harness)
        run(window.load())
        return harness

    yield _make
    for h in opened:
        run(h.window.shutdown())
        run(h.client.close())


@pytest.fixture(scope="session")
def claude_fixtures() -> Path:
    assert FIXTURES.is_dir(), f"fixtures missing: {FIXTURES}"
    return FIXTURES


@pytest.fixture(scope="session")
def imported_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with the fixtures imported once, copied by tests that only read it."""
    ws = tmp_path_factory.mktemp("template") / "ws"

    async def build() -> None:
        client = await open_client(ws)
        try:
            job = await client.start_import([str(FIXTURES)])
            await client.wait_job(job.id)
        finally:
            await client.close()

    asyncio.run(build())
    return ws


@pytest.fixture
def imported_ws(imported_template: Path, tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    shutil.copytree(imported_template, ws)
    return ws
