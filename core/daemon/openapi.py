"""The OpenAPI 3.1 document, assembled from the route table and the pydantic models.

Generated, never written by hand: every path comes from a registered route and every
schema from the model that route validates or returns, so the document describes the
daemon that serves it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from core import __version__
from core.daemon.errors import ErrorBody
from core.daemon.registry import Route
from core.daemon.socket_path import API_VERSION

REF = "#/components/schemas/{model}"


def openapi_document(routes: Sequence[Route]) -> dict[str, Any]:
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorBody, "serialization")]
    for r in routes:
        if r.response is not None:
            wanted.append((r.response, "serialization"))
        if r.body is not None:
            wanted.append((r.body, "validation"))
        if r.params is not None:
            wanted.append((r.params, "validation"))
    refs, defs = models_json_schema(list(dict.fromkeys(wanted)), ref_template=REF)
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))

    def ref(model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        return dict(refs[(model, mode)])

    error = {
        "description": "what went wrong, for a person",
        "content": {"application/json": {"schema": ref(ErrorBody, "serialization")}},
    }
    paths: dict[str, dict[str, Any]] = {}
    param_models: set[str] = set()
    for r in routes:
        op: dict[str, Any] = {"operationId": r.name, "summary": r.summary}
        if r.params is not None:
            name = ref(r.params, "validation")["$ref"].rsplit("/", 1)[1]
            param_models.add(name)
            op["parameters"] = _parameters(r, schemas[name])
        if r.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(r.body, "validation")}},
            }
        op["responses"] = {str(r.status): _response(r, ref), "4XX": error, "5XX": error}
        paths.setdefault(r.url, {})[r.method.lower()] = op
    for name in param_models:
        schemas.pop(name, None)  # described as parameters, not as documents
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tierkeeper daemon",
            "version": f"{API_VERSION} ({__version__})",
            "description": "The local API of one workspace's daemon, over a Unix socket "
            "that only its user can reach. Mirrors the Python `core.client.Client`.",
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _parameters(route: Route, schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", []))
    in_path = set(route.path_names)
    return [
        {
            "name": name,
            "in": "path" if name in in_path else "query",
            "required": name in in_path or name in required,
            "schema": prop,
        }
        for name, prop in schema.get("properties", {}).items()
    ]


def _response(route: Route, ref: Any) -> dict[str, Any]:
    if route.media is not None:
        return {"description": route.summary,
                "content": {route.media: {"schema": {"type": "string",
                                                     "format": "binary"}}}}  # fmt: skip
    if route.response is None:
        return {"description": route.summary,
                "content": {"application/json": {"schema": {"type": "object"}}}}  # fmt: skip
    schema = ref(route.response, "serialization")
    if route.stream:
        return {"description": "one `data:` line of JSON per event, a comment as heartbeat",
                "content": {"text/event-stream": {"schema": {"type": "string"},
                                                  "x-event-schema": schema}}}  # fmt: skip
    if route.many:
        schema = {"type": "array", "items": schema}
    return {"description": route.summary, "content": {"application/json": {"schema": schema}}}
