from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from ai_workflow_engine.core.documents import upsert_user_document
from ai_workflow_engine.settings.models import UserSettings
from ai_workflow_engine.settings.schemas import SettingsRead, SettingsReplace, SettingsUpdate


async def read_settings(session: AsyncSession, user_id: int) -> SettingsRead:
    """The user's settings; a user who never saved any gets every default."""
    stored = await session.get(UserSettings, user_id)
    return SettingsRead() if stored is None else SettingsRead.model_validate(stored)


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
