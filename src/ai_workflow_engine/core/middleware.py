"""One ASGI middleware for what every request needs: an id, a size limit, metrics, a log line."""

from __future__ import annotations

import re
import secrets
import time
from functools import lru_cache
from typing import Any

import structlog
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ai_workflow_engine.core.errors import problem_response
from ai_workflow_engine.core.metrics import REQUEST_SECONDS, REQUESTS

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
log = structlog.get_logger("ai_workflow_engine.access")


class _BodyTooLarge(Exception):
    pass


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # the logger as configured when the app is built: a module-level structlog logger is a
        # proxy that builds its bound logger again at every call
        self._log = log.bind()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else secrets.token_hex(16)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(scope, receive, send, request_id)
            self._observe(scope, 413, started)
            return
        if declared is None:
            # No length given (chunked): read the body now, up to the limit, so that an oversized
            # one is a 413 before any parser sees it (FastAPI turns an exception raised while it
            # reads the body into "error parsing the body", a 422).
            buffered: list[Message] = []
            size = 0
            while True:
                message = await receive()
                buffered.append(message)
                if message["type"] != "http.request":
                    break
                size += len(message.get("body", b""))
                if size > self.max_body_bytes:
                    await self._too_large(scope, receive, send, request_id)
                    self._observe(scope, 413, started)
                    return
                if not message.get("more_body", False):
                    break
            upstream = receive

            async def replay() -> Message:
                return buffered.pop(0) if buffered else await upstream()

            receive = replay

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _BodyTooLarge
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        except _BodyTooLarge:
            if not response_started:
                await self._too_large(scope, receive, send, request_id)
            status = 413
        finally:
            self._observe(scope, status, started)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        response = problem_response(
            413,
            "Content Too Large",
            f"The request body exceeds {self.max_body_bytes} bytes.",
            "content-too-large",
            headers={"x-request-id": request_id},
        )
        await response(scope, receive, send)

    def _observe(self, scope: Scope, status: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        route = _route_template(scope)
        method = scope["method"]
        counted, timed = _request_metrics(method, route, status)
        counted.inc()
        timed.observe(elapsed)
        self._log.info(
            "request",
            method=method,
            route=route,
            status=status,
            duration_ms=round(elapsed * 1000, 2),
        )


@lru_cache(maxsize=4096)
def _request_metrics(method: str, route: str, status: int) -> tuple[Any, Any]:
    """The request counter and histogram of one method, route and status; looked up once (a
    label lookup costs more than the observation). Routes are templates, so the keys are few."""
    return (
        REQUESTS.labels(method, route, str(status)),
        REQUEST_SECONDS.labels(method, route, str(status)),
    )


def _route_template(scope: Scope) -> str:
    """The matched route's path template, so metrics do not explode with ids."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    app: Any = scope.get("app")
    for candidate in getattr(getattr(app, "router", None), "routes", []):
        match, _ = candidate.matches(scope)
        if match is Match.FULL:
            return str(getattr(candidate, "path", "unmatched"))
    return "unmatched"
