"""/metrics: each family the operators rely on is there and moves when its event happens.

Request counts by route template are tested with the error handling (test_errors.py); Redis
errors with the Redis faults (test_redis_faults.py); the out-of-process worker's counters in the
scale-out test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from tests.calendar.conftest import connected
from tests.conftest import AppFactory, make_settings
from tests.google_standin import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, RunningStandin
from tests.google_standin.faults import Fault
from tests.google_standin.fixtures import google_standin, google_standin_factory
from tests.infra.helpers import bearer, login, new_user, register, running_app

__all__ = ["google_standin", "google_standin_factory"]

SYNC = "/api/v1/calendar/sync/auto"
WAIT = 10  # seconds for a gauge to show what the test arranged


class Scrape:
    """One reading of /metrics."""

    def __init__(self, text: str) -> None:
        self.samples = [
            sample for family in text_string_to_metric_families(text) for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sum over the samples of `name` whose labels include `labels` (0 when none)."""
        return sum(
            float(s.value)
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def has(self, name: str) -> bool:
        return any(s.name == name for s in self.samples)


async def scrape(client: httpx.AsyncClient) -> Scrape:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return Scrape(response.text)


async def _signed_in(client: httpx.AsyncClient) -> dict[str, str]:
    user = new_user("metrics")
    assert (await register(client, user)).status_code == 201
    response = await login(client, user["username"])
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])


async def test_request_latency_histogram_per_route_and_status(
    app_factory: AppFactory,
) -> None:
    async with app_factory() as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            labels = {"method": "GET", "route": "/api/v1/users/me", "status": "401"}
            before = await scrape(client)
            for _ in range(3):
                assert (await client.get("/api/v1/users/me")).status_code == 401
            after = await scrape(client)
    assert after.value("http_requests_total", **labels) == (
        before.value("http_requests_total", **labels) + 3
    )
    count = "http_request_duration_seconds_count"
    assert after.value(count, **labels) == before.value(count, **labels) + 3
    bucket = "http_request_duration_seconds_bucket"
    assert after.value(bucket, le="+Inf", **labels) == after.value(count, **labels)


async def _wait_for(client: httpx.AsyncClient, name: str, wanted: float) -> Scrape:
    async with asyncio.timeout(WAIT):
        while True:
            reading = await scrape(client)
            if reading.value(name) == wanted:
                return reading
            await asyncio.sleep(0.05)


async def test_pool_gauges_show_connections_in_use_overflow_and_waiting(
    postgresql_database: str,
) -> None:
    """A pool of one plus one overflow, both held: the next request waits, and is seen waiting."""
    settings = make_settings(
        postgresql_database,
        database={
            "database_pool_size": 1,
            "database_max_overflow": 1,
            "database_pool_timeout": 15,
        },
    )
    async with running_app(settings) as (app, client):
        headers = await _signed_in(client)
        reading = await scrape(client)
        assert reading.has("db_pool_waiting_requests")
        assert reading.value("db_pool_size") == 1
        held = [await app.state.engine.connect() for _ in range(2)]
        try:
            reading = await scrape(client)
            assert reading.value("db_pool_connections_in_use") == 2
            assert reading.value("db_pool_overflow_connections") == 1
            assert reading.value("db_pool_waiting_requests") == 0
            waiting = asyncio.create_task(client.get("/api/v1/users/me", headers=headers))
            await _wait_for(client, "db_pool_waiting_requests", 1)
            assert not waiting.done()
        finally:
            for connection in held:
                await connection.close()
        response = await waiting
        assert response.status_code == 200, response.text
        await _wait_for(client, "db_pool_waiting_requests", 0)


@pytest.fixture
async def calendar_app(
    app_factory: AppFactory, google_standin: RunningStandin
) -> AsyncIterator[FastAPI]:
    google = {
        "google_client_id": DEFAULT_CLIENT_ID,
        "google_client_secret": DEFAULT_CLIENT_SECRET,
        "google_auth_uri": google_standin.auth_uri,
        "google_token_uri": google_standin.token_uri,
        "google_revoke_uri": google_standin.revoke_uri,
        "google_calendar_api_base": google_standin.calendar_api_base,
        "public_base_url": "http://testserver",
        "google_max_attempts": 2,
        "google_backoff_base_seconds": 0.01,
        "google_backoff_max_seconds": 0.02,
    }
    async with app_factory(google=google) as app:
        yield app


async def test_sync_runs_failures_refresh_failures_and_reconnects_move(
    calendar_app: FastAPI, google_standin: RunningStandin
) -> None:
    control = google_standin.control
    transport = httpx.ASGITransport(app=calendar_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        headers = await _signed_in(client)
        await connected(client, headers, google_standin)
        start = await scrape(client)
        assert start.value("calendar_connections_needing_reconnect") == 0

        assert (await client.post(SYNC, headers=headers)).status_code == 200
        control.faults.add("events", Fault.http(503), times=None)
        assert (await client.post(SYNC, headers=headers)).status_code == 503
        control.faults.clear()
        after_runs = await scrape(client)

        # Google forgets the grant: the refresh fails for good, the user must reconnect
        control.revoke_grant(control.primary_calendar_id())
        response = await client.post(SYNC, headers=headers)
        assert response.status_code == 409, response.text
        end = await scrape(client)

    def moved(reading: Scrape, name: str, **labels: Any) -> float:
        return reading.value(name, **labels) - start.value(name, **labels)

    assert moved(after_runs, "calendar_sync_runs_total", result="ok") == 1
    assert moved(after_runs, "calendar_sync_runs_total", result="failed") == 1
    assert moved(after_runs, "calendar_sync_duration_seconds_count") == 2
    assert moved(end, "google_oauth_refresh_failures_total", reason="invalid_grant") == 1
    assert end.value("calendar_connections_needing_reconnect") == 1
