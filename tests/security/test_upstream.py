"""API10 Unsafe Consumption of APIs: whatever Google's endpoints answer — an HTML page with a
200, JSON of the wrong shape, JSON nested past any parser's limit, truncated JSON — is a 502
problem with Retry-After, never a 500, and stored data stays as it was.

Google is the local stand-in (tests/google_standin) answering exactly the injected bytes."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.calendar.conftest import google_settings, standin
from tests.calendar.sync_fixtures import (
    CalendarUser,
    SyncEnv,
    SyncEnvFactory,
    sync_env_factory_fixture,
)
from tests.google_standin.faults import Fault
from tests.google_standin.fixtures import google_standin, google_standin_factory
from tests.security.conftest import assert_problem

__all__ = [
    "google_settings",
    "google_standin",
    "google_standin_factory",
    "standin",
    "sync_env_factory_fixture",
]

RETRY_AFTER = "7"  # google_retry_after_seconds in the calendar tests' settings
DEEP = 20_000  # past the JSON parser's recursion limit (~1,000) many times over

MALFORMED_200 = {
    "html page": Fault.raw(b"<html><body>Sorry...</body></html>", content_type="text/html"),
    "json array": Fault.raw(b"[]"),
    "json string": Fault.raw(b'"ok"'),
    "truncated": Fault.raw(b'{"items": [{"id": "a"'),
    "deeply nested": Fault.raw(b"[" * DEEP + b"]" * DEEP),
    "deeply nested object": Fault.raw(b'{"items": ' + b"[" * DEEP + b"]" * DEEP + b"}"),
    "not utf-8": Fault.raw(b'{"items": "\xff\xfe"}'),
}
MALFORMED_EVENTS_PAGE = {
    **MALFORMED_200,
    "items not a list": Fault.raw(b'{"items": "all of them"}'),
    "items not objects": Fault.raw(b'{"items": [1, 2, 3]}'),
    "403 with a json array": Fault.raw(b"[]", 403),
    "403 nested past the limit": Fault.raw(b"[" * DEEP + b"]" * DEEP, 403),
}
MALFORMED_TOKEN_RESPONSE = {
    **MALFORMED_200,
    "access token not a string": Fault.raw(b'{"access_token": 5, "token_type": "Bearer"}'),
    "no access token": Fault.raw(b'{"token_type": "Bearer", "expires_in": 3599}'),
}


def soon(hours: int) -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) + dt.timedelta(
        hours=hours
    )


@pytest.fixture
async def sync_env(sync_env_factory: SyncEnvFactory) -> AsyncIterator[SyncEnv]:
    # generous timeouts: these tests are about what Google says, not how fast
    async with sync_env_factory(google_page_size=3, google_http_timeout_seconds=15.0) as env:
        yield env


async def test_a_malformed_events_page_is_502_and_keeps_events(sync_env: SyncEnv) -> None:
    for hour in (1, 3):
        sync_env.control.add_event("primary", soon(hour), soon(hour + 1), summary=f"At {hour}")
    user = await sync_env.user()
    await user.synced()
    before = await user.events()
    sync_env.control.add_event("primary", soon(5), soon(6), summary="Not stored")

    for name, fault in MALFORMED_EVENTS_PAGE.items():
        sync_env.control.faults.add("events", fault, times=None)
        response = await user.sync()
        sync_env.control.faults.clear()

        assert response.status_code == 502, (name, response.text)
        problem = assert_problem(response, 502)
        assert response.headers["Retry-After"] == RETRY_AFTER, name
        assert "Traceback" not in problem["detail"]
        assert await user.events() == before, name


async def connect_through(sync_env: SyncEnv, user: CalendarUser) -> httpx.Response:
    answer = await user.http.get("/api/v1/calendar/oauth/authorize", headers=user.headers)
    redirect = sync_env.google.consent(answer.json()["authorization_url"])
    return await user.http.get(
        "/api/v1/calendar/oauth/callback", params={"code": redirect.code, "state": redirect.state}
    )


@pytest.mark.parametrize(
    ("endpoint", "faults"),
    [("calendarList", MALFORMED_200), ("token", MALFORMED_TOKEN_RESPONSE)],
    ids=["calendar list", "token exchange"],
)
async def test_a_malformed_answer_while_connecting_is_502_and_connects_nothing(
    sync_env: SyncEnv, endpoint: str, faults: dict[str, Fault]
) -> None:
    user = await sync_env.user(connect=False)
    for name, fault in faults.items():
        sync_env.control.faults.add(endpoint, fault, times=None)
        callback = await connect_through(sync_env, user)
        sync_env.control.faults.clear()

        assert callback.status_code == 502, (name, callback.text)
        assert_problem(callback, 502)
        assert callback.headers["Retry-After"] == RETRY_AFTER, name
        assert (await user.status())["connected"] is False, name
    # and with Google answering properly again, the same user connects
    assert (await connect_through(sync_env, user)).status_code == 200
