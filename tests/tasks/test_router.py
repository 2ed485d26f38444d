"""Task endpoints one task at a time: create, read, update, delete, validation, ownership."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import Users
from tests.tasks.helpers import (
    CATEGORIES,
    TASKS,
    Headers,
    create_task,
    error_locs,
    first_category_id,
)

TASK_FIELDS = {
    "id",
    "title",
    "description",
    "status",
    "priority",
    "task_type",
    "category_id",
    "due_at",
    "estimated_minutes",
    "completed_at",
    "created_at",
    "updated_at",
}


def parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


async def test_create_task_with_only_a_title_gets_the_defaults(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    before = datetime.now(UTC)

    task = await create_task(client, auth_headers, title="Write report")

    assert set(task) == TASK_FIELDS
    assert task["title"] == "Write report"
    assert (task["status"], task["priority"], task["task_type"]) == ("pending", "medium", "general")
    for field in ("description", "category_id", "due_at", "estimated_minutes", "completed_at"):
        assert task[field] is None
    assert task["created_at"].endswith("Z")
    assert parse(task["created_at"]) >= before - timedelta(seconds=1)
    assert task["updated_at"] == task["created_at"] or task["updated_at"] > task["created_at"]


async def test_create_task_with_every_field_and_read_it_back(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    category_id = await first_category_id(client, auth_headers)

    task = await create_task(
        client,
        auth_headers,
        title="  Review the pull request ",
        description="Line one\nLine two",
        status="in_progress",
        priority="urgent",
        task_type="review",
        category_id=category_id,
        due_at="2026-12-01T09:30:00+01:00",
        estimated_minutes=10080,
    )

    assert task["title"] == "Review the pull request"
    assert task["description"] == "Line one\nLine two"
    assert (task["status"], task["priority"], task["task_type"]) == (
        "in_progress",
        "urgent",
        "review",
    )
    assert task["category_id"] == category_id
    assert task["due_at"] == "2026-12-01T08:30:00Z"
    assert task["estimated_minutes"] == 10080
    fetched = await client.get(f"{TASKS}/{task['id']}", headers=auth_headers)
    assert fetched.status_code == 200
    assert fetched.json() == task


async def test_patch_changes_only_the_fields_sent_and_null_clears_optional_ones(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    category_id = await first_category_id(client, auth_headers)
    task = await create_task(
        client,
        auth_headers,
        title="Plan",
        description="Details",
        category_id=category_id,
        due_at="2026-12-01T09:00:00Z",
        estimated_minutes=30,
    )

    response = await client.patch(
        f"{TASKS}/{task['id']}",
        json={"priority": "high", "description": None, "category_id": None, "due_at": None},
        headers=auth_headers,
    )

    assert response.status_code == 200
    updated = response.json()
    assert updated["priority"] == "high"
    assert (updated["description"], updated["category_id"], updated["due_at"]) == (None,) * 3
    assert (updated["title"], updated["estimated_minutes"]) == ("Plan", 30)
    assert updated["created_at"] == task["created_at"]
    assert parse(updated["updated_at"]) >= parse(task["updated_at"])
    assert (await client.get(f"{TASKS}/{task['id']}", headers=auth_headers)).json() == updated


async def test_empty_patch_changes_nothing(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    task = await create_task(client, auth_headers, title="Plan")

    response = await client.patch(f"{TASKS}/{task['id']}", json={}, headers=auth_headers)

    assert response.status_code == 200
    assert response.json() == task


async def test_completed_at_is_set_on_completion_and_cleared_when_reopened(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    task = await create_task(client, auth_headers, title="Ship it")
    url = f"{TASKS}/{task['id']}"
    assert task["completed_at"] is None

    completed = (await client.patch(url, json={"status": "completed"}, headers=auth_headers)).json()
    assert completed["completed_at"] is not None
    assert completed["completed_at"].endswith("Z")
    assert parse(completed["completed_at"]) >= parse(task["created_at"])

    retitled = await client.patch(
        url, json={"title": "Shipped", "status": "completed"}, headers=auth_headers
    )
    assert retitled.json()["completed_at"] == completed["completed_at"]

    reopened = (
        await client.patch(url, json={"status": "in_progress"}, headers=auth_headers)
    ).json()
    assert reopened["completed_at"] is None
    assert (await client.get(url, headers=auth_headers)).json()["completed_at"] is None


async def test_task_created_completed_has_completed_at(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    task = await create_task(client, auth_headers, status="completed")

    assert task["completed_at"] is not None


async def test_delete_task_is_204_then_404(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    task = await create_task(client, auth_headers)
    url = f"{TASKS}/{task['id']}"

    deleted = await client.delete(url, headers=auth_headers)

    assert deleted.status_code == 204
    assert deleted.content == b""
    assert (await client.get(url, headers=auth_headers)).status_code == 404
    assert (await client.patch(url, json={"title": "x"}, headers=auth_headers)).status_code == 404
    assert (await client.delete(url, headers=auth_headers)).status_code == 404


async def test_category_that_is_not_yours_is_422_on_create_and_update(
    client: httpx.AsyncClient, users: Users
) -> None:
    owner, other = await users.headers(), await users.headers()
    foreign_category = await first_category_id(client, other)
    own_category = await first_category_id(client, owner)
    deleted = (await client.post(CATEGORIES, json={"name": "Gone"}, headers=owner)).json()["id"]
    await client.delete(f"{CATEGORIES}/{deleted}", headers=owner)
    task = await create_task(client, owner, category_id=own_category)

    for category_id in (foreign_category, deleted, 2**31 - 1):
        created = await client.post(
            TASKS, json={"title": "x", "category_id": category_id}, headers=owner
        )
        updated = await client.patch(
            f"{TASKS}/{task['id']}", json={"category_id": category_id}, headers=owner
        )
        assert ["body", "category_id"] in error_locs(created), category_id
        assert ["body", "category_id"] in error_locs(updated), category_id

    listed = (await client.get(TASKS, headers=owner)).json()["items"]
    assert listed == [task]


async def test_other_users_task_is_404_and_stays_unchanged(
    client: httpx.AsyncClient, users: Users
) -> None:
    owner, intruder = await users.headers(), await users.headers()
    task = await create_task(client, owner, title="Secret plan", description="Top secret")
    url = f"{TASKS}/{task['id']}"

    responses = [
        await client.get(url, headers=intruder),
        await client.patch(
            url, json={"title": "Mine now", "status": "completed"}, headers=intruder
        ),
        await client.delete(url, headers=intruder),
    ]

    for response in responses:
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "Secret" not in response.text
    assert (await client.get(url, headers=owner)).json() == task
    assert (await client.get(TASKS, headers=intruder)).json() == {"items": [], "next_cursor": None}


INVALID_CREATES: list[tuple[dict[str, Any], list[str]]] = [
    ({}, ["body", "title"]),
    ({"title": ""}, ["body", "title"]),
    ({"title": "   "}, ["body", "title"]),
    ({"title": "x" * 501}, ["body", "title"]),
    ({"title": None}, ["body", "title"]),
    ({"title": "a\u0000b"}, ["body", "title"]),
    ({"title": "x", "description": "x" * 20001}, ["body", "description"]),
    ({"title": "x", "status": "done"}, ["body", "status"]),
    ({"title": "x", "priority": "critical"}, ["body", "priority"]),
    ({"title": "x", "priority": 4}, ["body", "priority"]),
    ({"title": "x", "task_type": "chore"}, ["body", "task_type"]),
    ({"title": "x", "estimated_minutes": 0}, ["body", "estimated_minutes"]),
    ({"title": "x", "estimated_minutes": 10081}, ["body", "estimated_minutes"]),
    ({"title": "x", "estimated_minutes": True}, ["body", "estimated_minutes"]),
    ({"title": "x", "estimated_minutes": "30"}, ["body", "estimated_minutes"]),
    ({"title": "x", "category_id": "abc"}, ["body", "category_id"]),
    ({"title": "x", "category_id": 2**40}, ["body", "category_id"]),
    ({"title": "x", "due_at": "2026-12-01T09:00:00"}, ["body", "due_at"]),
    ({"title": "x", "due_at": "2026-12-01"}, ["body", "due_at"]),
    ({"title": "x", "due_at": "tomorrow"}, ["body", "due_at"]),
    ({"title": "x", "due_at": "9999-12-31T23:00:00-05:00"}, ["body", "due_at"]),
    ({"title": "x", "due_at": 1764579600}, ["body", "due_at"]),  # RFC 3339 only
    ({"title": " " + "x" * 500}, ["body", "title"]),
    ({"title": "x", "description": "a\u0000b"}, ["body", "description"]),
    ({"title": "x", "id": 7}, ["body", "id"]),
    ({"title": "x", "user_id": 7}, ["body", "user_id"]),
    ({"title": "x", "created_at": "2026-01-01T00:00:00Z"}, ["body", "created_at"]),
    ({"title": "x", "updated_at": "2026-01-01T00:00:00Z"}, ["body", "updated_at"]),
    ({"title": "x", "completed_at": "2026-01-01T00:00:00Z"}, ["body", "completed_at"]),
    ({"title": "x", "search_text": "x"}, ["body", "search_text"]),
    ({"title": "x", "tags": ["a"]}, ["body", "tags"]),
]


async def test_create_task_with_invalid_input_is_422_naming_the_field(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    for body, loc in INVALID_CREATES:
        response = await client.post(TASKS, json=body, headers=auth_headers)
        assert loc in error_locs(response), body

    assert (await client.get(TASKS, headers=auth_headers)).json()["items"] == []


INVALID_UPDATES: list[tuple[dict[str, Any], list[str]]] = [
    ({"title": None}, ["body", "title"]),
    ({"title": ""}, ["body", "title"]),
    ({"status": None}, ["body", "status"]),
    ({"priority": None}, ["body", "priority"]),
    ({"task_type": None}, ["body", "task_type"]),
    ({"status": "done"}, ["body", "status"]),
    ({"estimated_minutes": 0}, ["body", "estimated_minutes"]),
    ({"due_at": "2026-12-01T09:00:00"}, ["body", "due_at"]),
    ({"id": 1}, ["body", "id"]),
    ({"user_id": 1}, ["body", "user_id"]),
    ({"created_at": "2026-01-01T00:00:00Z"}, ["body", "created_at"]),
    ({"updated_at": "2026-01-01T00:00:00Z"}, ["body", "updated_at"]),
    ({"completed_at": "2026-01-01T00:00:00Z"}, ["body", "completed_at"]),
]


async def test_patch_task_with_invalid_input_is_422_and_changes_nothing(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    task = await create_task(client, auth_headers, title="Plan", due_at="2026-12-01T09:00:00Z")
    url = f"{TASKS}/{task['id']}"

    for body, loc in INVALID_UPDATES:
        response = await client.patch(url, json={**body}, headers=auth_headers)
        assert loc in error_locs(response), body

    assert (await client.get(url, headers=auth_headers)).json() == task


@pytest.mark.parametrize("task_id", ["abc", "0", "-3", "1.5", "99999999999999999999"])
async def test_malformed_task_id_is_404_or_422(
    client: httpx.AsyncClient, auth_headers: Headers, task_id: str
) -> None:
    url = f"{TASKS}/{task_id}"
    for response in (
        await client.get(url, headers=auth_headers),
        await client.patch(url, json={"title": "x"}, headers=auth_headers),
        await client.delete(url, headers=auth_headers),
    ):
        assert response.status_code in (404, 422)


async def test_task_that_never_existed_is_404(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    response = await client.get(f"{TASKS}/{2**31 - 1}", headers=auth_headers)

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_every_task_endpoint_needs_a_token(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    task = await create_task(client, auth_headers, title="Mine")
    url = f"{TASKS}/{task['id']}"
    responses = [
        await client.get(TASKS),
        await client.post(TASKS, json={"title": "x"}),
        await client.get(url),
        await client.patch(url, json={"title": "x"}),
        await client.delete(url),
        await client.get(url, headers={"Authorization": "Bearer not-a-token"}),
    ]

    for response in responses:
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
    assert (await client.get(url, headers=auth_headers)).json() == task
