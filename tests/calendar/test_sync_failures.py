"""POST /calendar/sync/auto when things go wrong: Google failing, slow or refusing the grant, no
connection, and two syncs of one user at once."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from ai_workflow_engine.calendar.locks import UserSyncLock
from ai_workflow_engine.calendar.models import CalendarEvent, GoogleConnection
from ai_workflow_engine.core.db import utcnow
from tests.calendar.sync_fixtures import (
    CalendarUser,
    SyncEnv,
    SyncEnvFactory,
    sync_env_factory_fixture,  # noqa: F401
    sync_env_fixture,  # noqa: F401
)
from tests.google_standin.faults import Fault

PROBLEM = "application/problem+json"
RETRY_AFTER = "7"  # google_retry_after_seconds in conftest's settings


def soon(days: int) -> dt.datetime:
    base = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    return base + dt.timedelta(days=days)


def add_events(env: SyncEnv, count: int) -> list[str]:
    return [
        env.control.add_event(
            "primary", soon(n + 1), soon(n + 1) + dt.timedelta(hours=1), summary=f"Event {n}"
        )
        for n in range(count)
    ]


async def synced_user(env: SyncEnv, events: int = 4) -> CalendarUser:
    """A connected user whose first sync stored `events` events."""
    add_events(env, events)
    user = await env.user()
    assert (await user.synced())["created"] == events
    env.control.clear_requests()
    return user


def assert_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["type"].endswith("/" + slug)
    assert body["status"] == status
    return body


@pytest.mark.parametrize(
    "fault",
    [
        Fault.rate_limit(),
        Fault.rate_limit(user=True),
        Fault.rate_limit(code=429),
        Fault.http(500),
        Fault.http(502),
        Fault.http(503),
    ],
    ids=["403-rate", "403-user-rate", "429", "500", "502", "503"],
)
async def test_retryable_answers_are_retried_then_the_sync_succeeds(
    sync_env: SyncEnv, fault: Fault
) -> None:
    user = await synced_user(sync_env)
    add_events(sync_env, 2)
    sync_env.control.faults.add("events", fault, times=2)  # max attempts is 3
    result = await user.synced()
    assert result["created"] == 2
    attempts = sync_env.event_requests()
    assert [r.status for r in attempts] == [fault.code, fault.code, 200]
    assert len({repr(sorted(r.query.items())) for r in attempts}) == 1  # the same request


@pytest.mark.parametrize(
    ("fault", "status", "slug"),
    [
        (Fault.http(503), 503, "google-unavailable"),
        (Fault.rate_limit(), 503, "google-unavailable"),
        (Fault.http(400), 502, "google-bad-gateway"),
        (Fault.http(404), 502, "google-bad-gateway"),
        (Fault.http(403, "forbidden"), 502, "google-bad-gateway"),
    ],
    ids=["503", "403-rate", "400", "404", "403-forbidden"],
)
async def test_a_sync_that_still_fails_keeps_stored_events_and_says_when_to_retry(
    sync_env: SyncEnv, fault: Fault, status: int, slug: str
) -> None:
    user = await synced_user(sync_env)
    before = await user.events()
    add_events(sync_env, 2)
    sync_env.control.faults.add("events", fault, times=None)
    response = await user.sync()
    assert_problem(response, status, slug)
    assert response.headers["Retry-After"] == RETRY_AFTER
    retryable = fault.code >= 500 or fault.reason in ("rateLimitExceeded",)
    assert len(sync_env.event_requests()) == (3 if retryable else 1)
    assert await user.events() == before
    state = await user.status()
    assert state["last_sync_status"] == "failed"
    assert state["last_error"]
    assert state["needs_reconnect"] is False

    sync_env.control.faults.clear()
    assert (await user.synced())["created"] == 2
    state = await user.status()
    assert (state["last_sync_status"], state["last_error"]) == ("ok", None)


@pytest.mark.parametrize(
    "google_settings",
    [{"google_sync_deadline_seconds": 1.5, "google_http_timeout_seconds": 0.4}],
    indirect=True,
)
async def test_a_hanging_google_answers_504_within_the_deadline(sync_env: SyncEnv) -> None:
    user = await synced_user(sync_env)
    before = await user.events()
    sync_env.control.faults.add("events", Fault.hang(10), times=None)
    started = time.monotonic()
    response = await user.sync()
    assert time.monotonic() - started < 8
    assert_problem(response, 504, "google-timeout")
    assert response.headers["Retry-After"] == RETRY_AFTER
    assert await user.events() == before
    assert (await user.status())["last_sync_status"] == "failed"


async def test_a_revoked_grant_asks_to_reconnect_and_keeps_events(sync_env: SyncEnv) -> None:
    user = await synced_user(sync_env)
    before = await user.events()
    sync_env.control.revoke_grant(user.email)
    body = assert_problem(await user.sync(), 409, "calendar-reconnect-required")
    assert "reconnect" in body["detail"].lower()
    state = await user.status()
    assert (state["connected"], state["needs_reconnect"]) == (True, True)
    assert state["last_sync_status"] == "failed"
    assert await user.events() == before

    # until the user reconnects, a sync does not even ask Google
    sync_env.control.clear_requests()
    assert_problem(await user.sync(), 409, "calendar-reconnect-required")
    assert sync_env.control.requests() == []

    await user.connect()
    assert (await user.status())["needs_reconnect"] is False
    result = await user.synced()
    assert result["full_sync"] is False  # the selection and its sync token were kept
    assert await user.events() == before


async def test_an_expired_refresh_token_asks_to_reconnect(sync_env: SyncEnv) -> None:
    user = await synced_user(sync_env)
    async with sync_env.app.state.sessionmaker() as session, session.begin():
        connection = await session.scalar(select(GoogleConnection))
        assert connection is not None
        connection.token_expires_at = utcnow() - dt.timedelta(minutes=1)
    sync_env.control.expire_refresh_tokens(user.email)
    assert_problem(await user.sync(), 409, "calendar-reconnect-required")
    assert (await user.status())["needs_reconnect"] is True


async def test_a_token_refreshed_during_a_failed_run_is_kept(sync_env: SyncEnv) -> None:
    user = await synced_user(sync_env)
    sync_env.control.expire_access_tokens(user.email)  # the next call answers 401
    sync_env.control.faults.add("events", Fault.http(503), times=None, after=1)
    assert_problem(await user.sync(), 503, "google-unavailable")
    assert len(sync_env.control.requests("token")) == 1  # refreshed once

    sync_env.control.faults.clear()
    await user.synced()
    assert len(sync_env.control.requests("token")) == 1  # the refreshed token was stored


async def test_not_connected_is_409(sync_env: SyncEnv) -> None:
    user = await sync_env.user(connect=False)
    body = assert_problem(await user.sync(), 409, "calendar-not-connected")
    assert "connect" in body["detail"].lower()


async def test_sync_requires_a_bearer_token(sync_env: SyncEnv) -> None:
    response = await sync_env.http.post("/api/v1/calendar/sync/auto")
    assert response.status_code == 401


async def stored_count(env: SyncEnv) -> tuple[int, int]:
    async with env.app.state.sessionmaker() as session:
        total = await session.scalar(select(func.count()).select_from(CalendarEvent))
        distinct = await session.scalar(
            select(func.count(func.distinct(CalendarEvent.google_event_id)))
        )
    return int(total or 0), int(distinct or 0)


async def concurrent_syncs(env: SyncEnv, user: CalendarUser) -> list[int]:
    # page 1 answers slowly, so that the second call arrives while the first is running
    env.control.faults.add("events", Fault.delay(0.5), times=1)
    responses = await asyncio.gather(user.sync(), user.sync())
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "calendar-sync-in-progress")
            assert int(response.headers["Retry-After"]) > 0
        else:
            assert response.status_code == 200, response.text
    return sorted(response.status_code for response in responses)


async def test_two_syncs_at_once_store_no_event_twice(sync_env: SyncEnv) -> None:
    add_events(sync_env, 7)
    user = await sync_env.user()
    statuses = await concurrent_syncs(sync_env, user)
    if sync_env.app.state.engine.dialect.name == "sqlite":
        # SQLite's write lock serialises the two requests: the second waits, then syncs
        assert statuses == [200, 200]
    else:
        assert statuses == [200, 409]
    assert await stored_count(sync_env) == (7, 7)
    assert len(await user.events()) == 7


async def test_two_syncs_at_once_with_redis(
    sync_env_factory: SyncEnvFactory, redis_url: str
) -> None:
    async with sync_env_factory(google_page_size=3, redis={"redis_url": redis_url}) as env:
        add_events(env, 7)
        user = await env.user()
        statuses = await concurrent_syncs(env, user)
        assert statuses[0] == 200
        if env.app.state.engine.dialect.name != "sqlite":
            assert statuses == [200, 409]
        assert await stored_count(env) == (7, 7)
        # the lock was released: the next sync runs
        assert (await user.synced())["full_sync"] is False


# PostgreSQL only: on SQLite the database's write lock is the sync lock
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_the_sync_lock_lasts_as_long_as_the_holders_transaction(sync_env: SyncEnv) -> None:
    add_events(sync_env, 2)
    user = await sync_env.user()
    async with sync_env.app.state.sessionmaker() as session:
        connection = await session.scalar(select(GoogleConnection))
        assert connection is not None
    lock = UserSyncLock(redis=None, key_prefix="", sync_deadline_seconds=5)
    async with sync_env.app.state.sessionmaker() as holder:
        # a sync of this user in another process, under way
        async with lock.hold(holder, connection.user_id):
            assert_problem(await user.sync(), 409, "calendar-sync-in-progress")
        # returned, but its transaction has not ended: its writes are not visible yet
        assert_problem(await user.sync(), 409, "calendar-sync-in-progress")
        await holder.rollback()  # it failed (or its process died): the lock went with it
        assert (await user.synced())["created"] == 2
        async with lock.hold(holder, connection.user_id):  # this sync's lock was released too
            await holder.commit()
    assert (await user.synced())["full_sync"] is False


async def test_sync_runs_are_counted_in_metrics(sync_env: SyncEnv) -> None:
    user = await synced_user(sync_env)
    sync_env.control.faults.add("events", Fault.http(400), times=1)
    await user.sync()
    metrics = (await sync_env.http.get("/metrics")).text
    assert 'calendar_sync_runs_total{result="ok"}' in metrics
    assert 'calendar_sync_runs_total{result="failed"}' in metrics
    assert "calendar_sync_duration_seconds_count" in metrics
