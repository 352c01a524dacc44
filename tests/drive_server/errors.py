"""Google-shaped error bodies.

The real client (`googleapiclient.errors.HttpError`) reads `error.errors[0].reason` to decide
what went wrong and whether to retry, so every failure the fake server produces carries the
same JSON shape and HTTP status Google would send.
"""

from __future__ import annotations

from typing import Any

_GRPC_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    416: "OUT_OF_RANGE",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
}


class DriveError(Exception):
    """A failure answered to the client as a Google JSON error body."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        *,
        domain: str = "global",
        location: str | None = None,
        location_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.domain = domain
        self.location = location
        self.location_type = location_type
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "message": self.message,
            "domain": self.domain,
            "reason": self.reason,
        }
        if self.location is not None:
            detail["location"] = self.location
        if self.location_type is not None:
            detail["locationType"] = self.location_type
        return {
            "error": {
                "code": self.status,
                "message": self.message,
                "errors": [detail],
                "status": _GRPC_STATUS.get(self.status, "UNKNOWN"),
            }
        }


def not_found(file_id: str) -> DriveError:
    return DriveError(
        404,
        "notFound",
        f"File not found: {file_id}.",
        location="fileId",
        location_type="parameter",
    )


def bad_request(message: str) -> DriveError:
    return DriveError(400, "badRequest", message)


def invalid_parameter(name: str, message: str = "Invalid Value") -> DriveError:
    return DriveError(400, "invalid", message, location=name, location_type="parameter")


def required_parameter(name: str) -> DriveError:
    return DriveError(
        400,
        "required",
        f"The '{name}' parameter is required for this method.",
        location=name,
        location_type="parameter",
    )


def auth_error() -> DriveError:
    return DriveError(
        401,
        "authError",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, "
        "login cookie or other valid authentication credential.",
        location="Authorization",
        location_type="header",
        headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
    )


def _retry_after(seconds: float | None) -> dict[str, str]:
    return {} if seconds is None else {"Retry-After": f"{seconds:g}"}


def user_rate_limit(retry_after: float | None = None) -> DriveError:
    return DriveError(
        403,
        "userRateLimitExceeded",
        "User rate limit exceeded.",
        domain="usageLimits",
        headers=_retry_after(retry_after),
    )


def rate_limit(retry_after: float | None = None) -> DriveError:
    return DriveError(
        429,
        "rateLimitExceeded",
        "Rate limit exceeded.",
        domain="usageLimits",
        headers=_retry_after(retry_after),
    )


def quota_exceeded() -> DriveError:
    return DriveError(
        403,
        "storageQuotaExceeded",
        "The user's Drive storage quota has been exceeded.",
        domain="usageLimits",
    )


def backend_error(status: int = 500) -> DriveError:
    if status == 500:
        return DriveError(500, "internalError", "Internal Error")
    return DriveError(status, "backendError", "Backend Error")
