"""The app behind pgbouncer in transaction pooling mode (the production topology)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from zoneinfo import ZoneInfo

import httpx
import psycopg
from sqlalchemy import select, text

from ai_workflow_engine.calendar.google.sync import CalendarSyncOutcome, PageSource, sync_calendar
from ai_workflow_engine.calendar.locks import UserSyncLock
from ai_workflow_engine.calendar.models import CalendarEvent
from ai_workflow_engine.core.config import DatabaseSettings
from ai_workflow_engine.core.db import create_engine, create_sessionmaker
from tests.calendar.test_sync_engine import event, load_state, make_calendar_for, paged
from tests.conftest import make_settings
from tests.fixtures.pgbouncer import PgBouncer
from tests.infra.helpers import bearer, login, new_user, register, running_app

BURST = 200
BURST_TIMEOUT = 60


async def test_pgbouncer_runs_in_transaction_mode(pgbouncer: PgBouncer) -> None:
    with psycopg.connect(pgbouncer.conninfo("app"), autocommit=True) as conn:
        row = conn.execute("SELECT current_database()").fetchone()
        assert row is not None
        assert row[0] == pgbouncer.upstream.dbname
        pools = [r for r in pgbouncer.admin("SHOW POOLS") if r["database"] == "app"]
    assert [r["pool_mode"] for r in pools] == ["transaction"], pools


async def test_200_concurrent_requests_through_pgbouncer_have_no_errors(
    pgbouncer: PgBouncer,
) -> None:
    """Reads and creations (some with an Idempotency-Key sent several times at once) from four
    users, all in flight together, through transaction pooling: every one succeeds, each key
    creates one task, and pgbouncer multiplexes the app's connections onto a few of its own."""
    # the app's pool sized for the burst: a request waits for a connection rather than failing
    pool = {"database_pool_size": 20, "database_max_overflow": 20, "database_pool_timeout": 20}
    async with running_app(make_settings(pgbouncer.url("app"), database=pool)) as (_app, client):
        async with asyncio.timeout(BURST_TIMEOUT):
            # signed in beforehand: password hashing is CPU-bound by design, not what is measured
            seeded = [new_user("seed") for _ in range(4)]
            created = await asyncio.gather(*(register(client, user) for user in seeded))
            assert [r.status_code for r in created] == [201] * len(seeded)
            logins = await asyncio.gather(*(login(client, u["username"]) for u in seeded))
            assert [r.status_code for r in logins] == [200] * len(seeded)
            auth = [bearer(r.json()["access_token"]) for r in logins]

            calls: list[Awaitable[httpx.Response]] = []
            expected_me: dict[int, str] = {}
            keyed: dict[str, list[int]] = {}  # key -> indexes of its requests
            expected_titles: list[list[str]] = [[] for _ in auth]  # one task per key, per user

            def create(user: int, key: str | None) -> None:
                headers = auth[user] | ({"Idempotency-Key": key} if key else {})
                if key is None or key not in keyed:
                    expected_titles[user].append(key or "unkeyed")
                if key:
                    keyed.setdefault(key, []).append(len(calls))
                body = {"title": key or "unkeyed"}
                calls.append(client.post("/api/v1/tasks", json=body, headers=headers))

            for i in range(40):
                create(i % 4, f"burst-{i}")
            for i in range(20):  # ten keys sent twice more, concurrently with their first
                create(i % 10 % 4, f"burst-{i % 10}")
            for i in range(10):
                create(i % 4, None)
            for i in range(60):
                calls.append(client.get("/api/v1/tasks", headers=auth[i % 4]))
            for i in range(40):
                expected_me[len(calls)] = seeded[i % 4]["username"]
                calls.append(client.get("/api/v1/users/me", headers=auth[i % 4]))
            for i in range(30):
                calls.append(client.get("/api/v1/categories", headers=auth[i % 4]))
            assert len(calls) == BURST
            responses = await asyncio.gather(*calls)

        failures = [
            (r.request.method, r.request.url.path, r.status_code, r.text)
            for r in responses
            if not r.is_success
        ]
        assert failures == []
        assert (await client.get("/health/ready")).status_code == 200
        for index, username in expected_me.items():
            assert responses[index].json()["username"] == username
        for key, indexes in keyed.items():
            answers = [responses[i] for i in indexes]
            assert len({r.content for r in answers}) == 1, key  # one task, the same answer
            assert sum("Idempotent-Replayed" not in r.headers for r in answers) == 1, key
        for headers, expected in zip(auth, expected_titles, strict=True):
            listed = await client.get("/api/v1/tasks?limit=200", headers=headers)
            assert sorted(task["title"] for task in listed.json()["items"]) == sorted(expected)

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


async def test_a_calendar_sync_through_pgbouncer_copies_rewrites_and_deletes(
    pgbouncer: PgBouncer,
) -> None:
    """The sync engine's bulk paths through transaction pooling: the COPY into an empty calendar
    and its savepoint fallback, changes and deletions sent as binary arrays, and the sync lock (a
    transaction-level advisory lock)."""
    engine = create_engine(DatabaseSettings(database_url=pgbouncer.url("app")))
    sessionmaker = create_sessionmaker(engine)
    lock = UserSyncLock(redis=None, key_prefix="", sync_deadline_seconds=10)
    try:
        created = await make_calendar_for(sessionmaker, f"bouncer{uuid.uuid4().hex[:8]}")
        user_id, calendar_id = created.user_id, created.id

        async def sync(pages: PageSource) -> CalendarSyncOutcome:
            async with sessionmaker() as session, session.begin(), lock.hold(session, user_id):
                state = await load_state(session, calendar_id)
                return await sync_calendar(session, state, pages, ZoneInfo("UTC"))

        async def stored() -> dict[str, str | None]:
            async with sessionmaker() as session:
                rows = await session.execute(
                    select(CalendarEvent.google_event_id, CalendarEvent.title).where(
                        CalendarEvent.calendar_id == calendar_id
                    )
                )
                return {row[0]: row[1] for row in rows}

        async with asyncio.timeout(30):
            # pages of 3: the third relists e0, so it falls back to the general path
            full = [event(f"e{n}") for n in range(7)] + [event("e0", "Relisted")]
            outcome = await sync(paged(full, 3))
            assert (outcome.counts.created, outcome.counts.updated) == (7, 1)
            changes = [event("e1", "Changed"), {"id": "e2", "status": "cancelled"}, event("e7")]
            outcome = await sync(paged(changes, 10, "token-2"))
            assert not outcome.full_sync
            counts = outcome.counts
            assert (counts.created, counts.updated, counts.deleted) == (1, 1, 1)
            outcome = await sync(paged([{"id": "e3", "status": "cancelled"}], 10, "token-3"))
            assert outcome.counts.deleted == 1
            now = await stored()
        assert set(now) == {"e0", "e1", "e4", "e5", "e6", "e7"}
        assert (now["e0"], now["e1"]) == ("Relisted", "Changed")
        assert pgbouncer.clients("app"), "the engine did not go through pgbouncer"
    finally:
        await engine.dispose()
