"""A fake Google Drive v3 on 127.0.0.1, run in a background thread.

The real `googleapiclient` is synchronous (httplib2), so the server needs its own event loop
in its own thread: a test can then call the blocking client while the server answers.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from types import TracebackType

from aiohttp import web

from tests.drive_server.auth import DRIVE_FILE_SCOPE, TokenBook
from tests.drive_server.control import Control
from tests.drive_server.faults import FaultInjector
from tests.drive_server.handlers import DriveApp
from tests.drive_server.store import DriveStore
from tests.drive_server.traffic import Traffic

DEFAULT_QUOTA = 15 * 1024**3


class DriveTestServer:
    """One fake Drive account: its files, tokens, injected faults and request log."""

    def __init__(
        self,
        *,
        quota_limit: int | None = DEFAULT_QUOTA,
        client_id: str = "tierkeeper-test.apps.googleusercontent.com",
        client_secret: str = "test-secret",
        user_name: str = "Test User",
        user_email: str = "test.user@example.com",
        body_timeout: float = 5.0,
        host: str = "127.0.0.1",
        port: int = 0,
        control: bool = False,
    ) -> None:
        self.faults = FaultInjector()
        self.traffic = Traffic()
        self.tokens = TokenBook(client_id=client_id, client_secret=client_secret)
        self.store = DriveStore(quota_limit=quota_limit, wrong_md5=self.faults.consume_wrong_md5)
        self._app = DriveApp(
            self.store,
            self.tokens,
            self.faults,
            self.traffic,
            user_name=user_name,
            user_email=user_email,
            body_timeout=body_timeout,
            control=Control(self.store, self.tokens, self.traffic) if control else None,
        )
        self._host = host
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = port

    @property
    def base_url(self) -> str:
        """Root URL with a trailing slash, as the discovery document's `rootUrl` wants."""
        return f"http://{self._host}:{self.port}/"

    @property
    def token_uri(self) -> str:
        return f"{self.base_url}token"

    @property
    def auth_uri(self) -> str:
        return f"{self.base_url}auth"

    @property
    def client_id(self) -> str:
        return self.tokens.client_id

    @property
    def client_secret(self) -> str:
        return self.tokens.client_secret

    def issue_tokens(self, scope: str = DRIVE_FILE_SCOPE) -> tuple[str, str]:
        """A fresh (access token, refresh token) pair that the server accepts."""
        return self.tokens.issue_access_token(scope), self.tokens.issue_refresh_token(scope)

    def start(self) -> DriveTestServer:
        if self._thread is not None:
            raise RuntimeError("already started")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=self._run_loop, args=(loop,), name="fake-drive", daemon=True
        )
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), loop).result(timeout=10)
        return self

    def _run_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    async def _serve(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((self._host, self.port))
            sock.listen(64)
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        runner = web.AppRunner(
            self._app.build(), handle_signals=False, access_log=None, shutdown_timeout=1.0
        )
        await runner.setup()
        self._runner = runner
        await web.SockSite(runner, sock).start()

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(timeout=10)
            self._runner = None
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._loop = self._thread = None

    def __enter__(self) -> DriveTestServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
