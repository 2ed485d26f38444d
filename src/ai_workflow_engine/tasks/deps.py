"""Dependencies for task routes: the cursor codec and the ownership check."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path
from sqlalchemy import select

from ai_workflow_engine.auth.deps import CurrentUser
from ai_workflow_engine.core.db import SessionDep
from ai_workflow_engine.core.errors import NotFound
from ai_workflow_engine.core.schemas import MAX_ID
from ai_workflow_engine.tasks.models import Task

TaskIdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="The task's id.")]


async def owned_task(task_id: TaskIdPath, user: CurrentUser, session: SessionDep) -> Task:
    """The current user's task with this id; 404 for any other, whoever owns it."""
    task = await session.scalar(select(Task).where(Task.id == task_id, Task.user_id == user.id))
    if task is None:
        raise NotFound("No such task")
    return task


OwnedTask = Annotated[Task, Depends(owned_task)]
