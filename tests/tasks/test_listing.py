"""The task list: filters, sorts, keyset paging and its cursors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from tests.conftest import Users
from tests.tasks.helpers import (
    CATEGORIES,
    SORTS,
    TASKS,
    Headers,
    Task,
    create_task,
    error_locs,
    expected_order,
    list_ids,
    page_through,
)

DUE_DATES = [None, "2026-12-01T09:00:00Z", "2026-12-02T09:00:00Z", "2026-12-01T09:00:00Z", None]
PRIORITIES = ["low", "medium", "high", "urgent"]


async def create_mixed_tasks(client: httpx.AsyncClient, headers: Headers, count: int) -> list[Task]:
    """Tasks whose due dates and priorities repeat, a fifth of them without a due date."""
    return [
        await create_task(
            client,
            headers,
            title=f"Task {index}",
            due_at=DUE_DATES[index % len(DUE_DATES)],
            priority=PRIORITIES[index % 3 if index % 7 else 3],
        )
        for index in range(count)
    ]


async def test_default_order_is_newest_first(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    tasks = [await create_task(client, auth_headers, title=f"T{i}") for i in range(3)]

    assert await list_ids(client, auth_headers) == [task["id"] for task in reversed(tasks)]


@pytest.mark.parametrize("sort", ["-created_at", "due_at"])
async def test_a_listed_task_reads_exactly_as_the_task_itself(
    client: httpx.AsyncClient, auth_headers: Headers, sort: str
) -> None:
    """The list renders its rows itself: every field, instants included to the character (whole
    seconds without a fraction, others with six digits, always `Z`), is what GET gives."""
    created = [
        await create_task(client, auth_headers, title="Whole", due_at="2026-12-01T09:00:00Z"),
        await create_task(
            client,
            auth_headers,
            title='Fraction ÄÖ "quoted" \\ 🗓',
            description="x" * 300,
            due_at="2026-12-01T09:00:00.000250Z",
            status="completed",
            priority="urgent",
            estimated_minutes=45,
        ),
        await create_task(client, auth_headers, title="No due date"),
    ]

    listed = (await client.get("/api/v1/tasks", params={"sort": sort}, headers=auth_headers)).json()

    for item in listed["items"]:
        alone = await client.get(f"/api/v1/tasks/{item['id']}", headers=auth_headers)
        assert item == alone.json()
    by_id = {item["id"]: item for item in listed["items"]}
    assert by_id.keys() == {task["id"] for task in created}
    assert by_id[created[0]["id"]]["due_at"] == "2026-12-01T09:00:00Z"
    assert by_id[created[1]["id"]]["due_at"] == "2026-12-01T09:00:00.000250Z"


@pytest.mark.parametrize("sort", SORTS)
async def test_each_sort_orders_by_its_field_then_id_with_missing_due_dates_last(
    client: httpx.AsyncClient, auth_headers: Headers, sort: str
) -> None:
    tasks = await create_mixed_tasks(client, auth_headers, 12)

    ids = await list_ids(client, auth_headers, sort=sort)

    assert ids == expected_order(tasks, sort)
    if sort.endswith("due_at"):
        undated = {task["id"] for task in tasks if task["due_at"] is None}
        assert set(ids[-len(undated) :]) == undated


async def test_priority_sort_ranks_low_medium_high_urgent(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    for priority in ("high", "low", "urgent", "medium"):
        await create_task(client, auth_headers, title=priority, priority=priority)

    ascending = (await client.get(TASKS, params={"sort": "priority"}, headers=auth_headers)).json()
    descending = (
        await client.get(TASKS, params={"sort": "-priority"}, headers=auth_headers)
    ).json()

    assert [t["priority"] for t in ascending["items"]] == ["low", "medium", "high", "urgent"]
    assert [t["priority"] for t in descending["items"]] == ["urgent", "high", "medium", "low"]


async def test_paging_with_small_limits_gives_every_task_once_in_order_for_every_sort(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    tasks = await create_mixed_tasks(client, auth_headers, 23)

    for sort in SORTS:
        expected = expected_order(tasks, sort)
        for limit in (1, 3, 5, 23, 50):
            assert await page_through(client, auth_headers, limit, sort=sort) == expected, (
                sort,
                limit,
            )


async def test_paging_a_filtered_listing_stays_within_the_filter(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    tasks = await create_mixed_tasks(client, auth_headers, 20)
    high_or_urgent = [task for task in tasks if task["priority"] in ("high", "urgent")]

    ids = await page_through(client, auth_headers, 2, sort="-due_at", priority=["high", "urgent"])

    assert ids == expected_order(high_or_urgent, "-due_at")


async def test_a_page_reports_next_cursor_only_when_more_follow(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    for index in range(4):
        await create_task(client, auth_headers, title=f"T{index}")

    full = (await client.get(TASKS, params={"limit": 4}, headers=auth_headers)).json()
    partial = (await client.get(TASKS, params={"limit": 3}, headers=auth_headers)).json()

    assert full["next_cursor"] is None
    assert len(full["items"]) == 4
    assert partial["next_cursor"] is not None
    assert len(partial["items"]) == 3


async def test_filter_by_status_priority_and_task_type(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    pending = await create_task(client, auth_headers, priority="low", task_type="coding")
    started = await create_task(
        client, auth_headers, status="in_progress", priority="high", task_type="review"
    )
    done = await create_task(client, auth_headers, status="completed", priority="high")
    held = await create_task(client, auth_headers, status="on_hold", task_type="coding")

    async def ids(**params: Any) -> set[int]:
        return set(await list_ids(client, auth_headers, **params))

    assert await ids(status="pending") == {pending["id"]}
    assert await ids(status=["in_progress", "on_hold"]) == {started["id"], held["id"]}
    assert await ids(status="cancelled") == set()
    assert await ids(priority="high") == {started["id"], done["id"]}
    assert await ids(priority="medium") == {held["id"]}
    assert await ids(task_type="coding") == {pending["id"], held["id"]}
    assert await ids(task_type="coding", status="on_hold") == {held["id"]}
    assert await ids(priority="high", task_type="review", status="in_progress") == {started["id"]}


async def test_filter_by_category_and_another_users_category_matches_nothing(
    client: httpx.AsyncClient, users: Users
) -> None:
    owner, other = await users.headers(), await users.headers()
    owner_categories = (await client.get(CATEGORIES, headers=owner)).json()["items"]
    work, health = owner_categories[0]["id"], owner_categories[1]["id"]
    foreign = (await client.get(CATEGORIES, headers=other)).json()["items"][0]["id"]
    at_work = await create_task(client, owner, category_id=work)
    await create_task(client, owner, category_id=health)
    await create_task(client, owner)
    await create_task(client, other, category_id=foreign)

    assert await list_ids(client, owner, category_id=work) == [at_work["id"]]
    assert await list_ids(client, owner, category_id=foreign) == []
    assert await list_ids(client, owner, category_id=2**31 - 1) == []


async def test_filter_by_due_range_includes_after_and_excludes_before(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    at_nine = await create_task(client, auth_headers, due_at="2026-12-01T09:00:00Z")
    at_ten = await create_task(client, auth_headers, due_at="2026-12-01T10:00:00Z")
    at_eleven = await create_task(client, auth_headers, due_at="2026-12-01T11:00:00Z")
    await create_task(client, auth_headers)  # no due date: outside every range

    async def ids(**params: Any) -> list[int]:
        return await list_ids(client, auth_headers, sort="due_at", **params)

    assert await ids(due_after="2026-12-01T10:00:00Z") == [at_ten["id"], at_eleven["id"]]
    assert await ids(due_before="2026-12-01T10:00:00Z") == [at_nine["id"]]
    assert await ids(due_after="2026-12-01T09:00:00Z", due_before="2026-12-01T11:00:00Z") == [
        at_nine["id"],
        at_ten["id"],
    ]
    # the same instants written with an offset
    assert await ids(
        due_after="2026-12-01T10:00:00+01:00", due_before="2026-12-01T11:00:00+01:00"
    ) == [at_nine["id"]]
    assert await ids(due_after="2026-12-01T12:00:00Z", due_before="2026-12-01T09:00:00Z") == []


async def test_q_matches_title_or_description_ignoring_case_in_all_of_unicode(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    doctors = await create_task(client, auth_headers, title="Termin beim Ärzte-Team")
    street = await create_task(client, auth_headers, title="x", description="Große STRASSE 5")
    greek = await create_task(client, auth_headers, title="ΣΟΦΙΑ calls")
    plain = await create_task(client, auth_headers, title="Buy milk", description="and bread")

    async def ids(q: str) -> set[int]:
        return set(await list_ids(client, auth_headers, q=q))

    assert await ids("ärzte") == {doctors["id"]}
    assert await ids("ÄRZTE") == {doctors["id"]}
    assert await ids("a\u0308rzte") == {doctors["id"]}  # decomposed form
    assert await ids("straße") == {street["id"]}
    assert await ids("GROSSE") == {street["id"]}
    assert await ids("σοφια") == {greek["id"]}
    assert await ids("BREAD") == {plain["id"]}
    assert await ids("milk and") == set()  # title and description are separate texts
    assert await ids("nothing like this") == set()
    assert await ids("") == {doctors["id"], street["id"], greek["id"], plain["id"]}


async def test_q_treats_like_wildcards_and_the_escape_character_literally(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    percent = await create_task(client, auth_headers, title="Raise by 10% now")
    underscore = await create_task(client, auth_headers, title="rename snake_case")
    slash = await create_task(client, auth_headers, title="path a/b and c\\d")
    await create_task(client, auth_headers, title="Raise by 100 now, snakeXcase")

    async def ids(q: str) -> set[int]:
        return set(await list_ids(client, auth_headers, q=q))

    assert await ids("10%") == {percent["id"]}
    assert await ids("%") == {percent["id"]}
    assert await ids("e_c") == {underscore["id"]}
    assert await ids("_") == {underscore["id"]}
    assert await ids("a/b") == {slash["id"]}
    assert await ids("c\\d") == {slash["id"]}
    assert await ids("/") == {slash["id"]}


async def test_q_follows_title_and_description_changes(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    task = await create_task(client, auth_headers, title="Old title", description="old notes")
    url = f"{TASKS}/{task['id']}"

    await client.patch(url, json={"title": "Neue Überschrift"}, headers=auth_headers)
    assert await list_ids(client, auth_headers, q="überschrift") == [task["id"]]
    assert await list_ids(client, auth_headers, q="old notes") == [task["id"]]
    assert await list_ids(client, auth_headers, q="old title") == []

    await client.patch(url, json={"description": None}, headers=auth_headers)
    assert await list_ids(client, auth_headers, q="notes") == []


async def test_other_users_tasks_are_never_listed(client: httpx.AsyncClient, users: Users) -> None:
    owner, other = await users.headers(), await users.headers()
    mine = await create_task(client, owner, title="shared words")
    await create_task(client, other, title="shared words")

    for sort in SORTS:
        assert await list_ids(client, owner, sort=sort, q="shared") == [mine["id"]]


INVALID_QUERIES: list[tuple[dict[str, Any], list[str | int]]] = [
    ({"limit": 0}, ["query", "limit"]),
    ({"limit": 201}, ["query", "limit"]),
    ({"limit": "many"}, ["query", "limit"]),
    ({"status": "done"}, ["query", "status", 0]),
    ({"priority": "critical"}, ["query", "priority", 0]),
    ({"task_type": "chore"}, ["query", "task_type", 0]),
    ({"category_id": "abc"}, ["query", "category_id"]),
    ({"category_id": 2**40}, ["query", "category_id"]),
    ({"due_after": "2026-12-01T09:00:00"}, ["query", "due_after"]),
    ({"due_before": "2026-12-01"}, ["query", "due_before"]),
    ({"sort": "title"}, ["query", "sort"]),
    ({"sort": "+due_at"}, ["query", "sort"]),
    ({"q": "x" * 201}, ["query", "q"]),
    ({"q": "a\u0000b"}, ["query", "q"]),
    ({"cursor": "garbage"}, ["query", "cursor"]),
    ({"cursor": ""}, ["query", "cursor"]),
]


async def test_invalid_query_parameters_are_422_naming_the_parameter(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    for params, loc in INVALID_QUERIES:
        response = await client.get(TASKS, params=params, headers=auth_headers)
        assert loc in error_locs(response), params


async def test_tampered_cursor_and_cursors_of_other_listings_are_422(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    for index in range(3):
        await create_task(client, auth_headers, title=f"T{index}", due_at="2026-12-01T09:00:00Z")

    async def first_cursor(url: str, **params: Any) -> str:
        response = await client.get(url, params={"limit": 1, **params}, headers=auth_headers)
        cursor: str = response.json()["next_cursor"]
        assert cursor is not None
        return cursor

    due_cursor = await first_cursor(TASKS, sort="due_at")
    flipped = due_cursor[:-1] + ("A" if due_cursor[-1] != "A" else "B")
    bad_cursors = {
        "tampered": (flipped, "due_at"),
        "truncated": (due_cursor[:-6], "due_at"),
        "other direction": (due_cursor, "-due_at"),
        "other field": (due_cursor, "created_at"),
        "default sort": (due_cursor, None),
        "priority": (await first_cursor(TASKS, sort="priority"), "-priority"),
        "categories": (await first_cursor(CATEGORIES), None),
    }

    for name, (cursor, sort) in bad_cursors.items():
        params = {"cursor": cursor} | ({"sort": sort} if sort else {})
        response = await client.get(TASKS, params=params, headers=auth_headers)
        assert ["query", "cursor"] in error_locs(response), name


@contextmanager
def counted_statements(app: FastAPI) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def test_listing_costs_the_same_queries_whatever_the_page_size(
    app: FastAPI, client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    category_id = (await client.get(CATEGORIES, headers=auth_headers)).json()["items"][0]["id"]
    for index in range(30):
        await create_task(client, auth_headers, title=f"T{index}", category_id=category_id)
    counts = []

    for limit in (1, 10, 30, 200):
        with counted_statements(app) as statements:
            response = await client.get(TASKS, params={"limit": limit}, headers=auth_headers)
        assert response.status_code == 200
        counts.append(len([s for s in statements if s.lstrip().upper().startswith("SELECT")]))

    assert len(set(counts)) == 1, counts
