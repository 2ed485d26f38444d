"""The Google Calendar API over the shared HTTP client: bearer tokens, retries, error mapping.

`get_json` is the one way the calendar feature reads from Google. It retries what Google asks
clients to retry (429, 5xx, 403 rate limits, connection failures and timeouts) with exponential
backoff and full jitter, bounded in attempts and time; refreshes the token once on a 401; and turns
every final failure into a problem with `Retry-After` (502/503/504), never a 500.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx
import structlog

from ai_workflow_engine.calendar.errors import GoogleBadGateway, GoogleTimeout, GoogleUnavailable
from ai_workflow_engine.core.config import GoogleSettings
from ai_workflow_engine.core.db import utcnow

log = structlog.get_logger(__name__)

# token(force_refresh) -> a bearer token; force_refresh=True after Google answered 401
TokenSource = Callable[[bool], Awaitable[str]]

_RATE_LIMIT_REASONS = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "RATE_LIMIT_EXCEEDED"}
)
CALENDAR_LIST_PAGE_SIZE = 250  # the most calendarList.list gives


class SyncTokenExpired(Exception):
    """Google answered 410 Gone: the sync token is no longer valid; a full sync is needed."""


class GoogleRequestRejected(GoogleBadGateway):
    """Google refused a request in a way a retry cannot fix (a 4xx other than 401/410/429/rate).

    Still a 502 to our client; `status_code` lets a caller tell, say, a deleted calendar (404).
    """

    def __init__(self, status_code: int, retry_after: int) -> None:
        super().__init__(f"Google rejected the request (HTTP {status_code})", retry_after)
        self.status_code = status_code


def calendar_events_path(google_calendar_id: str) -> str:
    """The events collection of a calendar; its id (an email, `#` and all) quoted as a segment."""
    return f"/calendars/{quote(google_calendar_id, safe='')}/events"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - utcnow()).total_seconds())


def is_rate_limited(response: httpx.Response) -> bool:
    """A 403 that Google means as "slow down" (as opposed to a permission problem)."""
    try:
        error = response.json().get("error", {})
    except (ValueError, AttributeError, RecursionError):  # not JSON, not an object, too deep
        return False
    if not isinstance(error, dict):
        return False
    reasons: set[str] = set()
    for key in ("errors", "details"):
        entries = error.get(key)
        if isinstance(entries, list):
            reasons.update(str(e.get("reason")) for e in entries if isinstance(e, dict))
    return bool(reasons & _RATE_LIMIT_REASONS)


class _Retryable(Exception):
    """One failed attempt worth repeating, and what to answer if it stays failed."""

    def __init__(
        self, detail: str, retry_after: float | None = None, *, timed_out: bool = False
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after  # what Google asked for, in seconds
        self.timed_out = timed_out


class GoogleCalendarApi:
    """Reads from the Calendar API. One per app (it holds no per-user state)."""

    def __init__(self, http: httpx.AsyncClient, settings: GoogleSettings) -> None:
        self._http = http
        self._settings = settings

    async def get_json(
        self,
        path: str,
        params: dict[str, str],
        token: TokenSource,
        *,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """GET `path` (below GOOGLE_CALENDAR_API_BASE, segments already quoted) as a JSON object.

        `deadline` (a `time.monotonic()` instant) bounds the whole call, retries included: no
        attempt starts and no backoff sleeps past it.

        Raises `SyncTokenExpired` on 410; `GoogleUnavailable` (503), `GoogleTimeout` (504) or
        `GoogleBadGateway` (502, `GoogleRequestRejected` for a refused request) once retrying
        is over; whatever `token` raises (e.g. `ReconnectRequired`) passes through.
        """
        url = self._settings.google_calendar_api_base.rstrip("/") + path
        attempts = self._settings.google_max_attempts
        attempt = 0
        force_refresh = False
        refreshed = False
        while True:
            attempt += 1
            bearer = await token(force_refresh)
            force_refresh = False
            try:
                response = await self._send(url, params, bearer, deadline)
                if response.status_code == 401 and not refreshed:
                    # the token was revoked or expired early: one fresh token, one more try
                    refreshed = force_refresh = True
                    attempt -= 1
                    continue
                return self._interpret(response)
            except _Retryable as failure:
                delay = self._backoff(attempt, failure.retry_after)
                remaining = None if deadline is None else deadline - time.monotonic()
                if (
                    attempt >= attempts
                    or delay is None
                    or (remaining is not None and delay >= remaining)
                ):
                    raise self._final(failure) from None
                log.info(
                    "google_request_retry",
                    resource=path.rsplit("/", 1)[-1],  # the rest can hold an email address
                    attempt=attempt,
                    reason=failure.detail,
                    delay=round(delay, 3),
                )
                await asyncio.sleep(delay)

    async def calendar_list_pages(
        self, token: TokenSource, *, page_size: int = CALENDAR_LIST_PAGE_SIZE
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """The user's calendarList, one page (its `items`) at a time."""
        params = {"maxResults": str(page_size)}
        while True:
            page = await self.get_json("/users/me/calendarList", params, token)
            items = page.get("items", [])
            if not isinstance(items, list):
                raise GoogleBadGateway(
                    "Google sent a malformed calendar list",
                    self._settings.google_retry_after_seconds,
                )
            yield [item for item in items if isinstance(item, dict)]
            next_token = page.get("nextPageToken")
            if not isinstance(next_token, str) or not next_token:
                return
            params = {**params, "pageToken": next_token}

    async def _send(
        self, url: str, params: dict[str, str], bearer: str, deadline: float | None
    ) -> httpx.Response:
        timeout = self._http.timeout
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Retryable("out of time", timed_out=True)
            timeout = httpx.Timeout(min(self._settings.google_http_timeout_seconds, remaining))
        try:
            return await self._http.get(
                url, params=params, headers={"Authorization": f"Bearer {bearer}"}, timeout=timeout
            )
        except httpx.TimeoutException:
            raise _Retryable("timeout", timed_out=True) from None
        except httpx.TransportError as exc:
            raise _Retryable(f"connection: {type(exc).__name__}") from None

    def _interpret(self, response: httpx.Response) -> dict[str, Any]:
        status = response.status_code
        if status == 200:
            try:
                body = response.json()
            except (ValueError, RecursionError):  # not JSON, or nested past the parser's limit
                body = None
            if not isinstance(body, dict):
                raise GoogleBadGateway(
                    "Google sent a malformed answer", self._settings.google_retry_after_seconds
                )
            return body
        if status == 410:
            raise SyncTokenExpired()
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if status == 429 or status >= 500 or (status == 403 and is_rate_limited(response)):
            raise _Retryable(f"HTTP {status}", retry_after)
        raise GoogleRequestRejected(status, self._settings.google_retry_after_seconds)

    def _backoff(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait before the next attempt; None when Google asks for longer than we wait.

        Full jitter: uniform in [0, min(cap, base * 2**(attempt-1))]. A Retry-After from Google
        is a floor.
        """
        cap = self._settings.google_backoff_max_seconds
        ceiling = min(cap, self._settings.google_backoff_base_seconds * 2 ** (attempt - 1))
        delay = random.uniform(0, ceiling)  # noqa: S311 - jitter, not a secret
        if retry_after is not None:
            if retry_after > cap:
                return None
            delay = max(delay, retry_after)
        return delay

    def _final(self, failure: _Retryable) -> GoogleTimeout | GoogleUnavailable:
        if failure.retry_after is None:
            retry_after = self._settings.google_retry_after_seconds
        else:
            retry_after = max(1, math.ceil(failure.retry_after))
        if failure.timed_out:
            return GoogleTimeout("Google Calendar did not answer in time", retry_after)
        return GoogleUnavailable(
            f"Google Calendar is unavailable ({failure.detail}); retry later", retry_after
        )
