"""Dependencies for category routes: the cursor codec and the ownership check."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path
from sqlalchemy import select

from ai_workflow_engine.auth.deps import CurrentUser
from ai_workflow_engine.categories.models import Category
from ai_workflow_engine.core.db import SessionDep
from ai_workflow_engine.core.errors import NotFound
from ai_workflow_engine.core.schemas import MAX_ID

CategoryIdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="The category's id.")]


async def owned_category(
    category_id: CategoryIdPath, user: CurrentUser, session: SessionDep
) -> Category:
    """The current user's category with this id; 404 for any other, whoever owns it."""
    category = await session.scalar(
        select(Category).where(Category.id == category_id, Category.user_id == user.id)
    )
    if category is None:
        raise NotFound("No such category")
    return category


OwnedCategory = Annotated[Category, Depends(owned_category)]
