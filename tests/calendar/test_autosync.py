"""Background auto-sync: who is due, in-process and Redis queues, isolation of failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import update

from ai_workflow_engine.calendar.autosync import auto_sync_user, due_user_ids
from ai_workflow_engine.calendar.models import GoogleConnection
from ai_workflow_engine.core.db import utcnow
from ai_workflow_engine.core.resources import Resources, open_resources
from ai_workflow_engine.jobs.broker import Jobs, create_jobs
from ai_workflow_engine.jobs.runtime import run_worker
from tests.calendar.conftest import STATUS, Headers, connected
from tests.conftest import AppFactory, Users
from tests.google_standin import RunningStandin

EVENTS = "/api/v1/calendar/events"


@pytest.fixture
async def app(app_factory: AppFactory, google_settings: dict[str, Any]) -> AsyncIterator[FastAPI]:
    """The app without a scheduler of its own: taskiq's scheduler sends an interval task at its
    first tick, right after start-up, so only the test decides here when due syncs are queued."""
    async with app_factory(google=google_settings) as running:
        yield running


@pytest.fixture
async def jobs(app: FastAPI) -> AsyncIterator[Jobs]:
    """The app's jobs on the in-process broker, as `serve` runs them by default."""
    built = create_jobs(_resources(app))
    await built.broker.startup()
    try:
        yield built
    finally:
        await built.broker.shutdown()


def _resources(app: FastAPI) -> Resources:
    resources: Resources = app.state.resources
    return resources


async def _due(app: FastAPI) -> list[int]:
    async with _resources(app).sessionmaker() as session:
        return await due_user_ids(session, utcnow())


async def _wait_for_status(
    client: httpx.AsyncClient, headers: Headers, status: str
) -> dict[str, Any]:
    async with asyncio.timeout(20):
        while True:
            body: dict[str, Any] = (await client.get(STATUS, headers=headers)).json()
            if body["last_sync_status"] == status:
                return body
            await asyncio.sleep(0.05)


async def _user_id(client: httpx.AsyncClient, headers: Headers) -> int:
    return int((await client.get("/api/v1/users/me", headers=headers)).json()["id"])


def _jobs_counted(outcome: str) -> float:
    value = REGISTRY.get_sample_value("calendar_autosync_jobs_total", {"outcome": outcome})
    return value or 0.0


async def test_connected_user_is_due_until_synced_then_again_after_the_interval(
    app: FastAPI, client: httpx.AsyncClient, users: Users, standin: RunningStandin
) -> None:
    headers = await users.headers()
    await connected(client, headers, standin)
    user_id = await _user_id(client, headers)
    assert await _due(app) == [user_id]

    assert (await client.post("/api/v1/calendar/sync/auto", headers=headers)).status_code == 200
    assert await _due(app) == []

    async with _resources(app).sessionmaker.begin() as session:
        await session.execute(
            update(GoogleConnection).values(last_sync_at=utcnow() - timedelta(minutes=16))
        )
    assert await _due(app) == [user_id]  # default interval: 15 minutes

    patch = {"calendar_sync_interval_minutes": 30}
    assert (await client.patch("/api/v1/settings", json=patch, headers=headers)).status_code == 200
    assert await _due(app) == []


async def test_auto_sync_off_or_reconnect_needed_is_never_due(
    app: FastAPI, client: httpx.AsyncClient, users: Users, standin: RunningStandin
) -> None:
    headers = await users.headers()
    await connected(client, headers, standin)
    off = {"calendar_auto_sync": False}
    assert (await client.patch("/api/v1/settings", json=off, headers=headers)).status_code == 200
    assert await _due(app) == []

    on = {"calendar_auto_sync": True}
    assert (await client.patch("/api/v1/settings", json=on, headers=headers)).status_code == 200
    async with _resources(app).sessionmaker.begin() as session:
        await session.execute(update(GoogleConnection).values(needs_reconnect=True))
    assert await _due(app) == []


async def test_serve_schedules_and_runs_due_syncs_itself_by_default(
    app_factory: AppFactory,
    google_settings: dict[str, Any],
    standin: RunningStandin,
) -> None:
    """The embedded default: no worker, no scheduler process, yet a due user gets synced."""
    settings = {"jobs_in_process": True, "scheduler_tick_seconds": 5}
    async with app_factory(google=google_settings, jobs=settings) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            headers = await Users(client).headers()
            await connected(client, headers, standin)
            status = await _wait_for_status(client, headers, "ok")
    assert status["last_sync_at"] is not None


async def test_scheduled_tick_syncs_due_users_in_process(
    jobs: Jobs, client: httpx.AsyncClient, users: Users, standin: RunningStandin
) -> None:
    headers = await users.headers()
    await connected(client, headers, standin)
    start = utcnow() + timedelta(hours=2)
    standin.control.add_event(
        standin.control.primary_calendar_id(), start, start + timedelta(hours=1), summary="Dentist"
    )
    before = _jobs_counted("ok")

    task = await jobs.enqueue_due.kiq()
    assert (await task.wait_result(timeout=10)).return_value == 1

    status = await _wait_for_status(client, headers, "ok")
    assert status["last_sync_at"] is not None
    events = (await client.get(EVENTS, headers=headers)).json()["items"]
    assert [event["title"] for event in events] == ["Dentist"]
    assert _jobs_counted("ok") == before + 1


async def test_one_users_failure_does_not_stop_the_others(
    app: FastAPI, jobs: Jobs, client: httpx.AsyncClient, users: Users, standin: RunningStandin
) -> None:
    alice, bob = await users.headers(), await users.headers()
    standin.control.add_user("bob@example.com")
    await connected(client, alice, standin)
    standin.control.queue_consent(email="bob@example.com")
    await connected(client, bob, standin)
    # Google no longer honours Alice's grant: her refresh gets invalid_grant
    standin.control.revoke_grant(standin.control.primary_calendar_id())
    async with _resources(app).sessionmaker.begin() as session:
        await session.execute(
            update(GoogleConnection).values(token_expires_at=utcnow() - timedelta(minutes=1))
        )

    task = await jobs.enqueue_due.kiq()
    assert (await task.wait_result(timeout=10)).return_value == 2

    assert (await _wait_for_status(client, bob, "ok"))["needs_reconnect"] is False
    alice_status = await _wait_for_status(client, alice, "failed")
    assert alice_status["needs_reconnect"] is True
    assert await _due(app) == []  # Alice is not retried until she reconnects; Bob is synced


async def test_a_job_for_a_user_synced_meanwhile_does_nothing(
    app: FastAPI, client: httpx.AsyncClient, users: Users, standin: RunningStandin
) -> None:
    headers = await users.headers()
    await connected(client, headers, standin)
    user_id = await _user_id(client, headers)
    assert (await client.post("/api/v1/calendar/sync/auto", headers=headers)).status_code == 200
    first = (await client.get(STATUS, headers=headers)).json()["last_sync_at"]

    assert await auto_sync_user(_resources(app), user_id) == "not_due"
    assert (await client.get(STATUS, headers=headers)).json()["last_sync_at"] == first


async def test_jobs_travel_through_the_real_redis_queue_to_a_worker(
    app: FastAPI,
    client: httpx.AsyncClient,
    users: Users,
    standin: RunningStandin,
    redis_url: str,
) -> None:
    """What `ai-workflow-engine scheduler` and `worker` do, against the real Redis."""
    headers = await users.headers()
    await connected(client, headers, standin)
    settings = _resources(app).settings.model_copy(
        update={"redis": _resources(app).settings.redis.model_copy(update={"redis_url": redis_url})}
    )
    async with open_resources(settings) as resources:
        worker = asyncio.create_task(run_worker(resources))
        producer = create_jobs(resources)
        await producer.broker.startup()
        try:
            await producer.enqueue_due.kiq()
            status = await _wait_for_status(client, headers, "ok")
        finally:
            await producer.broker.shutdown()
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
    assert status["last_sync_at"] is not None
