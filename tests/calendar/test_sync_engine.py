"""The sync engine on its own: pages in, stored events out (both databases).

The stand-in server tests (test_sync_router.py) cover the protocol; these cover the bookkeeping:
generations, counts, kept ids, and that memory does not grow with the size of a calendar.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import AsyncGenerator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ai_workflow_engine.calendar.google.client import SyncTokenExpired
from ai_workflow_engine.calendar.google.events import (
    EventPage,
    FetchAheadDeclined,
    list_event_pages,
)
from ai_workflow_engine.calendar.google.sync import (
    CalendarState,
    CalendarSyncOutcome,
    PageSource,
    PreparedPage,
    PreparePage,
    sync_calendar,
)
from ai_workflow_engine.calendar.models import Calendar, CalendarEvent
from ai_workflow_engine.users.models import User

UTC_ZONE = ZoneInfo("UTC")


def event(event_id: str, title: str = "Meeting", hour: int = 9, **extra: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "status": "confirmed",
        "summary": title,
        "start": {"dateTime": f"2026-12-01T{hour:02d}:00:00Z"},
        "end": {"dateTime": f"2026-12-01T{hour:02d}:30:00Z"},
        **extra,
    }


def paged(items: Sequence[dict[str, Any]], size: int, token: str | None = "token-1") -> PageSource:
    """A page source serving `items` in pages of `size`; records the sync token of each run."""

    async def pages(
        sync_token: str | None, prepare: PreparePage
    ) -> AsyncGenerator[PreparedPage, None]:
        runs.append(sync_token)
        chunks = [items[i : i + size] for i in range(0, len(items), size)] or [[]]
        for number, chunk in enumerate(chunks, 1):
            last = number == len(chunks)
            yield prepare(EventPage(list(chunk), "UTC", token if last else None, last=last))

    runs: list[str | None] = []
    pages.runs = runs  # type: ignore[attr-defined]
    return pages


async def make_calendar(app: FastAPI) -> CalendarState:
    async with app.state.sessionmaker() as session, session.begin():
        user = User(
            email="e@example.com",
            email_key="e@example.com",
            username="engine",
            username_key="engine",
            password_hash="x",
        )
        session.add(user)
        await session.flush()
        calendar = Calendar(user_id=user.id, google_calendar_id="primary", selected=True)
        session.add(calendar)
        await session.flush()
        return await load_state(session, calendar.id)


async def load_state(session: Any, calendar_id: int) -> CalendarState:
    calendar = await session.get(Calendar, calendar_id, populate_existing=True)
    return CalendarState(
        id=calendar.id,
        user_id=calendar.user_id,
        google_calendar_id=calendar.google_calendar_id,
        time_zone=calendar.time_zone,
        sync_token=calendar.sync_token,
        sync_generation=calendar.sync_generation,
    )


async def run(
    app: FastAPI, calendar: CalendarState, pages: PageSource
) -> tuple[CalendarSyncOutcome, CalendarState]:
    async with app.state.sessionmaker() as session, session.begin():
        state = await load_state(session, calendar.id)
        outcome = await sync_calendar(session, state, pages, UTC_ZONE)
    async with app.state.sessionmaker() as session:
        return outcome, await load_state(session, calendar.id)


async def stored(app: FastAPI, calendar_id: int) -> dict[str, tuple[int, str | None]]:
    async with app.state.sessionmaker() as session:
        rows = await session.execute(
            select(CalendarEvent.google_event_id, CalendarEvent.id, CalendarEvent.title).where(
                CalendarEvent.calendar_id == calendar_id
            )
        )
        return {row[0]: (row[1], row[2]) for row in rows}


async def test_full_sync_stores_every_event_across_pages_and_the_last_token(app: FastAPI) -> None:
    calendar = await make_calendar(app)
    items = [event(f"e{n}") for n in range(7)]
    outcome, after = await run(app, calendar, paged(items, 3))
    assert outcome.full_sync
    assert (outcome.counts.created, outcome.counts.updated, outcome.counts.deleted) == (7, 0, 0)
    assert set(await stored(app, calendar.id)) == {f"e{n}" for n in range(7)}
    assert after.sync_token == "token-1"
    assert after.sync_generation == calendar.sync_generation + 1


async def test_second_full_sync_keeps_ids_updates_changes_and_removes_vanished(
    app: FastAPI,
) -> None:
    calendar = await make_calendar(app)
    await run(app, calendar, paged([event("a"), event("b"), event("c")], 2))
    before = await stored(app, calendar.id)
    async with app.state.sessionmaker() as session, session.begin():
        # forget the token: the next run is a full one
        await session.execute(
            update(Calendar).where(Calendar.id == calendar.id).values(sync_token=None)
        )
    outcome, _ = await run(
        app, calendar, paged([event("a"), event("b", "Renamed"), event("d")], 2, "token-2")
    )
    assert outcome.full_sync
    assert (outcome.counts.created, outcome.counts.updated, outcome.counts.deleted) == (1, 1, 1)
    after = await stored(app, calendar.id)
    assert set(after) == {"a", "b", "d"}
    assert after["a"][0] == before["a"][0]
    assert after["b"][0] == before["b"][0]
    assert after["b"][1] == "Renamed"


async def test_incremental_run_applies_changes_and_deletions_with_the_stored_token(
    app: FastAPI,
) -> None:
    calendar = await make_calendar(app)
    await run(app, calendar, paged([event("a"), event("b"), event("c")], 10))
    changes = paged(
        [
            event("a", hour=11),  # moved
            {"id": "b", "status": "cancelled"},  # deleted: only an id
            {"id": "never-stored", "status": "cancelled"},
            event("d"),
            event("c"),  # re-delivered unchanged
        ],
        2,
        "token-2",
    )
    outcome, after = await run(app, calendar, changes)
    assert changes.runs == ["token-1"]  # type: ignore[attr-defined]
    assert not outcome.full_sync
    assert (outcome.counts.created, outcome.counts.updated, outcome.counts.deleted) == (1, 1, 1)
    assert set(await stored(app, calendar.id)) == {"a", "c", "d"}
    assert after.sync_token == "token-2"


async def test_expired_token_falls_back_to_a_full_run(app: FastAPI) -> None:
    calendar = await make_calendar(app)
    await run(app, calendar, paged([event("a"), event("b")], 10))
    before = await stored(app, calendar.id)
    full = paged([event("b"), event("c")], 10, "token-2")

    async def expiring(
        sync_token: str | None, prepare: PreparePage
    ) -> AsyncGenerator[PreparedPage, None]:
        if sync_token is not None:
            raise SyncTokenExpired()
        async for page in full(sync_token, prepare):
            yield page

    outcome, after = await run(app, calendar, expiring)
    assert outcome.full_sync
    assert (outcome.counts.created, outcome.counts.updated, outcome.counts.deleted) == (1, 0, 1)
    now = await stored(app, calendar.id)
    assert set(now) == {"b", "c"}
    assert now["b"][0] == before["b"][0]
    assert after.sync_token == "token-2"


async def test_an_id_listed_twice_in_a_page_is_stored_once_as_its_last_version(
    app: FastAPI,
) -> None:
    calendar = await make_calendar(app)
    outcome, _ = await run(app, calendar, paged([event("a", "First"), event("a", "Second")], 10))
    assert outcome.counts.created == 1
    assert (await stored(app, calendar.id))["a"][1] == "Second"


async def test_a_malformed_item_is_skipped_without_failing_the_run(app: FastAPI) -> None:
    calendar = await make_calendar(app)
    broken = {"id": "broken", "status": "confirmed", "start": {"dateTime": "yesterday"}}
    outcome, after = await run(app, calendar, paged([broken, {"status": "x"}, event("a")], 10))
    assert outcome.counts.created == 1
    assert set(await stored(app, calendar.id)) == {"a"}
    assert after.sync_token == "token-1"


async def test_page_without_next_sync_token_leaves_the_next_run_full(app: FastAPI) -> None:
    calendar = await make_calendar(app)
    _, after = await run(app, calendar, paged([event("a")], 10, token=None))
    assert after.sync_token is None


async def test_an_incremental_page_of_deletions_only_removes_the_stored_ones(app: FastAPI) -> None:
    calendar = await make_calendar(app)
    await run(app, calendar, paged([event("a"), event("b")], 10))
    deletions = [{"id": "a", "status": "cancelled"}, {"id": "never-stored", "status": "cancelled"}]
    outcome, after = await run(app, calendar, paged(deletions, 10, "token-2"))
    assert not outcome.full_sync
    assert (outcome.counts.created, outcome.counts.updated, outcome.counts.deleted) == (0, 0, 1)
    assert set(await stored(app, calendar.id)) == {"b"}
    assert after.sync_token == "token-2"


async def test_a_full_run_into_an_empty_calendar_applies_a_later_pages_deletion(
    app: FastAPI,
) -> None:
    calendar = await make_calendar(app)
    items = [event("a"), event("b"), {"id": "a", "status": "cancelled"}, event("c")]
    outcome, after = await run(app, calendar, paged(items, 2))
    assert (outcome.counts.created, outcome.counts.updated, outcome.counts.deleted) == (3, 0, 1)
    assert set(await stored(app, calendar.id)) == {"b", "c"}
    assert after.sync_token == "token-1"


async def test_a_full_run_into_an_empty_calendar_stores_an_id_relisted_on_a_later_page_once(
    app: FastAPI,
) -> None:
    calendar = await make_calendar(app)
    items = [
        event("a", "First"),
        event("b"),
        event("c"),
        event("a", "Second"),  # listed again: its page is applied the general way
        {"id": "b", "status": "cancelled"},
        event("d"),
    ]
    outcome, after = await run(app, calendar, paged(items, 2))
    assert (outcome.counts.created, outcome.counts.updated, outcome.counts.deleted) == (4, 1, 1)
    now = await stored(app, calendar.id)
    assert set(now) == {"a", "c", "d"}
    assert now["a"][1] == "Second"
    assert after.sync_token == "token-1"


# PostgreSQL only: on SQLite the sync's transaction holds the database's write lock throughout
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_events_committed_after_a_full_run_found_the_calendar_empty_are_taken_over(
    app: FastAPI,
) -> None:
    calendar = await make_calendar(app)

    async def pages(
        sync_token: str | None, prepare: PreparePage
    ) -> AsyncGenerator[PreparedPage, None]:
        # the run has found the calendar empty; another sync's transaction (one that released
        # the per-user lock just before committing) now commits an event of the same calendar
        async with app.state.sessionmaker() as other, other.begin():
            other.add(
                CalendarEvent(
                    user_id=calendar.user_id,
                    calendar_id=calendar.id,
                    google_event_id="a",
                    title="Theirs",
                    status="confirmed",
                    start_at=datetime(2026, 12, 1, 9, tzinfo=UTC),
                    end_at=datetime(2026, 12, 1, 10, tzinfo=UTC),
                    content_hash="theirs",
                )
            )
        yield prepare(EventPage([event("a", "Ours"), event("b")], "UTC", "token-1", last=True))

    before = await stored(app, calendar.id)
    assert before == {}
    outcome, after = await run(app, calendar, pages)
    assert (outcome.counts.created, outcome.counts.updated, outcome.counts.deleted) == (1, 1, 0)
    now = await stored(app, calendar.id)
    assert set(now) == {"a", "b"}
    assert now["a"][1] == "Ours"
    assert after.sync_token == "token-1"


class Pages:
    """events.list answered from `bodies`; records what happens, in order, in `calls`."""

    def __init__(self, bodies: dict[str | None, dict[str, Any]]) -> None:
        self.bodies = bodies
        self.calls: list[tuple[str, str | None]] = []
        self.declined: set[str | None] = set()  # pages whose request ahead is declined
        self.hanging: set[str | None] = set()  # pages whose request ahead never answers
        self.ahead: list[asyncio.Task[Mapping[str, Any]]] = []

    async def fetch(self, path: str, params: Mapping[str, str]) -> Mapping[str, Any]:
        self.calls.append(("fetch", params.get("pageToken")))
        return self.bodies[params.get("pageToken")]

    async def fetch_ahead(
        self, path: str, params: Mapping[str, str]
    ) -> asyncio.Task[Mapping[str, Any]]:
        page_token = params.get("pageToken")
        self.calls.append(("ahead", page_token))

        async def answer() -> Mapping[str, Any]:
            if page_token in self.hanging:
                await asyncio.Event().wait()
            if page_token in self.declined:
                raise FetchAheadDeclined()  # e.g. the token needs a refresh
            return self.bodies[page_token]

        self.ahead.append(asyncio.create_task(answer()))
        return self.ahead[-1]

    def prepare(self, page: EventPage) -> EventPage:
        self.calls.append(("prepare", page.items[0]["id"] if page.items else None))
        return page

    def source(self) -> AsyncGenerator[EventPage, None]:
        return list_event_pages(
            self.fetch,
            "primary",
            prepare=self.prepare,
            page_size=10,
            sync_token=None,
            retry_after=1,
            fetch_ahead=self.fetch_ahead,
        )


THREE_PAGES: dict[str | None, dict[str, Any]] = {
    None: {"items": [event("a")], "nextPageToken": "p2"},
    "p2": {"items": [event("b")], "nextPageToken": "p3"},
    "p3": {"items": [event("c")], "nextPageToken": "p4"},
    "p4": {"items": [], "nextSyncToken": "sync-1"},
}


async def test_event_pages_fetch_and_prepare_the_next_page_while_one_is_written() -> None:
    pages = Pages(THREE_PAGES)
    source = pages.source()
    received = []
    async for page in source:
        received.append(page)
        await asyncio.sleep(0.01)  # the caller writes the page: the next one is ready after
        assert pages.calls[-1][0] == "prepare" or page.last
    assert [[item["id"] for item in page.items] for page in received] == [["a"], ["b"], ["c"], []]
    assert [page.last for page in received] == [False, False, False, True]
    assert received[-1].next_sync_token == "sync-1"
    assert pages.calls == [
        ("fetch", None),
        ("prepare", "a"),
        ("ahead", "p2"),
        ("prepare", "b"),
        ("ahead", "p3"),
        ("prepare", "c"),
        ("ahead", "p4"),
        ("prepare", None),
    ]


async def test_event_pages_refetch_a_declined_page_in_the_callers_flow() -> None:
    pages = Pages(THREE_PAGES)
    pages.declined = {"p3"}
    received = [page async for page in pages.source()]
    assert [[item["id"] for item in page.items] for page in received] == [["a"], ["b"], ["c"], []]
    requests = [call for call in pages.calls if call[0] != "prepare"]
    assert requests == [
        ("fetch", None),
        ("ahead", "p2"),
        ("ahead", "p3"),
        ("fetch", "p3"),
        ("ahead", "p4"),
    ]


async def test_event_pages_closed_early_stop_the_request_ahead() -> None:
    pages = Pages(THREE_PAGES)
    pages.hanging = {"p2"}
    source = pages.source()
    first = await anext(source)
    assert [item["id"] for item in first.items] == ["a"]
    await source.aclose()  # the run failed while writing the first page
    assert len(pages.ahead) == 1
    assert pages.ahead[0].cancelled()


async def test_memory_does_not_grow_with_the_number_of_events(app: FastAPI) -> None:
    """Peak memory of a 25,000-event full sync stays close to that of a 2,500-event one."""
    page_size = 2500

    def generated(count: int, prefix: str) -> PageSource:
        async def pages(
            sync_token: str | None, prepare: PreparePage
        ) -> AsyncGenerator[PreparedPage, None]:
            for first in range(0, count, page_size):
                last = first + page_size >= count
                items = [
                    event(f"{prefix}{n}", f"Event {n}", hour=n % 24)
                    for n in range(first, min(count, first + page_size))
                ]
                yield prepare(EventPage(items, "UTC", "t" if last else None, last=last))

        return pages

    async def peak_of(count: int, prefix: str) -> int:
        calendar = await make_calendar_for(app.state.sessionmaker, prefix)
        gc.collect()
        tracemalloc.start()
        try:
            outcome, _ = await run(app, calendar, generated(count, prefix))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert outcome.counts.created == count
        return peak

    small = await peak_of(2_500, "s")
    large = await peak_of(25_000, "l")
    async with app.state.sessionmaker() as session:
        total = await session.scalar(select(func.count()).select_from(CalendarEvent))
    assert total == 27_500
    assert large < small * 1.5, (small, large)


async def make_calendar_for(
    sessionmaker: async_sessionmaker[AsyncSession], name: str
) -> CalendarState:
    """A new user named `name` with a selected primary calendar, as the engine sees it."""
    async with sessionmaker() as session, session.begin():
        user = User(
            email=f"{name}@example.com",
            email_key=f"{name}@example.com",
            username=name,
            username_key=name,
            password_hash="x",
        )
        session.add(user)
        await session.flush()
        calendar = Calendar(user_id=user.id, google_calendar_id="primary", selected=True)
        session.add(calendar)
        await session.flush()
        return await load_state(session, calendar.id)


async def test_an_event_belongs_to_its_calendars_user_and_goes_with_them(app: FastAPI) -> None:
    mine = await make_calendar_for(app.state.sessionmaker, "owner")
    other = await make_calendar_for(app.state.sessionmaker, "other")
    await run(app, mine, paged([event("a")], 10))

    def row(user_id: int) -> CalendarEvent:
        return CalendarEvent(
            user_id=user_id,
            calendar_id=mine.id,
            google_event_id="foreign",
            status="confirmed",
            start_at=datetime(2026, 12, 1, 9, tzinfo=UTC),
            end_at=datetime(2026, 12, 1, 10, tzinfo=UTC),
            content_hash="x",
        )

    with pytest.raises(IntegrityError):
        async with app.state.sessionmaker() as session, session.begin():
            session.add(row(other.user_id))  # another user's event in my calendar

    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(delete(User).where(User.id == mine.user_id))
    assert await stored(app, mine.id) == {}
