"""Errors as RFC 9457 problem details.

Every error the service produces goes through `install_error_handlers`: our own `AppError`
subclasses, request validation, routing errors from Starlette, database and Redis outages, and any
unexpected exception (logged with its request id, answered without internals).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://ai-workflow-engine.dev/problems/"

log = structlog.get_logger(__name__)


class ValidationErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(examples=[PROBLEM_BASE + "not-found"])
    title: str
    status: int
    detail: str
    errors: list[ValidationErrorItem] | None = Field(
        default=None, description="Present on 422: one entry per offending input."
    )


class AppError(Exception):
    """Base of every error the service raises on purpose."""

    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal Server Error"

    def __init__(
        self,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[Mapping[str, Any]] | None = None,
        keep_changes: bool = False,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})
        self.errors = list(errors) if errors is not None else None
        # True when the request's database work is bookkeeping of this very error (a failed
        # login counted, a stolen token's session revoked): the session commits it anyway.
        self.keep_changes = keep_changes


class BadRequest(AppError):
    status, slug, title = 400, "bad-request", "Bad Request"


class Unauthorized(AppError):
    status, slug, title = 401, "unauthorized", "Unauthorized"

    def __init__(
        self, detail: str = "Missing or invalid bearer token", *, keep_changes: bool = False
    ) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"}, keep_changes=keep_changes)


class NotFound(AppError):
    status, slug, title = 404, "not-found", "Not Found"


class Conflict(AppError):
    status, slug, title = 409, "conflict", "Conflict"


class InvalidInput(AppError):
    """A 422 found by a service (a reference that does not resolve, say), with its field path."""

    status, slug, title = 422, "validation-error", "Unprocessable Content"

    def __init__(self, loc: Sequence[str | int], msg: str, type_: str = "value_error") -> None:
        super().__init__(msg, errors=[{"loc": list(loc), "msg": msg, "type": type_}])


class TooManyRequests(AppError):
    status, slug, title = 429, "too-many-requests", "Too Many Requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})


class ServiceUnavailable(AppError):
    status, slug, title = 503, "service-unavailable", "Service Unavailable"

    def __init__(self, detail: str, retry_after: int | None = 5) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after else {}
        super().__init__(detail, headers=headers)


def problem_response(
    status: int,
    title: str,
    detail: str,
    slug: str,
    *,
    headers: Mapping[str, str] | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = list(errors)
    return JSONResponse(
        body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_MEDIA_TYPE
    )


def _validation_items(exc: RequestValidationError) -> list[dict[str, Any]]:
    items = []
    for error in exc.errors():
        loc = [p if isinstance(p, int) else str(p) for p in error.get("loc", ())]
        if error.get("type") == "extra_forbidden":
            msg = "Unknown or read-only field"
        else:
            msg = str(error.get("msg", "Invalid value")).removeprefix("Value error, ")
        items.append({"loc": loc or ["body"], "msg": msg, "type": str(error.get("type"))})
    return items or [{"loc": ["body"], "msg": "Invalid request", "type": "value_error"}]


_STATUS_TITLES = {
    400: ("bad-request", "Bad Request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not Found"),
    405: ("method-not-allowed", "Method Not Allowed"),
    406: ("not-acceptable", "Not Acceptable"),
    413: ("content-too-large", "Content Too Large"),
    415: ("unsupported-media-type", "Unsupported Media Type"),
}


def install_error_handlers(app: FastAPI, *, db_retry_after: int, redis_retry_after: int) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError) -> JSONResponse:
        return problem_response(
            exc.status, exc.title, exc.detail, exc.slug, headers=exc.headers, errors=exc.errors
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        items = _validation_items(exc)
        first = items[0]
        where = ".".join(str(p) for p in first["loc"])
        detail = f"{where}: {first['msg']}" + (
            f" (and {len(items) - 1} more)" if len(items) > 1 else ""
        )
        return problem_response(
            422, "Unprocessable Content", detail, "validation-error", errors=items
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # the framework's "error parsing the body" (undecodable bytes): invalid input
            detail = exc.detail if isinstance(exc.detail, str) else "Invalid request body"
            return problem_response(
                422,
                "Unprocessable Content",
                f"body: {detail}",
                "validation-error",
                errors=[{"loc": ["body"], "msg": detail, "type": "json_invalid"}],
            )
        slug, title = _STATUS_TITLES.get(exc.status_code, ("http-error", "HTTP Error"))
        detail = exc.detail if isinstance(exc.detail, str) else title
        headers = dict(exc.headers or {})
        if exc.status_code == 404 and detail == "Not Found":
            detail = "No such resource"
        if exc.status_code == 405:
            allowed = _allowed_methods(request)
            headers["Allow"] = ", ".join(allowed)
            detail = f"{request.method} is not allowed here; allowed: {', '.join(allowed)}"
        return problem_response(exc.status_code, title, detail, slug, headers=headers)

    @app.exception_handler(PoolTimeoutError)
    async def _database_busy(request: Request, exc: PoolTimeoutError) -> JSONResponse:
        # every pooled connection stayed busy for DATABASE_POOL_TIMEOUT: answer now, not later
        log.warning("database_pool_exhausted", path=request.url.path)
        return problem_response(
            503,
            "Service Unavailable",
            "The service is at its database capacity; retry shortly.",
            "database-busy",
            headers={"Retry-After": str(db_retry_after)},
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _database_down(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, DBAPIError) and _is_sql_mistake(exc):
            return await _database_error(request, exc)
        log.warning("database_unavailable", error_class=type(exc).__name__, path=request.url.path)
        return problem_response(
            503,
            "Service Unavailable",
            "The database is unavailable; retry shortly.",
            "database-unavailable",
            headers={"Retry-After": str(db_retry_after)},
        )

    @app.exception_handler(DBAPIError)
    async def _database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:
            return await _database_down(request, exc)
        if await _schema_not_ready(request):
            # tables missing because `migrate` has not run yet: not ready, like /health/ready says
            log.warning("database_schema_not_migrated", path=request.url.path)
            return problem_response(
                503,
                "Service Unavailable",
                "The database schema is not ready; retry shortly.",
                "database-not-migrated",
                headers={"Retry-After": str(db_retry_after)},
            )
        log.error("database_error", error_class=type(exc.orig).__name__, path=request.url.path)
        return _internal()

    @app.exception_handler(RedisError)
    async def _redis_down(request: Request, exc: RedisError) -> JSONResponse:
        log.warning("redis_unavailable", error_class=type(exc).__name__, path=request.url.path)
        return problem_response(
            503,
            "Service Unavailable",
            "Shared state (Redis) is unavailable; retry shortly.",
            "redis-unavailable",
            headers={"Retry-After": str(redis_retry_after)},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path)
        response = _internal()
        # this handler runs outside the request-context middleware (Starlette calls it from its
        # outermost layer), so the request id the log line carries is added here
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        if request_id:
            response.headers["X-Request-ID"] = str(request_id)
        return response


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path, asked of the router itself: FastAPI keeps
    included routers as nested entries, so the top-level routes do not list their methods."""
    from starlette.routing import Match

    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


_SQLITE_OUTAGES = ("locked", "unable to open", "disk i/o", "disk is full", "readonly", "interrupt")


def _is_sql_mistake(exc: DBAPIError) -> bool:
    """sqlite3 raises OperationalError for mistakes in SQL too ("no such table", "syntax error"):
    those are not an unavailable database."""
    import sqlite3

    if exc.connection_invalidated or not isinstance(exc.orig, sqlite3.OperationalError):
        return False
    message = str(exc.orig).lower()
    return not any(marker in message for marker in _SQLITE_OUTAGES)


async def _schema_not_ready(request: Request) -> bool:
    """True when the database answers but its schema is not at the latest migration."""
    from ai_workflow_engine.core.migrations import pending_reason

    try:
        async with asyncio.timeout(2):
            return await pending_reason(request.app.state.engine) is not None
    except Exception:
        return False


def _internal() -> JSONResponse:
    return problem_response(
        500,
        "Internal Server Error",
        "An unexpected error occurred; it has been logged.",
        "internal-error",
    )
