"""The test's side door into a fake Drive running in another process.

In-process tests reach the token book, the request log and the files as Python
objects. A benchmark runs the server in a process of its own (so the server
does not compete with the client it serves for the GIL, as real Drive would
not), and then needs the same few things over HTTP: tokens minted, requests
counted, bytes stored. These routes exist only when the server is started
with `control=True`, are never counted in the traffic log, and answer only a
caller that presents the OAuth client secret (which that caller set itself).
"""

from __future__ import annotations

import hmac

from aiohttp import web

from tests.drive_server.auth import DRIVE_FILE_SCOPE, TokenBook
from tests.drive_server.store import DriveStore
from tests.drive_server.traffic import Traffic

PREFIX = "/__control/"
SECRET_HEADER = "X-Control-Secret"


class Control:
    def __init__(self, store: DriveStore, tokens: TokenBook, traffic: Traffic) -> None:
        self.store = store
        self.tokens = tokens
        self.traffic = traffic

    def add_routes(self, app: web.Application) -> None:
        """Before the catch-all: aiohttp tries routes in the order they were added."""
        app.router.add_post(PREFIX + "tokens", self._tokens)
        app.router.add_get(PREFIX + "traffic", self._traffic)
        app.router.add_delete(PREFIX + "traffic", self._reset)
        app.router.add_get(PREFIX + "stored", self._stored)

    def _check(self, request: web.Request) -> None:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.tokens.client_secret.encode()):
            raise web.HTTPForbidden(text="control calls need the client secret")

    async def _tokens(self, request: web.Request) -> web.Response:
        self._check(request)
        scope = request.query.get("scope", DRIVE_FILE_SCOPE)
        return web.json_response(
            {
                "access_token": self.tokens.issue_access_token(scope),
                "refresh_token": self.tokens.issue_refresh_token(scope),
            }
        )

    async def _traffic(self, request: web.Request) -> web.Response:
        self._check(request)
        answer: dict[str, object] = {"counts": self.traffic.counts()}
        if request.query.get("records"):
            answer["records"] = [
                {"endpoint": r.endpoint, "method": r.method, "query": r.query, "status": r.status}
                for r in self.traffic.records()
            ]
        return web.json_response(answer)

    async def _reset(self, request: web.Request) -> web.Response:
        self._check(request)
        self.traffic.reset()
        return web.json_response({})

    async def _stored(self, request: web.Request) -> web.Response:
        self._check(request)
        files = [f for f in self.store.all_files() if not f.is_folder]
        folders = sum(1 for f in self.store.all_files() if f.is_folder)
        return web.json_response(
            {"files": len(files), "folders": folders, "bytes": sum(f.size for f in files)}
        )
