"""Gets the window a service again after the daemon behind it went away.

The event stream ending is the sign (a daemon that stops or dies closes it). From then
on the daemon is looked for again with a growing pause, until one answers or the user
asks to run the service in this window; either way the new client is swapped in behind
the window's client, and the window reloads. Nothing here blocks the UI thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from PySide6.QtCore import QObject, Signal

from core.client import Client, connect_daemon, open_in_process
from core.client_switch import SwitchableClient, is_daemon, served_by
from core.errors import TierkeeperError

log = logging.getLogger(__name__)

FIRST_PAUSE = 0.25
MAX_PAUSE = 5.0


class Reconnector(QObject):
    lost = Signal()
    restored = Signal(str)
    """Who serves now ("daemon (pid N)" or "in-process service")."""
    failed = Signal(str)
    """Running the service here did not work (the message says why); still reconnecting."""

    def __init__(
        self,
        switch: SwitchableClient,
        workspace: Callable[[], str | None],
        reload: Callable[[], Awaitable[None]],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._switch = switch
        self._workspace = workspace
        self._reload = reload
        self._task: asyncio.Task[None] | None = None
        self._lost = False
        self._opened: Client | None = None
        """The client this object opened and must close (the first one is the app's)."""

    @property
    def reconnecting(self) -> bool:
        return self._lost

    def connection_lost(self) -> None:
        """The event stream ended. Only a daemon's can end while the window runs."""
        if self.reconnecting or not is_daemon(self._switch.current):
            return
        log.warning("lost the daemon; looking for it again")
        self._lost = True
        self.lost.emit()
        self._task = asyncio.get_event_loop().create_task(self._look_for_daemon())

    def run_here(self) -> None:
        """Serve the workspace in this process instead of waiting for the daemon."""
        if not self.reconnecting:
            return
        task = self._task
        self._task = asyncio.get_event_loop().create_task(self._serve_here(task))

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        opened, self._opened = self._opened, None
        if opened is not None:
            await opened.close()

    async def _look_for_daemon(self) -> None:
        pause = FIRST_PAUSE
        while True:
            await asyncio.sleep(pause)
            client = await connect_daemon(self._workspace())
            if client is not None:
                await self._use(client)
                return
            pause = min(pause * 2, MAX_PAUSE)

    async def _serve_here(self, looking: asyncio.Task[None] | None) -> None:
        if looking is not None:
            looking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await looking
        try:
            client = await open_in_process(self._workspace())
        except TierkeeperError as exc:  # a daemon took the workspace again meanwhile, …
            self.failed.emit(str(exc))
            await self._look_for_daemon()
            return
        await self._use(client)

    async def _use(self, client: Client) -> None:
        old = self._switch.swap(client)
        self._opened = client
        with contextlib.suppress(Exception):  # its daemon is gone: closing only frees sockets
            await old.close()
        self._lost = False
        log.info("the window is served again by the %s", served_by(client))
        self.restored.emit(served_by(client))
        try:
            await self._reload()
        except TierkeeperError as exc:
            self.failed.emit(str(exc))
