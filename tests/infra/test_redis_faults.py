"""Redis goes away and comes back: the service fails closed, answers quickly, and recovers.

Each test runs its own redis-server on a free port (the shared one is never touched), and stops,
pauses or restarts it. Without persistence a restarted Redis is empty: revocations survive that
because they are also kept in the database; login-failure counts do not, unless Redis itself is
durable (the deployment requirement the last test stands for).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from redis.exceptions import RedisError

from ai_workflow_engine.calendar.locks import UserSyncLock
from tests.conftest import AppFactory
from tests.infra.helpers import (
    PASSWORD,
    Stopwatch,
    assert_problem,
    bearer,
    login,
    new_user,
    register,
)
from tests.infra.processes import PrivateRedis, find_redis_server

pytestmark = pytest.mark.slow

TIMEOUT = 0.5  # REDIS_TIMEOUT_SECONDS here
RETRIES = 1
# a request waits (1 + retries) timeouts for Redis at most; this bound adds the rest of the request
QUICK = (1 + RETRIES) * TIMEOUT + 1.5
RETRY_AFTER = 9


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(find_redis_server(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(find_redis_server(), tmp_path, durable=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _redis_settings(server: PrivateRedis) -> dict[str, Any]:
    return {
        "redis_url": server.url,
        "redis_timeout_seconds": TIMEOUT,
        "redis_retries": RETRIES,
        "redis_retry_after_seconds": RETRY_AFTER,
    }


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", timeout=30
    )


@pytest.fixture
async def service(
    app_factory: AppFactory, private_redis: PrivateRedis
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with app_factory(redis=_redis_settings(private_redis)) as app, _client(app) as client:
        yield app, client


async def _account(client: httpx.AsyncClient) -> dict[str, str]:
    user = new_user("redis")
    assert (await register(client, user)).status_code == 201
    return user


async def _session(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await login(client, username)
    assert response.status_code == 200, response.text
    tokens: dict[str, str] = response.json()
    return tokens


async def _redis_errors(client: httpx.AsyncClient, component: str) -> float:
    text = (await client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "redis_errors_total" and sample.labels == {"component": component}:
                return float(sample.value)
    return 0.0


def _assert_redis_unavailable(response: httpx.Response) -> None:
    body = assert_problem(response, 503)
    assert body["type"].endswith("/redis-unavailable"), body
    assert response.headers.get("retry-after") == str(RETRY_AFTER), response.headers


async def _timed(
    client: httpx.AsyncClient, method: str, path: str, **kwargs: Any
) -> httpx.Response:
    watch = Stopwatch()
    response = await client.request(method, path, **kwargs)
    assert watch.elapsed < QUICK, (path, watch.elapsed)
    return response


async def _assert_serving_normally(client: httpx.AsyncClient, user: dict[str, str]) -> None:
    ready = await client.get("/health/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["redis"] == "ok"
    tokens = await _session(client, user["username"])
    me = await client.get("/api/v1/users/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200, me.text


async def test_redis_stopped_fails_closed_and_the_same_process_recovers(
    service: tuple[FastAPI, httpx.AsyncClient], private_redis: PrivateRedis
) -> None:
    _app, client = service
    user = await _account(client)
    revoked = await _session(client, user["username"])
    valid = await _session(client, user["username"])
    response = await client.post("/api/v1/auth/jwt/logout", headers=bearer(revoked["access_token"]))
    assert response.status_code == 204
    errors_before = await _redis_errors(client, "auth_state")

    private_redis.stop()

    # a revoked token is refused; a valid one cannot be checked: 503, quickly, never a 500
    response = await _timed(
        client, "GET", "/api/v1/users/me", headers=bearer(revoked["access_token"])
    )
    assert response.status_code in (401, 503), response.text
    assert_problem(response, response.status_code)
    for _ in range(2):  # and the same again: nothing gets slower or worse
        response = await _timed(
            client, "GET", "/api/v1/users/me", headers=bearer(valid["access_token"])
        )
        _assert_redis_unavailable(response)
    response = await _timed(
        client, "POST", "/api/v1/auth/jwt/refresh", json={"refresh_token": valid["refresh_token"]}
    )
    _assert_redis_unavailable(response)
    # the login limit cannot be checked, so no login is tried (not even a right password)
    response = await _timed(
        client,
        "POST",
        "/api/v1/auth/jwt/login",
        data={"username": user["username"], "password": PASSWORD},
    )
    _assert_redis_unavailable(response)

    ready = await _timed(client, "GET", "/health/ready")
    assert ready.status_code == 503, ready.text
    assert ready.headers.get("retry-after")
    checks = ready.json()["checks"]
    assert checks["redis"].startswith("unreachable ("), checks
    assert checks["database"] == "ok", checks
    assert (await client.get("/health")).status_code == 200
    assert await _redis_errors(client, "auth_state") > errors_before

    # Redis is back, empty (it keeps nothing on disk here): the same process serves normally,
    # and the revoked token is still refused
    private_redis.start()
    response = await client.get("/api/v1/users/me", headers=bearer(revoked["access_token"]))
    assert_problem(response, 401)
    response = await client.get("/api/v1/users/me", headers=bearer(valid["access_token"]))
    assert response.status_code == 200, response.text
    response = await client.post(
        "/api/v1/auth/jwt/refresh", json={"refresh_token": revoked["refresh_token"]}
    )
    assert_problem(response, 401)
    await _assert_serving_normally(client, user)


async def test_revocations_made_after_redis_lost_its_data_still_hold(
    service: tuple[FastAPI, httpx.AsyncClient], private_redis: PrivateRedis
) -> None:
    """Redis restarted empty, the revocations were copied back, then more logouts: all hold."""
    _app, client = service
    user = await _account(client)
    first = await _session(client, user["username"])
    assert (
        await client.post("/api/v1/auth/jwt/logout", headers=bearer(first["access_token"]))
    ).status_code == 204
    private_redis.stop()
    private_redis.start()
    second = await _session(client, user["username"])
    assert (
        await client.post("/api/v1/auth/jwt/logout", headers=bearer(second["access_token"]))
    ).status_code == 204
    private_redis.stop()
    private_redis.start()
    for tokens in (first, second):
        response = await client.get("/api/v1/users/me", headers=bearer(tokens["access_token"]))
        assert_problem(response, 401)


async def test_redis_that_accepts_but_never_answers_gives_quick_503s(
    service: tuple[FastAPI, httpx.AsyncClient], private_redis: PrivateRedis
) -> None:
    """SIGSTOP: connections are accepted by the kernel and nothing is ever answered."""
    _app, client = service
    user = await _account(client)
    tokens = await _session(client, user["username"])
    private_redis.pause()
    try:
        response = await _timed(
            client, "GET", "/api/v1/users/me", headers=bearer(tokens["access_token"])
        )
        _assert_redis_unavailable(response)
        ready = await _timed(client, "GET", "/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["redis"].startswith("unreachable"), ready.text
    finally:
        private_redis.resume()
    response = await client.get("/api/v1/users/me", headers=bearer(tokens["access_token"]))
    assert response.status_code == 200, response.text
    await _assert_serving_normally(client, user)


async def test_a_durable_redis_keeps_a_lockout_across_its_restart(
    app_factory: AppFactory, durable_redis: PrivateRedis
) -> None:
    """With appendonly (as production Redis must run) the login-failure count survives a
    restart; while Redis is down, no login is even tried."""
    async with app_factory(redis=_redis_settings(durable_redis)) as app, _client(app) as client:
        user = await _account(client)
        for _ in range(5):
            response = await client.post(
                "/api/v1/auth/jwt/login",
                data={"username": user["username"], "password": "wrong password"},
            )
            assert_problem(response, 401)
        assert_problem(await login(client, user["username"]), 429)
        durable_redis.stop()
        _assert_redis_unavailable(await login(client, user["username"]))
        durable_redis.start()
        response = await login(client, user["username"])
        assert_problem(response, 429)
        assert int(response.headers["retry-after"]) > 0


async def test_sync_lock_fails_closed_and_a_lost_release_keeps_the_sync(
    service: tuple[FastAPI, httpx.AsyncClient], private_redis: PrivateRedis
) -> None:
    app, client = service
    settings = app.state.settings
    lock = UserSyncLock(
        redis=app.state.redis,
        key_prefix=settings.redis.redis_key_prefix,
        sync_deadline_seconds=5,
    )
    before = await _redis_errors(client, "sync_lock")
    async with app.state.sessionmaker() as session:
        # Redis goes away while the sync runs: leaving the block is not an error (the sync's
        # work is kept; the lock expires on its own)
        finished = False
        async with lock.hold(session, user_id=1):
            private_redis.stop()
            finished = True
        assert finished
        assert await _redis_errors(client, "sync_lock") == before + 1

        # and no sync starts while Redis is down: the caller gets a RedisError, a 503
        with pytest.raises(RedisError):
            async with lock.hold(session, user_id=1):
                pytest.fail("a sync started without its lock")
        assert await _redis_errors(client, "sync_lock") == before + 2
