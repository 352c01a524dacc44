"""Starting and stopping the daemon: the service, then the socket; at the end the reverse.

The workspace lock comes first (`Service.start`), so a second daemon fails before it
touches the socket, and any socket file found after that is a dead daemon's leftover.
Stopping closes the socket to new requests, ends the event streams and long polls,
stops the service (running jobs go back to the queue) and removes the socket.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from core import __version__
from core.daemon.app import MAX_BODY, build_app
from core.daemon.socket_path import (
    API_VERSION,
    DaemonInfo,
    check_length,
    make_private_dir,
    remove_files,
    remove_stale_socket,
    socket_path,
    write_info,
)
from core.service import Service
from core.workspace import Workspace

log = logging.getLogger(__name__)

SHUTDOWN_GRACE = 5.0
"""Seconds ordinary requests get to finish once the daemon is told to stop."""


class Daemon:
    def __init__(self, service: Service, runner: web.AppRunner, socket: Path) -> None:
        self.service = service
        self.socket = socket
        self._runner = runner
        self._stopped = False

    @classmethod
    async def start(
        cls,
        workspace: str | Path | Workspace | None = None,
        *,
        socket: Path | None = None,
        heartbeat: float = 15.0,
        max_body: int = MAX_BODY,
        **service_options: Any,
    ) -> Daemon:
        """`socket` overrides the per-workspace path (tests); `service_options` go to
        `Service.start`."""
        service = await Service.start(workspace, **service_options)
        try:
            sock = socket or socket_path(service.workspace.root)
            runner = await _listen(service, sock, heartbeat, max_body)
        except BaseException:
            await service.stop()
            raise
        log.info("serving %s on %s", service.workspace.root, sock)
        return cls(service, runner, sock)

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            await self._runner.cleanup()
        finally:
            try:
                await self.service.stop()
            finally:
                remove_files(self.socket)
                log.info("stopped; %s removed", self.socket)

    async def __aenter__(self) -> Daemon:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def _listen(service: Service, sock: Path, heartbeat: float, max_body: int) -> web.AppRunner:
    check_length(sock)
    await asyncio.to_thread(make_private_dir, sock.parent)
    await asyncio.to_thread(remove_stale_socket, sock)
    app = build_app(service, heartbeat=heartbeat, max_body=max_body)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_GRACE)
    await runner.setup()
    try:
        await web.UnixSite(runner, str(sock)).start()
        await asyncio.to_thread(sock.chmod, 0o600)
        info = DaemonInfo(pid=os.getpid(), api=API_VERSION, version=__version__,
                          workspace=str(service.workspace.root), socket=str(sock),
                          started_at=datetime.now(UTC).isoformat(timespec="seconds"))  # fmt: skip
        await asyncio.to_thread(write_info, sock, info)
    except BaseException:
        await runner.cleanup()
        remove_files(sock)
        raise
    return runner


async def serve(
    workspace: str | Path | None = None,
    *,
    socket: Path | None = None,
    on_ready: Callable[[Daemon], None] | None = None,
    **options: Any,
) -> None:
    """Runs in the foreground until SIGTERM or SIGINT, then stops gracefully."""
    daemon = await Daemon.start(workspace, socket=socket, **options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    try:
        for sig in signals:
            loop.add_signal_handler(sig, stop.set)
        if on_ready is not None:
            on_ready(daemon)
        await stop.wait()
        log.info("stopping")
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        await daemon.stop()
