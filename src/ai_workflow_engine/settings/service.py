from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ai_workflow_engine.core.db import CompiledRead
from ai_workflow_engine.core.documents import upsert_user_document
from ai_workflow_engine.settings.models import UserSettings
from ai_workflow_engine.settings.schemas import SettingsRead, SettingsReplace, SettingsUpdate


async def read_settings(session: AsyncSession, user_id: int) -> SettingsRead:
    """The user's settings; a user who never saved any gets every default."""
    stored = await session.get(UserSettings, user_id)
    return SettingsRead() if stored is None else SettingsRead.model_validate(stored)


# The stored columns of the document, in SettingsRead's order. Stored values were validated on the
# way in, so the read route renders them as they are.
_DOCUMENT_COLUMNS = tuple(UserSettings.__table__.c[name] for name in SettingsRead.model_fields)
_DEFAULTS: dict[str, Any] = SettingsRead().model_dump(mode="json")


_READ_DOCUMENT = CompiledRead(
    select(*_DOCUMENT_COLUMNS).where(UserSettings.user_id == bindparam("user_id"))
)
_READ_TIMEZONE = CompiledRead(
    select(UserSettings.timezone).where(UserSettings.user_id == bindparam("user_id"))
)


async def read_settings_document(session: AsyncSession, user_id: int) -> dict[str, Any]:
    """The JSON document of `read_settings`, straight from the row: one query, no validation."""
    rows = await _READ_DOCUMENT.rows(session, {"user_id": user_id})
    if not rows:
        return dict(_DEFAULTS)
    return dict(zip(SettingsRead.model_fields, rows[0], strict=True))


async def read_timezone(session: AsyncSession, user_id: int) -> str:
    """The user's `timezone` setting, alone."""
    rows = await _READ_TIMEZONE.rows(session, {"user_id": user_id})
    return str(rows[0][0]) if rows else str(_DEFAULTS["timezone"])


def timezone_setting(user_id: int) -> ColumnElement[str]:
    """The user's `timezone` setting (the default for a user who never saved any) as a scalar
    subquery, for a query of another domain that needs it along with its own rows."""
    stored = select(UserSettings.timezone).where(UserSettings.user_id == user_id)
    return func.coalesce(stored.scalar_subquery(), str(_DEFAULTS["timezone"]))


async def replace_settings(
    session: AsyncSession, user_id: int, settings: SettingsReplace
) -> SettingsRead:
    """Store the whole document; the fields the client left out are back at their defaults."""
    values = settings.model_dump(mode="json")
    stored = await upsert_user_document(session, UserSettings, user_id, values, values.keys())
    return SettingsRead.model_validate(stored)


async def update_settings(
    session: AsyncSession, user_id: int, changes: SettingsUpdate
) -> SettingsRead:
    """Change only the fields the client sent; a first write starts from the defaults."""
    changed = changes.model_fields_set
    values = SettingsReplace().model_dump(mode="json") | changes.model_dump(
        mode="json", include=changed
    )
    stored = await upsert_user_document(session, UserSettings, user_id, values, changed)
    return SettingsRead.model_validate(stored)
