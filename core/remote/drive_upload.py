"""One resumable Drive upload, driven chunk by chunk from a worker thread.

The library's `next_chunk` does the protocol; this module adds what it lacks:
- the session URI is handed out the moment Google issues it (before the first
  chunk is sent), so it can be persisted and a process killed at any later
  point resumes instead of starting over;
- a session opened earlier (by this process or a previous one) is continued
  after asking Google how much it holds (`Content-Range: bytes */TOTAL`);
- the loop stops between chunks when the caller cancels.

Every call uses `num_retries=0`: after a failed chunk the library would resend
the chunk from a stream it has already read (an empty body that hangs until the
server times out). Retrying is the caller's business; it resumes via the
status query instead.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from googleapiclient.errors import HttpError

FILE_FIELDS = "id,name,size,md5Checksum,sha256Checksum,modifiedTime,createdTime,appProperties"

GONE = frozenset({404, 410})
"""What Google answers for a session that expired (a week) or was finished and purged."""


class Cancelled(Exception):
    """Raised in a worker when the awaiting task was cancelled (an upload's session stays open)."""


class SessionGone(Exception):
    """The session URI no longer works: the upload has to start again."""


@dataclass(frozen=True, slots=True)
class SessionState:
    """What Google holds for a session: `done` carries the file resource once complete."""

    received: int
    done: dict[str, Any] | None = None


def query_session(http: Any, uri: str, size: int) -> SessionState:
    """Ask how many bytes of a session arrived (or get the file, if it completed)."""
    headers = {"Content-Range": f"bytes */{size}", "Content-Length": "0"}
    resp, content = http.request(uri, "PUT", headers=headers)
    status = int(resp.status)
    if status in (200, 201):
        return SessionState(size, json.loads(content.decode("utf-8")))
    if status == 308:
        return SessionState(_received(resp))
    if status in GONE:
        raise SessionGone
    raise HttpError(resp, content)  # not uri=: the session URI is a credential for the upload


def _received(resp: Any) -> int:
    """Bytes held, from a 308's `Range: bytes=0-N` (no header: nothing yet)."""
    text = resp.get("range")
    if not text:
        return 0
    return int(str(text).rsplit("-", 1)[1]) + 1


class _WatchLocation:
    """An httplib2 stand-in that reports the session URI from the start request's answer.

    `next_chunk` opens the session and sends the first chunk in one call; this is
    the only point between the two where the URI can be saved.
    """

    def __init__(self, http: Any, on_location: Callable[[str], None]) -> None:
        self._http = http
        self._on_location = on_location

    def request(self, uri: str, method: str = "GET", *args: Any, **kwargs: Any) -> Any:
        resp, content = self._http.request(uri, method, *args, **kwargs)
        if method in ("POST", "PATCH") and int(resp.status) == 200 and "location" in resp:
            self._on_location(str(resp["location"]))
        return resp, content


@dataclass
class Upload:
    """Drive one prepared request (files.create / files.update with resumable media)."""

    request: Any
    http: Any
    size: int
    cancel: threading.Event
    on_session: Callable[[str], None]
    on_acked: Callable[[int], None]
    """Called with the total bytes Google has acknowledged so far."""

    def continue_session(self, uri: str) -> dict[str, Any] | None:
        """Point the request at an existing session; the file resource if it already finished.

        Raises SessionGone when Google has forgotten the session.
        """
        state = query_session(self.http, uri, self.size)
        self.request.resumable_uri = uri
        self.request.resumable_progress = state.received
        self.on_acked(state.received)
        return state.done

    @property
    def session_uri(self) -> str | None:
        uri = self.request.resumable_uri
        return str(uri) if uri else None

    def run(self) -> dict[str, Any]:
        """Send chunks until Google returns the file resource."""
        watched = _WatchLocation(self.http, self.on_session)
        while True:
            if self.cancel.is_set():
                raise Cancelled
            try:
                _status, body = self.request.next_chunk(http=watched, num_retries=0)
            except HttpError as err:
                # With no session URI yet, the start request failed: a 404 there is about
                # the parent folder or the file, not the session.
                if self.session_uri is not None and int(err.resp.status) in GONE:
                    raise SessionGone from err
                raise
            if body is not None:
                self.on_acked(self.size)
                return dict(body)
            self.on_acked(int(self.request.resumable_progress))
