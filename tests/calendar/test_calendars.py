"""The user's calendars: listing, selecting and deselecting, ownership, validation."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from ai_workflow_engine.calendar.models import Calendar
from tests.calendar.conftest import (
    CALENDARS,
    add_stored_event,
    connected,
    list_calendars,
    stored_event_ids,
)
from tests.conftest import Users
from tests.google_standin import DEFAULT_EMAIL, RunningStandin

Headers = dict[str, str]


@pytest.fixture
async def headers(client: httpx.AsyncClient, users: Users, standin: RunningStandin) -> Headers:
    """A connected user with a primary calendar and two others ("Team", "Holidays")."""
    standin.control.add_calendar(DEFAULT_EMAIL, "Team")
    standin.control.add_calendar(DEFAULT_EMAIL, "Holidays")
    user_headers = await users.headers()
    await connected(client, user_headers, standin)
    return user_headers


async def calendar_named(client: httpx.AsyncClient, headers: Headers, summary: str) -> int:
    calendars = await list_calendars(client, headers)
    return int(next(c["id"] for c in calendars if c["summary"] == summary))


async def select_calendar(
    client: httpx.AsyncClient, headers: Headers, calendar_id: int, selected: object
) -> httpx.Response:
    return await client.patch(
        f"{CALENDARS}/{calendar_id}", json={"selected": selected}, headers=headers
    )


async def test_only_the_primary_calendar_starts_selected(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    calendars = await list_calendars(client, headers)

    assert [(c["summary"], c["primary"], c["selected"]) for c in calendars] == [
        (DEFAULT_EMAIL, True, True),
        ("Team", False, False),
        ("Holidays", False, False),
    ]


async def test_a_user_without_a_connection_has_no_calendars(
    client: httpx.AsyncClient, users: Users
) -> None:
    assert await list_calendars(client, await users.headers()) == []


async def test_selecting_a_calendar_returns_and_keeps_it(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    team = await calendar_named(client, headers, "Team")

    response = await select_calendar(client, headers, team, True)

    assert response.status_code == 200, response.text
    assert response.json()["selected"] is True
    assert response.json()["id"] == team
    selected = {c["summary"] for c in await list_calendars(client, headers) if c["selected"]}
    assert selected == {DEFAULT_EMAIL, "Team"}


async def test_deselecting_removes_the_calendars_events_and_its_sync_token(
    app: FastAPI, client: httpx.AsyncClient, headers: Headers
) -> None:
    team = await calendar_named(client, headers, "Team")
    primary = await calendar_named(client, headers, DEFAULT_EMAIL)
    assert (await select_calendar(client, headers, team, True)).status_code == 200
    await add_stored_event(app, team, "team-event")
    kept = await add_stored_event(app, primary, "primary-event")
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(update(Calendar).values(sync_token="next-sync-token"))

    response = await select_calendar(client, headers, team, False)

    assert response.status_code == 200
    assert response.json()["selected"] is False
    assert await stored_event_ids(app) == [kept]
    async with app.state.sessionmaker() as session:
        tokens = dict((await session.execute(select(Calendar.id, Calendar.sync_token))).all())
    assert tokens[team] is None
    assert tokens[primary] == "next-sync-token"


async def test_selecting_again_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, headers: Headers
) -> None:
    primary = await calendar_named(client, headers, DEFAULT_EMAIL)
    event = await add_stored_event(app, primary)

    response = await select_calendar(client, headers, primary, True)

    assert response.status_code == 200
    assert await stored_event_ids(app) == [event]


async def test_another_users_calendar_is_404(
    client: httpx.AsyncClient, users: Users, headers: Headers
) -> None:
    team = await calendar_named(client, headers, "Team")
    stranger = await users.headers()

    response = await select_calendar(client, stranger, team, True)

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert (await select_calendar(client, headers, team, True)).status_code == 200


@pytest.mark.parametrize("calendar_id", ["0", "999999", "2147483648", "abc"])
async def test_a_calendar_that_cannot_exist_is_404_or_422(
    client: httpx.AsyncClient, headers: Headers, calendar_id: str
) -> None:
    response = await client.patch(
        f"{CALENDARS}/{calendar_id}", json={"selected": True}, headers=headers
    )
    assert response.status_code in (404, 422)


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"selected": None}, ["body", "selected"]),
        ({"selected": "yes"}, ["body", "selected"]),
        ({}, ["body", "selected"]),
        ({"selected": True, "summary": "Mine"}, ["body", "summary"]),
        ({"selected": True, "user_id": 1}, ["body", "user_id"]),
    ],
)
async def test_a_selection_body_is_validated(
    client: httpx.AsyncClient, headers: Headers, body: dict[str, object], loc: list[str]
) -> None:
    team = await calendar_named(client, headers, "Team")

    response = await client.patch(f"{CALENDARS}/{team}", json=body, headers=headers)

    assert response.status_code == 422
    assert loc in [error["loc"] for error in response.json()["errors"]]


async def test_calendars_are_paginated(client: httpx.AsyncClient, headers: Headers) -> None:
    first = await client.get(CALENDARS, params={"limit": 2}, headers=headers)
    assert first.status_code == 200
    cursor = first.json()["next_cursor"]
    assert cursor is not None
    rest = await client.get(CALENDARS, params={"limit": 2, "cursor": cursor}, headers=headers)

    summaries = [c["summary"] for c in first.json()["items"] + rest.json()["items"]]
    assert summaries == [DEFAULT_EMAIL, "Team", "Holidays"]
    assert rest.json()["next_cursor"] is None
    bad = await client.get(CALENDARS, params={"cursor": "not-ours"}, headers=headers)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["loc"] == ["query", "cursor"]
    assert (await client.get(CALENDARS, params={"limit": 0}, headers=headers)).status_code == 422


async def test_calendar_routes_need_a_bearer_token(client: httpx.AsyncClient) -> None:
    assert (await client.get(CALENDARS)).status_code == 401
    assert (await client.patch(f"{CALENDARS}/1", json={"selected": True})).status_code == 401
