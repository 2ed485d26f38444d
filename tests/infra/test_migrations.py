"""The one Alembic chain: it builds exactly the models' schema, runs both ways, and readiness and
the API know where a database stands."""

from __future__ import annotations

from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from ai_workflow_engine.core import migrations
from ai_workflow_engine.core.config import DatabaseSettings
from ai_workflow_engine.core.db import create_engine
from ai_workflow_engine.models import Base
from tests.conftest import Backend, make_settings
from tests.infra.helpers import assert_problem, new_user, register, running_app

MODEL_TABLES = set(Base.metadata.tables)


def _chain() -> list[str]:
    """Revision ids from the first to the head."""
    script = ScriptDirectory.from_config(migrations.alembic_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def _below_head() -> list[str]:
    """Every state a database can be in short of the head, newest first, ending with base."""
    return [*reversed(_chain()[:-1]), "base"]


async def _tables(engine: AsyncEngine) -> set[str]:
    def names(connection: Connection) -> set[str]:
        return set(inspect(connection).get_table_names())

    async with engine.connect() as connection:
        return await connection.run_sync(names)


def test_the_chain_is_linear_with_one_head() -> None:
    chain = _chain()
    assert chain
    assert migrations.head_revisions() == {chain[-1]}


async def test_migrated_schema_matches_the_models(backend: Backend) -> None:
    engine = create_engine(DatabaseSettings(database_url=backend.url))
    try:
        assert await migrations.current_revisions(engine) == migrations.head_revisions()
        assert await migrations.schema_differences(engine) == []
        assert await _tables(engine) >= MODEL_TABLES
    finally:
        await engine.dispose()


async def test_downgrade_to_base_and_upgrade_again(fresh_database_url: str) -> None:
    engine = create_engine(DatabaseSettings(database_url=fresh_database_url))
    try:
        assert await migrations.current_revisions(engine) == set()
        await migrations.upgrade(engine)
        assert await migrations.schema_differences(engine) == []

        # one step at a time down, then up: every migration runs both ways
        chain = _chain()
        for expected in reversed(["base", *chain[:-1]]):
            await migrations.downgrade(engine, "-1")
            current = await migrations.current_revisions(engine)
            assert current == (set() if expected == "base" else {expected})
        assert (await _tables(engine)) - {"alembic_version"} == set()
        # the comparison does see a schema that is not the models'
        assert await migrations.schema_differences(engine) != []
        for expected in chain:
            await migrations.upgrade(engine, "+1")
            assert await migrations.current_revisions(engine) == {expected}

        assert await migrations.schema_differences(engine) == []
        assert await _tables(engine) >= MODEL_TABLES

        # and straight to base and back to head
        await migrations.downgrade(engine, "base")
        assert await migrations.current_revisions(engine) == set()
        await migrations.upgrade(engine)
        assert await migrations.current_revisions(engine) == migrations.head_revisions()
        assert await migrations.schema_differences(engine) == []
    finally:
        await engine.dispose()


async def test_readiness_follows_the_migration_state(fresh_database_url: str) -> None:
    settings = make_settings(fresh_database_url)
    async with running_app(settings, raise_app_exceptions=False) as (app, client):
        engine: AsyncEngine = app.state.engine
        if settings.database.is_sqlite:
            pass  # the embedded database migrated itself at start-up
        else:
            ready = await client.get("/health/ready")
            assert ready.status_code == 503, ready.text
            assert ready.json()["checks"]["database"] == "ok"
            assert "not migrated" in ready.json()["checks"]["migrations"]
            await migrations.upgrade(engine)

        ready = await client.get("/health/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "migrations": "ok", "redis": "disabled"}

        for revision in _below_head():
            await migrations.downgrade(engine, revision)
            ready = await client.get("/health/ready")
            assert ready.status_code == 503, ready.text
            assert ready.headers.get("retry-after")
            body = ready.json()
            assert body["status"] == "unavailable"
            assert body["checks"]["database"] == "ok"
            expected = "not migrated" if revision == "base" else "behind"
            assert expected in body["checks"]["migrations"], body

        await migrations.upgrade(engine)
        ready = await client.get("/health/ready")
        assert ready.status_code == 200, ready.text


async def test_api_on_an_unmigrated_schema_is_503_not_500(fresh_database_url: str) -> None:
    """A schema that is not there yet (a deploy whose `migrate` has not run) is a dependency that
    is not ready: 503 with Retry-After, like readiness says, never a 500."""
    settings = make_settings(fresh_database_url)
    async with running_app(settings, raise_app_exceptions=False) as (app, client):
        await migrations.downgrade(app.state.engine, "base")
        response = await register(client, new_user("early"))
        assert_problem(response, 503)
        assert response.headers.get("retry-after")

        await migrations.upgrade(app.state.engine)
        assert (await register(client, new_user("later"))).status_code == 201


async def test_fresh_sqlite_path_is_migrated_at_start_up(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "there.db"
    settings = make_settings(f"sqlite:///{path}")
    async with running_app(settings) as (app, client):
        assert path.exists()
        assert await migrations.current_revisions(app.state.engine) == migrations.head_revisions()
        assert await migrations.schema_differences(app.state.engine) == []
        assert (await client.get("/health/ready")).status_code == 200
        assert (await register(client, new_user("first"))).status_code == 201
    # and a second start on the same file finds it at the head and keeps the data
    async with running_app(settings) as (app, client):
        assert await migrations.current_revisions(app.state.engine) == migrations.head_revisions()
        assert (await client.get("/health/ready")).status_code == 200
