"""Fault injection and the request log.

Endpoint names: ``auth`` (consent), ``token``, ``revoke``, ``calendarList``, ``events``; ``*``
matches all of them.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

ENDPOINTS = ("auth", "token", "revoke", "calendarList", "events")
FaultKind = Literal["status", "hang", "drop", "delay", "body"]

# Google's reasons per status code for the Calendar API (domain, reason, message).
_DEFAULT_REASONS: dict[int, tuple[str, str, str]] = {
    400: ("global", "badRequest", "Bad Request"),
    401: ("global", "authError", "Invalid Credentials"),
    403: ("usageLimits", "rateLimitExceeded", "Rate Limit Exceeded"),
    404: ("global", "notFound", "Not Found"),
    409: ("global", "conflict", "Conflict"),
    410: ("global", "fullSyncRequired", "Sync token is no longer valid, a full sync is required."),
    412: ("global", "conditionNotMet", "Precondition Failed"),
    429: ("usageLimits", "rateLimitExceeded", "Rate Limit Exceeded"),
    500: ("global", "backendError", "Backend Error"),
    502: ("global", "backendError", "Bad Gateway"),
    503: ("global", "backendError", "The service is currently unavailable."),
    504: ("global", "backendError", "Deadline exceeded"),
}
_REASON_DEFAULTS: dict[str, tuple[str, str]] = {
    "rateLimitExceeded": ("usageLimits", "Rate Limit Exceeded"),
    "userRateLimitExceeded": ("usageLimits", "User Rate Limit Exceeded"),
    "quotaExceeded": ("usageLimits", "Calendar usage limits exceeded."),
    "dailyLimitExceeded": ("usageLimits", "Daily Limit Exceeded"),
    "forbidden": ("global", "Forbidden"),
    "insufficientPermissions": ("global", "Insufficient Permission"),
}
_OAUTH_DEFAULTS: dict[int, tuple[str, str]] = {
    400: ("invalid_request", "Bad Request"),
    401: ("invalid_client", "Unauthorized"),
    403: ("access_denied", "Forbidden"),
    429: ("rate_limit_exceeded", "Rate limit exceeded"),
    500: ("internal_failure", "Backend Error"),
    503: ("temporarily_unavailable", "The service is currently unavailable."),
}


@dataclass(frozen=True)
class Fault:
    """What to do instead of (or before) answering a request. Build with the class methods."""

    kind: FaultKind
    code: int = 0
    reason: str | None = None
    message: str | None = None
    seconds: float | None = None
    retry_after: int | None = None
    html: bool = False  # answer with an HTML error page, as Google's front end does for 502
    body: bytes = b""  # kind "body": answered as given, with `content_type`
    content_type: str = "application/json; charset=UTF-8"

    @classmethod
    def http(
        cls,
        code: int,
        reason: str | None = None,
        message: str | None = None,
        *,
        retry_after: int | None = None,
        html: bool = False,
    ) -> Fault:
        return cls(
            "status", code, reason, message, retry_after=retry_after, html=html or code == 502
        )

    @classmethod
    def rate_limit(cls, *, user: bool = False, code: int = 403) -> Fault:
        """403 rateLimitExceeded / userRateLimitExceeded, or ``code=429``."""
        return cls.http(code, "userRateLimitExceeded" if user else "rateLimitExceeded")

    @classmethod
    def raw(
        cls, body: bytes, code: int = 200, *, content_type: str = "application/json; charset=UTF-8"
    ) -> Fault:
        """Answer `code` with exactly `body`: a broken or hostile upstream's answer."""
        return cls("body", code, body=body, content_type=content_type)

    @classmethod
    def hang(cls, seconds: float | None = None) -> Fault:
        """Send nothing until the client gives up (or ``seconds`` pass), then drop the
        connection."""
        return cls("hang", seconds=seconds)

    @classmethod
    def drop(cls) -> Fault:
        """Close the TCP connection without a response."""
        return cls("drop")

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Wait, then answer normally."""
        return cls("delay", seconds=seconds)

    def describe(self) -> str:
        if self.kind == "status":
            return f"status {self.code} {self.reason or ''}".strip()
        if self.kind == "body":
            return f"body {self.code} ({len(self.body)} bytes)"
        return self.kind if self.seconds is None else f"{self.kind} {self.seconds}s"

    def calendar_error(self) -> tuple[str, str, str]:
        """(domain, reason, message) for a Calendar API error body."""
        domain, reason, message = _DEFAULT_REASONS.get(
            self.code, ("global", "backendError", "Error")
        )
        if self.reason is not None:
            reason = self.reason
            domain, message = _REASON_DEFAULTS.get(self.reason, (domain, message))
        return domain, reason, self.message or message

    def oauth_error(self) -> tuple[str, str]:
        error, description = _OAUTH_DEFAULTS.get(self.code, ("server_error", "Error"))
        return self.reason or error, self.message or description


@dataclass
class FaultRule:
    endpoint: str
    fault: Fault
    remaining: int | None  # None: fire forever
    from_page: int | None = None
    calendar_id: str | None = None
    after: int = 0  # let this many matching requests pass first
    fired: int = 0

    def matches(self, endpoint: str, page: int | None, calendar_id: str | None) -> bool:
        if self.endpoint not in ("*", endpoint):
            return False
        if self.from_page is not None and (page is None or page < self.from_page):
            return False
        return self.calendar_id is None or self.calendar_id == calendar_id


class FaultPlan:
    """Rules are tried in the order they were added; the first live matching rule fires."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def add(
        self,
        endpoint: str,
        fault: Fault,
        *,
        times: int | None = 1,
        from_page: int | None = None,
        calendar_id: str | None = None,
        after: int = 0,
    ) -> FaultRule:
        if endpoint != "*" and endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; one of {ENDPOINTS} or '*'")
        rule = FaultRule(endpoint, fault, times, from_page, calendar_id, after)
        with self._lock:
            self._rules.append(rule)
        return rule

    def enqueue(self, endpoint: str, *faults: Fault) -> None:
        """Answer the next requests to ``endpoint`` with these faults, one each, in order."""
        for fault in faults:
            self.add(endpoint, fault)

    def fail_next(self, endpoint: str, n: int = 1, fault: Fault | None = None) -> FaultRule:
        return self.add(endpoint, fault or Fault.http(503), times=n)

    def fail_from_page(
        self,
        page: int,
        fault: Fault | None = None,
        *,
        endpoint: str = "events",
        times: int | None = 1,
        calendar_id: str | None = None,
    ) -> FaultRule:
        """Fail page ``page`` (1-based; the request without pageToken is page 1) and, while
        ``times`` lasts, later pages of any run."""
        return self.add(
            endpoint, fault or Fault.http(503), times=times, from_page=page, calendar_id=calendar_id
        )

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def pending(self) -> list[FaultRule]:
        with self._lock:
            return [r for r in self._rules if r.remaining is None or r.remaining > 0]

    def take(self, endpoint: str, page: int | None, calendar_id: str | None) -> Fault | None:
        with self._lock:
            for rule in self._rules:
                if rule.remaining is not None and rule.remaining <= 0:
                    continue
                if not rule.matches(endpoint, page, calendar_id):
                    continue
                if rule.after > 0:
                    rule.after -= 1
                    return None
                if rule.remaining is not None:
                    rule.remaining -= 1
                rule.fired += 1
                return rule.fault
        return None


SECRET_FIELDS = frozenset(
    {
        "client_secret",
        "code",
        "code_verifier",
        "refresh_token",
        "token",
        "access_token",
        "assertion",
        "password",
        "oauth_token",
    }
)
SECRET_HEADERS = frozenset({"cookie", "proxy-authorization", "set-cookie"})


@dataclass
class RecordedRequest:
    at: dt.datetime
    method: str
    path: str
    endpoint: str | None
    query: dict[str, list[str]]
    headers: dict[str, str]
    form: dict[str, list[str]] = field(default_factory=dict)
    status: int | None = None  # None: no response was sent (dropped or hung)
    fault: str | None = None
    page: int | None = None  # events/calendarList: 1 for the first page of a run
    incremental: bool | None = None  # events: a syncToken run
    calendar_id: str | None = None
    user: str | None = None

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def has(self, name: str) -> bool:
        return name in self.query


def redact_headers(items: list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        if key in SECRET_HEADERS:
            continue
        if key == "authorization":
            scheme = value.split(" ", 1)[0]
            value = f"{scheme} <redacted>"
        out[key] = value if key not in out else f"{out[key]}, {value}"
    return out


def redact_params(items: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in items:
        out.setdefault(name, []).append("<redacted>" if name in SECRET_FIELDS else value)
    return out


class RequestLog:
    def __init__(self) -> None:
        self._items: list[RecordedRequest] = []
        self._lock = threading.Lock()

    def add(self, item: RecordedRequest) -> None:
        with self._lock:
            self._items.append(item)

    def all(self, endpoint: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._items if endpoint is None or r.endpoint == endpoint]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def as_json(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        return [
            {
                "at": r.at.isoformat(),
                "method": r.method,
                "path": r.path,
                "endpoint": r.endpoint,
                "query": r.query,
                "headers": r.headers,
                "form": r.form,
                "status": r.status,
                "fault": r.fault,
                "page": r.page,
                "incremental": r.incremental,
                "calendar_id": r.calendar_id,
                "user": r.user,
            }
            for r in self.all(endpoint)
        ]
