"""GoogleCalendarApi.get_json against the stand-in: what is retried, what is not, how it ends."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi import FastAPI

from ai_workflow_engine.calendar.errors import (
    GoogleBadGateway,
    GoogleTimeout,
    GoogleUnavailable,
    ReconnectRequired,
)
from ai_workflow_engine.calendar.google.client import (
    GoogleCalendarApi,
    GoogleRequestRejected,
    SyncTokenExpired,
    calendar_events_path,
)
from tests.calendar.conftest import RETRY_AFTER
from tests.google_standin import DEFAULT_EMAIL, Fault, RunningStandin

CALENDAR_LIST = "/users/me/calendarList"
MAX_ATTEMPTS = 3  # google_max_attempts in these tests


class Tokens:
    """A token source over tokens the stand-in minted; records each call's force_refresh."""

    def __init__(self, standin: RunningStandin) -> None:
        self.standin = standin
        self.calls: list[bool] = []
        self.current = str(standin.control.mint_tokens()["access_token"])

    async def __call__(self, force_refresh: bool) -> str:
        self.calls.append(force_refresh)
        if force_refresh:
            self.current = str(self.standin.control.mint_tokens()["access_token"])
        return self.current


@pytest.fixture
def api(app: FastAPI) -> GoogleCalendarApi:
    return GoogleCalendarApi(app.state.google_http, app.state.settings.google)


@pytest.fixture
def tokens(standin: RunningStandin) -> Tokens:
    return Tokens(standin)


def calendar_list_requests(standin: RunningStandin) -> list[int | None]:
    return [r.status for r in standin.control.requests("calendarList")]


async def test_a_plain_request_returns_googles_json(
    api: GoogleCalendarApi, tokens: Tokens, standin: RunningStandin
) -> None:
    body = await api.get_json(CALENDAR_LIST, {"maxResults": "10"}, tokens)

    assert [item["id"] for item in body["items"]] == [DEFAULT_EMAIL]
    assert tokens.calls == [False]
    assert calendar_list_requests(standin) == [200]


@pytest.mark.parametrize(
    "fault",
    [
        Fault.http(429),
        Fault.http(500),
        Fault.http(503),
        Fault.http(502),  # Google's front end answers it as an HTML page
        Fault.rate_limit(),
        Fault.rate_limit(user=True),
        Fault.drop(),
    ],
    ids=["429", "500", "503", "502-html", "403-rateLimit", "403-userRateLimit", "dropped"],
)
async def test_transient_failures_are_retried_until_success(
    api: GoogleCalendarApi, tokens: Tokens, standin: RunningStandin, fault: Fault
) -> None:
    standin.control.faults.add("calendarList", fault, times=MAX_ATTEMPTS - 1)

    body = await api.get_json(CALENDAR_LIST, {}, tokens)

    assert body["items"]
    assert len(calendar_list_requests(standin)) == MAX_ATTEMPTS
    assert calendar_list_requests(standin)[-1] == 200


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        (Fault.http(404), 404),
        (Fault.http(400), 400),
        (Fault.http(403, "forbidden"), 403),
        (Fault.http(403, "insufficientPermissions"), 403),
    ],
    ids=["404", "400", "403-forbidden", "403-insufficientPermissions"],
)
async def test_other_client_errors_are_not_retried(
    api: GoogleCalendarApi, tokens: Tokens, standin: RunningStandin, fault: Fault, status: int
) -> None:
    standin.control.faults.add("calendarList", fault, times=None)

    with pytest.raises(GoogleRequestRejected) as raised:
        await api.get_json(CALENDAR_LIST, {}, tokens)

    assert raised.value.status_code == status
    assert isinstance(raised.value, GoogleBadGateway)
    assert raised.value.status == 502
    assert raised.value.headers["Retry-After"] == str(RETRY_AFTER)
    assert calendar_list_requests(standin) == [status]


async def test_persistent_unavailability_gives_up_with_503_and_retry_after(
    api: GoogleCalendarApi, tokens: Tokens, standin: RunningStandin
) -> None:
    standin.control.faults.add("calendarList", Fault.http(503), times=None)

    with pytest.raises(GoogleUnavailable) as raised:
        await api.get_json(CALENDAR_LIST, {}, tokens)

    assert raised.value.status == 503
    assert raised.value.headers["Retry-After"] == str(RETRY_AFTER)
    assert calendar_list_requests(standin) == [503] * MAX_ATTEMPTS


async def test_a_retry_after_longer_than_the_backoff_is_not_waited_for_but_passed_on(
    api: GoogleCalendarApi, tokens: Tokens, standin: RunningStandin
) -> None:
    standin.control.faults.add("calendarList", Fault.http(429, retry_after=120), times=None)

    started = time.monotonic()
    with pytest.raises(GoogleUnavailable) as raised:
        await api.get_json(CALENDAR_LIST, {}, tokens)

    assert time.monotonic() - started < 1
    assert raised.value.headers["Retry-After"] == "120"
    assert calendar_list_requests(standin) == [429]


@pytest.mark.parametrize(
    "google_settings",
    [{"google_http_timeout_seconds": 0.3, "google_backoff_max_seconds": 0.05}],
    indirect=True,
)
async def test_a_hanging_google_gives_504_within_the_timeouts(
    api: GoogleCalendarApi, tokens: Tokens, standin: RunningStandin
) -> None:
    standin.control.faults.add("calendarList", Fault.hang(5), times=None)

    started = time.monotonic()
    with pytest.raises(GoogleTimeout) as raised:
        await api.get_json(CALENDAR_LIST, {}, tokens)

    elapsed = time.monotonic() - started
    assert MAX_ATTEMPTS * 0.3 <= elapsed < MAX_ATTEMPTS * (0.3 + 0.05) + 1
    assert raised.value.status == 504
    assert raised.value.headers["Retry-After"] == str(RETRY_AFTER)
    assert len(calendar_list_requests(standin)) == MAX_ATTEMPTS


async def test_a_deadline_bounds_the_whole_call(
    api: GoogleCalendarApi, tokens: Tokens, standin: RunningStandin
) -> None:
    standin.control.faults.add("calendarList", Fault.hang(5), times=None)

    started = time.monotonic()
    with pytest.raises(GoogleTimeout):
        await api.get_json(CALENDAR_LIST, {}, tokens, deadline=started + 0.4)

    assert time.monotonic() - started < 1


async def test_a_401_refreshes_the_token_once_and_retries(
    api: GoogleCalendarApi, tokens: Tokens, standin: RunningStandin
) -> None:
    standin.control.expire_access_tokens()

    body = await api.get_json(CALENDAR_LIST, {}, tokens)

    assert body["items"]
    assert tokens.calls == [False, True]
    assert calendar_list_requests(standin) == [401, 200]


async def test_a_second_401_is_not_refreshed_again(
    api: GoogleCalendarApi, tokens: Tokens, standin: RunningStandin
) -> None:
    standin.control.faults.add("calendarList", Fault.http(401), times=None)

    with pytest.raises(GoogleRequestRejected) as raised:
        await api.get_json(CALENDAR_LIST, {}, tokens)

    assert raised.value.status_code == 401
    assert tokens.calls == [False, True]
    assert calendar_list_requests(standin) == [401, 401]


async def test_what_the_token_source_raises_passes_through(
    api: GoogleCalendarApi, standin: RunningStandin
) -> None:
    async def revoked(force_refresh: bool) -> str:
        raise ReconnectRequired()

    with pytest.raises(ReconnectRequired):
        await api.get_json(CALENDAR_LIST, {}, revoked)
    assert calendar_list_requests(standin) == []


async def test_410_is_a_sync_token_expired(
    api: GoogleCalendarApi, tokens: Tokens, standin: RunningStandin
) -> None:
    standin.control.faults.add("events", Fault.http(410))

    with pytest.raises(SyncTokenExpired):
        await api.get_json(calendar_events_path(DEFAULT_EMAIL), {"syncToken": "x"}, tokens)
    assert len(standin.control.requests("events")) == 1


async def test_calendar_ids_are_quoted_into_the_events_path(
    api: GoogleCalendarApi, tokens: Tokens, standin: RunningStandin
) -> None:
    team = standin.control.add_calendar(DEFAULT_EMAIL, "Team #1")
    path = calendar_events_path(team)
    assert "@" not in path

    body = await api.get_json(path, {"maxResults": "5"}, tokens)

    assert body["kind"] == "calendar#events"
    assert body["summary"] == "Team #1"


async def test_calendar_list_pages_follow_next_page_tokens(
    api: GoogleCalendarApi, tokens: Tokens, standin: RunningStandin
) -> None:
    google = standin.control
    for name in ("A", "B", "C"):
        google.add_calendar(DEFAULT_EMAIL, name)

    pages: list[list[dict[str, Any]]] = [
        page async for page in api.calendar_list_pages(tokens, page_size=2)
    ]

    assert [len(page) for page in pages] == [2, 2]
    assert [item.get("summary") for page in pages for item in page][1:] == ["A", "B", "C"]
    assert [r.page for r in google.requests("calendarList")] == [1, 2]
