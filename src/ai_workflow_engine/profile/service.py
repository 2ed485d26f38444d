from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from ai_workflow_engine.core.documents import upsert_user_document
from ai_workflow_engine.profile.models import UserProfile
from ai_workflow_engine.profile.schemas import ProfileRead, ProfileReplace, ProfileUpdate


async def read_profile(session: AsyncSession, user_id: int) -> ProfileRead:
    """The user's profile; a user who never saved one gets the profile of defaults."""
    stored = await session.get(UserProfile, user_id)
    return ProfileRead() if stored is None else ProfileRead.model_validate(stored)


async def replace_profile(
    session: AsyncSession, user_id: int, profile: ProfileReplace
) -> ProfileRead:
    """Store the whole profile; the fields the client left out are back at their defaults."""
    values = profile.model_dump(mode="json")
    stored = await upsert_user_document(session, UserProfile, user_id, values, values.keys())
    return ProfileRead.model_validate(stored)


async def update_profile(
    session: AsyncSession, user_id: int, changes: ProfileUpdate
) -> ProfileRead:
    """Change the top-level fields the client sent.

    A nested object sent (work style, say) is stored whole as validated, that is with its
    omitted keys at their defaults; a first write starts from the default profile.
    """
    changed = changes.model_fields_set
    # `include` picks top-level fields only and keeps nested objects complete
    values = ProfileReplace().model_dump(mode="json") | changes.model_dump(
        mode="json", include=changed
    )
    stored = await upsert_user_document(session, UserProfile, user_id, values, changed)
    return ProfileRead.model_validate(stored)
