"""Building blocks of the one-per-user documents, settings and profile.

Each is a row keyed by the user that may not exist yet, read through a pydantic schema that holds
every default, and written with a single upsert. The schema helpers keep what the OpenAPI schema
promises and what the server accepts the same.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Annotated, Any, TypeVar

from pydantic import BeforeValidator, StrictInt
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


def valid_unicode(value: str) -> str:
    """Reject escaped lone surrogates: valid JSON, but no UTF-8 response could carry them."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("Text must be valid Unicode") from None
    return value


def whole_float_as_int(value: object) -> object:
    """A JSON Schema "integer": 15 and 15.0 are, 15.5, "15" and true are not (with StrictInt).

    Bounds go on the StrictInt, before this validator (`Annotated[StrictInt, Field(ge=1),
    BeforeValidator(whole_float_as_int)]`), or the JSON schema shows them as raw "ge"/"le".
    """
    return int(value) if isinstance(value, float) and value.is_integer() else value


WholeNumber = Annotated[StrictInt, BeforeValidator(whole_float_as_int)]


def without_defaults(schema: dict[str, Any]) -> None:
    """`json_schema_extra` for PATCH bodies: a field left out keeps its current value, so the
    documented defaults of the PUT body would mislead."""
    for field_schema in schema.get("properties", {}).values():
        field_schema.pop("default", None)
