"""The database goes away and comes back: quick 503s while it is gone, no restart needed after."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import make_settings
from tests.fixtures.pgbouncer import PgBouncer, PgBouncerLauncher, free_port
from tests.fixtures.tcp_proxy import TcpProxy
from tests.infra.helpers import (
    Stopwatch,
    assert_problem,
    bearer,
    login,
    new_user,
    register,
    running_app,
)

# what "quickly" means for an answer while the database is down
FAST = 5.0


def _token(app: FastAPI) -> str:
    """A syntactically valid access token, made without the database."""
    token: str = app.state.token_codec.issue(1, str(uuid.uuid4()), "access")[0]
    return token


async def _assert_database_down(app: FastAPI, client: httpx.AsyncClient) -> None:
    retry_after = str(app.state.settings.database.database_retry_after_seconds)
    requests = [
        ("POST", "/api/v1/auth/register", {"json": new_user("down")}),
        ("POST", "/api/v1/auth/jwt/login", {"data": {"username": "someone", "password": "x" * 8}}),
        ("GET", "/api/v1/users/me", {"headers": bearer(_token(app))}),
    ]
    for method, path, kwargs in requests:
        watch = Stopwatch()
        response = await client.request(method, path, **kwargs)  # type: ignore[arg-type]
        assert watch.elapsed < FAST, (path, watch.elapsed)
        body = assert_problem(response, 503)
        assert body["type"].endswith("/database-unavailable"), body
        assert response.headers.get("retry-after") == retry_after, (path, response.headers)

    watch = Stopwatch()
    ready = await client.get("/health/ready")
    assert watch.elapsed < FAST, watch.elapsed
    assert ready.status_code == 503
    assert ready.headers.get("retry-after")
    body = ready.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"].startswith("unreachable"), body
    assert "Error" in body["checks"]["database"], body  # names the kind of failure
    assert body["checks"]["migrations"] != "ok", body

    live = await client.get("/health")
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}
    assert (await client.get("/metrics")).status_code == 200


async def test_closed_port_gives_quick_503s() -> None:
    """Nothing listens on the port: the app still starts (PostgreSQL is not touched at start-up)
    and every endpoint that needs the database answers 503 with Retry-After, fast."""
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/aiwe"
    async with running_app(make_settings(url)) as (app, client):
        await _assert_database_down(app, client)
        # and it stays that way: no slow path on the second round (no stuck pool)
        await _assert_database_down(app, client)


@asynccontextmanager
async def _black_hole() -> AsyncIterator[int]:
    """A TCP port that accepts connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def swallow(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_database_that_never_answers_gives_503_within_the_connect_timeout() -> None:
    """Accepts TCP, never speaks: bounded by DATABASE_CONNECT_TIMEOUT."""
    async with _black_hole() as port:
        url = f"postgresql://postgres@127.0.0.1:{port}/aiwe"
        # libpq's smallest connect timeout (the default is 3 s)
        settings = make_settings(url, database={"database_connect_timeout": 2})
        async with running_app(settings) as (app, client):
            async with asyncio.timeout(15):
                watch = Stopwatch()
                response, ready = await asyncio.gather(
                    client.get("/api/v1/users/me", headers=bearer(_token(app))),
                    client.get("/health/ready"),
                )
            assert watch.elapsed < FAST, watch.elapsed
            assert_problem(response, 503)
            assert response.headers.get("retry-after")
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"].startswith("unreachable")


async def _assert_up(client: httpx.AsyncClient, token: str, username: str) -> None:
    me = await client.get("/api/v1/users/me", headers=bearer(token))
    assert me.status_code == 200, me.text
    assert me.json()["username"] == username
    ready = await client.get("/health/ready")
    assert ready.status_code == 200, ready.text


async def test_same_app_recovers_when_the_database_comes_back(
    pgbouncer_factory: PgBouncerLauncher,
) -> None:
    port = free_port()
    bouncer: PgBouncer = pgbouncer_factory.create(port=port, start=False, name="outage")
    async with running_app(make_settings(bouncer.url("app"))) as (app, client):
        # down from the start
        await _assert_database_down(app, client)

        # the database appears on that address: used at once, no restart
        await asyncio.to_thread(bouncer.start)
        user = new_user("back")
        assert (await register(client, user)).status_code == 201
        tokens = await login(client, user["username"])
        assert tokens.status_code == 200, tokens.text
        token = tokens.json()["access_token"]
        await _assert_up(client, token, user["username"])

        # it goes away under an app holding pooled connections to it
        await asyncio.to_thread(bouncer.stop)
        await _assert_database_down(app, client)
        watch = Stopwatch()
        me = await client.get("/api/v1/users/me", headers=bearer(token))
        assert watch.elapsed < FAST
        assert_problem(me, 503)

        # and comes back again
        await asyncio.to_thread(bouncer.start)
        await _assert_up(client, token, user["username"])
        again = await client.post("/api/v1/auth/register", json=new_user("again"))
        assert again.status_code == 201, again.text


async def test_postgres_gone_behind_pgbouncer_does_not_hang_requests(
    pgbouncer_factory: PgBouncerLauncher, infra_postgres_url: str
) -> None:
    """The production outage: pgbouncer stays up, PostgreSQL behind it goes away. pgbouncer
    then queues queries for a server it cannot reach (by default for 120 s); the app must not
    wait that long but answer 503 after its own bound (`database_query_timeout`)."""
    target = urlsplit(infra_postgres_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    try:
        upstream = target._replace(netloc=f"postgres@127.0.0.1:{proxy.port}").geturl()
        bouncer = pgbouncer_factory.create(
            upstream_url=upstream, name="behind", options={"query_wait_timeout": None}
        )
        settings = make_settings(bouncer.url("app"), database={"database_query_timeout": 2})
        async with running_app(settings) as (_app, client):
            user = new_user("behind")
            assert (await register(client, user)).status_code == 201
            token = (await login(client, user["username"])).json()["access_token"]
            await _assert_up(client, token, user["username"])

            await proxy.stop()  # PostgreSQL unreachable; pgbouncer and its client side stay up
            watch = Stopwatch()
            try:
                # (a second expiry makes psycopg drop the connection instead of waiting 5 s
                # for its cancel request, so a hang fails this test quickly)
                async with asyncio.timeout(FAST + 2), asyncio.timeout(FAST + 1):
                    me = await client.get("/api/v1/users/me", headers=bearer(token))
            except TimeoutError:
                pytest.fail(
                    f"GET /api/v1/users/me hung for {watch.elapsed:.1f}s while "
                    "PostgreSQL was unreachable behind pgbouncer"
                )
            assert watch.elapsed < FAST, watch.elapsed
            assert_problem(me, 503)
            watch = Stopwatch()
            ready = await client.get("/health/ready")
            assert watch.elapsed < FAST, watch.elapsed
            assert ready.status_code == 503

            await proxy.start()  # back: the same app recovers by itself
            status = None
            async with asyncio.timeout(15):
                while status != 200:
                    await asyncio.sleep(0.2)
                    retry = await client.get("/api/v1/users/me", headers=bearer(token))
                    status = retry.status_code
            await _assert_up(client, token, user["username"])
    finally:
        await proxy.stop()


async def test_redis_down_gives_quick_503s_where_it_is_needed(tmp_path: Path) -> None:
    """REDIS_URL set but nothing there: what needs the shared state answers 503 with
    Retry-After; readiness names Redis; what does not need it keeps working."""
    url = f"sqlite:///{tmp_path / 'app.db'}"
    redis_url = f"redis://127.0.0.1:{free_port()}/0"
    async with running_app(make_settings(url, redis={"redis_url": redis_url})) as (app, client):
        user = new_user("redisdown")
        assert (await register(client, user)).status_code == 201  # the database alone

        watch = Stopwatch()
        response = await login(client, user["username"])
        assert watch.elapsed < FAST, watch.elapsed
        body = assert_problem(response, 503)
        assert body["type"].endswith("/redis-unavailable"), body
        assert response.headers.get("retry-after") == str(
            app.state.settings.redis.redis_retry_after_seconds
        )
        response = await client.get("/api/v1/users/me", headers=bearer(_token(app)))
        assert_problem(response, 503)

        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        checks = ready.json()["checks"]
        assert checks["database"] == "ok"
        assert checks["migrations"] == "ok"
        assert checks["redis"].startswith("unreachable"), checks
        assert (await client.get("/health")).status_code == 200
