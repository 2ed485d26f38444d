"""One-per-user documents (settings, profile): a row keyed by the user that may not exist yet,
read through a pydantic schema that holds every default, and written with a single upsert."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, TypeVar

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from ai_workflow_engine.core.db import Base, utcnow

DocumentT = TypeVar("DocumentT", bound=Base)


async def upsert_user_document(
    session: AsyncSession,
    model: type[DocumentT],
    user_id: int,
    values: Mapping[str, Any],
    changed: Collection[str],
) -> DocumentT:
    """Store a user's document and return the stored row.

    A user without a row gets one made of `values`; a user with one gets the `changed` columns
    set from `values` and the others kept. This is one INSERT .. ON CONFLICT statement, so two
    first writes racing each other cannot both insert, and two partial updates of different
    fields cannot undo each other.
    """
    row = {**values, "user_id": user_id, "updated_at": utcnow()}
    statement: postgresql.Insert | sqlite.Insert
    if session.get_bind().dialect.name == "postgresql":
        statement = postgresql.insert(model).values(row)
    else:
        statement = sqlite.insert(model).values(row)
    statement = statement.on_conflict_do_update(
        index_elements=["user_id"],
        set_={name: statement.excluded[name] for name in (*changed, "updated_at")},
    )
    stored = await session.scalar(
        statement.returning(model).execution_options(populate_existing=True)
    )
    assert stored is not None  # an upsert always leaves a row
    return stored
