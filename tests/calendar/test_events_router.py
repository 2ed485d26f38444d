"""GET /calendar/events: the range, its defaults and limits, filters, pages, and whose events."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from sqlalchemy import event, update

from ai_workflow_engine.calendar.models import Calendar, CalendarEvent
from tests.calendar.sync_fixtures import (
    CalendarUser,
    SyncEnv,
    sync_env_factory_fixture,  # noqa: F401
    sync_env_fixture,  # noqa: F401
)

UTC = dt.UTC
EVENTS = "/api/v1/calendar/events"


def hour(offset_hours: float) -> dt.datetime:
    base = dt.datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return base + dt.timedelta(hours=offset_hours)


def add(
    env: SyncEnv, start: dt.datetime, minutes: int, title: str, calendar: str = "primary"
) -> str:
    return env.control.add_event(
        calendar, start, start + dt.timedelta(minutes=minutes), summary=title
    )


def titles(events: list[dict[str, Any]]) -> list[str]:
    return [event["title"] for event in events]


def errors_of(response: Any) -> list[list[Any]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return [error["loc"] for error in response.json()["errors"]]


async def test_default_range_is_now_to_seven_days_ahead(sync_env: SyncEnv) -> None:
    add(sync_env, hour(-30), 60, "yesterday")
    add(sync_env, hour(-1), 120, "running now")
    add(sync_env, hour(24), 60, "tomorrow")
    add(sync_env, hour(24 * 6 + 20), 60, "in six days")
    add(sync_env, hour(24 * 8), 60, "next week")
    user = await sync_env.user()
    await user.synced()
    response = await user.events_page()
    assert response.status_code == 200, response.text
    body = response.json()
    assert titles(body["items"]) == ["running now", "tomorrow", "in six days"]
    assert body["next_cursor"] is None


async def test_events_overlapping_the_range_ordered_by_start(sync_env: SyncEnv) -> None:
    start, end = hour(48), hour(52)
    add(sync_env, start - dt.timedelta(hours=1), 60, "ends at start")  # [start-1h, start)
    add(sync_env, start - dt.timedelta(hours=1), 90, "ends inside")
    add(sync_env, start + dt.timedelta(hours=3), 30, "inside")
    add(sync_env, start - dt.timedelta(hours=2), 24 * 60, "spans the range")
    add(sync_env, end, 30, "starts at end")
    add(sync_env, start + dt.timedelta(hours=1), 30, "inside, earlier")
    user = await sync_env.user()
    await user.synced()
    events = await user.events(start=start.isoformat(), end=end.isoformat())
    assert titles(events) == ["spans the range", "ends inside", "inside, earlier", "inside"]


async def test_all_day_events_overlap_by_the_users_local_day(sync_env: SyncEnv) -> None:
    day = hour(72).date()
    sync_env.control.add_event("primary", day, day + dt.timedelta(days=1), summary="Holiday")
    user = await sync_env.user()
    await user.set_timezone("Asia/Tokyo")
    await user.synced()
    tokyo = ZoneInfo("Asia/Tokyo")
    midnight = dt.datetime.combine(day, dt.time(0), tokyo)
    inside = await user.events(
        start=(midnight + dt.timedelta(hours=23)).isoformat(),
        end=(midnight + dt.timedelta(hours=25)).isoformat(),
    )
    assert titles(inside) == ["Holiday"]
    before = await user.events(
        start=(midnight - dt.timedelta(hours=5)).isoformat(), end=midnight.isoformat()
    )
    after = await user.events(
        start=(midnight + dt.timedelta(days=1)).isoformat(),
        end=(midnight + dt.timedelta(days=2)).isoformat(),
    )
    assert before == after == []


async def test_all_day_events_follow_a_change_of_timezone(sync_env: SyncEnv) -> None:
    day = hour(72).date()
    sync_env.control.add_event("primary", day, day + dt.timedelta(days=2), summary="Trip")
    user = await sync_env.user()
    await user.synced()  # stored while the user's timezone is UTC
    await user.set_timezone("America/New_York")
    [trip] = await user.events()
    new_york = ZoneInfo("America/New_York")
    assert dt.datetime.fromisoformat(trip["start"]) == dt.datetime.combine(day, dt.time(), new_york)
    assert dt.datetime.fromisoformat(trip["end"]) == dt.datetime.combine(
        day + dt.timedelta(days=2), dt.time(), new_york
    )
    assert (trip["start_date"], trip["end_date"]) == (
        day.isoformat(),
        (day + dt.timedelta(days=2)).isoformat(),
    )


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"start": "2026-12-01T00:00:00"}, ["query", "start"]),
        ({"start": "2026-12-01T00:00:00Z", "end": "2026-12-02T00:00:00"}, ["query", "end"]),
        ({"start": "tomorrow"}, ["query", "start"]),
        ({"start": "1764000000"}, ["query", "start"]),  # not seconds since 1970
        ({"end": "0.5"}, ["query", "end"]),
        ({"start": "2026-12-01"}, ["query", "start"]),
        ({"start": "2026-12-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"}, ["query", "end"]),
        ({"start": "2026-12-02T00:00:00Z", "end": "2026-12-01T00:00:00+01:00"}, ["query", "end"]),
        ({"start": "2026-01-01T00:00:00Z", "end": "2027-01-02T00:00:01Z"}, ["query", "end"]),
        ({"calendar_id": "0"}, ["query", "calendar_id"]),
        ({"category_id": "x"}, ["query", "category_id"]),
        ({"limit": "0"}, ["query", "limit"]),
        ({"limit": "201"}, ["query", "limit"]),
        ({"cursor": "not-a-cursor"}, ["query", "cursor"]),
    ],
)
async def test_invalid_queries_are_422_naming_the_field(
    sync_env: SyncEnv, params: dict[str, str], loc: list[str]
) -> None:
    user = await sync_env.user(connect=False)
    assert loc in errors_of(await user.events_page(**params))


async def test_a_range_of_366_days_is_allowed(sync_env: SyncEnv) -> None:
    user = await sync_env.user(connect=False)
    response = await user.events_page(start="2026-01-01T00:00:00Z", end="2027-01-02T00:00:00Z")
    assert response.status_code == 200, response.text
    assert response.json() == {"items": [], "next_cursor": None}


async def test_pages_follow_start_then_id_without_gaps_or_repeats(sync_env: SyncEnv) -> None:
    same = hour(30)
    for n in range(4):
        add(sync_env, same, 30 + n, f"same start {n}")
    for n in range(5):
        add(sync_env, hour(40 + n), 30, f"later {n}")
    user = await sync_env.user()
    await user.synced()
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        response = await user.events_page(**params)
        assert response.status_code == 200, response.text
        pages.append(response.json()["items"])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert [len(page) for page in pages] == [2, 2, 2, 2, 1]
    events = [event for page in pages for event in page]
    keys = [(event["start"], event["id"]) for event in events]
    assert keys == sorted(keys)
    assert len({event["id"] for event in events}) == 9
    assert titles(events[4:]) == [f"later {n}" for n in range(5)]


async def test_calendar_and_category_filters(sync_env: SyncEnv) -> None:
    control = sync_env.control
    team = control.add_calendar(control.primary_calendar_id(), "Team")
    add(sync_env, hour(5), 30, "mine")
    add(sync_env, hour(6), 30, "team", calendar=team)
    user = await sync_env.user()
    calendars = {c["google_calendar_id"]: c["id"] for c in await user.calendars()}
    selected = await user.http.patch(
        f"/api/v1/calendar/calendars/{calendars[team]}",
        json={"selected": True},
        headers=user.headers,
    )
    assert selected.status_code == 200, selected.text
    await user.synced()
    assert titles(await user.events()) == ["mine", "team"]
    assert titles(await user.events(calendar_id=calendars[team])) == ["team"]

    categories = await user.http.get("/api/v1/categories", headers=user.headers)
    work = categories.json()["items"][0]["id"]
    await set_category(sync_env.app, "team", work)
    assert titles(await user.events(category_id=work)) == ["team"]

    # another user's ids match nothing, and their events are never shown
    other = await sync_env.user(connect=False)
    assert await other.events() == []
    assert await other.events(calendar_id=calendars[team]) == []
    other_categories = await other.http.get("/api/v1/categories", headers=other.headers)
    assert await user.events(category_id=other_categories.json()["items"][0]["id"]) == []


async def set_category(app: FastAPI, title: str, category_id: int) -> None:
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(
            update(CalendarEvent)
            .where(CalendarEvent.title == title)
            .values(category_id=category_id)
        )


async def test_events_of_a_deselected_calendar_are_never_listed(sync_env: SyncEnv) -> None:
    add(sync_env, hour(5), 30, "mine")
    user = await sync_env.user()
    await user.synced()
    assert titles(await user.events()) == ["mine"]
    # even if its rows were still stored, a calendar that is not selected shows nothing
    async with sync_env.app.state.sessionmaker() as session, session.begin():
        await session.execute(update(Calendar).values(selected=False))
    assert await user.events() == []
    [calendar] = await user.calendars()
    reselect = await user.http.patch(
        f"/api/v1/calendar/calendars/{calendar['id']}",
        json={"selected": True},
        headers=user.headers,
    )
    assert reselect.status_code == 200
    assert titles(await user.events()) == ["mine"]
    deselect = await user.http.patch(
        f"/api/v1/calendar/calendars/{calendar['id']}",
        json={"selected": False},
        headers=user.headers,
    )
    assert deselect.status_code == 200
    assert await user.events() == []


@contextmanager
def counting_statements(app: FastAPI) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def test_a_page_costs_the_same_number_of_queries_whatever_its_size(
    sync_env: SyncEnv,
) -> None:
    for n in range(12):
        add(sync_env, hour(3 + n), 30, f"event {n}")
    user: CalendarUser = await sync_env.user()
    await user.synced()
    counts = []
    for limit in (1, 12):
        with counting_statements(sync_env.app) as statements:
            response = await user.events_page(limit=limit)
        assert response.status_code == 200
        assert len(response.json()["items"]) == limit
        counts.append(len(statements))
    assert counts[0] == counts[1]


async def test_events_require_a_bearer_token(sync_env: SyncEnv) -> None:
    assert (await sync_env.http.get(EVENTS)).status_code == 401
