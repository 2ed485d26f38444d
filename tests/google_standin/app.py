"""The stand-in as an ASGI application.

Google paths: ``GET /o/oauth2/v2/auth``, ``POST /token``, ``POST /revoke``,
``GET /calendar/v3/users/me/calendarList``, ``GET /calendar/v3/calendars/{calendarId}/events``.
Control paths (not Google's): ``/_control/...``, for a stand-in running in another process.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime as dt
import html
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import fields
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.google_standin.common import ApiError, OAuthError
from tests.google_standin.control import GoogleStandin
from tests.google_standin.faults import (
    Fault,
    RecordedRequest,
    redact_headers,
    redact_params,
)
from tests.google_standin.listing import Query, list_calendars, list_events, page_number
from tests.google_standin.oauth import CALENDAR_LIST_SCOPES, EVENTS_LIST_SCOPES, AccessToken
from tests.google_standin.store import User

try:
    import orjson

    def _dumps(body: Any) -> bytes:
        return orjson.dumps(body)
except ImportError:  # pragma: no cover

    def _dumps(body: Any) -> bytes:
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_AUTH_MESSAGE = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
    "or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
_MISSING_AUTH_MESSAGE = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
_INVALID_TOKEN_CHALLENGE = 'Bearer realm="https://accounts.google.com/", error="invalid_token"'
_NO_STORE = {
    "Cache-Control": "no-cache, no-store, max-age=0, must-revalidate",
    "Pragma": "no-cache",
}


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        _dumps(body),
        status,
        headers=dict(headers or {}),
        media_type="application/json; charset=UTF-8",
    )


def google_error(error: ApiError) -> Response:
    detail: dict[str, Any] = {
        "message": error.message,
        "domain": error.domain,
        "reason": error.reason,
    }
    if error.location is not None:
        detail["location"] = error.location
        detail["locationType"] = error.location_type or "parameter"
    body: dict[str, Any] = {"code": error.code, "message": error.top_message, "errors": [detail]}
    if error.code in _STATUS:  # Google's 410 fullSyncRequired carries no canonical status
        body["status"] = _STATUS[error.code]
    return json_response({"error": body}, error.code, error.headers)


def oauth_error(error: OAuthError, headers: Mapping[str, str] | None = None) -> Response:
    return json_response(
        {"error": error.error, "error_description": error.description},
        error.status,
        {**_NO_STORE, **(headers or {})},
    )


def google_html_error(code: int, title: str, text: str) -> HTMLResponse:
    page = (
        "<!DOCTYPE html><html lang=en><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title>"
        f"<p><b>{code}.</b> <ins>That's an error.</ins><p>{html.escape(text)}"
        "<ins>That's all we know.</ins></html>"
    )
    return HTMLResponse(page, code)


def consent_error_page(status: int, error: str, description: str) -> HTMLResponse:
    page = (
        "<!DOCTYPE html><html lang=en><meta charset=utf-8>"
        "<title>Error (OAuth 2.0 policy)</title>"
        "<h1>Access blocked: this app's request is invalid</h1>"
        f"<p id=error>Error {status}: {html.escape(error)}</p>"
        f"<p id=description>{html.escape(description)}</p></html>"
    )
    return HTMLResponse(page, status)


def endpoint_of(path: str) -> str | None:
    if path == "/o/oauth2/v2/auth":
        return "auth"
    if path == "/token":
        return "token"
    if path == "/revoke":
        return "revoke"
    if path == "/calendar/v3/users/me/calendarList":
        return "calendarList"
    if path.startswith("/calendar/v3/calendars/") and path.endswith("/events"):
        return "events"
    return None


class RecordingMiddleware:
    """Outermost layer: logs every Google-path request and hands the connection's transport to
    the handlers (to drop it for a fault)."""

    def __init__(self, app: ASGIApp, standin: GoogleStandin) -> None:
        self.app = app
        self.standin = standin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cycle = getattr(send, "__self__", None)
        scope["standin.transport"] = getattr(cycle, "transport", None)
        endpoint = endpoint_of(scope["path"])
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        query = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        record = RecordedRequest(
            at=self.standin.clock.now(),
            method=scope["method"],
            path=scope["path"],
            endpoint=endpoint,
            query=redact_params(query),
            headers=redact_headers(headers),
        )
        scope["standin.record"] = record
        self.standin.log.add(record)

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not scope.get("standin.dropped"):
                record.status = int(message["status"])
            await send(message)

        await self.app(scope, receive, recording_send)


def _record(request: Request) -> RecordedRequest:
    record = request.scope.get("standin.record")
    assert isinstance(record, RecordedRequest)
    return record


class Handlers:
    def __init__(self, standin: GoogleStandin) -> None:
        self.standin = standin

    # -- faults --------------------------------------------------------------------------------

    async def _fault(
        self,
        request: Request,
        endpoint: str,
        *,
        page: int | None = None,
        calendar_id: str | None = None,
    ) -> Response | None:
        fault = self.standin.faults.take(endpoint, page, calendar_id)
        if fault is None:
            return None
        _record(request).fault = fault.describe()
        if fault.kind == "delay":
            await asyncio.sleep(fault.seconds or 0)
            return None
        if fault.kind == "hang":
            await self._hang(request, fault.seconds or self.standin.config.hang_seconds)
            await self._drop(request)
            return Response(status_code=504)
        if fault.kind == "drop":
            await self._drop(request)
            return Response(status_code=502)
        if fault.kind == "body":
            return Response(fault.body, status_code=fault.code, media_type=fault.content_type)
        return self._fault_response(fault, endpoint)

    def _fault_response(self, fault: Fault, endpoint: str) -> Response:
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        if fault.html or endpoint == "auth":
            response = google_html_error(
                fault.code,
                f"Error {fault.code} (Server Error)!!1",
                "The server encountered an error and could not complete your request. "
                "Please try again later. ",
            )
            response.headers.update(headers)
            return response
        if endpoint in ("token", "revoke"):
            error, description = fault.oauth_error()
            return oauth_error(OAuthError(error, description, fault.code), headers)
        domain, reason, message = fault.calendar_error()
        if fault.code == 401:
            headers["WWW-Authenticate"] = _INVALID_TOKEN_CHALLENGE
            return google_error(
                ApiError(
                    401,
                    reason,
                    message,
                    domain=domain,
                    location="Authorization",
                    location_type="header",
                    headers=headers,
                    top_message=_AUTH_MESSAGE,
                )
            )
        return google_error(ApiError(fault.code, reason, message, domain=domain, headers=headers))

    async def _hang(self, request: Request, seconds: float) -> None:
        await request.body()

        async def disconnected() -> None:
            while True:
                message = await request.receive()
                if message["type"] == "http.disconnect":
                    return

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(disconnected(), seconds)

    async def _drop(self, request: Request) -> None:
        request.scope["standin.dropped"] = True
        _record(request).status = None
        transport = request.scope.get("standin.transport")
        if transport is None:
            raise RuntimeError("the server does not expose its transport; cannot drop")
        transport.abort()
        for _ in range(3):  # let the server notice the closed connection
            await asyncio.sleep(0)

    # -- OAuth ---------------------------------------------------------------------------------

    async def consent(self, request: Request) -> Response:
        fault = await self._fault(request, "auth")
        if fault is not None:
            return fault
        params = {k: v for k, v in reversed(request.query_params.multi_items())}
        with self.standin.lock:
            result = self.standin.oauth.authorize(params)
        if result.redirect is not None:
            return RedirectResponse(result.redirect, status_code=302)
        return consent_error_page(result.error_status, result.error, result.error_description)

    async def _form(self, request: Request) -> list[tuple[str, str]]:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await request.body()
        if body and content_type != "application/x-www-form-urlencoded":
            raise OAuthError("invalid_request", f"Invalid content type: {content_type or 'none'}")
        return parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)

    async def token(self, request: Request) -> Response:
        fault = await self._fault(request, "token")
        if fault is not None:
            return fault
        try:
            items = await self._form(request)
            _record(request).form = redact_params(items)
            names = [name for name, _ in items]
            duplicated = sorted({n for n in names if names.count(n) > 1})
            if duplicated:
                raise OAuthError("invalid_request", f"Duplicate parameter: {duplicated[0]}")
            basic = _basic_credentials(request.headers.get("authorization"))
            with self.standin.lock:
                body = self.standin.oauth.token(dict(items), basic)
        except OAuthError as error:
            return oauth_error(error)
        return json_response(body, headers=_NO_STORE)

    async def revoke(self, request: Request) -> Response:
        fault = await self._fault(request, "revoke")
        if fault is not None:
            return fault
        try:
            items = await self._form(request)
            _record(request).form = redact_params(items)
            token = request.query_params.get("token") or dict(items).get("token")
            with self.standin.lock:
                self.standin.oauth.revoke(token)
        except OAuthError as error:
            return oauth_error(error)
        return json_response({})

    # -- Calendar API --------------------------------------------------------------------------

    def _bearer_value(self, request: Request) -> str | None:
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, value = header.partition(" ")
            return value.strip() if scheme.lower() == "bearer" and value.strip() else ""
        return request.query_params.get("access_token")

    def _authenticate(self, request: Request, scopes: frozenset[str]) -> tuple[User, AccessToken]:
        value = self._bearer_value(request)
        if value is None:
            raise ApiError(
                401,
                "required",
                "Login Required.",
                location="Authorization",
                location_type="header",
                top_message=_MISSING_AUTH_MESSAGE,
                headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
            )
        token = self.standin.oauth.bearer(value)
        if token is None:
            raise ApiError(
                401,
                "authError",
                "Invalid Credentials",
                location="Authorization",
                location_type="header",
                top_message=_AUTH_MESSAGE,
                headers={"WWW-Authenticate": _INVALID_TOKEN_CHALLENGE},
            )
        if not scopes & set(token.scopes):
            raise ApiError(
                403,
                "insufficientPermissions",
                "Insufficient Permission",
                top_message="Request had insufficient authentication scopes.",
                headers={
                    "WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", '
                    'error="insufficient_scope", scope="' + " ".join(sorted(scopes)) + '"'
                },
            )
        _record(request).user = token.email
        return self.standin.users[token.email], token

    async def calendar_list(self, request: Request) -> Response:
        record = _record(request)
        record.page = page_number(self.standin.codec, request.query_params.get("pageToken"))
        fault = await self._fault(request, "calendarList", page=record.page)
        if fault is not None:
            return fault
        try:
            with self.standin.lock:
                user, _ = self._authenticate(request, CALENDAR_LIST_SCOPES)
                body = list_calendars(
                    user,
                    self.standin.calendars,
                    Query(request.query_params.multi_items()),
                    codec=self.standin.codec,
                )
        except ApiError as error:
            return google_error(error)
        return json_response(body)

    def _calendar_id(self, request: Request) -> str:
        raw: str = request.path_params["calendar_id"]
        if raw != "primary":
            return raw
        with self.standin.lock:
            token = self.standin.oauth.bearer(self._bearer_value(request) or "")
        return token.email if token is not None else raw

    async def events(self, request: Request) -> Response:
        record = _record(request)
        record.page = page_number(self.standin.codec, request.query_params.get("pageToken"))
        record.incremental = "syncToken" in request.query_params
        record.calendar_id = self._calendar_id(request)
        fault = await self._fault(
            request, "events", page=record.page, calendar_id=record.calendar_id
        )
        if fault is not None:
            return fault
        try:
            with self.standin.lock:
                user, _ = self._authenticate(request, EVENTS_LIST_SCOPES)
                calendar_id = record.calendar_id
                entry = user.entry_by_id.get(calendar_id)
                cal = self.standin.calendars.get(calendar_id)
                if entry is None or entry.deleted or cal is None:
                    raise ApiError(404, "notFound", "Not Found")
                body = list_events(
                    cal,
                    entry,
                    user,
                    Query(request.query_params.multi_items()),
                    codec=self.standin.codec,
                    config=self.standin.config,
                    now=self.standin.clock.now(),
                )
        except ApiError as error:
            return google_error(error)
        return json_response(body)


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError("invalid_client", "Unauthorized", 401) from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthError("invalid_client", "Unauthorized", 401)
    # RFC 6749 2.3.1: both parts are form-urlencoded before base64
    return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))


# ---------------------------------------------------------------------------------------------
# control endpoints (JSON), for a stand-in in another process

ControlHandler = Callable[[dict[str, Any]], Any]


def _control_routes(standin: GoogleStandin) -> list[Route]:
    def cal(body: dict[str, Any]) -> str:
        return str(body.get("calendar_id") or standin.primary_calendar_id(body.get("email")))

    def health(_: dict[str, Any]) -> Any:
        with standin.lock:
            return {
                "status": "ok",
                "default_user": standin.oauth.default_email,
                "calendars": {k: len(c.order) for k, c in standin.calendars.items()},
            }

    def add_user(body: dict[str, Any]) -> Any:
        user = standin.add_user(
            body["email"],
            time_zone=body.get("time_zone", "UTC"),
            display_name=body.get("display_name"),
        )
        return {"email": user.email, "primary_calendar_id": user.email}

    def add_calendar(body: dict[str, Any]) -> Any:
        return {
            "id": standin.add_calendar(
                body["email"],
                body["summary"],
                time_zone=body.get("time_zone"),
                calendar_id=body.get("calendar_id"),
            )
        }

    def add_client(body: dict[str, Any]) -> Any:
        client = standin.add_client(
            body.get("client_id"), body.get("client_secret"), body.get("redirect_uris", ())
        )
        return {"client_id": client.client_id, "client_secret": client.client_secret}

    def tokens(body: dict[str, Any]) -> Any:
        kwargs: dict[str, Any] = {}
        if body.get("client_id"):
            kwargs["client_id"] = body["client_id"]
        if body.get("scopes"):
            kwargs["scopes"] = body["scopes"]
        return standin.mint_tokens(body.get("email"), **kwargs)

    def consent(body: dict[str, Any]) -> Any:
        kwargs: dict[str, Any] = {
            "email": body.get("email"),
            "deny": bool(body.get("deny", False)),
            "granted_scopes": body.get("granted_scopes"),
        }
        if body.get("default"):
            standin.set_default_consent(**kwargs)
        else:
            standin.queue_consent(**kwargs)
        return {}

    def expire_access(body: dict[str, Any]) -> Any:
        return {"expired": standin.expire_access_tokens(body.get("email"))}

    def revoke_grant(body: dict[str, Any]) -> Any:
        return {"revoked": standin.revoke_grant(body["email"], body.get("client_id"))}

    def add_event(body: dict[str, Any]) -> Any:
        return {
            "id": standin.add_event(
                cal(body),
                body["start"],
                body["end"],
                summary=body.get("summary"),
                time_zone=body.get("time_zone"),
                description=body.get("description"),
                location=body.get("location"),
                recurrence=body.get("recurrence"),
                event_id=body.get("event_id"),
            )
        }

    def update_event(body: dict[str, Any]) -> Any:
        allowed = {
            "summary",
            "description",
            "location",
            "start",
            "end",
            "time_zone",
            "status",
            "recurrence",
        }
        changes = {k: v for k, v in body.items() if k in allowed}
        standin.update_event(cal(body), body["event_id"], **changes)
        return {}

    def delete_event(body: dict[str, Any]) -> Any:
        standin.delete_event(cal(body), body["event_id"])
        return {}

    def generate(body: dict[str, Any]) -> Any:
        kwargs: dict[str, Any] = {}
        if "spacing_minutes" in body:
            kwargs["spacing"] = dt.timedelta(minutes=float(body["spacing_minutes"]))
        if "duration_minutes" in body:
            kwargs["duration"] = dt.timedelta(minutes=float(body["duration_minutes"]))
        if "all_day_every" in body:
            kwargs["all_day_every"] = int(body["all_day_every"])
        ids = standin.generate_events(cal(body), int(body["count"]), **kwargs)
        return {
            "count": len(ids),
            "first_id": ids[0] if ids else None,
            "last_id": ids[-1] if ids else None,
        }

    def churn(body: dict[str, Any]) -> Any:
        return standin.churn_events(
            cal(body),
            updates=int(body.get("updates", 10)),
            deletes=int(body.get("deletes", 0)),
            adds=int(body.get("adds", 0)),
            seed=body.get("seed"),
        )

    def invalidate(body: dict[str, Any]) -> Any:
        standin.invalidate_sync_tokens(cal(body))
        return {}

    def add_fault(body: dict[str, Any]) -> Any:
        kind = body.get("kind", "status")
        if kind == "status":
            fault = Fault.http(
                int(body["status"]),
                body.get("reason"),
                body.get("message"),
                retry_after=body.get("retry_after"),
                html=bool(body.get("html", False)),
            )
        elif kind == "hang":
            fault = Fault.hang(body.get("seconds"))
        elif kind == "drop":
            fault = Fault.drop()
        elif kind == "delay":
            fault = Fault.delay(float(body["seconds"]))
        else:
            raise ValueError(f"unknown fault kind {kind!r}")
        standin.faults.add(
            body.get("endpoint", "events"),
            fault,
            times=body.get("times", 1),
            from_page=body.get("from_page"),
            calendar_id=body.get("calendar_id"),
            after=int(body.get("after", 0)),
        )
        return {}

    def clear_faults(_: dict[str, Any]) -> Any:
        standin.faults.clear()
        return {}

    def clear_requests(_: dict[str, Any]) -> Any:
        standin.clear_requests()
        return {}

    def advance_clock(body: dict[str, Any]) -> Any:
        return {"now": standin.clock.advance(float(body["seconds"])).isoformat()}

    def configure(body: dict[str, Any]) -> Any:
        names = {f.name for f in fields(standin.config)}
        for name, value in body.items():
            if name == "expansion_horizon_days":
                standin.config.expansion_horizon = dt.timedelta(days=float(value))
            elif name in names and name not in ("extra_scopes", "expansion_horizon"):
                setattr(standin.config, name, value)
            else:
                raise ValueError(f"unknown config field {name!r}")
        return {}

    def wrap(handler: ControlHandler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            try:
                body = json.loads(raw) if raw else {}
                if request.method == "GET":
                    body.update(request.query_params)
                return json_response(handler(body))
            except (ValueError, KeyError, TypeError) as error:
                return json_response({"error": f"{type(error).__name__}: {error}"}, 400)

        return endpoint

    async def requests_endpoint(request: Request) -> Response:
        return json_response(standin.log.as_json(request.query_params.get("endpoint")))

    return [
        Route("/health", wrap(health), methods=["GET"]),
        Route("/users", wrap(add_user), methods=["POST"]),
        Route("/calendars", wrap(add_calendar), methods=["POST"]),
        Route("/clients", wrap(add_client), methods=["POST"]),
        Route("/tokens", wrap(tokens), methods=["POST"]),
        Route("/consent", wrap(consent), methods=["POST"]),
        Route("/access-tokens/expire", wrap(expire_access), methods=["POST"]),
        Route("/grants/revoke", wrap(revoke_grant), methods=["POST"]),
        Route("/events", wrap(add_event), methods=["POST"]),
        Route("/events/update", wrap(update_event), methods=["POST"]),
        Route("/events/delete", wrap(delete_event), methods=["POST"]),
        Route("/events/generate", wrap(generate), methods=["POST"]),
        Route("/events/churn", wrap(churn), methods=["POST"]),
        Route("/sync-tokens/invalidate", wrap(invalidate), methods=["POST"]),
        Route("/faults", wrap(add_fault), methods=["POST"]),
        Route("/faults", wrap(clear_faults), methods=["DELETE"]),
        Route("/requests", requests_endpoint, methods=["GET"]),
        Route("/requests", wrap(clear_requests), methods=["DELETE"]),
        Route("/clock/advance", wrap(advance_clock), methods=["POST"]),
        Route("/config", wrap(configure), methods=["POST"]),
    ]


def create_app(standin: GoogleStandin) -> ASGIApp:
    handlers = Handlers(standin)
    app = Starlette(
        routes=[
            Route("/o/oauth2/v2/auth", handlers.consent, methods=["GET"]),
            Route("/token", handlers.token, methods=["POST"]),
            Route("/revoke", handlers.revoke, methods=["POST", "GET"]),
            Route("/calendar/v3/users/me/calendarList", handlers.calendar_list, methods=["GET"]),
            Route("/calendar/v3/calendars/{calendar_id}/events", handlers.events, methods=["GET"]),
            Mount("/_control", routes=_control_routes(standin)),
        ]
    )
    return RecordingMiddleware(app, standin)
