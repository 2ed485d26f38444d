"""The events range query reads two index ranges (events that began shortly before the range, and
long events still running at its start): together they give exactly the overlapping events, in
start order, on both backends."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from ai_workflow_engine.core.db import utcnow
from ai_workflow_engine.users.models import User
from tests.conftest import Users
from tests.perf.seeding import seed_events

EVENTS = "/api/v1/calendar/events"
DAY = dt.timedelta(days=1)


def _all_day(title: str, first: dt.date, end: dt.date) -> dict[str, Any]:
    """An all-day event stored as the sync stores one: its dates, and their UTC midnights."""
    return {
        "title": title,
        "all_day": True,
        "start_date": first,
        "end_date": end,
        "start_at": dt.datetime.combine(first, dt.time(), dt.UTC),
        "end_at": dt.datetime.combine(end, dt.time(), dt.UTC),
    }


async def test_long_events_from_before_the_range_are_listed_in_start_order(
    app: FastAPI, client: httpx.AsyncClient, users: Users
) -> None:
    registered = await users.register()
    tokens = await users.login(registered["username"])
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    async with app.state.sessionmaker() as session:
        user_id = await session.scalar(
            select(User.id).where(User.username == registered["username"])
        )
    assert user_id is not None

    midnight = utcnow().replace(hour=0, minute=0, second=0, microsecond=0) + 30 * DAY
    start = midnight + dt.timedelta(hours=12)
    events = [
        {"title": "long, still running", "start_at": start - 10 * DAY, "end_at": start + DAY},
        {"title": "long, over before", "start_at": start - 10 * DAY, "end_at": start - DAY},
        _all_day("holiday", (start - 5 * DAY).date(), (start + 2 * DAY).date()),
        {"title": "two days", "start_at": start - 2 * DAY, "end_at": start + dt.timedelta(hours=1)},
        _all_day("today", start.date(), start.date() + DAY),
        {
            "title": "short, inside",
            "start_at": start + dt.timedelta(hours=2),
            "end_at": start + dt.timedelta(hours=3),
        },
        {"title": "short, before", "start_at": start - DAY, "end_at": start - 20 * DAY / 24},
        {"title": "after", "start_at": start + 2 * DAY, "end_at": start + 3 * DAY},
    ]
    await seed_events(app, int(user_id), events)
    expected = ["long, still running", "holiday", "two days", "today", "short, inside"]

    week = {"start": start.isoformat(), "end": (start + DAY).isoformat()}
    page = await client.get(EVENTS, params=week, headers=headers)
    assert page.status_code == 200, page.text
    assert [event["title"] for event in page.json()["items"]] == expected

    # the same events page by page, each once
    seen: list[str] = []
    params: dict[str, Any] = {**week, "limit": 2}
    for _ in range(10):
        body = (await client.get(EVENTS, params=params, headers=headers)).json()
        seen += [event["title"] for event in body["items"]]
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert seen == expected
