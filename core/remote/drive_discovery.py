"""The Drive v3 client, built offline from the discovery document the library ships.

Building from the shipped document avoids a network round trip to Google's
discovery service at every start, and lets the whole API be re-rooted at
another address (a test server, a proxy). Re-rooting has to rewrite the
document itself: `client_options.api_endpoint` moves the metadata calls but
not media uploads, whose URLs are derived from `rootUrl`.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import google.auth.credentials
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import build_from_document
from googleapiclient.http import build_http

_SHIPPED = ("discovery_cache", "documents", "drive.v3.json")


@cache
def _shipped_text() -> str:
    node = resources.files("googleapiclient")
    for part in _SHIPPED:
        node = node.joinpath(part)
    return node.read_text(encoding="utf-8")


USED = {"files": ("list", "get", "create", "update", "delete"), "about": ("get",)}
"""The methods this app calls. The client builds every method of a resource (docstrings
included) when the resource is first used on a thread: each thread's client cost 4 ms,
and a Drive store keeps dozens of threads."""


@cache
def _document_text(root: str) -> str:
    doc: dict[str, Any] = json.loads(_shipped_text())
    doc["rootUrl"] = root
    doc["mtlsRootUrl"] = root
    doc["baseUrl"] = root + str(doc.get("servicePath", "drive/v3/"))
    resources = doc["resources"]
    doc["resources"] = {
        name: {**resources[name], "methods": {m: resources[name]["methods"][m] for m in used}}
        for name, used in USED.items()
    }
    return json.dumps(doc)


def drive_document(api_root: str) -> dict[str, Any]:
    """The shipped Drive v3 document with every root pointing at `api_root`, cut down to
    the methods in USED. A new copy each call: building a client edits the document."""
    root = api_root if api_root.endswith("/") else api_root + "/"
    doc: dict[str, Any] = json.loads(_document_text(root))
    return doc


class ThreadConnections:
    """The client's transport: each thread's own signed-in connection.

    httplib2 connections must never be shared between threads, but the client built
    on top of them can be: it only builds requests. One client per store then serves
    every worker thread, each request going out on the connection of the thread that
    sends it; building a client per thread (dozens of them) cost more CPU than a
    backup's first hundred requests."""

    def __init__(self, credentials: google.auth.credentials.Credentials, timeout: float) -> None:
        self._credentials = credentials
        self._timeout = timeout
        self._local = threading.local()
        self._made: list[AuthorizedHttp] = []
        self._lock = threading.Lock()

    def mine(self) -> AuthorizedHttp:
        """This thread's connection, made on first use."""
        http: AuthorizedHttp | None = getattr(self._local, "http", None)
        if http is None:
            # build_http keeps the library's rule that 308 is "resume incomplete", not a
            # redirect.
            raw = build_http()
            raw.timeout = self._timeout
            http = AuthorizedHttp(self._credentials, http=raw)
            self._local.http = http
            with self._lock:
                self._made.append(http)
        return http

    def request(self, *args: Any, **kwargs: Any) -> Any:
        return self.mine().request(*args, **kwargs)

    def close(self) -> None:
        """Closes every thread's sockets (a later request opens a new one)."""
        with self._lock:
            made = list(self._made)
        for http in made:
            http.close()


@dataclass(frozen=True, slots=True)
class DriveApi:
    """One store's client, shared by its threads (see ThreadConnections).

    `files` is the service's files resource, built once: `service.files()` builds
    every method of the resource anew, docstrings included."""

    service: Any
    files: Any
    connections: ThreadConnections
    upload_url: str
    """Where simple and multipart uploads of new files go."""

    def on_this_thread(self) -> DriveClient:
        return DriveClient(self.service, self.connections.mine(), self.files, self.upload_url)

    def close(self) -> None:
        self.connections.close()


@dataclass(frozen=True, slots=True)
class DriveClient:
    """The shared client as one worker thread uses it. `http` is that thread's own
    connection, kept beside the service for the few raw requests the library has no
    call for (a resumable session's status query, ranged reads, small multipart
    uploads); requests the library builds go out on it too."""

    service: Any
    http: Any
    files: Any
    upload_url: str


def build_api(
    credentials: google.auth.credentials.Credentials, document: dict[str, Any], timeout: float
) -> DriveApi:
    connections = ThreadConnections(credentials, timeout)
    service = build_from_document(document, http=connections)
    return DriveApi(service, service.files(), connections, upload_url(document))


def upload_url(document: dict[str, Any]) -> str:
    """files.create's simple upload path under the document's root, as the library makes it."""
    media = document["resources"]["files"]["methods"]["create"]["mediaUpload"]
    return str(document["rootUrl"]) + str(media["protocols"]["simple"]["path"]).lstrip("/")
