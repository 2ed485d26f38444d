"""Programmatic use of the one Alembic chain: upgrade, downgrade, and where a database stands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option(
        "file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d-%%(slug)s"
    )
    return config


def head_revisions() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def _with_connection(connection: Connection, fn: Any, *args: Any) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    fn(config, *args)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    async with engine.begin() as connection:
        await connection.run_sync(_with_connection, command.upgrade, revision)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(_with_connection, command.downgrade, revision)


def _current(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())


async def current_revisions(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        return await connection.run_sync(_current)


async def pending_reason(engine: AsyncEngine) -> str | None:
    """None when the schema is at the latest migration, else what is wrong, in words."""
    current = await current_revisions(engine)
    heads = head_revisions()
    if current == heads:
        return None
    if not current:
        return "schema not migrated; run `ai-workflow-engine migrate`"
    return "schema is behind the latest migration; run `ai-workflow-engine migrate`"


def _diff(connection: Connection) -> list[Any]:
    from ai_workflow_engine.models import Base

    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def schema_differences(engine: AsyncEngine) -> list[Any]:
    """What `alembic check` would report: the migrated schema against the models."""
    async with engine.connect() as connection:
        return await connection.run_sync(_diff)
