from __future__ import annotations

from ai_workflow_engine.auth.deps import AUTH_RESPONSES, CurrentUserRecord
from ai_workflow_engine.core.routing import PrefixRouter
from ai_workflow_engine.users.schemas import UserRead

router = PrefixRouter(prefix="/api/v1/users", tags=["users"], responses=AUTH_RESPONSES)


@router.get("/me", response_model=UserRead, summary="The authenticated user")
async def read_current_user(user: CurrentUserRecord) -> UserRead:
    return UserRead.model_validate(user)
