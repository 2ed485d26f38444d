"""The scale-out layout: two API processes, a worker and a scheduler sharing one PostgreSQL (behind
pgbouncer in transaction mode) and one Redis, with the Google stand-in for Google.

Everything runs as real processes on loopback: `ai-workflow-engine serve` twice, `migrate`, and
later `worker` (twice) and `scheduler`. What one process does, the other must honour.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.backends import unique_name
from tests.fixtures.databases import fresh_postgres_database
from tests.fixtures.pgbouncer import PgBouncerLauncher, free_port
from tests.google_standin import StandinProcess, spawn_standin_process
from tests.infra.helpers import PASSWORD, assert_problem, bearer, new_user
from tests.infra.processes import (
    ApiProcess,
    ServiceProcess,
    command,
    delete_redis_keys,
    run_command,
    running_services,
    service_environment,
)

pytestmark = pytest.mark.slow

EVENTS = 240  # in the stand-in's primary calendar
PAGE = 40  # the stand-in's page size: a full sync takes several pages
# where users reach the API: a load balancer in front of both processes; the consent screen
# sends the browser there, and the test delivers the callback to one process or the other
PUBLIC_BASE_URL = "http://api.example.test"
SCHEDULER_TICK = 5


@dataclass
class Deployment:
    a: ApiProcess
    b: ApiProcess
    database_url: str  # PostgreSQL itself, for counting rows behind the service's back
    standin: StandinProcess
    env: dict[str, str]
    log_dir: Path


@pytest.fixture(scope="module")
def deployment(
    pgbouncer_executable: Path, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    log_dir = tmp_path_factory.mktemp("scale-out")
    prefix = unique_name("aiwe-scale") + ":"
    with (
        fresh_postgres_database("aiwe_scale") as database_url,
        spawn_standin_process(events=EVENTS, args=["--max-page-size", str(PAGE)]) as standin,
    ):
        launcher = PgBouncerLauncher(
            pgbouncer_executable, database_url, tmp_path_factory.getbasetemp() / "pgbouncer-logs"
        )
        try:
            bouncer = launcher.create(name="pgbouncer-scale-out")
            env = service_environment(
                DATABASE_URL=bouncer.url("app"),
                REDIS_URL=redis_url,
                REDIS_KEY_PREFIX=prefix,
                GOOGLE_CLIENT_ID=standin.client_id,
                GOOGLE_CLIENT_SECRET=standin.client_secret,
                GOOGLE_AUTH_URI=standin.auth_uri,
                GOOGLE_TOKEN_URI=standin.token_uri,
                GOOGLE_REVOKE_URI=standin.revoke_uri,
                GOOGLE_CALENDAR_API_BASE=standin.calendar_api_base,
                PUBLIC_BASE_URL=PUBLIC_BASE_URL,
                SCHEDULER_TICK_SECONDS=str(SCHEDULER_TICK),
            )
            run_command(env, "migrate")
            a = ApiProcess("api-a", env, log_dir)
            b = ApiProcess("api-b", env, log_dir)
            with running_services(a, b):
                yield Deployment(a, b, database_url, standin, env, log_dir)
        finally:
            launcher.close()
            delete_redis_keys(redis_url, prefix)


@pytest.fixture
async def a(deployment: Deployment) -> Any:
    async with httpx.AsyncClient(base_url=deployment.a.base_url, timeout=30) as client:
        yield client


@pytest.fixture
async def b(deployment: Deployment) -> Any:
    async with httpx.AsyncClient(base_url=deployment.b.base_url, timeout=30) as client:
        yield client


async def _new_account(client: httpx.AsyncClient) -> dict[str, str]:
    user = new_user("scale")
    response = await client.post("/api/v1/auth/register", json=user)
    assert response.status_code == 201, response.text
    return user


async def _login(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD
) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/jwt/login", data={"username": username, "password": password}
    )


async def _tokens(client: httpx.AsyncClient, username: str) -> dict[str, Any]:
    response = await _login(client, username)
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


async def test_logout_on_one_process_is_honoured_by_the_other(
    a: httpx.AsyncClient, b: httpx.AsyncClient
) -> None:
    user = await _new_account(a)
    ending = await _tokens(a, user["username"])
    staying = await _tokens(b, user["username"])
    assert (await b.get("/api/v1/users/me", headers=bearer(ending["access_token"]))).is_success

    response = await a.post(
        "/api/v1/auth/jwt/logout",
        headers=bearer(ending["access_token"]),
        json={"refresh_token": ending["refresh_token"]},
    )
    assert response.status_code == 204, response.text

    for client in (b, a):
        response = await client.get("/api/v1/users/me", headers=bearer(ending["access_token"]))
        assert_problem(response, 401)
        assert response.headers.get("www-authenticate") == "Bearer"
    response = await b.post(
        "/api/v1/auth/jwt/refresh", json={"refresh_token": ending["refresh_token"]}
    )
    assert_problem(response, 401)
    # the user's other session is untouched, on either process
    for client in (a, b):
        response = await client.get("/api/v1/users/me", headers=bearer(staying["access_token"]))
        assert response.status_code == 200, response.text


async def test_login_failure_limit_counts_across_processes(
    a: httpx.AsyncClient, b: httpx.AsyncClient
) -> None:
    user = await _new_account(b)
    for client in (a, b, a, b, a):  # five failures, split between the processes
        response = await _login(client, user["username"], "not the password")
        assert_problem(response, 401)
    for client in (b, a):  # locked on both, the right password included
        response = await _login(client, user["username"])
        assert_problem(response, 429)
        retry_after = int(response.headers["retry-after"])
        assert 0 < retry_after <= 15 * 60, retry_after


async def _consent(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    """Authorize on `client`, let the stand-in's consent screen answer: the callback's path and
    query (the browser would be sent to the load balancer with them)."""
    response = await client.get("/api/v1/calendar/oauth/authorize", headers=headers)
    assert response.status_code == 200, response.text
    async with httpx.AsyncClient(timeout=10, trust_env=False) as browser:
        consent = await browser.get(response.json()["authorization_url"])
    assert consent.status_code == 302, consent.text
    callback = urlsplit(consent.headers["location"])
    assert f"{callback.scheme}://{callback.netloc}" == PUBLIC_BASE_URL
    return f"{callback.path}?{callback.query}"


async def _connect_google(
    start_on: httpx.AsyncClient, finish_on: httpx.AsyncClient, headers: dict[str, str]
) -> httpx.Response:
    """Authorize on one process and deliver the browser's callback to the other."""
    return await finish_on.get(await _consent(start_on, headers))


async def _signed_in(client: httpx.AsyncClient) -> dict[str, str]:
    user = await _new_account(client)
    return bearer((await _tokens(client, user["username"]))["access_token"])


async def test_oauth_started_on_one_process_completes_on_the_other(
    a: httpx.AsyncClient, b: httpx.AsyncClient
) -> None:
    headers = await _signed_in(a)
    callback = await _consent(a, headers)
    response = await b.get(callback)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "connected"}
    for client in (a, b):
        status = (await client.get("/api/v1/calendar/status", headers=headers)).json()
        assert status["connected"] is True, status
        assert status["needs_reconnect"] is False, status
    # the state is used up for every process
    for client in (a, b):
        assert_problem(await client.get(callback), 400)
    # (this user stays out of the background job test below)
    response = await a.patch(
        "/api/v1/settings", headers=headers, json={"calendar_auto_sync": False}
    )
    assert response.status_code == 200, response.text


def _google_event_ids(standin: StandinProcess) -> set[str]:
    """The event set Google holds, read through its Calendar API as any client would."""
    token = standin.control.mint_tokens()["access_token"]
    ids: set[str] = set()
    params: dict[str, str] = {"singleEvents": "true", "maxResults": "2500"}
    url = f"{standin.calendar_api_base}/calendars/{standin.email}/events"
    with httpx.Client(timeout=30, trust_env=False) as http:
        while True:
            page = http.get(url, params=params, headers=bearer(token)).json()
            ids |= {item["id"] for item in page.get("items", []) if item["status"] != "cancelled"}
            if "nextPageToken" not in page:
                return ids
            params["pageToken"] = page["nextPageToken"]


def _stored_event_ids(database_url: str, user_id: int) -> list[str]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT google_event_id FROM calendar_events WHERE user_id = %s", (user_id,)
        ).fetchall()
    return [row[0] for row in rows]


async def _user_id(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    return int((await client.get("/api/v1/users/me", headers=headers)).json()["id"])


async def _sync_on_both(
    a: httpx.AsyncClient, b: httpx.AsyncClient, headers: dict[str, str]
) -> list[httpx.Response]:
    responses = await asyncio.gather(
        a.post("/api/v1/calendar/sync/auto", headers=headers),
        b.post("/api/v1/calendar/sync/auto", headers=headers),
    )
    for response in responses:
        if response.status_code == 409:  # API.md: the other sync runs; retry later
            body = assert_problem(response, 409)
            assert body["type"].endswith("/calendar-sync-in-progress"), body
            assert response.headers.get("retry-after")
        else:
            assert response.status_code == 200, response.text
    assert any(r.status_code == 200 for r in responses), [r.text for r in responses]
    return list(responses)


async def test_simultaneous_syncs_on_both_processes_store_no_event_twice(
    deployment: Deployment, a: httpx.AsyncClient, b: httpx.AsyncClient
) -> None:
    standin = deployment.standin
    headers = await _signed_in(b)
    user_id = await _user_id(a, headers)
    assert (await _connect_google(b, a, headers)).status_code == 200
    expected = _google_event_ids(standin)
    assert len(expected) == EVENTS

    # each page takes a while, so that the two runs overlap
    standin.control.add_fault("events", kind="delay", seconds=0.2, times=None)
    try:
        responses = await _sync_on_both(a, b, headers)
        assert sum(r.json()["created"] for r in responses if r.status_code == 200) == EVENTS
        stored = _stored_event_ids(deployment.database_url, user_id)
        assert len(stored) == len(set(stored)), "an event was stored twice"
        assert set(stored) == expected

        # changes at Google, then both again: incremental runs end with Google's set too
        standin.control.churn_events(updates=6, deletes=4, adds=5, seed=7)
        expected = _google_event_ids(standin)
        await _sync_on_both(a, b, headers)
        stored = _stored_event_ids(deployment.database_url, user_id)
        assert len(stored) == len(set(stored)), "an event was stored twice"
        assert set(stored) == expected
    finally:
        standin.control.clear_faults()

    # and both processes serve the same events (Google's span a year from 30 days ago)
    now = datetime.now(UTC)
    window = {
        "start": (now - timedelta(days=40)).isoformat(),
        "end": (now + timedelta(days=300)).isoformat(),
        "limit": "200",
    }
    listed = []
    for client in (a, b):
        response = await client.get("/api/v1/calendar/events", params=window, headers=headers)
        assert response.status_code == 200, response.text
        listed.append(response.json())
    assert listed[0] == listed[1]


def _sample(metrics_text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def _connection_synced(database_url: str, user_id: int) -> bool:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT last_sync_at FROM google_connections WHERE user_id = %s", (user_id,)
        ).fetchone()
    return row is not None and row[0] is not None


async def test_worker_and_scheduler_run_a_due_auto_sync_once(
    deployment: Deployment, a: httpx.AsyncClient, b: httpx.AsyncClient
) -> None:
    """Every connected user of the earlier tests was synced moments ago; a new one is due. The
    scheduler queues it each tick until its sync is recorded; of two workers, one runs it."""
    headers = await _signed_in(a)
    user_id = await _user_id(b, headers)
    assert (await _connect_google(a, b, headers)).status_code == 200
    expected = _google_event_ids(deployment.standin)

    metrics_ports = [free_port(), free_port()]
    env, log_dir = deployment.env, deployment.log_dir
    jobs = [
        ServiceProcess(f"worker-{n}", command("worker", "--metrics-port", str(port)), env, log_dir)
        for n, port in enumerate(metrics_ports, 1)
    ]
    jobs.append(ServiceProcess("scheduler", command("scheduler"), env, log_dir))
    with running_services(*jobs):
        deadline = time.monotonic() + 6 * SCHEDULER_TICK
        while not _connection_synced(deployment.database_url, user_id):
            assert time.monotonic() < deadline, "\n".join(job.describe() for job in jobs)
            await asyncio.sleep(0.5)
        await asyncio.sleep(2 * SCHEDULER_TICK)  # more ticks: nothing due any more
        assert all(job.running for job in jobs), "\n".join(job.describe() for job in jobs)
        async with httpx.AsyncClient(timeout=5, trust_env=False) as http:
            scraped = [
                (await http.get(f"http://127.0.0.1:{port}/metrics")).text for port in metrics_ports
            ]

    ran = sum(_sample(text, "calendar_autosync_jobs_total", outcome="ok") for text in scraped)
    assert ran == 1, scraped
    synced = sum(_sample(text, "calendar_sync_runs_total", result="ok") for text in scraped)
    assert synced == 1
    stored = _stored_event_ids(deployment.database_url, user_id)
    assert len(stored) == len(set(stored))
    assert set(stored) == expected


def test_every_log_line_of_both_api_processes_is_json_without_errors(
    deployment: Deployment,
) -> None:
    import json

    for process in (deployment.a, deployment.b):
        lines = process.log_lines()
        assert lines, process.describe()
        events = [json.loads(line) for line in lines]  # every line is one JSON object
        errors = [e for e in events if e.get("level") in ("error", "critical")]
        assert errors == [], process.describe()
        statuses = {e.get("status") for e in events if e.get("event") == "request"}
        assert not any(isinstance(s, int) and s >= 500 for s in statuses), statuses
