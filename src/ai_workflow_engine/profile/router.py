from __future__ import annotations

from typing import Any

from ai_workflow_engine.auth.deps import AUTH_RESPONSES, CurrentUser
from ai_workflow_engine.core.db import SessionDep
from ai_workflow_engine.core.errors import Problem
from ai_workflow_engine.core.routing import PrefixRouter
from ai_workflow_engine.profile import service
from ai_workflow_engine.profile.schemas import ProfileRead, ProfileReplace, ProfileUpdate

router = PrefixRouter(prefix="/api/v1/profile", tags=["profile"], responses=AUTH_RESPONSES)

INVALID_PROFILE: dict[int | str, dict[str, Any]] = {
    422: {
        "model": Problem,
        "description": "A value is invalid, or a field is unknown or read-only; "
        "`errors[].loc` names it",
    },
}


@router.get("", response_model=ProfileRead, summary="Read the profile")
async def read_profile(user: CurrentUser, session: SessionDep) -> ProfileRead:
    """The user's profile; a user who never saved one gets the profile of defaults."""
    return await service.read_profile(session, user.id)


@router.put(
    "", response_model=ProfileRead, responses=INVALID_PROFILE, summary="Replace the profile"
)
async def replace_profile(
    profile: ProfileReplace, user: CurrentUser, session: SessionDep
) -> ProfileRead:
    """Store the whole profile: every field left out goes back to its default."""
    return await service.replace_profile(session, user.id, profile)


@router.patch(
    "", response_model=ProfileRead, responses=INVALID_PROFILE, summary="Change parts of the profile"
)
async def update_profile(
    changes: ProfileUpdate, user: CurrentUser, session: SessionDep
) -> ProfileRead:
    """Change the top-level fields sent; the others keep their values.

    A nested object that is sent (`work_style_preferences`, say) replaces the stored one whole,
    its omitted keys at their defaults. Returns the whole profile.
    """
    return await service.update_profile(session, user.id, changes)
