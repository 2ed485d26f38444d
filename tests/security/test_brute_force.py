"""API2 Broken Authentication, brute force: the per-account login lockout counts every spelling
of one account (username or email, any letter case) together, with the shared state in the
database and in Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import AppFactory, Users
from tests.security.conftest import assert_problem

LOGIN = "/api/v1/auth/jwt/login"
WINDOW_SECONDS = 15 * 60  # LOGIN_FAILURE_WINDOW_MINUTES by default
FORMS = ("Erin", "ERIN", "erin@example.com", "Erin@EXAMPLE.com", "erin")


@pytest.fixture(params=["db-state", "redis-state"])
async def app(request: pytest.FixtureRequest, app_factory: AppFactory) -> AsyncIterator[FastAPI]:
    overrides: dict[str, Any] = {}
    if request.param == "redis-state":
        overrides = {"redis": {"redis_url": request.getfixturevalue("redis_url")}}
    async with app_factory(**overrides) as running:
        yield running


async def test_failures_in_every_spelling_count_for_one_account(
    client: httpx.AsyncClient, users: Users
) -> None:
    user = await users.register(username="erin", email="erin@example.com")
    for login in FORMS:  # five failures, each spelled differently
        failed = await client.post(LOGIN, data={"username": login, "password": "wrong guess"})
        assert_problem(failed, 401)

    for login in {*FORMS, "ERIN@EXAMPLE.COM"}:
        locked = await client.post(LOGIN, data={"username": login, "password": user["password"]})
        assert_problem(locked, 429)
        assert 0 < int(locked.headers["Retry-After"]) <= WINDOW_SECONDS


async def test_failures_on_an_unknown_name_lock_nobody(
    client: httpx.AsyncClient, users: Users
) -> None:
    user = await users.register(username="fay", email="fay@example.com")
    for _ in range(6):
        failed = await client.post(LOGIN, data={"username": "fay2", "password": "wrong guess"})
        assert_problem(failed, 401)

    response = await client.post(LOGIN, data={"username": "fay", "password": user["password"]})
    assert response.status_code == 200, response.text
