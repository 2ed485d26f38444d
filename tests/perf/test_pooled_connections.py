"""Pooled PostgreSQL connections are checked without a round trip per request: one the server has
closed while it sat in the pool is replaced before a request uses it."""

from __future__ import annotations

import asyncio

import psycopg
from sqlalchemy import event

from ai_workflow_engine.core import migrations
from ai_workflow_engine.core.db import create_engine
from tests.conftest import make_settings
from tests.fixtures.databases import fresh_postgres_database
from tests.infra.helpers import bearer, login, new_user, register, running_app


async def test_a_backend_terminated_while_pooled_is_replaced_before_use() -> None:
    with fresh_postgres_database("aiwe_pool") as url:
        settings = make_settings(url)
        engine = create_engine(settings.database)
        try:
            await migrations.upgrade(engine)
        finally:
            await engine.dispose()
        async with running_app(settings) as (app, client):
            user = new_user("pool")
            assert (await register(client, user)).status_code == 201
            token = (await login(client, user["username"])).json()["access_token"]
            assert (await client.get("/api/v1/tasks", headers=bearer(token))).status_code == 200

            connects: list[object] = []
            event.listen(
                app.state.engine.sync_engine.pool, "connect", lambda *a: connects.append(a)
            )
            # every server process of the app's pooled connections goes away
            database = url.rsplit("/", 1)[1]
            with psycopg.connect(url, autocommit=True) as admin:
                terminated = admin.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (database,),
                ).fetchone()
                assert terminated is not None
                assert terminated[0] >= 1
            await asyncio.sleep(0.2)  # the servers' goodbyes reach the pooled sockets

            for _ in range(3):  # each request is served, none gets a dead connection
                response = await client.get("/api/v1/tasks", headers=bearer(token))
                assert response.status_code == 200, response.text
            assert connects, "the closed connections were not replaced"
