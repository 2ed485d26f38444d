from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI

from ai_workflow_engine.settings.schemas import SettingsReplace, SettingsUpdate
from ai_workflow_engine.settings.service import read_settings, replace_settings, update_settings
from tests.conftest import Users


async def new_user_id(client: httpx.AsyncClient, users: Users) -> int:
    headers = await users.headers()
    user_id: int = (await client.get("/api/v1/users/me", headers=headers)).json()["id"]
    return user_id


async def test_racing_first_partial_writes_both_land(
    app: FastAPI, client: httpx.AsyncClient, users: Users
) -> None:
    user_id = await new_user_id(client, users)
    async with app.state.sessionmaker() as first, app.state.sessionmaker() as second:
        await update_settings(first, user_id, SettingsUpdate(theme="light"))
        # the second first-write meets the first's uncommitted row (PostgreSQL) or its write
        # lock (SQLite) and must wait for it, then merge into it instead of failing
        racing = asyncio.create_task(
            update_settings(second, user_id, SettingsUpdate(timezone="Asia/Tokyo"))
        )
        await asyncio.sleep(0.3)
        assert not racing.done()
        await first.commit()
        merged = await racing
        await second.commit()

    assert (merged.theme, merged.timezone) == ("light", "Asia/Tokyo")
    async with app.state.sessionmaker() as session:
        assert await read_settings(session, user_id) == merged


async def test_racing_first_replaces_end_with_the_last_one(
    app: FastAPI, client: httpx.AsyncClient, users: Users
) -> None:
    user_id = await new_user_id(client, users)
    async with app.state.sessionmaker() as first, app.state.sessionmaker() as second:
        await replace_settings(first, user_id, SettingsReplace(theme="light"))
        racing = asyncio.create_task(
            replace_settings(second, user_id, SettingsReplace(calendar_auto_sync=False))
        )
        await asyncio.sleep(0.3)
        await first.commit()
        last = await racing
        await second.commit()

    assert last.model_dump() == SettingsReplace(calendar_auto_sync=False).model_dump()
    async with app.state.sessionmaker() as session:
        assert (await read_settings(session, user_id)).model_dump() == last.model_dump()
