"""A new user's first steps, end to end over HTTP."""

from __future__ import annotations

import httpx

from tests.conftest import Users
from tests.tasks.helpers import CATEGORIES, TASKS, create_task, page_through


async def test_register_then_categories_then_tasks_with_filters_and_pagination(
    client: httpx.AsyncClient, users: Users
) -> None:
    user = await users.register(username="newcomer", email="newcomer@example.com")
    tokens = await users.login("newcomer@example.com", user["password"])
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}

    categories = (await client.get(CATEGORIES, headers=headers)).json()
    assert [c["name"] for c in categories["items"]] == [
        "Work",
        "Health",
        "Leisure",
        "Family",
        "Fitness",
    ]
    work = categories["items"][0]["id"]
    doctors = await client.post(CATEGORIES, json={"name": "Ärzte", "weight": 8}, headers=headers)
    assert doctors.status_code == 201
    doctors_id = doctors.json()["id"]
    assert (
        await client.post(CATEGORIES, json={"name": "ärzte"}, headers=headers)
    ).status_code == 409

    work_tasks = [
        await create_task(
            client,
            headers,
            title=f"Work item {index}",
            category_id=work,
            priority="high" if index % 2 else "low",
            due_at=f"2026-12-{index + 1:02d}T09:00:00Z" if index < 5 else None,
        )
        for index in range(7)
    ]
    checkup = await create_task(
        client,
        headers,
        title="Checkup",
        description="Termin bei den Ärzten",
        category_id=doctors_id,
        due_at="2026-12-03T08:00:00+01:00",
    )

    by_due = await page_through(client, headers, 2, sort="due_at", category_id=work)
    assert by_due == [task["id"] for task in work_tasks]
    urgent_first = await page_through(client, headers, 3, sort="-priority", priority="high")
    assert urgent_first == [
        task["id"] for task in reversed(work_tasks) if task["priority"] == "high"
    ]
    found = (await client.get(TASKS, params={"q": "ÄRZTEN"}, headers=headers)).json()
    assert [task["id"] for task in found["items"]] == [checkup["id"]]
    this_week = await page_through(
        client,
        headers,
        1,
        sort="due_at",
        due_after="2026-12-03T00:00:00Z",
        due_before="2026-12-04T00:00:00Z",
    )
    assert this_week == [checkup["id"], work_tasks[2]["id"]]

    done = await client.patch(
        f"{TASKS}/{work_tasks[0]['id']}", json={"status": "completed"}, headers=headers
    )
    assert done.json()["completed_at"] is not None
    assert await page_through(client, headers, 5, status="completed") == [work_tasks[0]["id"]]

    assert (await client.delete(f"{CATEGORIES}/{doctors_id}", headers=headers)).status_code == 204
    orphan = (await client.get(f"{TASKS}/{checkup['id']}", headers=headers)).json()
    assert orphan["category_id"] is None
    assert len(await page_through(client, headers, 4)) == 8
