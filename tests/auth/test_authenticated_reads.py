"""The task list authenticates in the same query as its page (AuthenticatedReader): its answers
to a bad token are those of every other route, with and without tasks to read, with the auth
state in the database and in Redis, on both backends."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from ai_workflow_engine.users.models import User
from tests.conftest import Users

TASKS = "/api/v1/tasks"
LOGOUT = "/api/v1/auth/jwt/logout"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _user_with(client: httpx.AsyncClient, users: Users, tasks: int) -> dict[str, Any]:
    user = await users.register()
    tokens = await users.login(user["username"])
    for n in range(tasks):
        created = await client.post(
            TASKS, json={"title": f"task {n}"}, headers=bearer(tokens["access_token"])
        )
        assert created.status_code == 201, created.text
    return user | tokens


@pytest.mark.parametrize("tasks", [0, 3], ids=["no-tasks", "tasks"])
async def test_the_list_shows_only_the_token_users_tasks(
    client: httpx.AsyncClient, users: Users, tasks: int
) -> None:
    owner = await _user_with(client, users, tasks)
    other = await _user_with(client, users, 2)
    page = await client.get(TASKS, headers=bearer(owner["access_token"]))
    assert page.status_code == 200, page.text
    titles = [task["title"] for task in page.json()["items"]]
    assert titles == [f"task {n}" for n in reversed(range(tasks))]
    others = await client.get(TASKS, headers=bearer(other["access_token"]))
    assert len(others.json()["items"]) == 2


@pytest.mark.parametrize("tasks", [0, 3], ids=["no-tasks", "tasks"])
async def test_a_logged_out_session_cannot_list(
    client: httpx.AsyncClient, users: Users, tasks: int
) -> None:
    user = await _user_with(client, users, tasks)
    other_session = await users.login(user["username"])
    logout = await client.post(LOGOUT, headers=bearer(user["access_token"]))
    assert logout.status_code == 204
    refused = await client.get(TASKS, headers=bearer(user["access_token"]))
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert "revoked" in refused.json()["detail"]
    # the same user's other session still lists
    page = await client.get(TASKS, headers=bearer(other_session["access_token"]))
    assert page.status_code == 200
    assert len(page.json()["items"]) == tasks


@pytest.mark.parametrize("tasks", [0, 3], ids=["no-tasks", "tasks"])
async def test_a_deactivated_user_cannot_list(
    app: FastAPI, client: httpx.AsyncClient, users: Users, tasks: int
) -> None:
    user = await _user_with(client, users, tasks)
    async with app.state.sessionmaker() as session:
        await session.execute(update(User).where(User.id == user["id"]).values(is_active=False))
        await session.commit()
    refused = await client.get(TASKS, headers=bearer(user["access_token"]))
    assert refused.status_code == 401
    assert refused.json()["detail"] == "The token's user no longer exists"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer not-a-token"},
    ],
    ids=["none", "empty", "basic", "garbage"],
)
async def test_a_missing_or_malformed_token_is_401_before_the_query_is_read(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    # an invalid query too: the token is checked first, as on every route
    response = await client.get(TASKS, params={"limit": "0", "sort": "nope"}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_an_invalid_query_names_each_field(client: httpx.AsyncClient, users: Users) -> None:
    user = await _user_with(client, users, 0)
    response = await client.get(
        TASKS,
        params={"limit": "0", "sort": "nope", "status": ["pending", "lost"]},
        headers=bearer(user["access_token"]),
    )
    assert response.status_code == 422
    locs = {tuple(error["loc"]) for error in response.json()["errors"]}
    assert locs == {("query", "limit"), ("query", "sort"), ("query", "status", 1)}


async def test_a_deleted_user_cannot_list(
    app: FastAPI, client: httpx.AsyncClient, users: Users
) -> None:
    user = await _user_with(client, users, 2)
    async with app.state.sessionmaker() as session:
        await session.delete(await session.get(User, user["id"]))
        await session.commit()
    refused = await client.get(TASKS, headers=bearer(user["access_token"]))
    assert refused.status_code == 401
    assert refused.json()["detail"] == "The token's user no longer exists"
