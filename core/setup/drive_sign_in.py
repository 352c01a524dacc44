"""Connecting a Google Drive target from a window: start, let the user sign in, finish.

The CLI can block while the browser is open; a window (or a daemon's client) cannot,
and the browser may even be opened by another process than the one holding the
loopback listener. So the flow is split: `start` opens the listener in the service
and returns the address to open; the sign-in then runs in the service on its own;
`finish` waits for it and says who signed in and how much room is left. Only once
the account answered and a probe went through is the target saved, so a half-done
sign-in leaves no target and no tokens behind.

Waiting in `finish` can be given up (a closed dialog, a dropped connection) without
losing the sign-in: it keeps going and a later `finish` collects it. `cancel` ends
it for real, and the loopback listener with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from core.config import TargetConfig
from core.errors import NotFoundError
from core.remote.oauth_loopback import SignInCancelled
from core.setup.models import DriveSignedIn, DriveTargetSpec, SignInStarted

log = logging.getLogger(__name__)

Complete = Callable[[TargetConfig, DriveTargetSpec], Awaitable[DriveSignedIn]]
"""After the browser came back: check the account, keep the target (see SetupOps)."""
SignIn = Callable[[TargetConfig, DriveTargetSpec, Callable[[str], None]], Awaitable[None]]
"""Runs the browser consent for the target and keeps its tokens."""


@dataclass
class _Flow:
    id: str
    target: str
    task: asyncio.Task[DriveSignedIn]


class DriveSignIns:
    def __init__(self, sign_in: SignIn, complete: Complete, undo: Callable[[TargetConfig],
                 Awaitable[None]]) -> None:  # fmt: skip
        self._sign_in = sign_in
        self._complete = complete
        self._undo = undo
        self._flows: dict[str, _Flow] = {}

    def busy(self, name: str) -> bool:
        """A sign-in for a target of this name is under way."""
        return any(f.target == name and not f.task.done() for f in self._flows.values())

    async def start(
        self, target: TargetConfig, spec: DriveTargetSpec, *, complete: Complete | None = None
    ) -> SignInStarted:
        """`complete`: what follows the browser for this flow (signing a saved target in
        again keeps it rather than adding it)."""
        loop = asyncio.get_running_loop()
        url: asyncio.Future[str] = loop.create_future()

        def got_url(address: str) -> None:
            if not url.done():
                url.set_result(address)

        flow = _Flow(secrets.token_urlsafe(16), target.name,
                     asyncio.create_task(self._run(target, spec, got_url, complete),
                                         name=f"drive-sign-in-{target.name}"))  # fmt: skip
        self._flows[flow.id] = flow
        try:
            first: set[asyncio.Future[Any]] = {url, flow.task}
            await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            await self._stop(flow)
            raise
        if not url.done():  # it failed before there was anything to open
            self._flows.pop(flow.id, None)
            flow.task.result()
            raise AssertionError("a sign-in ended without an address")  # pragma: no cover
        return SignInStarted(flow_id=flow.id, url=url.result(), target=target.name,
                             timeout=spec.sign_in_timeout)  # fmt: skip

    async def finish(self, flow_id: str) -> DriveSignedIn:
        flow = self._flow(flow_id)
        try:
            return await asyncio.shield(flow.task)
        except asyncio.CancelledError:
            if not flow.task.cancelled():
                raise  # only this wait was given up; the sign-in goes on
            raise SignInCancelled(f"The sign-in of {flow.target} was cancelled",
                                  hint="connect again to start a new one") from None  # fmt: skip
        finally:
            if flow.task.done():
                self._flows.pop(flow_id, None)

    async def cancel(self, flow_id: str) -> bool:
        """True when it was still under way."""
        flow = self._flow(flow_id)
        running = not flow.task.done()
        await self._stop(flow)
        return running

    async def close(self) -> None:
        for flow in list(self._flows.values()):
            await self._stop(flow)

    def _flow(self, flow_id: str) -> _Flow:
        flow = self._flows.get(flow_id)
        if flow is None:
            raise NotFoundError(f"No sign-in {flow_id!r} is under way",
                                hint="it finished or was cancelled; connect again")  # fmt: skip
        return flow

    async def _stop(self, flow: _Flow) -> None:
        self._flows.pop(flow.id, None)
        flow.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await flow.task

    async def _run(self, target: TargetConfig, spec: DriveTargetSpec,
                   on_url: Callable[[str], None],
                   complete: Complete | None) -> DriveSignedIn:  # fmt: skip
        try:
            await self._sign_in(target, spec, on_url)
            return await (complete or self._complete)(target, spec)
        except BaseException as exc:
            log.info("the Drive sign-in of %s did not finish: %s", target.name,
                     type(exc).__name__)  # fmt: skip
            try:
                await asyncio.shield(self._undo(target))
            except Exception as undo:  # the first failure is the one to report
                log.warning("could not forget the half-done sign-in of %s: %s", target.name,
                            type(undo).__name__)  # fmt: skip
            raise
