"""Pytest wiring: start the fake Drive and hand tests a real `googleapiclient` service.

Use from a test module:

    from tests.drive_server.fixture import drive_fixture
    drive = drive_fixture()          # a pytest fixture named "drive"

    def test_x(drive):
        service = drive.service()    # real client, pointed at the fake, closed at teardown
        drive.faults.rate_limit(endpoint="files.list")
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import pytest
from google.oauth2.credentials import Credentials
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import Resource, build_from_document
from googleapiclient.http import build_http

from tests.drive_server.auth import DRIVE_FILE_SCOPE
from tests.drive_server.discovery import shipped_document
from tests.drive_server.faults import FaultInjector
from tests.drive_server.server import DriveTestServer
from tests.drive_server.store import DriveStore
from tests.drive_server.traffic import Traffic


def discovery_document(base_url: str) -> dict[str, Any]:
    """The Drive v3 discovery document shipped with the client, re-rooted at `base_url`.

    `client_options.api_endpoint` would not move media uploads, so the root itself changes.
    """
    if not base_url.endswith("/"):
        base_url += "/"
    doc = shipped_document()
    doc["rootUrl"] = base_url
    doc["mtlsRootUrl"] = base_url
    if "baseUrl" in doc:
        doc["baseUrl"] = base_url + doc.get("servicePath", "drive/v3/")
    return doc


def drive_service(base_url: str, credentials: Credentials, *, timeout: float = 30.0) -> Resource:
    """A real Drive v3 `Resource` whose requests all go to `base_url`.

    The transport is built here (rather than `credentials=`) only to bound the socket
    timeout, so a server-side hang fails a test instead of stalling it for 60 s.
    """
    http = build_http()  # keeps the client's own setting that 308 is not a redirect
    http.timeout = timeout
    authed = AuthorizedHttp(credentials, http=http)
    service: Resource = build_from_document(discovery_document(base_url), http=authed)
    return service


def make_credentials(
    server: DriveTestServer, *, scopes: Sequence[str] = (DRIVE_FILE_SCOPE,)
) -> Credentials:
    """User credentials with a valid access token and a refresh token the server honours."""
    scope = " ".join(scopes)
    access, refresh = server.issue_tokens(scope)
    return Credentials(
        token=access,
        refresh_token=refresh,
        token_uri=server.token_uri,
        client_id=server.client_id,
        client_secret=server.client_secret,
        scopes=list(scopes),
    )


class DriveHarness:
    """What the fixture yields: the server, its state, and a way to get clients."""

    def __init__(self, server: DriveTestServer) -> None:
        self.server = server
        self._services: list[Resource] = []

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def faults(self) -> FaultInjector:
        return self.server.faults

    @property
    def traffic(self) -> Traffic:
        return self.server.traffic

    @property
    def store(self) -> DriveStore:
        return self.server.store

    def credentials(self, *, scopes: Sequence[str] = (DRIVE_FILE_SCOPE,)) -> Credentials:
        return make_credentials(self.server, scopes=scopes)

    def service(self, credentials: Credentials | None = None, *, timeout: float = 30.0) -> Resource:
        """A client closed at teardown (an unclosed httplib2 socket would warn, and warnings
        are errors in this suite)."""
        built = drive_service(self.base_url, credentials or self.credentials(), timeout=timeout)
        self._services.append(built)
        return built

    def close(self) -> None:
        for built in self._services:
            built.close()
        self._services.clear()


@contextmanager
def running_drive(**server_options: Any) -> Iterator[DriveHarness]:
    """Start a fake Drive (options as for `DriveTestServer`) and tear everything down after."""
    server = DriveTestServer(**server_options).start()
    harness = DriveHarness(server)
    try:
        yield harness
    finally:
        harness.close()
        server.stop()


FixtureScope = Literal["session", "package", "module", "class", "function"]


def drive_fixture(
    *, name: str = "drive", scope: FixtureScope = "function", **server_options: Any
) -> Any:
    """Make a pytest fixture (bind it to a module-level name) yielding a `DriveHarness`."""

    @pytest.fixture(name=name, scope=scope)
    def _drive() -> Iterator[DriveHarness]:
        with running_drive(**server_options) as harness:
            yield harness

    return _drive
