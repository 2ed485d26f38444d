"""`Idempotency-Key` on POST /tasks and /categories: replays, mismatches, scope, races, expiry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tests.conftest import AppFactory, Users
from tests.tasks.helpers import CATEGORIES, TASKS, Headers

REPLAYED = "Idempotent-Replayed"


def keyed(headers: Headers, key: str) -> Headers:
    return {**headers, "Idempotency-Key": key}


async def task_titles(client: httpx.AsyncClient, headers: Headers) -> list[str]:
    response = await client.get(TASKS, params={"limit": 200}, headers=headers)
    assert response.status_code == 200, response.text
    return sorted(task["title"] for task in response.json()["items"])


async def category_names(client: httpx.AsyncClient, headers: Headers) -> list[str]:
    response = await client.get(CATEGORIES, params={"limit": 200}, headers=headers)
    assert response.status_code == 200, response.text
    return sorted(category["name"] for category in response.json()["items"])


async def stored_keys(app: FastAPI) -> list[str]:
    async with app.state.engine.connect() as connection:
        rows = await connection.execute(text("SELECT key FROM idempotency_keys ORDER BY key"))
        return [row[0] for row in rows]


def assert_key_reused(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    (error,) = response.json()["errors"]
    assert error["loc"] == ["header", "idempotency-key"]
    assert "different request" in error["msg"]


async def test_repeat_with_the_same_key_replays_the_first_answer(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    headers = keyed(auth_headers, "create-report-1")
    first = await client.post(TASKS, json={"title": "Report", "priority": "high"}, headers=headers)
    assert first.status_code == 201, first.text
    assert REPLAYED not in first.headers

    # the same request, spelled differently: other key order, other spacing
    again = await client.post(
        TASKS,
        content=b'{ "priority" : "high",\n "title": "Report" }',
        headers={**headers, "Content-Type": "application/json"},
    )

    assert again.status_code == 201
    assert again.headers[REPLAYED] == "true"
    assert again.headers["content-type"] == "application/json"
    assert again.content == first.content
    assert await task_titles(client, auth_headers) == ["Report"]


async def test_category_replay_is_the_first_answer_not_a_name_conflict(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    body = {"name": "Errands", "color": "#123456"}
    first = await client.post(CATEGORIES, json=body, headers=keyed(auth_headers, "cat-1"))
    assert first.status_code == 201, first.text

    replay = await client.post(CATEGORIES, json=body, headers=keyed(auth_headers, "cat-1"))
    fresh = await client.post(CATEGORIES, json=body, headers=keyed(auth_headers, "cat-2"))

    assert (replay.status_code, replay.headers[REPLAYED]) == (201, "true")
    assert replay.json() == first.json()
    assert fresh.status_code == 409, fresh.text  # a new key is a new request: the name is taken
    assert (await category_names(client, auth_headers)).count("Errands") == 1


async def test_same_key_with_a_different_body_is_422_and_creates_nothing(
    app: FastAPI, client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    headers = keyed(auth_headers, "k")
    assert (await client.post(TASKS, json={"title": "One"}, headers=headers)).status_code == 201

    other = await client.post(TASKS, json={"title": "Two"}, headers=headers)
    elsewhere = await client.post(CATEGORIES, json={"name": "One"}, headers=headers)

    assert_key_reused(other)
    assert_key_reused(elsewhere)  # the key is the user's, across endpoints
    assert await task_titles(client, auth_headers) == ["One"]
    assert "One" not in await category_names(client, auth_headers)
    assert await stored_keys(app) == ["k"]


async def test_the_same_key_of_two_users_is_two_keys(
    client: httpx.AsyncClient, users: Users
) -> None:
    alice, bob = await users.headers(), await users.headers()

    for_alice = await client.post(TASKS, json={"title": "Mine"}, headers=keyed(alice, "shared"))
    for_bob = await client.post(TASKS, json={"title": "Mine"}, headers=keyed(bob, "shared"))
    bob_other = await client.post(TASKS, json={"title": "Other"}, headers=keyed(bob, "shared"))

    assert for_alice.status_code == for_bob.status_code == 201
    assert REPLAYED not in for_bob.headers
    assert for_alice.json()["id"] != for_bob.json()["id"]
    assert_key_reused(bob_other)
    assert await task_titles(client, alice) == ["Mine"]
    assert await task_titles(client, bob) == ["Mine"]


async def test_without_a_key_every_request_creates(
    app: FastAPI, client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    for _ in range(2):
        response = await client.post(TASKS, json={"title": "Again"}, headers=auth_headers)
        assert response.status_code == 201
        assert REPLAYED not in response.headers
    assert await task_titles(client, auth_headers) == ["Again", "Again"]
    assert await stored_keys(app) == []


MALFORMED_KEYS = [
    "",
    " ",
    " leading-space",
    "trailing-space ",
    "tab\tinside",
    "delete\x7f",
    "caf\xe9",
    "k" * 256,
]
EDGE_KEYS = ["k" * 255, "a", "with inner spaces", "!~\"'{}[]", "0" * 36]


async def test_malformed_keys_are_422_on_the_header(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    for key in MALFORMED_KEYS:
        headers = {**auth_headers, "Idempotency-Key": key.encode("latin-1")}
        for path, body in ((TASKS, {"title": "x"}), (CATEGORIES, {"name": "x"})):
            response = await client.post(path, json=body, headers=headers)  # type: ignore[arg-type]
            assert response.status_code == 422, (key, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            locs = [error["loc"] for error in response.json()["errors"]]
            assert locs == [["header", "idempotency-key"]], key
    assert await task_titles(client, auth_headers) == []


async def test_keys_at_the_edges_are_accepted(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    for key in EDGE_KEYS:
        first = await client.post(TASKS, json={"title": key}, headers=keyed(auth_headers, key))
        again = await client.post(TASKS, json={"title": key}, headers=keyed(auth_headers, key))
        assert (first.status_code, again.status_code) == (201, 201), (key, first.text)
        assert again.headers[REPLAYED] == "true", key
    assert await task_titles(client, auth_headers) == sorted(EDGE_KEYS)


async def test_a_failed_request_stores_no_key_so_a_corrected_retry_creates(
    app: FastAPI, client: httpx.AsyncClient, users: Users
) -> None:
    mine, theirs = await users.headers(), await users.headers()
    their_category = (await client.get(CATEGORIES, headers=theirs)).json()["items"][0]["id"]
    headers = keyed(mine, "retry-me")

    failed = await client.post(
        TASKS, json={"title": "Filed", "category_id": their_category}, headers=headers
    )
    assert failed.status_code == 422, failed.text
    assert await stored_keys(app) == []

    corrected = await client.post(TASKS, json={"title": "Filed"}, headers=headers)
    assert corrected.status_code == 201, corrected.text
    assert REPLAYED not in corrected.headers
    replay = await client.post(TASKS, json={"title": "Filed"}, headers=headers)
    assert replay.headers[REPLAYED] == "true"
    # from now on the key belongs to the corrected request
    assert_key_reused(
        await client.post(
            TASKS, json={"title": "Filed", "category_id": their_category}, headers=headers
        )
    )
    assert await task_titles(client, mine) == ["Filed"]


async def test_a_conflict_is_not_stored_either(
    app: FastAPI, client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    taken = await client.post(CATEGORIES, json={"name": "Work"}, headers=keyed(auth_headers, "w"))
    assert taken.status_code == 409  # every user starts with a "Work" category
    assert await stored_keys(app) == []
    renamed = await client.post(
        CATEGORIES, json={"name": "Work 2"}, headers=keyed(auth_headers, "w")
    )
    assert renamed.status_code == 201, renamed.text


async def test_concurrent_requests_with_one_key_create_once(
    client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    headers = keyed(auth_headers, "raced")
    async with asyncio.timeout(30):
        responses = await asyncio.gather(
            *(client.post(TASKS, json={"title": "Raced"}, headers=headers) for _ in range(6))
        )

    assert [r.status_code for r in responses] == [201] * 6, [r.text for r in responses]
    assert len({r.content for r in responses}) == 1
    assert sum(REPLAYED not in r.headers for r in responses) == 1
    assert await task_titles(client, auth_headers) == ["Raced"]


@pytest.fixture
async def impatient_app(app_factory: AppFactory) -> AsyncIterator[FastAPI]:
    async with app_factory(http={"idempotency_wait_seconds": 0.5}) as app:
        yield app


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_key_held_by_an_unfinished_request_is_409_after_the_wait(
    impatient_app: FastAPI,
) -> None:
    """Another transaction holds the claim (as a slow first request would): the repeat waits
    `IDEMPOTENCY_WAIT_SECONDS` for it, then answers 409 with Retry-After, creating nothing; once
    that transaction is gone the key is free."""
    transport = httpx.ASGITransport(app=impatient_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        headers = await Users(client).headers()
        user_id = (await client.get("/api/v1/users/me", headers=headers)).json()["id"]
        async with impatient_app.state.engine.connect() as holder:
            await holder.execute(
                text(
                    "INSERT INTO idempotency_keys (user_id, key, request_hash, created_at, "
                    "expires_at) VALUES (:user, 'slow', 'h', now(), now() + interval '1 hour')"
                ),
                {"user": user_id},
            )
            async with asyncio.timeout(10):
                blocked = await client.post(
                    TASKS, json={"title": "Blocked"}, headers=keyed(headers, "slow")
                )
            assert blocked.status_code == 409, blocked.text
            assert blocked.headers["content-type"].startswith("application/problem+json")
            assert "in progress" in blocked.json()["detail"]
            assert blocked.headers["retry-after"] == "1"
            await holder.rollback()

        free = await client.post(TASKS, json={"title": "Free"}, headers=keyed(headers, "slow"))
        assert free.status_code == 201, free.text
        assert await task_titles(client, headers) == ["Free"]


async def test_an_expired_key_can_be_used_for_a_new_request(
    app: FastAPI, client: httpx.AsyncClient, auth_headers: Headers
) -> None:
    old = await client.post(TASKS, json={"title": "Old"}, headers=keyed(auth_headers, "reused"))
    other = await client.post(TASKS, json={"title": "Kept"}, headers=keyed(auth_headers, "kept"))
    assert (old.status_code, other.status_code) == (201, 201)
    async with app.state.engine.begin() as connection:  # as if the TTL had passed for one key
        dialect = connection.dialect.name
        past = "now() - interval '1 second'" if dialect == "postgresql" else "'2000-01-01'"
        await connection.execute(
            text(f"UPDATE idempotency_keys SET expires_at = {past} WHERE key = 'reused'")
        )

    new = await client.post(TASKS, json={"title": "New"}, headers=keyed(auth_headers, "reused"))

    assert new.status_code == 201, new.text
    assert REPLAYED not in new.headers
    assert new.json()["id"] != old.json()["id"]
    assert await task_titles(client, auth_headers) == ["Kept", "New", "Old"]
    assert await stored_keys(app) == ["kept", "reused"]


async def test_the_key_is_documented_on_both_creating_operations(app: FastAPI) -> None:
    paths: dict[str, Any] = app.openapi()["paths"]
    for path in (TASKS, CATEGORIES):
        operation = paths[path]["post"]
        (parameter,) = [p for p in operation["parameters"] if p["name"] == "idempotency-key"]
        assert parameter["in"] == "header"
        assert parameter["required"] is False
        assert parameter["schema"]["maxLength"] == 255
        assert "Idempotent-Replayed" in operation["responses"]["201"]["headers"]
        assert "Retry-After" in operation["responses"]["409"]["headers"]
        listing = paths[path]["get"].get("parameters", [])
        assert all(p["name"] != "idempotency-key" for p in listing)
