from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from tests.conftest import AppFactory


@pytest.fixture(params=["db-state", "redis-state"])
async def app(request: pytest.FixtureRequest, app_factory: AppFactory) -> AsyncIterator[FastAPI]:
    """Auth runs with its shared state in the database, and in the real Redis."""
    overrides = {}
    if request.param == "redis-state":
        overrides = {"redis": {"redis_url": request.getfixturevalue("redis_url")}}
    async with app_factory(**overrides) as running:
        yield running
