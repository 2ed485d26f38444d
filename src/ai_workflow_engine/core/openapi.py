"""The OpenAPI document, made to tell the truth about errors.

Routes document their own success responses and the errors particular to them. Here every
operation gets the problems any request can meet — 422 when it takes input, 401 when it needs a
token, 413 for a body, 503 when the database or Redis is down — and every error response is
declared as `application/problem+json` with the `Problem` schema, which is what is sent.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ai_workflow_engine.core.errors import PROBLEM_MEDIA_TYPE, Problem

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds after which a retry may succeed.",
        "schema": {"type": "integer"},
    }
}
_COMMON = {
    "401": "Missing, invalid, expired or revoked bearer token",
    "413": "Request body too large",
    "422": "Invalid input: `errors` names each offending field",
    "503": "A dependency (database or Redis) is unavailable; retry after `Retry-After`",
}
_NO_DEPENDENCY = {"/health", "/metrics"}


_RETRYABLE = ("429", "502", "503", "504")


def _problem_response(
    description: str, status: str, headers: dict[str, Any] | None = None
) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_REF}},
    }
    headers = dict(headers or {})
    if status in _RETRYABLE:
        headers.update(_RETRY_AFTER)
    if headers:
        response["headers"] = headers
    return response


def _complete(path: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    wanted = []
    if operation.get("parameters") or operation.get("requestBody"):
        wanted.append("422")
    if operation.get("requestBody"):
        wanted.append("413")
    if operation.get("security"):
        wanted.append("401")
    if path not in _NO_DEPENDENCY:
        wanted.append("503")
    for status in wanted:
        responses.setdefault(status, {"description": _COMMON[status]})
    for status, response in responses.items():
        if not status.isdigit() or int(status) < 400:
            continue
        content: dict[str, Any] = response.get("content") or {}
        first: dict[str, Any] = next(iter(content.values()), {})
        schema: dict[str, Any] | None = first.get("schema")
        if schema is None or schema.get("$ref", "").endswith(("/Problem", "/HTTPValidationError")):
            responses[status] = _problem_response(
                response.get("description", ""), status, response.get("headers")
            )
        elif status in _RETRYABLE:
            response.setdefault("headers", _RETRY_AFTER)


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        problem_schemas = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(problem_schemas.pop("$defs", {}))
        components["Problem"] = problem_schemas
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        for path, item in schema.get("paths", {}).items():
            for operation in item.values():
                if isinstance(operation, dict) and "responses" in operation:
                    _complete(path, operation)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
