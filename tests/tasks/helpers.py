"""Task API helpers shared by the task tests: create through HTTP, page through listings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

TASKS = "/api/v1/tasks"
CATEGORIES = "/api/v1/categories"
PRIORITY_RANK = {"low": 1, "medium": 2, "high": 3, "urgent": 4}
SORTS = ["due_at", "-due_at", "created_at", "-created_at", "priority", "-priority"]

Headers = dict[str, str]
Task = dict[str, Any]


async def create_task(client: httpx.AsyncClient, headers: Headers, **fields: Any) -> Task:
    response = await client.post(TASKS, json={"title": "A task", **fields}, headers=headers)
    assert response.status_code == 201, response.text
    task: Task = response.json()
    return task


async def first_category_id(client: httpx.AsyncClient, headers: Headers) -> int:
    response = await client.get(CATEGORIES, headers=headers)
    assert response.status_code == 200, response.text
    category_id: int = response.json()["items"][0]["id"]
    return category_id


async def list_ids(client: httpx.AsyncClient, headers: Headers, **params: Any) -> list[int]:
    """The ids of one listing of up to 200 tasks, asserting it fits one page."""
    response = await client.get(TASKS, params={"limit": 200, **params}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return [task["id"] for task in response.json()["items"]]


async def page_through(
    client: httpx.AsyncClient, headers: Headers, limit: int, **params: Any
) -> list[int]:
    """Every id of a listing, following next_cursor page by page."""
    ids: list[int] = []
    cursor: str | None = None
    for _ in range(1000):  # a cursor that never advances fails the test instead of hanging it
        query = {"limit": limit, **params} | ({"cursor": cursor} if cursor else {})
        response = await client.get(TASKS, params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        ids += [task["id"] for task in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids
        assert page["items"], "a page with a next_cursor must not be empty"
    raise AssertionError("paging did not end after 1000 pages")


def _sort_value(task: Task, field: str) -> Any:
    value = task[field]
    if value is None:
        return None
    return PRIORITY_RANK[value] if field == "priority" else datetime.fromisoformat(value)


def expected_order(tasks: list[Task], sort: str) -> list[int]:
    """The order the API documents: by (field, id), reversed for `-`; no due date last."""
    field, descending = sort.removeprefix("-"), sort.startswith("-")
    present = [task for task in tasks if _sort_value(task, field) is not None]
    missing = [task for task in tasks if _sort_value(task, field) is None]
    present.sort(key=lambda task: (_sort_value(task, field), task["id"]), reverse=descending)
    missing.sort(key=lambda task: task["id"], reverse=descending)
    return [task["id"] for task in present + missing]


def error_locs(response: httpx.Response) -> list[list[str | int]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return [error["loc"] for error in response.json()["errors"]]
