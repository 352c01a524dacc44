"""One Google sign-in in the user's own browser, as the window runs it.

The service starts the loopback sign-in and hands back an address; the browser
is opened on it (where the user is signed in to Google already), and again on
request; the wait is `finish_drive_sign_in`. Cancelling the task that waits
calls the sign-in off in the service too, so none is left listening. Shared by
the wizard's Connect (a new Drive target) and Sign in again (a saved one whose
access was revoked or expired).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices

from core.client import Client, DriveSignedIn, SignInStarted
from core.errors import TierkeeperError

log = logging.getLogger(__name__)


class BrowserSignIn:
    def __init__(self, client: Client) -> None:
        self._client = client
        self.flow_id: str | None = None
        self.url: str | None = None

    def waiting(self) -> bool:
        return self.flow_id is not None

    async def run(
        self, started: Awaitable[SignInStarted], on_waiting: Callable[[], None]
    ) -> DriveSignedIn:
        """`started`: the service's start call. `on_waiting` runs once the browser opens."""
        try:
            begun = await started
            self.flow_id, self.url = begun.flow_id, begun.url
            on_waiting()
            self.open_browser()
            return await self._client.finish_drive_sign_in(begun.flow_id)
        except asyncio.CancelledError:
            await self._call_off()
            raise
        finally:
            self.flow_id = None

    def open_browser(self) -> None:
        if self.url:
            QDesktopServices.openUrl(QUrl(self.url))

    async def _call_off(self) -> None:
        flow, self.flow_id = self.flow_id, None
        if flow is not None:
            try:
                await self._client.cancel_drive_sign_in(flow)
            except TierkeeperError:
                log.debug("the sign-in had ended already")
