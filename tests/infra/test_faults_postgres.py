"""Real PostgreSQL faults, on a private server: stopped, restarted mid-stream, a backend killed,
the pool exhausted. The app answers 503 problems with Retry-After quickly, loses and duplicates
nothing, and recovers in the same process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import TEST_SECRET, make_settings
from tests.fixtures.pgbouncer import free_port
from tests.fixtures.private_postgres import APP_DATABASE, PrivatePostgres
from tests.infra.helpers import (
    Stopwatch,
    assert_problem,
    bearer,
    login,
    new_user,
    register,
    running_app,
)

pytestmark = pytest.mark.slow

# what the issue asks of an answer while PostgreSQL is down
DOWN_BOUND = 2.0
TASKS = "/api/v1/tasks"
CATEGORIES = "/api/v1/categories"
REPLAYED = "Idempotent-Replayed"
RETRY_AFTER = 1  # the served process's DATABASE_RETRY_AFTER_SECONDS


async def _signed_in(client: httpx.AsyncClient) -> dict[str, str]:
    user = new_user("fault")
    assert (await register(client, user)).status_code == 201
    tokens = await login(client, user["username"])
    assert tokens.status_code == 200, tokens.text
    return bearer(tokens.json()["access_token"])


def _keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


def _assert_unavailable(response: httpx.Response, retry_after: int, kind: str) -> None:
    body = assert_problem(response, 503)
    assert body["type"].endswith(f"/{kind}"), body
    assert response.headers.get("retry-after") == str(retry_after), response.headers


async def _titles(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    titles: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 200} | ({"cursor": cursor} if cursor else {})
        page = await client.get(TASKS, params=params, headers=headers)
        assert page.status_code == 200, page.text
        titles += [task["title"] for task in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return sorted(titles)


async def _lock_waiters(server: PrivatePostgres, count: int) -> list[int]:
    """The pids of `count` sessions of the app waiting on a lock, once there are that many."""
    rows: list[tuple[object, ...]] = []
    try:
        async with asyncio.timeout(10):
            while len(rows) < count:
                await asyncio.sleep(0.05)
                rows = await asyncio.to_thread(
                    server.admin,
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE datname = %s AND wait_event_type = 'Lock'",
                    (APP_DATABASE,),
                )
    except TimeoutError:
        pytest.fail(f"{len(rows)} of {count} requests reached the lock")
    return [int(str(row[0])) for row in rows]


@contextmanager
def _table_locked(server: PrivatePostgres, table: str) -> Iterator[None]:
    """An admin transaction holding an exclusive lock on `table` until the block ends."""
    with psycopg.connect(server.conninfo(APP_DATABASE)) as locker:
        locker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE".encode())
        try:
            yield
        finally:
            locker.rollback()


async def test_stopped_postgres_gives_quick_503s_and_the_same_app_recovers(
    private_postgres: PrivatePostgres, private_postgres_url: str
) -> None:
    settings = make_settings(private_postgres_url)
    retry_after = settings.database.database_retry_after_seconds
    async with running_app(settings) as (_app, client):
        headers = await _signed_in(client)
        created = await client.post(TASKS, json={"title": "before"}, headers=headers)
        assert created.status_code == 201, created.text

        await asyncio.to_thread(private_postgres.stop)  # pooled connections are cut
        try:
            requests: list[tuple[str, str, dict[str, object]]] = [
                ("POST", "/api/v1/auth/register", {"json": new_user("down")}),
                ("POST", "/api/v1/auth/jwt/login", {"data": {"username": "x", "password": "y"}}),
                ("GET", "/api/v1/users/me", {"headers": headers}),
                ("GET", TASKS, {"headers": headers}),
                ("POST", TASKS, {"json": {"title": "down"}, "headers": _keyed(headers, "d1")}),
                ("POST", CATEGORIES, {"json": {"name": "down"}, "headers": headers}),
            ]
            for method, path, kwargs in requests * 2:  # a second round: nothing got stuck
                watch = Stopwatch()
                response = await client.request(method, path, **kwargs)  # type: ignore[arg-type]
                assert watch.elapsed < DOWN_BOUND, (method, path, watch.elapsed)
                _assert_unavailable(response, retry_after, "database-unavailable")

            watch = Stopwatch()
            ready = await client.get("/health/ready")
            assert watch.elapsed < DOWN_BOUND, watch.elapsed
            assert ready.status_code == 503
            assert ready.headers.get("retry-after") == str(retry_after)
            assert ready.json()["checks"]["database"].startswith("unreachable"), ready.json()
            live = await client.get("/health")
            assert (live.status_code, live.json()) == (200, {"status": "ok"})
        finally:
            await asyncio.to_thread(private_postgres.start)

        # the same process, not restarted: serves normally at once
        assert (await client.get("/health/ready")).status_code == 200
        me = await client.get("/api/v1/users/me", headers=headers)
        assert me.status_code == 200, me.text
        again = await client.post(TASKS, json={"title": "down"}, headers=_keyed(headers, "d1"))
        assert again.status_code == 201, again.text
        assert REPLAYED not in again.headers  # the attempt while down stored nothing
        assert await _titles(client, headers) == ["before", "down"]
        assert (await register(client, new_user("back"))).status_code == 201


# -- a restart in the middle of a stream of creations, over real HTTP --------------------------


@asynccontextmanager
async def _served(database_url: str, workdir: Path) -> AsyncIterator[str]:
    """`ai-workflow-engine serve` in its own process, as deployed; yields its base URL."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        DATABASE_URL=database_url,
        SECRET_KEY=TEST_SECRET,
        DATA_DIR=str(workdir / "data"),
        JOBS_IN_PROCESS="false",
        LOG_LEVEL="WARNING",
        DATABASE_RETRY_AFTER_SECONDS=str(RETRY_AFTER),
    )
    port = free_port()
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "ai_workflow_engine", "serve", "--port", str(port)),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=1) as probe:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if (await probe.get(base + "/health/ready")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.returncode is not None or time.monotonic() > deadline:
                    pytest.fail("the server did not start:\n" + log_path.read_text())
                await asyncio.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            async with asyncio.timeout(10):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
        output = log_path.read_text(errors="replace")
        assert "Traceback" not in output, output[-5000:]


STREAM_SENDERS = 4
STREAM_BEFORE_RESTART = 20
STREAM_AFTER_RESTART = 20
STREAM_MAX = 300


async def test_restart_during_keyed_creations_loses_and_duplicates_nothing(
    private_postgres: PrivatePostgres, private_postgres_url: str, tmp_path: Path
) -> None:
    """Real HTTP to a served process (its own event loop and pool, as deployed) while
    `pg_ctl restart -m fast` cuts every session: requests in flight or sent while PostgreSQL is
    down fail with 503; whatever was answered 2xx exists exactly once; retrying the failed ones
    with their keys creates each missing task once and replays the ones that were committed."""
    async with (
        _served(private_postgres_url, tmp_path) as base,
        httpx.AsyncClient(base_url=base, timeout=15) as client,
    ):
        headers = await _signed_in(client)
        answers: dict[str, httpx.Response] = {}
        under_way, restarted = asyncio.Event(), asyncio.Event()
        sent = after_restart = 0

        async def send() -> None:
            nonlocal sent, after_restart
            while sent < STREAM_MAX and after_restart < STREAM_AFTER_RESTART:
                key = f"stream-{sent:04d}"
                sent += 1
                if sent >= STREAM_BEFORE_RESTART:
                    under_way.set()
                answers[key] = response = await client.post(
                    TASKS, json={"title": key}, headers=_keyed(headers, key)
                )
                if restarted.is_set():
                    after_restart += 1
                if response.status_code == 503:
                    await asyncio.sleep(0.1)  # a client's short back-off

        async def restart() -> None:
            await under_way.wait()
            await asyncio.to_thread(private_postgres.restart, "fast")
            restarted.set()

        async with asyncio.timeout(60):
            await asyncio.gather(restart(), *(send() for _ in range(STREAM_SENDERS)))

        statuses = {r.status_code for r in answers.values()}
        assert statuses <= {201, 503}, {k: r.text for k, r in answers.items()}
        failed = [key for key, r in answers.items() if r.status_code == 503]
        succeeded = {key: r.json() for key, r in answers.items() if r.status_code == 201}
        assert failed, "the restart did not interrupt the stream (no request failed)"
        for key in failed:
            _assert_unavailable(answers[key], RETRY_AFTER, "database-unavailable")

        assert sorted(succeeded) == [t for t in await _titles(client, headers) if t in succeeded], (
            "a creation answered 2xx is missing or duplicated"
        )

        async with asyncio.timeout(30):
            for key in failed:  # the client's retry, with the same key and body
                for _ in range(40):
                    retry = await client.post(
                        TASKS, json={"title": key}, headers=_keyed(headers, key)
                    )
                    if retry.status_code != 503:
                        break
                    await asyncio.sleep(0.25)
                assert retry.status_code == 201, retry.text
            for key, first in list(succeeded.items())[:10]:  # answers survive the restart
                replay = await client.post(TASKS, json={"title": key}, headers=_keyed(headers, key))
                assert replay.headers.get(REPLAYED) == "true", replay.text
                assert replay.json() == first

        titles = await _titles(client, headers)
        assert titles == sorted(answers), "every key is one task, no more, no less"
        assert len(titles) == len(set(answers))


# -- a backend killed ------------------------------------------------------------------------


async def test_killed_backend_fails_at_most_the_request_in_flight(
    private_postgres: PrivatePostgres, private_postgres_url: str
) -> None:
    settings = make_settings(private_postgres_url)
    retry_after = settings.database.database_retry_after_seconds
    async with running_app(settings) as (_app, client):
        headers = await _signed_in(client)
        assert (await client.get(CATEGORIES, headers=headers)).status_code == 200

        # idle pooled connections killed between requests: no request fails
        killed = await asyncio.to_thread(private_postgres.terminate_backends, APP_DATABASE)
        assert killed >= 1, "the app held no pooled connection"
        for _ in range(3):
            response = await client.get(CATEGORIES, headers=headers)
            assert response.status_code == 200, response.text

        # the backend of a request in flight killed: that request alone fails, with a 503
        with _table_locked(private_postgres, "categories"):
            in_flight = asyncio.create_task(client.get(CATEGORIES, headers=headers))
            (pid,) = await _lock_waiters(private_postgres, 1)
            await asyncio.to_thread(
                private_postgres.admin, "SELECT pg_terminate_backend(%s)", (pid,)
            )
            async with asyncio.timeout(10):
                failed = await in_flight
        _assert_unavailable(failed, retry_after, "database-unavailable")

        for _ in range(3):
            response = await client.get(CATEGORIES, headers=headers)
            assert response.status_code == 200, response.text
        created = await client.post(CATEGORIES, json={"name": "after"}, headers=headers)
        assert created.status_code == 201, created.text


# -- the pool exhausted ------------------------------------------------------------------------


async def test_exhausted_pool_answers_503_quickly_instead_of_hanging(
    private_postgres: PrivatePostgres, private_postgres_url: str
) -> None:
    """Every pooled connection is held by a request stuck on a lock: the next requests wait
    `DATABASE_POOL_TIMEOUT` for a connection, then answer 503 with Retry-After."""
    pool = {"database_pool_size": 2, "database_max_overflow": 0, "database_pool_timeout": 0.5}
    settings = make_settings(private_postgres_url, database=pool)
    retry_after = settings.database.database_retry_after_seconds
    bound = pool["database_pool_timeout"] + 1.0
    async with running_app(settings) as (_app, client):
        headers = await _signed_in(client)
        with _table_locked(private_postgres, "categories"):
            stuck = [asyncio.create_task(client.get(CATEGORIES, headers=headers)) for _ in range(2)]
            await _lock_waiters(private_postgres, 2)

            for method, path, kwargs in [
                ("GET", "/api/v1/users/me", {"headers": headers}),
                ("POST", TASKS, {"json": {"title": "t"}, "headers": _keyed(headers, "busy")}),
            ]:
                watch = Stopwatch()
                response = await client.request(method, path, **kwargs)  # type: ignore[arg-type]
                assert watch.elapsed < bound, (path, watch.elapsed)
                _assert_unavailable(response, retry_after, "database-busy")
            watch = Stopwatch()
            ready = await client.get("/health/ready")
            assert watch.elapsed < bound, watch.elapsed
            assert ready.status_code == 503
            assert (await client.get("/health")).status_code == 200
            assert not any(task.done() for task in stuck)

        async with asyncio.timeout(10):
            released = await asyncio.gather(*stuck)
        assert [r.status_code for r in released] == [200, 200]
        created = await client.post(TASKS, json={"title": "t"}, headers=_keyed(headers, "busy"))
        assert created.status_code == 201, created.text
        assert REPLAYED not in created.headers
