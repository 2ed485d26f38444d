"""API1 Broken Object Level Authorization: another user's objects are 404, never 403 and never
data, on every route that takes an id; filters and references never reach them either."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ai_workflow_engine.calendar.models import Calendar, CalendarEvent
from ai_workflow_engine.core.db import utcnow
from ai_workflow_engine.core.schemas import MAX_ID
from tests.conftest import Users
from tests.security.conftest import PATH_PARAMETER, api_operations, assert_problem, bearer

SECRET = "owner-only-7f3a"  # in every name and title of the owner's objects

# Every route with an id in its path, the kind of object the id names, and the body it takes.
# A route added with a path id and not listed here fails test_every_route_with_an_id_is_covered.
ROUTES_WITH_IDS: dict[tuple[str, str], tuple[str, dict[str, Any] | None]] = {
    ("GET", "/api/v1/tasks/{task_id}"): ("task", None),
    ("PATCH", "/api/v1/tasks/{task_id}"): ("task", {"title": "taken over"}),
    ("DELETE", "/api/v1/tasks/{task_id}"): ("task", None),
    ("GET", "/api/v1/categories/{category_id}"): ("category", None),
    ("PATCH", "/api/v1/categories/{category_id}"): ("category", {"name": "taken over"}),
    ("DELETE", "/api/v1/categories/{category_id}"): ("category", None),
    ("PATCH", "/api/v1/calendar/calendars/{calendar_id}"): ("calendar", {"selected": False}),
}


@dataclass
class Owner:
    """A user with one object of each kind, all named with SECRET."""

    user_id: int
    headers: dict[str, str]
    ids: dict[str, int]


async def make_owner(app: FastAPI, client: httpx.AsyncClient, users: Users) -> Owner:
    user = await users.register()
    headers = bearer((await users.login(user["username"]))["access_token"])
    category = await client.post(
        "/api/v1/categories", json={"name": f"{SECRET} cat"}, headers=headers
    )
    assert category.status_code == 201, category.text
    category_id = category.json()["id"]
    task = await client.post(
        "/api/v1/tasks",
        json={"title": f"{SECRET} task", "category_id": category_id},
        headers=headers,
    )
    assert task.status_code == 201, task.text
    now = utcnow()
    async with app.state.sessionmaker() as session, session.begin():
        calendar = Calendar(
            user_id=user["id"],
            google_calendar_id=f"{SECRET}@example.com",
            summary=f"{SECRET} calendar",
            primary=True,
            selected=True,
        )
        session.add(calendar)
        await session.flush()
        event = CalendarEvent(
            user_id=user["id"],
            calendar_id=calendar.id,
            google_event_id="evt-1",
            title=f"{SECRET} event",
            status="confirmed",
            start_at=now + timedelta(hours=1),
            end_at=now + timedelta(hours=2),
            category_id=category_id,
            content_hash="0" * 64,
        )
        session.add(event)
        await session.flush()
        ids = {
            "task": task.json()["id"],
            "category": category_id,
            "calendar": calendar.id,
            "event": event.id,
        }
    return Owner(user["id"], headers, ids)


async def readable_by_owner(client: httpx.AsyncClient, owner: Owner, kind: str) -> dict[str, Any]:
    """The owner's object as the owner reads it now."""
    if kind == "calendar":
        response = await client.get("/api/v1/calendar/calendars", headers=owner.headers)
        assert response.status_code == 200, response.text
        (item,) = [c for c in response.json()["items"] if c["id"] == owner.ids["calendar"]]
        return dict(item)
    response = await client.get(
        f"/api/v1/{'tasks' if kind == 'task' else 'categories'}/{owner.ids[kind]}",
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_every_route_with_an_id_is_covered(app: FastAPI) -> None:
    """Enumerated from the application: a new route with a path id must be added above."""
    with_ids = {(op.method, op.path) for op in api_operations(app) if "{" in op.path}
    assert with_ids == set(ROUTES_WITH_IDS)
    for _method, path in with_ids:
        assert len(PATH_PARAMETER.findall(path)) == 1, path


@pytest.mark.parametrize(
    ("method", "path"), list(ROUTES_WITH_IDS), ids=[f"{m} {p}" for m, p in ROUTES_WITH_IDS]
)
async def test_another_users_object_is_404(
    app: FastAPI, client: httpx.AsyncClient, users: Users, method: str, path: str
) -> None:
    kind, body = ROUTES_WITH_IDS[(method, path)]
    owner = await make_owner(app, client, users)
    before = await readable_by_owner(client, owner, kind)
    intruder = await users.headers()

    foreign = await client.request(
        method,
        PATH_PARAMETER.sub(str(owner.ids[kind]), path),
        json=body,
        headers=intruder,
    )
    missing = await client.request(
        method, PATH_PARAMETER.sub(str(MAX_ID), path), json=body, headers=intruder
    )

    problem = assert_problem(foreign, 404)
    assert SECRET not in foreign.text
    # exactly what an id that does not exist answers: the object's existence is not revealed
    assert problem == assert_problem(missing, 404)
    assert await readable_by_owner(client, owner, kind) == before


async def test_another_users_category_filters_nothing(
    app: FastAPI, client: httpx.AsyncClient, users: Users
) -> None:
    owner = await make_owner(app, client, users)
    intruder = await users.headers()
    created = await client.post("/api/v1/tasks", json={"title": "mine"}, headers=intruder)
    assert created.status_code == 201
    query = {"category_id": owner.ids["category"]}

    theirs = await client.get("/api/v1/tasks", params=query, headers=intruder)
    own = await client.get("/api/v1/tasks", params=query, headers=owner.headers)

    assert theirs.status_code == 200, theirs.text
    assert theirs.json()["items"] == []
    assert [task["id"] for task in own.json()["items"]] == [owner.ids["task"]]


async def test_a_user_id_in_the_query_is_no_filter(
    app: FastAPI, client: httpx.AsyncClient, users: Users
) -> None:
    owner = await make_owner(app, client, users)
    intruder = await users.headers()
    for path in ("/api/v1/tasks", "/api/v1/categories", "/api/v1/calendar/events"):
        response = await client.get(path, params={"user_id": owner.user_id}, headers=intruder)
        assert response.status_code == 200, response.text
        assert SECRET not in response.text, path


@pytest.mark.parametrize("kind", ["calendar", "category"])
async def test_another_users_calendar_or_category_lists_no_events(
    app: FastAPI, client: httpx.AsyncClient, users: Users, kind: str
) -> None:
    owner = await make_owner(app, client, users)
    intruder = await users.headers()
    query = {f"{kind}_id": owner.ids[kind]}

    theirs = await client.get("/api/v1/calendar/events", params=query, headers=intruder)
    own = await client.get("/api/v1/calendar/events", params=query, headers=owner.headers)

    assert theirs.status_code == 200, theirs.text
    assert theirs.json()["items"] == []
    assert [event["id"] for event in own.json()["items"]] == [owner.ids["event"]]


async def test_another_users_category_in_a_task_body_is_422(
    app: FastAPI, client: httpx.AsyncClient, users: Users
) -> None:
    owner = await make_owner(app, client, users)
    intruder = await users.headers()
    own_task = await client.post("/api/v1/tasks", json={"title": "mine"}, headers=intruder)
    task_path = f"/api/v1/tasks/{own_task.json()['id']}"

    for category_id in (owner.ids["category"], MAX_ID):
        created = await client.post(
            "/api/v1/tasks", json={"title": "x", "category_id": category_id}, headers=intruder
        )
        updated = await client.patch(task_path, json={"category_id": category_id}, headers=intruder)
        for response in (created, updated):
            body = assert_problem(response, 422)
            assert [error["loc"] for error in body["errors"]] == [["body", "category_id"]]
            assert SECRET not in response.text
    # the foreign category and one that does not exist are refused with the same words
    assert created.json()["detail"] == updated.json()["detail"]
    tasks = await client.get("/api/v1/tasks", headers=intruder)
    assert [task["category_id"] for task in tasks.json()["items"]] == [None]


async def test_a_cursor_never_crosses_users(
    app: FastAPI, client: httpx.AsyncClient, users: Users
) -> None:
    owner = await make_owner(app, client, users)
    await client.post("/api/v1/tasks", json={"title": f"{SECRET} 2"}, headers=owner.headers)
    first = await client.get("/api/v1/tasks", params={"limit": 1}, headers=owner.headers)
    cursor = first.json()["next_cursor"]
    assert cursor is not None
    intruder = await users.headers()
    mine = await client.post("/api/v1/tasks", json={"title": "mine"}, headers=intruder)

    page = await client.get("/api/v1/tasks", params={"cursor": cursor}, headers=intruder)

    # a cursor carries a position in a sort order, not a user: the listing stays the caller's
    assert page.status_code == 200, page.text
    assert {task["id"] for task in page.json()["items"]} <= {mine.json()["id"]}
    assert SECRET not in page.text
