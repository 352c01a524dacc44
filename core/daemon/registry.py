"""The route table: one declaration feeds both the router and the OpenAPI document.

A route names its parameter, body and response models next to its handler, and the
dispatcher validates with exactly those models, so the published document cannot
drift from what the daemon accepts and returns.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel

from core.service import Service

PREFIX = "/v1"

M = TypeVar("M", bound=BaseModel)

Result = BaseModel | Sequence[BaseModel] | web.StreamResponse
Handler = Callable[["Call"], Awaitable[Result]]
H = TypeVar("H", bound=Handler)

SERVICE = web.AppKey("service", Service)


@dataclass(frozen=True)
class Call:
    """One request, its inputs already validated."""

    request: web.Request
    params: BaseModel | None = None
    body: BaseModel | None = None

    @property
    def svc(self) -> Service:
        return self.request.app[SERVICE]

    def param(self, model: type[M]) -> M:
        assert isinstance(self.params, model)
        return self.params

    def payload(self, model: type[M]) -> M:
        assert isinstance(self.body, model)
        return self.body


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    """Below PREFIX, with `{name}` for path parameters."""
    name: str
    """The `Client` method it serves (the OpenAPI operationId)."""
    summary: str
    handler: Handler
    response: type[BaseModel] | None
    """None: a free-form JSON object."""
    many: bool = False
    params: type[BaseModel] | None = None
    """Fields named in `path` come from it; the others from the query string."""
    body: type[BaseModel] | None = None
    status: int = 200
    stream: bool = False
    """A text/event-stream of `response` instead of one JSON document."""
    media: str | None = None
    """Raw bytes of this media type (a chart's PNG) instead of JSON; `response` is None."""

    @property
    def url(self) -> str:
        return PREFIX + self.path

    @property
    def path_names(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)


@dataclass
class Registry:
    routes: list[Route] = field(default_factory=list)

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        response: type[BaseModel] | None,
        many: bool = False,
        params: type[BaseModel] | None = None,
        body: type[BaseModel] | None = None,
        status: int = 200,
        stream: bool = False,
        media: str | None = None,
    ) -> Callable[[H], H]:
        def add(handler: H) -> H:
            route = Route(method, path, handler.__name__, summary, handler, response, many,
                          params, body, status, stream, media)  # fmt: skip
            if params is not None:
                missing = set(route.path_names) - set(params.model_fields)
                if missing:
                    raise ValueError(f"{path}: {sorted(missing)} not in {params.__name__}")
            self.routes.append(route)
            return handler

        return add
