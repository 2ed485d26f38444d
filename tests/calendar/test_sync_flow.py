"""POST /calendar/sync/auto against the Google stand-in: the sync protocol, end to end.

Each user connects through the OAuth endpoints (authorize → consent → callback), syncs over HTTP
and reads GET /calendar/events; what the product asked Google is read from the stand-in's log.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from ai_workflow_engine.calendar.models import Calendar, CalendarEvent
from tests.calendar.sync_fixtures import (
    SyncEnv,
    SyncEnvFactory,
    query_of,
    sync_env_factory_fixture,  # noqa: F401
    sync_env_fixture,  # noqa: F401
)
from tests.google_standin.faults import Fault

UTC = dt.UTC
FORBIDDEN_WITH_SYNC_TOKEN = ("timeMin", "timeMax", "updatedMin", "orderBy", "q", "iCalUID")


def soon(days: float = 1, hour: int = 9) -> dt.datetime:
    """A time on a day near now (inside every default range the tests read)."""
    base = dt.datetime.now(UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    return base + dt.timedelta(days=days)


def add_events(env: SyncEnv, count: int, *, prefix: str = "Event") -> list[str]:
    return [
        env.control.add_event(
            "primary",
            soon(n + 1),
            soon(n + 1) + dt.timedelta(minutes=30),
            summary=f"{prefix} {n}",
        )
        for n in range(count)
    ]


def by_google_id(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    ids = [event["google_event_id"] for event in events]
    assert len(ids) == len(set(ids)), f"duplicates: {Counter(ids).most_common(3)}"
    return {event["google_event_id"]: event for event in events}


async def stored_rows(env: SyncEnv) -> list[tuple[str, int]]:
    async with env.app.state.sessionmaker() as session:
        rows = await session.execute(select(CalendarEvent.google_event_id, CalendarEvent.id))
        return [(row[0], row[1]) for row in rows]


async def stored_token(env: SyncEnv) -> str | None:
    async with env.app.state.sessionmaker() as session:
        token: str | None = await session.scalar(
            select(Calendar.sync_token).where(Calendar.primary.is_(True))
        )
        return token


def runs(env: SyncEnv) -> list[list[dict[str, str]]]:
    """The events.list requests that got an answer, grouped into runs (a run starts at page 1)."""
    grouped: list[list[dict[str, str]]] = []
    for request in env.event_requests():
        if request.page == 1:
            grouped.append([])
        grouped[-1].append(query_of(request))
    return grouped


async def test_first_sync_is_full_then_incremental_with_identical_flags(sync_env: SyncEnv) -> None:
    user = await sync_env.user()
    ids = add_events(sync_env, 7)
    first = await user.synced()
    assert first["status"] == "ok"
    assert first["full_sync"] is True
    assert first["calendars"] == 1
    assert (first["created"], first["updated"], first["deleted"]) == (7, 0, 0)
    assert dt.datetime.fromisoformat(first["finished_at"]).tzinfo is not None

    events = await user.events()
    assert [event["google_event_id"] for event in events] == ids  # ordered by start
    assert [event["title"] for event in events] == [f"Event {n}" for n in range(7)]

    second = await user.synced()
    assert second["full_sync"] is False
    assert (second["created"], second["updated"], second["deleted"]) == (0, 0, 0)

    full, incremental = runs(sync_env)
    assert len(full) == 3  # page size 3
    assert "syncToken" not in full[0]
    assert incremental[0]["syncToken"]
    for query in (full[0], incremental[0]):
        assert query["singleEvents"] == "true"
        assert query["showDeleted"] == "true"
        assert query["maxResults"] == "3"


async def test_every_page_repeats_the_query_and_the_token_comes_from_the_last_page(
    sync_env: SyncEnv,
) -> None:
    user = await sync_env.user()
    add_events(sync_env, 8)
    await user.synced()
    token_after_full = await stored_token(sync_env)
    add_events(sync_env, 7, prefix="Later")
    sync_env.control.clear_requests()
    changes = await user.synced()
    assert changes["created"] == 7
    [run] = runs(sync_env)
    assert len(run) == 3
    assert all(query["syncToken"] == token_after_full for query in run)
    assert "pageToken" not in run[0]
    assert all(query.get("pageToken") for query in run[1:])
    without_paging = [{k: v for k, v in q.items() if k != "pageToken"} for q in run]
    assert all(query == without_paging[0] for query in without_paging)
    new_token = await stored_token(sync_env)
    assert new_token not in (None, token_after_full)


async def test_a_run_failing_midway_stores_nothing_and_the_next_run_is_correct(
    sync_env: SyncEnv,
) -> None:
    user = await sync_env.user()
    add_events(sync_env, 7)
    # page 2 keeps failing after every retry
    sync_env.control.faults.fail_from_page(2, Fault.http(503), times=3)
    failed = await user.sync()
    assert failed.status_code == 503, failed.text
    assert failed.headers["content-type"].startswith("application/problem+json")
    assert int(failed.headers["Retry-After"]) > 0
    assert await stored_rows(sync_env) == []
    assert await stored_token(sync_env) is None
    status = await user.status()
    assert status["last_sync_status"] == "failed"
    assert status["last_error"]

    retried = await user.synced()
    assert retried["full_sync"] is True
    assert retried["created"] == 7
    assert len(by_google_id(await user.events())) == 7
    assert (await user.status())["last_sync_status"] == "ok"


async def test_an_incremental_run_failing_midway_keeps_events_and_token(sync_env: SyncEnv) -> None:
    user = await sync_env.user()
    ids = add_events(sync_env, 4)
    await user.synced()
    token = await stored_token(sync_env)
    before = await user.events()
    sync_env.control.update_event("primary", ids[0], summary="Renamed")
    sync_env.control.delete_event("primary", ids[1])
    add_events(sync_env, 5, prefix="New")
    sync_env.control.faults.fail_from_page(2, Fault.http(500), times=3)
    failed = await user.sync()
    assert failed.status_code == 503, failed.text
    assert await user.events() == before
    assert await stored_token(sync_env) == token

    sync_env.control.clear_requests()
    resumed = await user.synced()
    assert resumed["full_sync"] is False
    assert (resumed["created"], resumed["updated"], resumed["deleted"]) == (5, 1, 1)
    assert all(query["syncToken"] == token for query in runs(sync_env)[0])
    events = by_google_id(await user.events())
    assert events[ids[0]]["title"] == "Renamed"
    assert ids[1] not in events
    assert len(events) == 8


async def test_gone_token_resyncs_fully_to_exactly_googles_set(sync_env: SyncEnv) -> None:
    user = await sync_env.user()
    ids = add_events(sync_env, 6)
    await user.synced()
    before = by_google_id(await user.events())
    sync_env.control.delete_event("primary", ids[0])
    sync_env.control.delete_event("primary", ids[1])
    sync_env.control.update_event("primary", ids[2], summary="Changed")
    [added] = add_events(sync_env, 1, prefix="Added")
    sync_env.control.invalidate_sync_tokens(sync_env.control.primary_calendar_id())
    sync_env.control.clear_requests()

    result = await user.synced()
    assert result["full_sync"] is True
    assert (result["created"], result["updated"], result["deleted"]) == (1, 1, 2)
    answered = [(r.incremental, r.status) for r in sync_env.event_requests()]
    assert answered[0] == (True, 410)
    assert all(status == 200 and not incremental for incremental, status in answered[1:])

    after = by_google_id(await user.events())
    assert set(after) == {*ids[2:], added}
    for google_id in ids[2:]:
        assert after[google_id]["id"] == before[google_id]["id"]
    assert after[ids[2]]["title"] == "Changed"
    rows = await stored_rows(sync_env)
    assert len(rows) == len({google_id for google_id, _ in rows}) == 5

    # the new token works: the next run is incremental again
    assert (await user.synced())["full_sync"] is False


async def test_no_request_combines_a_sync_token_with_a_window_or_filter(
    sync_env: SyncEnv,
) -> None:
    user = await sync_env.user()
    ids = add_events(sync_env, 5)
    await user.synced()
    sync_env.control.delete_event("primary", ids[0])
    await user.synced()
    sync_env.control.invalidate_sync_tokens(sync_env.control.primary_calendar_id())
    await user.synced()
    requests = sync_env.event_requests()
    assert any(r.has("syncToken") for r in requests)
    for request in requests:
        for name in FORBIDDEN_WITH_SYNC_TOKEN:
            # a full run must not narrow the set the increments describe either
            assert not request.has(name), (name, request.query)
        assert request.status in (200, 410)


async def test_a_deletion_carrying_only_an_id_removes_the_event(sync_env: SyncEnv) -> None:
    user = await sync_env.user()
    ids = add_events(sync_env, 2)
    await user.synced()
    sync_env.control.delete_event("primary", ids[0])
    result = await user.synced()
    assert (result["created"], result["updated"], result["deleted"]) == (0, 0, 1)
    assert set(by_google_id(await user.events())) == {ids[1]}


async def test_recurring_series_as_instances_moved_at_new_time_cancelled_absent(
    sync_env: SyncEnv,
) -> None:
    user = await sync_env.user()
    control = sync_env.control
    first = soon(2, hour=10)
    series = control.add_recurring_event(
        "primary",
        first,
        first + dt.timedelta(hours=1),
        "RRULE:FREQ=DAILY;COUNT=5",
        summary="Daily",
        time_zone="UTC",
    )
    starts = [first + dt.timedelta(days=n) for n in range(5)]
    moved = control.move_instance(
        "primary",
        series,
        starts[1],
        starts[1] + dt.timedelta(hours=3),
        starts[1] + dt.timedelta(hours=4),
    )
    cancelled = control.cancel_instance("primary", series, starts[2])

    result = await user.synced()
    assert result["created"] == 4
    events = by_google_id(await user.events())
    assert cancelled not in events
    assert set(events) == {control.instance_id("primary", series, s) for s in starts} - {cancelled}
    assert all(event["recurring_event_id"] == series for event in events.values())
    assert dt.datetime.fromisoformat(events[moved]["start"]) == starts[1] + dt.timedelta(hours=3)

    # after the first sync: another instance moves, and one more is cancelled
    moved_later = control.move_instance(
        "primary",
        series,
        starts[3],
        starts[3] + dt.timedelta(minutes=30),
        starts[3] + dt.timedelta(minutes=90),
    )
    cancelled_later = control.cancel_instance("primary", series, starts[4])
    result = await user.synced()
    assert result["full_sync"] is False
    assert (result["created"], result["updated"], result["deleted"]) == (0, 1, 1)
    after = by_google_id(await user.events())
    assert cancelled_later not in after
    assert after[moved_later]["id"] == events[moved_later]["id"]  # same row, new time
    assert dt.datetime.fromisoformat(after[moved_later]["start"]) == starts[3] + dt.timedelta(
        minutes=30
    )
    # a re-delivered cancellation of an instance never stored is not a deletion
    control.invalidate_sync_tokens(control.primary_calendar_id())
    again = await user.synced()
    assert (again["created"], again["updated"], again["deleted"]) == (0, 0, 0)
    assert by_google_id(await user.events()) == after


async def test_all_day_events_keep_their_dates_in_every_user_timezone(sync_env: SyncEnv) -> None:
    control = sync_env.control
    day = soon(3).date()
    single = control.add_event("primary", day, day + dt.timedelta(days=1), summary="Holiday")
    multi = control.add_event("primary", day, day + dt.timedelta(days=3), summary="Trip")
    for zone_name in ("America/New_York", "Asia/Tokyo"):
        zone = ZoneInfo(zone_name)
        user = await sync_env.user()
        await user.set_timezone(zone_name)
        await user.synced()
        async with sync_env.app.state.sessionmaker() as session:
            stored_start = await session.scalar(
                select(CalendarEvent.start_at)
                .where(CalendarEvent.google_event_id == single)
                .order_by(CalendarEvent.id.desc())  # this user's copy
                .limit(1)
            )
        # stored (for the range index) at local midnight of the zone the sync read
        assert stored_start == dt.datetime.combine(day, dt.time(), zone)
        events = by_google_id(await user.events())
        for google_id, days in ((single, 1), (multi, 3)):
            event = events[google_id]
            assert event["all_day"] is True
            assert event["start_date"] == day.isoformat()
            assert event["end_date"] == (day + dt.timedelta(days=days)).isoformat()
            start = dt.datetime.fromisoformat(event["start"])
            end = dt.datetime.fromisoformat(event["end"])
            assert start == dt.datetime.combine(day, dt.time(), zone)
            assert end == dt.datetime.combine(day + dt.timedelta(days=days), dt.time(), zone)
            assert start.astimezone(zone).time() == dt.time(0)


def next_spring_forward(zone: ZoneInfo) -> dt.date:
    """The first day after tomorrow on which `zone`'s UTC offset grows (DST begins)."""
    day = dt.datetime.now(UTC).date() + dt.timedelta(days=2)
    for _ in range(400):
        before = dt.datetime.combine(day, dt.time(0), zone).utcoffset()
        after = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), zone).utcoffset()
        assert before is not None
        assert after is not None
        if after > before:
            return day
        day += dt.timedelta(days=1)
    raise AssertionError("no DST change within a year")


async def test_timed_events_with_offsets_and_zones_are_right_across_dst(
    sync_env: SyncEnv,
) -> None:
    control = sync_env.control
    new_york = ZoneInfo("America/New_York")
    change = next_spring_forward(new_york)  # the night of `change` to the next day
    before, after = change - dt.timedelta(days=1), change + dt.timedelta(days=1)
    # 09:00 wall time in New York on both sides of the change, given as a zone
    for day in (before, after):
        control.add_event(
            "primary",
            dt.datetime.combine(day, dt.time(9)),
            dt.datetime.combine(day, dt.time(10)),
            time_zone="America/New_York",
            summary=f"NY {day}",
        )
    # an offset in another zone
    control.add_event(
        "primary",
        dt.datetime.combine(before, dt.time(18), ZoneInfo("Asia/Kolkata")),
        dt.datetime.combine(before, dt.time(19), ZoneInfo("Asia/Kolkata")),
        summary="Kolkata",
    )
    # a daily series at 08:00 New York time, across the change
    series = control.add_recurring_event(
        "primary",
        dt.datetime.combine(before, dt.time(8)),
        dt.datetime.combine(before, dt.time(8, 30)),
        "RRULE:FREQ=DAILY;COUNT=3",
        time_zone="America/New_York",
        summary="Daily NY",
    )
    user = await sync_env.user()
    await user.synced()
    window = {
        "start": dt.datetime.combine(before, dt.time(0), UTC).isoformat(),
        "end": dt.datetime.combine(after + dt.timedelta(days=2), dt.time(0), UTC).isoformat(),
    }
    events = await user.events(**window)
    starts = {event["title"]: dt.datetime.fromisoformat(event["start"]) for event in events}
    for day in (before, after):
        expected = dt.datetime.combine(day, dt.time(9), new_york)
        assert starts[f"NY {day}"] == expected
    assert starts[f"NY {before}"].astimezone(UTC).hour != starts[f"NY {after}"].astimezone(UTC).hour
    assert starts["Kolkata"] == dt.datetime.combine(before, dt.time(12, 30), UTC)
    instances = sorted(
        dt.datetime.fromisoformat(event["start"])
        for event in events
        if event["recurring_event_id"] == series
    )
    assert [i.astimezone(new_york).time() for i in instances] == [dt.time(8)] * 3
    assert {i.astimezone(UTC).hour for i in instances} == {12, 13}


async def test_event_fields_follow_google(sync_env: SyncEnv) -> None:
    control = sync_env.control
    untitled = control.add_event("primary", soon(1), soon(1) + dt.timedelta(hours=1))
    detailed = control.add_event(
        "primary",
        soon(2),
        soon(2) + dt.timedelta(hours=1),
        summary="Review",
        description="Quarterly numbers",
        location="Room 4",
        status="tentative",
    )
    user = await sync_env.user()
    await user.synced()
    events = by_google_id(await user.events())
    assert events[untitled]["title"] is None
    assert events[untitled]["status"] == "confirmed"
    event = events[detailed]
    assert set(event) == {
        "id",
        "calendar_id",
        "google_event_id",
        "recurring_event_id",
        "title",
        "description",
        "location",
        "status",
        "all_day",
        "start",
        "end",
        "start_date",
        "end_date",
        "category_id",
        "updated_at",
    }
    assert (event["title"], event["description"], event["location"], event["status"]) == (
        "Review",
        "Quarterly numbers",
        "Room 4",
        "tentative",
    )
    assert (event["all_day"], event["start_date"], event["end_date"]) == (False, None, None)
    assert event["recurring_event_id"] is None
    assert event["category_id"] is None

    # a change Google makes to what we do not store is not an update
    control.touch_event("primary", detailed)
    result = await user.synced()
    assert (result["created"], result["updated"], result["deleted"]) == (0, 0, 0)


async def test_only_selected_calendars_are_synced(sync_env: SyncEnv) -> None:
    control = sync_env.control
    other = control.add_calendar("user@example.com", "Team")
    control.add_event(other, soon(1), soon(1) + dt.timedelta(hours=1), summary="Team event")
    add_events(sync_env, 1)
    user = await sync_env.user()
    result = await user.synced()
    assert result["calendars"] == 1
    assert [e["title"] for e in await user.events()] == ["Event 0"]
    assert {r.calendar_id for r in sync_env.event_requests()} == {"user@example.com"}


async def test_a_large_calendar_pages_through_and_resyncs_without_duplicates(
    sync_env_factory: SyncEnvFactory,
) -> None:
    async with sync_env_factory(google_page_size=250) as env:
        env.control.generate_events(env.control.primary_calendar_id(), 1200, all_day_every=7)
        user = await env.user()
        first = await user.synced()
        assert first["created"] == 1200
        assert len(runs(env)[0]) == 5
        env.control.churn_events(
            env.control.primary_calendar_id(), updates=20, deletes=10, adds=5, seed=1
        )
        changes = await user.synced()
        assert (changes["created"], changes["updated"], changes["deleted"]) == (5, 20, 10)
        env.control.invalidate_sync_tokens(env.control.primary_calendar_id())
        resync = await user.synced()
        assert resync["full_sync"] is True
        assert (resync["created"], resync["updated"], resync["deleted"]) == (0, 0, 0)
        rows = await stored_rows(env)
        assert len(rows) == len({google_id for google_id, _ in rows}) == 1195
