"""Failures on the wire: the daemon turns each into a JSON body, the client turns it back.

A caller catches `NotFoundError` the same whether the service runs in its process or
behind the socket, so the body names the error's class and carries what the CLI
prints (message, hint, exit code). Anything unexpected becomes a bare 500: the
traceback goes to the daemon's log, never to a client that may print it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator

from aiohttp import web
from pydantic import BaseModel, ValidationError

from core.errors import (
    BadInputError,
    ExitCode,
    NotFoundError,
    TierkeeperError,
    WorkspaceLockedError,
)

log = logging.getLogger(__name__)


class DaemonUnavailableError(TierkeeperError):
    """The daemon went away (stopped, crashed) while a client was talking to it."""


class ErrorDetail(BaseModel):
    message: str
    hint: str | None = None
    exit_code: int
    kind: str = "TierkeeperError"
    """The error's class name, for clients that map it back."""


class ErrorBody(BaseModel):
    error: ErrorDetail


def http_status(exc: TierkeeperError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, BadInputError):
        return 400
    if isinstance(exc, WorkspaceLockedError) or exc.exit_code == ExitCode.NEEDS_USER:
        return 409
    if isinstance(exc, DaemonUnavailableError):
        return 503
    return 422  # a failure meant for the user (a full disk, a broken DB), not a daemon bug


def error_response(status: int, detail: ErrorDetail) -> web.Response:
    body = ErrorBody(error=detail).model_dump_json().encode("utf-8")
    return web.Response(status=status, body=body, content_type="application/json")


def describe(exc: ValidationError) -> str:
    """Where and what, without echoing the values (they may hold a path or a secret)."""
    parts = []
    for e in exc.errors(include_url=False, include_input=False)[:5]:
        loc = ".".join(str(x) for x in e["loc"])
        parts.append(f"{loc}: {e['msg']}" if loc else str(e["msg"]))
    return "; ".join(parts)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except TierkeeperError as exc:
        detail = ErrorDetail(message=exc.message, hint=exc.hint, exit_code=int(exc.exit_code),
                             kind=type(exc).__name__)  # fmt: skip
        return error_response(http_status(exc), detail)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, _http_detail(request, exc))
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        detail = ErrorDetail(
            message="The daemon hit an internal error",
            hint="its log has the details",
            exit_code=int(ExitCode.FAILED),
            kind="InternalError",
        )
        return error_response(500, detail)


def _http_detail(request: web.Request, exc: web.HTTPException) -> ErrorDetail:
    if exc.status in (404, 405):
        message = f"{exc.reason}: {request.method} {request.path}"
        hint: str | None = "GET /v1/openapi.json lists the routes"
    else:
        default = f"{exc.status}: {exc.reason}"
        message = exc.text if exc.text and exc.text != default else exc.reason
        hint = None
    code = ExitCode.BAD_INPUT if exc.status < 500 else ExitCode.FAILED
    return ErrorDetail(message=message, hint=hint, exit_code=int(code), kind="HTTPError")


# the client's side --------------------------------------------------------------------


def error_from_body(status: int, raw: bytes) -> TierkeeperError:
    """The same exception class the service raised, when this process knows it."""
    try:
        detail = ErrorBody.model_validate_json(raw).error
    except ValidationError:
        return TierkeeperError(f"The daemon answered HTTP {status} without an explanation")
    cls = _known_classes().get(detail.kind)
    if cls is None:
        if status == 404:
            cls = NotFoundError
        elif detail.exit_code == ExitCode.BAD_INPUT:
            cls = BadInputError
        else:
            cls = TierkeeperError
    cls = _constructible(cls)
    exc = cls.__new__(cls)
    TierkeeperError.__init__(exc, detail.message, hint=detail.hint)
    try:
        exc.exit_code = ExitCode(detail.exit_code)
    except ValueError:
        exc.exit_code = ExitCode.FAILED
    return exc


def _subclasses(cls: type[TierkeeperError]) -> Iterator[type[TierkeeperError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _known_classes() -> dict[str, type[TierkeeperError]]:
    known: dict[str, type[TierkeeperError]] = {"TierkeeperError": TierkeeperError}
    for sub in _subclasses(TierkeeperError):
        known.setdefault(sub.__name__, sub)
    return known


def _constructible(cls: type[TierkeeperError]) -> type[TierkeeperError]:
    """The nearest class whose instances need nothing but a message and a hint.

    A class with its own constructor (a locked workspace's pid, a wait's resource) has
    attributes the wire does not carry; its parent is the honest stand-in."""
    for klass in cls.__mro__:
        if isinstance(klass, type) and issubclass(klass, TierkeeperError) and _plain(klass):
            return klass
    return TierkeeperError


def _plain(cls: type[TierkeeperError]) -> bool:
    for klass in cls.__mro__:
        if klass is TierkeeperError:
            return True
        if "__init__" in vars(klass):
            return False
    return False
