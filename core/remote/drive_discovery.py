"""The Drive v3 client, built offline from the discovery document the library ships.

Building from the shipped document avoids a network round trip to Google's
discovery service at every start, and lets the whole API be re-rooted at
another address (a test server, a proxy). Re-rooting has to rewrite the
document itself: `client_options.api_endpoint` moves the metadata calls but
not media uploads, whose URLs are derived from `rootUrl`.
"""

from __future__ import annotations

import json
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


@dataclass(frozen=True, slots=True)
class DriveClient:
    """One thread's client: httplib2 connections must never be shared between threads.

    `http` is kept beside the service for the few raw requests the library has no
    call for (a resumable session's status query, ranged reads). `files` is the
    service's files resource, built once: `service.files()` builds every method
    of the resource anew, docstrings included, and cost more client CPU than the
    requests themselves.
    """

    service: Any
    http: Any
    files: Any
    upload_url: str
    """Where simple and multipart uploads of new files go."""

    def close(self) -> None:
        self.service.close()  # closes `http` (and its sockets) too


def build_client(
    credentials: google.auth.credentials.Credentials, document: dict[str, Any], timeout: float
) -> DriveClient:
    # build_http keeps the library's rule that 308 is "resume incomplete", not a redirect.
    raw = build_http()
    raw.timeout = timeout
    http = AuthorizedHttp(credentials, http=raw)
    service = build_from_document(document, http=http)
    return DriveClient(
        service=service, http=http, files=service.files(), upload_url=upload_url(document)
    )


def upload_url(document: dict[str, Any]) -> str:
    """files.create's simple upload path under the document's root, as the library makes it."""
    media = document["resources"]["files"]["methods"]["create"]["mediaUpload"]
    return str(document["rootUrl"]) + str(media["protocols"]["simple"]["path"]).lstrip("/")
