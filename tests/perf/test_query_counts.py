"""SQL statements per request, counted on the app's engine: a fixed number for each hot route,
whatever the page size, so that a query per row (N+1) or an extra round trip fails here.

Transaction control is not counted (SQLite's BEGIN IMMEDIATE, which the engine issues itself):
what is counted is the statements a route asks for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from psycopg.pq import TransactionStatus
from sqlalchemy import event, insert, select

from ai_workflow_engine.core.db import utcnow
from ai_workflow_engine.tasks.models import Task
from ai_workflow_engine.users.models import User
from tests.conftest import Users
from tests.perf.seeding import seed_events

TASKS = "/api/v1/tasks"
EVENTS = "/api/v1/calendar/events"
SETTINGS = "/api/v1/settings"
ROWS = 230  # more than the largest page (200)

# authentication is one statement (the user's state and the token's revocation together), or
# none of its own where it rides on the route's one read (the task list)
AUTH = 1


@contextmanager
def observing_statements(app: FastAPI) -> Iterator[list[tuple[str, bool]]]:
    """Each statement the app runs, and whether it ran inside a database transaction.

    On PostgreSQL they are seen at the driver's cursor: the statements SQLAlchemy runs and the
    reads that go to the driver directly (`CompiledRead.read`) alike. On SQLite every statement
    goes through SQLAlchemy, whose cursor events see them. Transaction control (SQLite's
    BEGIN IMMEDIATE, issued by the engine itself) is not counted.
    """
    seen: list[tuple[str, bool]] = []
    engine = app.state.engine.sync_engine
    if engine.dialect.name == "postgresql":
        wrapped: dict[Any, Any] = {}

        def observe(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
            connection = dbapi_connection.driver_connection
            if connection in wrapped:
                return
            original = wrapped[connection] = connection.cursor_factory

            class Observed(original):  # type: ignore[valid-type,misc]
                async def execute(self, query: Any, params: Any = None, **kw: Any) -> Any:
                    result = await super().execute(query, params, **kw)
                    in_transaction = self.connection.info.transaction_status
                    seen.append((str(query), in_transaction != TransactionStatus.IDLE))
                    return result

                async def executemany(self, query: Any, params: Any, **kw: Any) -> None:
                    await super().executemany(query, params, **kw)
                    in_transaction = self.connection.info.transaction_status
                    seen.append((str(query), in_transaction != TransactionStatus.IDLE))

            connection.cursor_factory = Observed

        event.listen(engine.pool, "checkout", observe)
        try:
            yield seen
        finally:
            event.remove(engine.pool, "checkout", observe)
            for connection, original in wrapped.items():
                connection.cursor_factory = original
        return

    def record(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith("BEGIN"):
            seen.append((statement, bool(conn.connection.driver_connection.in_transaction)))

    event.listen(engine, "after_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "after_cursor_execute", record)


async def _user_id(app: FastAPI, username: str) -> int:
    async with app.state.sessionmaker() as session:
        user_id = await session.scalar(select(User.id).where(User.username == username))
    assert user_id is not None
    return int(user_id)


async def _seed_tasks(app: FastAPI, user_id: int, count: int) -> None:
    now = utcnow()
    rows = [
        {
            "user_id": user_id,
            "title": f"task {n}",
            "status": "pending",
            "priority": 1 + n % 4,
            "task_type": "general",
            # every fourth without a due date: due-date pages cross into the undated ones
            "due_at": None if n % 4 == 0 else now + dt.timedelta(hours=n),
            "search_text": f"task {n}",
            "created_at": now - dt.timedelta(minutes=n),
            "updated_at": now,
        }
        for n in range(count)
    ]
    async with app.state.engine.begin() as connection:
        await connection.execute(insert(Task), rows)


async def _seed_events(app: FastAPI, user_id: int, count: int, start: dt.datetime) -> None:
    events = []
    for n in range(count):
        begins = start + dt.timedelta(minutes=30 * n)
        all_day = n % 10 == 0
        events.append(
            {
                "google_event_id": f"event{n}",
                "title": f"event {n}",
                "all_day": all_day,
                "start_at": begins,
                "end_at": begins + dt.timedelta(days=3 if all_day else 0, minutes=45),
                "start_date": begins.date() if all_day else None,
                "end_date": (begins + dt.timedelta(days=3)).date() if all_day else None,
                "content_hash": f"{n:064d}",
            }
        )
    # and two long events that began well before the range and still run in it
    for n in (ROWS, ROWS + 1):
        events.append(
            {
                **events[1],
                "google_event_id": f"event{n}",
                "title": f"event {n}",
                "start_at": start - dt.timedelta(days=10, minutes=n),
                "end_at": start + dt.timedelta(days=1),
            }
        )
    await seed_events(app, user_id, events)


async def _count(app: FastAPI, client: httpx.AsyncClient, method: str, url: str, **kw: Any) -> int:
    with observing_statements(app) as statements:
        response = await client.request(method, url, **kw)
    assert response.status_code < 300, response.text
    return len(statements)


@pytest.fixture
async def user(users: Users, app: FastAPI) -> tuple[int, dict[str, str]]:
    registered = await users.register()
    tokens = await users.login(registered["username"])
    user_id = await _user_id(app, registered["username"])
    return user_id, {"Authorization": f"Bearer {tokens['access_token']}"}


@pytest.mark.parametrize("sort", ["-created_at", "due_at", "-due_at", "priority"])
async def test_a_task_page_costs_one_statement_whatever_its_size(
    app: FastAPI, client: httpx.AsyncClient, user: tuple[int, dict[str, str]], sort: str
) -> None:
    user_id, headers = user
    await _seed_tasks(app, user_id, ROWS)
    for limit in (1, 50, 200):
        params = {"limit": limit, "sort": sort}
        # the page, with the token's user and session checked in the same statement
        assert await _count(app, client, "GET", TASKS, params=params, headers=headers) == 1
        first = (await client.get(TASKS, params=params, headers=headers)).json()
        assert len(first["items"]) == limit
        # the next page too (a cursor is decoded, not looked up)
        params["cursor"] = first["next_cursor"]
        assert await _count(app, client, "GET", TASKS, params=params, headers=headers) == 1


async def test_an_empty_task_page_costs_two_statements(
    app: FastAPI, client: httpx.AsyncClient, user: tuple[int, dict[str, str]]
) -> None:
    _, headers = user
    # no row to carry the user's check: it is read on its own
    assert await _count(app, client, "GET", TASKS, headers=headers) == 2


async def test_filtered_task_pages_cost_one_statement(
    app: FastAPI, client: httpx.AsyncClient, user: tuple[int, dict[str, str]]
) -> None:
    user_id, headers = user
    await _seed_tasks(app, user_id, ROWS)
    for params in (
        {"status": ["pending", "completed"], "priority": "high"},
        {"q": "task 1", "due_after": utcnow().isoformat()},
    ):
        for limit in (1, 200):
            count = await _count(
                app, client, "GET", TASKS, params={**params, "limit": limit}, headers=headers
            )
            assert count == 1


async def test_an_events_page_costs_three_statements_whatever_its_size(
    app: FastAPI, client: httpx.AsyncClient, user: tuple[int, dict[str, str]]
) -> None:
    user_id, headers = user
    start = utcnow().replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    await _seed_events(app, user_id, ROWS, start)
    week = {"start": start.isoformat(), "end": (start + dt.timedelta(days=7)).isoformat()}
    for limit in (1, 50, 200):
        params: dict[str, Any] = {**week, "limit": limit}
        # the user's time zone, authentication, the page
        assert await _count(app, client, "GET", EVENTS, params=params, headers=headers) == 3
        first = (await client.get(EVENTS, params=params, headers=headers)).json()
        assert len(first["items"]) == limit
        params["cursor"] = first["next_cursor"]
        assert await _count(app, client, "GET", EVENTS, params=params, headers=headers) == 3


async def test_reading_settings_costs_two_statements(
    client: httpx.AsyncClient, app: FastAPI, user: tuple[int, dict[str, str]]
) -> None:
    _, headers = user
    # defaults (no stored row) and a stored document cost the same
    assert await _count(app, client, "GET", SETTINGS, headers=headers) == AUTH + 1
    saved = await client.patch(SETTINGS, json={"theme": "light"}, headers=headers)
    assert saved.status_code == 200, saved.text
    assert await _count(app, client, "GET", SETTINGS, headers=headers) == AUTH + 1


async def test_creating_a_task_costs_two_statements(
    client: httpx.AsyncClient, app: FastAPI, user: tuple[int, dict[str, str]]
) -> None:
    _, headers = user
    body = {"title": "Write the report", "priority": "high", "due_at": "2030-01-01T09:00:00Z"}
    # authentication and the INSERT (its id comes back with it)
    assert await _count(app, client, "POST", TASKS, json=body, headers=headers) == AUTH + 1


async def test_creating_a_task_in_a_category_checks_it_in_a_savepoint(
    client: httpx.AsyncClient, app: FastAPI, user: tuple[int, dict[str, str]]
) -> None:
    _, headers = user
    categories = (await client.get("/api/v1/categories", headers=headers)).json()["items"]
    body = {"title": "Write the report", "category_id": categories[0]["id"]}
    # authentication, the category check, then SAVEPOINT, INSERT, RELEASE
    assert await _count(app, client, "POST", TASKS, json=body, headers=headers) == AUTH + 4


async def test_reads_run_without_a_transaction_on_postgresql_writes_in_one(
    app: FastAPI, client: httpx.AsyncClient, user: tuple[int, dict[str, str]]
) -> None:
    _, headers = user
    reads_in_transaction = app.state.engine.dialect.name != "postgresql"  # SQLite: BEGIN IMMEDIATE
    for path in (TASKS, SETTINGS, EVENTS):
        with observing_statements(app) as statements:
            response = await client.get(path, headers=headers)
        assert response.status_code == 200, response.text
        assert statements, path
        assert all(state == reads_in_transaction for _, state in statements), (path, statements)
    with observing_statements(app) as statements:
        created = await client.post(TASKS, json={"title": "Write it"}, headers=headers)
    assert created.status_code == 201, created.text
    assert statements
    assert all(state for _, state in statements)
