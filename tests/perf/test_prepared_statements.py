"""DATABASE_PREPARED_STATEMENTS: off by default (safe behind any pgbouncer); on, the statements a
process runs often are prepared on the server once per connection and then only executed."""

from __future__ import annotations

from typing import Any

from ai_workflow_engine.core import migrations
from ai_workflow_engine.core.db import create_engine
from tests.conftest import make_settings
from tests.fixtures.databases import fresh_postgres_database
from tests.infra.helpers import bearer, login, new_user, register, running_app

TASKS = "/api/v1/tasks"


async def _prepared_statements_after_listing(**database: Any) -> int:
    """How many statements the connection serving 20 task lists has prepared on the server."""
    with fresh_postgres_database("aiwe_prepare") as url:
        settings = make_settings(url, database={"database_pool_size": 1, **database})
        engine = create_engine(settings.database)
        try:
            await migrations.upgrade(engine)
        finally:
            await engine.dispose()
        async with running_app(settings) as (app, client):
            user = new_user("prepare")
            assert (await register(client, user)).status_code == 201
            token = (await login(client, user["username"])).json()["access_token"]
            created = await client.post(TASKS, json={"title": "one"}, headers=bearer(token))
            assert created.status_code == 201, created.text
            for _ in range(20):
                page = await client.get(TASKS, headers=bearer(token))
                assert page.status_code == 200, page.text
                assert [task["title"] for task in page.json()["items"]] == ["one"]
            # the pool's one connection, as the requests left it
            async with app.state.engine.connect() as connection:
                result = await connection.exec_driver_sql(
                    "SELECT count(*) FROM pg_prepared_statements WHERE NOT from_sql"
                )
                return int(result.scalar_one())


async def test_statements_are_not_prepared_by_default() -> None:
    assert await _prepared_statements_after_listing() == 0


async def test_with_the_setting_a_statement_run_often_is_prepared() -> None:
    assert await _prepared_statements_after_listing(database_prepared_statements=True) >= 1
