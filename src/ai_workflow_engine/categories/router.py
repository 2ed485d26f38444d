from __future__ import annotations

from typing import Any

from fastapi import Response, status

from ai_workflow_engine.auth.deps import AUTH_RESPONSES, CurrentUser
from ai_workflow_engine.categories import service
from ai_workflow_engine.categories.deps import OwnedCategory
from ai_workflow_engine.categories.schemas import CategoryCreate, CategoryRead, CategoryUpdate
from ai_workflow_engine.core.db import SessionDep
from ai_workflow_engine.core.errors import Problem
from ai_workflow_engine.core.idempotency import IdempotencyDep, idempotent_responses
from ai_workflow_engine.core.pagination import (
    DEFAULT_LIMIT,
    CursorCodecDep,
    CursorQuery,
    LimitQuery,
    Page,
)
from ai_workflow_engine.core.routing import PrefixRouter

router = PrefixRouter(
    prefix="/api/v1/categories",
    tags=["categories"],
    responses={
        **AUTH_RESPONSES,
        422: {"model": Problem, "description": "Invalid input; `errors` names each field"},
    },
)

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No such category (or not yours)"}
}
NAME_TAKEN: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "You already have a category of that name"}
}


@router.get("", response_model=Page[CategoryRead])
async def list_categories(
    user: CurrentUser,
    session: SessionDep,
    codec: CursorCodecDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[CategoryRead]:
    """Your categories, oldest first."""
    return await service.list_categories(session, codec, user.id, limit, cursor)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CategoryRead,
    responses=idempotent_responses(
        status.HTTP_201_CREATED, conflict="You already have a category of that name"
    ),
)
async def create_category(
    data: CategoryCreate, user: CurrentUser, session: SessionDep, idempotency: IdempotencyDep
) -> Response:
    """Create a category. Names are unique per user, ignoring case. With an `Idempotency-Key`,
    a retry gets the first answer instead of a second category (or a 409 for the name)."""

    async def create() -> CategoryRead:
        return CategoryRead.model_validate(await service.create_category(session, user.id, data))

    return await idempotency.respond(session, user.id, create)


@router.get("/{category_id}", response_model=CategoryRead, responses=NOT_FOUND)
async def read_category(category: OwnedCategory) -> CategoryRead:
    return CategoryRead.model_validate(category)


@router.patch("/{category_id}", response_model=CategoryRead, responses={**NOT_FOUND, **NAME_TAKEN})
async def update_category(
    data: CategoryUpdate, category: OwnedCategory, session: SessionDep
) -> CategoryRead:
    """Change the fields sent. Renaming onto a name you already have is a 409."""
    return CategoryRead.model_validate(await service.update_category(session, category, data))


@router.delete(
    "/{category_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=NOT_FOUND,
)
async def delete_category(category: OwnedCategory, session: SessionDep) -> Response:
    """Delete a category. Its tasks and events stay, uncategorised."""
    await service.delete_category(session, category)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
