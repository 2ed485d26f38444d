from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from tests.conftest import Users

CATEGORIES = "/api/v1/categories"
DEFAULT_NAMES = ["Work", "Health", "Leisure", "Family", "Fitness"]
COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")

Headers = dict[str, str]


async def create_category(
    client: httpx.AsyncClient, headers: Headers, **fields: Any
) -> dict[str, Any]:
    response = await client.post(CATEGORIES, json=fields, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def all_categories(client: httpx.AsyncClient, headers: Headers) -> list[dict[str, Any]]:
    response = await client.get(CATEGORIES, params={"limit": 200}, headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def error_locs(response: httpx.Response) -> list[list[str | int]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return [error["loc"] for error in response.json()["errors"]]


async def test_new_user_starts_with_the_default_categories(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    response = await client.get(CATEGORIES, headers=auth_headers)

    assert response.status_code == 200
    body = response.json()
    assert body["next_cursor"] is None
    assert [item["name"] for item in body["items"]] == DEFAULT_NAMES
    for item in body["items"]:
        assert set(item) == {"id", "name", "color", "weight", "created_at", "updated_at"}
        assert COLOR.match(item["color"])
        assert item["weight"] == 5
        assert item["created_at"].endswith("Z")


async def test_create_category_returns_it_and_lists_it(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    created = await create_category(client, auth_headers, name="Errands", color="#112233", weight=8)

    assert created["name"] == "Errands"
    assert created["color"] == "#112233"
    assert created["weight"] == 8
    fetched = await client.get(f"{CATEGORIES}/{created['id']}", headers=auth_headers)
    assert fetched.status_code == 200
    assert fetched.json() == created
    assert (await all_categories(client, auth_headers))[-1] == created


async def test_create_category_without_color_gets_an_unused_one_and_weight_5(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    existing = {item["color"].upper() for item in await all_categories(client, auth_headers)}

    created = await create_category(client, auth_headers, name="Errands")

    assert COLOR.match(created["color"])
    assert created["color"].upper() not in existing
    assert created["weight"] == 5


async def test_weight_given_as_a_whole_json_number_is_accepted(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    created = await create_category(client, auth_headers, name="Errands", weight=3.0)

    assert created["weight"] == 3


async def test_create_category_trims_the_name(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    created = await create_category(client, auth_headers, name="  Errands \t")

    assert created["name"] == "Errands"


@pytest.mark.parametrize(
    ("existing", "duplicate"),
    [
        ("Work", "work"),
        ("Work", " WORK "),
        ("Ärzte", "ärzte"),
        ("Ärzte", "A\u0308RZTE"),  # decomposed: A + combining diaeresis
        ("Straße", "STRASSE"),
        ("Ωmega", "ωMEGA"),
    ],
)
async def test_create_category_with_a_name_taken_ignoring_case_is_409(
    client: httpx.AsyncClient, auth_headers: Headers, existing: str, duplicate: str
) -> None:
    if existing not in DEFAULT_NAMES:
        await create_category(client, auth_headers, name=existing)
    before = await all_categories(client, auth_headers)

    response = await client.post(CATEGORIES, json={"name": duplicate}, headers=auth_headers)

    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 409
    assert await all_categories(client, auth_headers) == before


async def test_two_users_may_have_categories_of_the_same_name(
    client: httpx.AsyncClient, users: Users
) -> None:
    first, second = await users.headers(), await users.headers()

    await create_category(client, first, name="Ärzte")
    await create_category(client, second, name="ärzte")


async def test_concurrent_creates_of_one_name_give_one_category(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    responses = await asyncio.gather(
        *(client.post(CATEGORIES, json={"name": "Race"}, headers=auth_headers) for _ in range(6))
    )

    assert sorted(r.status_code for r in responses) == [201] + [409] * 5
    names = [item["name"] for item in await all_categories(client, auth_headers)]
    assert names.count("Race") == 1


async def test_patch_changes_only_the_fields_sent(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    created = await create_category(client, auth_headers, name="Errands", color="#112233")

    response = await client.patch(
        f"{CATEGORIES}/{created['id']}", json={"weight": 9}, headers=auth_headers
    )

    assert response.status_code == 200
    updated = response.json()
    assert updated["weight"] == 9
    assert (updated["name"], updated["color"]) == ("Errands", "#112233")
    assert updated["created_at"] == created["created_at"]
    assert updated["updated_at"] >= created["updated_at"]
    fetched = await client.get(f"{CATEGORIES}/{created['id']}", headers=auth_headers)
    assert fetched.json() == updated


async def test_rename_to_a_new_name_and_to_a_case_variant_of_its_own(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    work = (await all_categories(client, auth_headers))[0]

    renamed = await client.patch(
        f"{CATEGORIES}/{work['id']}", json={"name": "Ärzte"}, headers=auth_headers
    )
    recased = await client.patch(
        f"{CATEGORIES}/{work['id']}", json={"name": "ÄRZTE"}, headers=auth_headers
    )

    assert renamed.status_code == 200
    assert recased.status_code == 200
    assert recased.json()["name"] == "ÄRZTE"
    created = await client.post(CATEGORIES, json={"name": "ärzte"}, headers=auth_headers)
    assert created.status_code == 409
    assert (
        await client.post(CATEGORIES, json={"name": "Work"}, headers=auth_headers)
    ).status_code == 201


async def test_rename_onto_an_existing_name_is_409_and_changes_nothing(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    before = await all_categories(client, auth_headers)
    health = before[1]

    response = await client.patch(
        f"{CATEGORIES}/{health['id']}",
        json={"name": "wORK", "weight": 1},
        headers=auth_headers,
    )

    assert response.status_code == 409
    assert await all_categories(client, auth_headers) == before


async def test_delete_category_is_204_then_404(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    created = await create_category(client, auth_headers, name="Errands")
    url = f"{CATEGORIES}/{created['id']}"

    deleted = await client.delete(url, headers=auth_headers)

    assert deleted.status_code == 204
    assert deleted.content == b""
    assert (await client.get(url, headers=auth_headers)).status_code == 404
    assert (await client.delete(url, headers=auth_headers)).status_code == 404
    assert (await client.patch(url, json={"weight": 1}, headers=auth_headers)).status_code == 404
    assert created["id"] not in {item["id"] for item in await all_categories(client, auth_headers)}


async def test_deleted_name_can_be_used_again(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    work = (await all_categories(client, auth_headers))[0]

    await client.delete(f"{CATEGORIES}/{work['id']}", headers=auth_headers)

    await create_category(client, auth_headers, name="work")


async def test_deleting_a_category_leaves_its_tasks_uncategorised(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    category = await create_category(client, auth_headers, name="Errands")
    other = (await all_categories(client, auth_headers))[0]
    tasks = []
    for title, category_id in [("a", category["id"]), ("b", category["id"]), ("c", other["id"])]:
        response = await client.post(
            "/api/v1/tasks", json={"title": title, "category_id": category_id}, headers=auth_headers
        )
        assert response.status_code == 201, response.text
        tasks.append(response.json())

    response = await client.delete(f"{CATEGORIES}/{category['id']}", headers=auth_headers)

    assert response.status_code == 204
    after = [
        (await client.get(f"/api/v1/tasks/{task['id']}", headers=auth_headers)).json()
        for task in tasks
    ]
    assert [task["category_id"] for task in after] == [None, None, other["id"]]
    assert [task["title"] for task in after] == ["a", "b", "c"]


async def test_other_users_category_is_404_and_stays_unchanged(
    client: httpx.AsyncClient, users: Users
) -> None:
    owner, intruder = await users.headers(), await users.headers()
    category = await create_category(client, owner, name="Private", color="#123456")
    url = f"{CATEGORIES}/{category['id']}"

    responses = [
        await client.get(url, headers=intruder),
        await client.patch(url, json={"name": "Mine now"}, headers=intruder),
        await client.delete(url, headers=intruder),
    ]

    for response in responses:
        assert response.status_code == 404
        assert "Private" not in response.text
    assert (await client.get(url, headers=owner)).json() == category
    assert category["id"] not in {c["id"] for c in await all_categories(client, intruder)}


INVALID_CREATES: list[tuple[dict[str, Any], list[str]]] = [
    ({}, ["body", "name"]),
    ({"name": ""}, ["body", "name"]),
    ({"name": "   "}, ["body", "name"]),
    ({"name": "x" * 65}, ["body", "name"]),
    ({"name": None}, ["body", "name"]),
    ({"name": "A", "color": "red"}, ["body", "color"]),
    ({"name": "A", "color": "#12345"}, ["body", "color"]),
    ({"name": "A", "color": "#1234567"}, ["body", "color"]),
    ({"name": "A", "weight": 11}, ["body", "weight"]),
    ({"name": "A", "weight": -1}, ["body", "weight"]),
    ({"name": "A", "weight": 2.5}, ["body", "weight"]),
    ({"name": "A", "weight": True}, ["body", "weight"]),
    ({"name": "A", "weight": "5"}, ["body", "weight"]),
    ({"name": "A", "id": 1}, ["body", "id"]),
    ({"name": "A", "user_id": 1}, ["body", "user_id"]),
    ({"name": "A", "created_at": "2026-01-01T00:00:00Z"}, ["body", "created_at"]),
    ({"name": "A", "updated_at": "2026-01-01T00:00:00Z"}, ["body", "updated_at"]),
    ({"name": "A", "colour": "#123456"}, ["body", "colour"]),
    ({"name": "a\u0000b"}, ["body", "name"]),
    ({"name": " " + "x" * 64}, ["body", "name"]),  # length counts the text as sent
]


async def test_create_category_with_invalid_input_is_422_naming_the_field(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    for body, loc in INVALID_CREATES:
        response = await client.post(CATEGORIES, json=body, headers=auth_headers)
        assert loc in error_locs(response), body

    assert len(await all_categories(client, auth_headers)) == len(DEFAULT_NAMES)


INVALID_UPDATES: list[tuple[dict[str, Any], list[str]]] = [
    ({"name": None}, ["body", "name"]),
    ({"color": None}, ["body", "color"]),
    ({"weight": None}, ["body", "weight"]),
    ({"name": ""}, ["body", "name"]),
    ({"weight": 11}, ["body", "weight"]),
    ({"id": 5}, ["body", "id"]),
    ({"user_id": 5}, ["body", "user_id"]),
    ({"created_at": "2026-01-01T00:00:00Z"}, ["body", "created_at"]),
    ({"updated_at": "2026-01-01T00:00:00Z"}, ["body", "updated_at"]),
]


async def test_patch_category_with_invalid_input_is_422_and_changes_nothing(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    before = await all_categories(client, auth_headers)

    for body, loc in INVALID_UPDATES:
        response = await client.patch(
            f"{CATEGORIES}/{before[0]['id']}", json=body, headers=auth_headers
        )
        assert loc in error_locs(response), body

    assert await all_categories(client, auth_headers) == before


async def test_paging_through_categories_gives_each_once_in_order(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    for name in ("A", "B", "C", "D"):
        await create_category(client, auth_headers, name=name)
    expected = [item["id"] for item in await all_categories(client, auth_headers)]

    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(CATEGORIES, params=params, headers=auth_headers)).json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == expected
    assert len(seen) == len(DEFAULT_NAMES) + 4


async def test_a_cursor_only_pages_the_listing_of_its_owner(
    client: httpx.AsyncClient, users: Users
) -> None:
    first, second = await users.headers(), await users.headers()
    cursor = (await client.get(CATEGORIES, params={"limit": 1}, headers=first)).json()[
        "next_cursor"
    ]

    page = (await client.get(CATEGORIES, params={"cursor": cursor}, headers=second)).json()

    assert [item["name"] for item in page["items"]] == DEFAULT_NAMES


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "garbage"},
        {"cursor": ""},
        {"cursor": "x" * 2000},
    ],
)
async def test_cursor_the_server_did_not_issue_is_422(
    client: httpx.AsyncClient, auth_headers: Headers, params: dict[str, str]
) -> None:
    response = await client.get(CATEGORIES, params=params, headers=auth_headers)

    assert ["query", "cursor"] in error_locs(response)


async def test_tampered_cursor_and_cursor_of_another_listing_are_422(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    cursor = (await client.get(CATEGORIES, params={"limit": 1}, headers=auth_headers)).json()[
        "next_cursor"
    ]
    tampered = cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB")
    await client.post("/api/v1/tasks", json={"title": "t1"}, headers=auth_headers)
    await client.post("/api/v1/tasks", json={"title": "t2"}, headers=auth_headers)
    task_cursor = (
        await client.get("/api/v1/tasks", params={"limit": 1}, headers=auth_headers)
    ).json()["next_cursor"]
    assert task_cursor is not None

    for bad in (tampered, task_cursor):
        response = await client.get(CATEGORIES, params={"cursor": bad}, headers=auth_headers)
        assert ["query", "cursor"] in error_locs(response)


@pytest.mark.parametrize("limit", ["0", "201", "-1", "abc"])
async def test_limit_out_of_range_is_422(
    client: httpx.AsyncClient, auth_headers: Headers, limit: str
) -> None:
    response = await client.get(CATEGORIES, params={"limit": limit}, headers=auth_headers)

    assert ["query", "limit"] in error_locs(response)


@pytest.mark.parametrize("category_id", ["abc", "0", "-3", "1.5", "99999999999999999999"])
async def test_malformed_category_id_is_404_or_422(
    client: httpx.AsyncClient, auth_headers: Headers, category_id: str
) -> None:
    url = f"{CATEGORIES}/{category_id}"
    for response in (
        await client.get(url, headers=auth_headers),
        await client.patch(url, json={"weight": 1}, headers=auth_headers),
        await client.delete(url, headers=auth_headers),
    ):
        assert response.status_code in (404, 422)


async def test_category_that_never_existed_is_404(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    response = await client.get(f"{CATEGORIES}/{2**31 - 1}", headers=auth_headers)

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_every_category_endpoint_needs_a_token(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    category_id = (await all_categories(client, auth_headers))[0]["id"]
    url = f"{CATEGORIES}/{category_id}"
    responses = [
        await client.get(CATEGORIES),
        await client.post(CATEGORIES, json={"name": "X"}),
        await client.get(url),
        await client.patch(url, json={"weight": 1}),
        await client.delete(url),
        await client.get(url, headers={"Authorization": "Bearer not-a-token"}),
    ]

    for response in responses:
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
    assert len(await all_categories(client, auth_headers)) == len(DEFAULT_NAMES)
