from __future__ import annotations

from typing import Any

from fastapi import Response

from ai_workflow_engine.auth.deps import AUTH_RESPONSES, CurrentUser
from ai_workflow_engine.core.db import ReadOnly, SessionDep
from ai_workflow_engine.core.errors import Problem
from ai_workflow_engine.core.responses import json_response
from ai_workflow_engine.core.routing import PrefixRouter
from ai_workflow_engine.settings import service
from ai_workflow_engine.settings.schemas import SettingsRead, SettingsReplace, SettingsUpdate

router = PrefixRouter(prefix="/api/v1/settings", tags=["settings"], responses=AUTH_RESPONSES)

INVALID_SETTINGS: dict[int | str, dict[str, Any]] = {
    422: {
        "model": Problem,
        "description": "A value is invalid, null, or the field is unknown or read-only",
    },
}


@router.get("", response_model=SettingsRead, summary="Read the settings", dependencies=[ReadOnly])
async def read_settings(user: CurrentUser, session: SessionDep) -> Response:
    """Every setting with the user's value or its default, also for a user who never saved any."""
    return json_response(await service.read_settings_document(session, user.id))


@router.put(
    "", response_model=SettingsRead, responses=INVALID_SETTINGS, summary="Replace the settings"
)
async def replace_settings(
    settings: SettingsReplace, user: CurrentUser, session: SessionDep
) -> SettingsRead:
    """Store the whole settings document: every field left out goes back to its default."""
    return await service.replace_settings(session, user.id, settings)


@router.patch(
    "", response_model=SettingsRead, responses=INVALID_SETTINGS, summary="Change some settings"
)
async def update_settings(
    changes: SettingsUpdate, user: CurrentUser, session: SessionDep
) -> SettingsRead:
    """Change only the settings sent; the others keep their values. Returns every setting."""
    return await service.update_settings(session, user.id, changes)
