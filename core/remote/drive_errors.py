"""Drive and transport failures turned into the store errors a job can act on.

Google signals "slow down" in two ways (429, and 403 with a rate-limit reason)
and "you are out of space" with a 403 too, so the status alone cannot decide:
the reason in Google's error body does. Messages are built here from the
status, the reason and Google's own text — never from the exception's string,
which carries the request URI, and a resumable session URI is itself a
credential for its upload.
"""

from __future__ import annotations

import http.client
import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import google.auth.exceptions
import httplib2
from googleapiclient.errors import HttpError

from core.remote.base import (
    NeedsReconnect,
    ObjectNotFound,
    PermanentError,
    RemoteError,
    TransientError,
)

RATE_LIMIT_REASONS = frozenset({"userRateLimitExceeded", "rateLimitExceeded"})
QUOTA_REASONS = frozenset({"storageQuotaExceeded", "quotaExceeded"})
TRANSIENT_STATUSES = frozenset({408, 429})

TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # ConnectionError, TimeoutError, socket.gaierror, ssl.SSLError
    http.client.HTTPException,
    httplib2.HttpLib2Error,
    google.auth.exceptions.TransportError,
)


def reconnect_hint(store: str) -> str:
    return f"run `tierkeeper target reconnect {store}` to sign in to Google again"


def human_bytes(n: float) -> str:
    """Decimal units, as Google's own storage page shows them (15 GB, not 13.97 GiB)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def status_of(err: HttpError) -> int:
    return int(err.resp.status)


def reason_of(err: HttpError) -> str | None:
    """Google's machine-readable reason (`errors[0].reason`), if the body has one."""
    details: Any = err.error_details
    if isinstance(details, list):
        for item in details:
            if isinstance(item, dict) and isinstance(item.get("reason"), str):
                return str(item["reason"])
    try:
        body = json.loads(err.content.decode("utf-8"))
        first = body["error"]["errors"][0]["reason"]
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None
    return first if isinstance(first, str) else None


def retry_after(headers: Any) -> float | None:
    """Seconds from a `Retry-After` header: a number, or an HTTP date."""
    try:
        text = headers.get("retry-after")
    except AttributeError:
        return None
    if not text:
        return None
    text = str(text).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def is_quota_error(err: BaseException) -> bool:
    return isinstance(err, HttpError) and status_of(err) == 403 and reason_of(err) in QUOTA_REASONS


def map_error(err: BaseException, *, what: str, store: str) -> RemoteError | None:
    """The store error for `err`, or None when it is not a Drive or network failure.

    `what` names the operation for the message ("upload p1/a.zst").
    """
    if isinstance(err, RemoteError):
        return err
    if isinstance(err, HttpError):
        return _map_http(err, what=what, store=store)
    if isinstance(err, google.auth.exceptions.RefreshError):
        if err.retryable:
            return TransientError(f"Google sign-in for {store} could not refresh; will retry")
        # The body says e.g. invalid_grant; it never holds the token, but keep it out anyway.
        return NeedsReconnect(
            f"Google Drive ({store}) refused this app's sign-in: the access was revoked "
            "or has expired",
            hint=reconnect_hint(store),
        )
    if isinstance(err, TRANSPORT_ERRORS):
        kind = type(err).__name__
        detail = getattr(err, "strerror", None) or kind
        return TransientError(f"network error while trying to {what} on {store}: {detail}")
    return None


def _map_http(err: HttpError, *, what: str, store: str) -> RemoteError:
    status, reason = status_of(err), reason_of(err)
    google_says = (err.reason or "").strip() or http.client.responses.get(status, "")
    label = f"{status} {reason}" if reason else str(status)
    if status == 401:
        return NeedsReconnect(
            f"Google Drive ({store}) no longer accepts this app's sign-in ({label})",
            hint=reconnect_hint(store),
        )
    wait = retry_after(err.resp)
    if status == 403 and reason in RATE_LIMIT_REASONS:
        return TransientError(
            f"Google Drive rate limit while trying to {what} ({label})", retry_after=wait
        )
    if status in TRANSIENT_STATUSES or status >= 500:
        return TransientError(
            f"Google Drive could not {what} just now: {google_says} ({label})", retry_after=wait
        )
    if status == 404:
        return ObjectNotFound(f"not found on Google Drive ({store}) while trying to {what}")
    if status == 403 and reason in QUOTA_REASONS:
        return PermanentError(
            f"Google Drive ({store}) is full: {google_says}",
            hint="free up space in Google Drive (and empty its bin) or choose another target",
        )
    return PermanentError(f"Google Drive refused to {what}: {google_says} ({label})")


def quota_full(
    *, store: str, key: str, used: int | None, limit: int | None, needed: int
) -> PermanentError:
    """The quota error with the numbers a person needs to decide what to delete."""
    if used is not None and limit is not None:
        state = f"{human_bytes(used)} of {human_bytes(limit)} used"
        free = max(0, limit - used)
        need = f"uploading {key} needs {human_bytes(needed)} but {human_bytes(free)} is free"
    elif used is not None:
        state = f"{human_bytes(used)} used"
        need = f"uploading {key} needs {human_bytes(needed)}"
    else:
        state = "the storage quota is used up"
        need = f"uploading {key} needs {human_bytes(needed)}"
    return PermanentError(
        f"Google Drive ({store}) is full: {state}; {need}",
        hint="free up space in Google Drive (and empty its bin) or choose another target",
    )
