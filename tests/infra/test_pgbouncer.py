"""The app behind pgbouncer in transaction pooling mode (the production topology)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import httpx
import psycopg
from sqlalchemy import text

from ai_workflow_engine.core.config import DatabaseSettings
from ai_workflow_engine.core.db import create_engine
from tests.conftest import make_settings
from tests.fixtures.pgbouncer import PgBouncer
from tests.infra.helpers import bearer, login, new_user, register, running_app

BURST_TIMEOUT = 45


async def test_pgbouncer_runs_in_transaction_mode(pgbouncer: PgBouncer) -> None:
    with psycopg.connect(pgbouncer.conninfo("app"), autocommit=True) as conn:
        row = conn.execute("SELECT current_database()").fetchone()
        assert row is not None
        assert row[0] == pgbouncer.upstream.dbname
        pools = [r for r in pgbouncer.admin("SHOW POOLS") if r["database"] == "app"]
    assert [r["pool_mode"] for r in pools] == ["transaction"], pools


async def test_concurrent_burst_through_pgbouncer_has_no_errors(pgbouncer: PgBouncer) -> None:
    settings = make_settings(pgbouncer.url("app"))
    async with running_app(settings) as (_app, client):
        async with asyncio.timeout(BURST_TIMEOUT):
            seeded = [new_user("seed") for _ in range(4)]
            created = await asyncio.gather(*(register(client, user) for user in seeded))
            assert [r.status_code for r in created] == [201] * len(seeded)
            logins = await asyncio.gather(*(login(client, u["username"]) for u in seeded))
            assert [r.status_code for r in logins] == [200] * len(seeded)
            tokens = [r.json()["access_token"] for r in logins]

            calls: list[Awaitable[httpx.Response]] = []
            expected_me: dict[int, str] = {}
            # 80 at once; password hashing is CPU-bound by design, so most are reads
            fresh = [new_user("burst") for _ in range(10)]
            calls += [register(client, user) for user in fresh]
            calls += [login(client, seeded[i % len(seeded)]["username"]) for i in range(10)]
            for i in range(50):
                expected_me[len(calls)] = seeded[i % len(seeded)]["username"]
                headers = bearer(tokens[i % len(tokens)])
                calls.append(client.get("/api/v1/users/me", headers=headers))
            calls += [client.get("/health/ready") for _ in range(10)]
            responses = await asyncio.gather(*calls)

        failures = [
            (r.request.method, r.request.url.path, r.status_code, r.text)
            for r in responses
            if not r.is_success
        ]
        assert failures == []
        assert len(responses) == 80
        for index, username in expected_me.items():
            assert responses[index].json()["username"] == username
        assert sorted(r.json()["username"] for r in responses[:10]) == sorted(
            u["username"] for u in fresh
        )

        # the traffic really went through pgbouncer, multiplexed: the app's pool holds more
        # client connections than pgbouncer keeps server connections
        clients = pgbouncer.clients("app")
        servers = pgbouncer.servers("app")
        assert 0 < len(servers) <= pgbouncer.default_pool_size, servers
        assert len(clients) > len(servers), (clients, servers)


def _prepared_statements(bouncer: PgBouncer) -> list[str]:
    """Named prepared statements on the one server session behind the `single` database."""
    with psycopg.connect(bouncer.conninfo("single"), autocommit=True, prepare_threshold=None) as c:
        return [row[0] for row in c.execute("SELECT name FROM pg_prepared_statements").fetchall()]


async def test_no_named_prepared_statements_reach_the_server(pgbouncer: PgBouncer) -> None:
    """`single` has one server connection, so a statement any client prepared stays visible."""
    assert _prepared_statements(pgbouncer) == []
    engine = create_engine(DatabaseSettings(database_url=pgbouncer.url("single")))
    query = text("SELECT count(*) FROM users WHERE username_key = :key")
    try:

        async def worker(n: int) -> None:
            for _ in range(15):
                async with engine.connect() as connection:  # one transaction per iteration
                    assert await connection.scalar(query, {"key": f"nobody-{n}"}) == 0

        async with asyncio.timeout(30):
            # several client connections share the single server session, interleaved
            await asyncio.gather(*(worker(n) for n in range(4)))
            async with engine.connect() as connection:  # and one client, many times in a row
                for _ in range(40):
                    assert await connection.scalar(query, {"key": "nobody"}) == 0
                    await connection.commit()
        assert pgbouncer.clients("single"), "the engine did not go through pgbouncer"
    finally:
        await engine.dispose()
    assert _prepared_statements(pgbouncer) == []

    # control: a client that does use named prepared statements is seen by the same check
    with psycopg.connect(pgbouncer.conninfo("single"), autocommit=True, prepare_threshold=0) as c:
        c.execute("SELECT count(*) FROM users WHERE id = %s", (0,))
    try:
        assert _prepared_statements(pgbouncer) != []
    finally:
        with psycopg.connect(pgbouncer.conninfo("single"), autocommit=True) as c:
            c.execute("DEALLOCATE ALL")
