from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI

from ai_workflow_engine.categories import service
from ai_workflow_engine.categories.schemas import CategoryCreate
from ai_workflow_engine.core.errors import Conflict
from tests.conftest import Users


@pytest.mark.parametrize(
    ("first", "second"),
    [("Work", "WORK"), ("Ärzte", "ärzte"), ("Ärzte", "A\u0308rzte"), ("Straße", "STRASSE")],
)
def test_name_key_is_the_same_for_case_and_composition_variants(first: str, second: str) -> None:
    assert service.name_key(first) == service.name_key(second)


def test_name_key_tells_different_names_apart() -> None:
    assert service.name_key("Arzte") != service.name_key("Ärzte")


async def test_a_name_taken_by_a_concurrent_transaction_is_a_conflict(
    app: FastAPI, users: Users
) -> None:
    user_id = (await users.register())["id"]
    sessionmaker = app.state.sessionmaker

    async with sessionmaker() as first, sessionmaker() as second:
        await service.create_category(first, user_id, CategoryCreate(name="Race"))
        racing = asyncio.create_task(
            service.create_category(second, user_id, CategoryCreate(name="race"))
        )
        await asyncio.sleep(0.3)
        # the second transaction waits for the first (on its row, or on SQLite's write lock)
        assert not racing.done()
        await first.commit()

        with pytest.raises(Conflict):
            await racing
