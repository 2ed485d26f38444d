from __future__ import annotations

from typing import Any

from fastapi import Request, Response, status

from ai_workflow_engine.auth.deps import (
    AUTH_RESPONSES,
    BEARER_SECURITY,
    AuthenticatedReader,
    CurrentUser,
)
from ai_workflow_engine.core.db import ReadOnly, SessionDep
from ai_workflow_engine.core.errors import Problem
from ai_workflow_engine.core.idempotency import IdempotencyDep, idempotent_responses
from ai_workflow_engine.core.pagination import (
    CursorCodec,
    Page,
)
from ai_workflow_engine.core.query import QueryModel
from ai_workflow_engine.core.responses import json_response
from ai_workflow_engine.core.routing import PrefixRouter
from ai_workflow_engine.tasks import service
from ai_workflow_engine.tasks.deps import OwnedTask
from ai_workflow_engine.tasks.schemas import TaskCreate, TaskListParams, TaskRead, TaskUpdate

router = PrefixRouter(
    prefix="/api/v1/tasks",
    tags=["tasks"],
    responses={
        **AUTH_RESPONSES,
        422: {
            "model": Problem,
            "description": "Invalid input, or a category that is not yours; `errors` names "
            "each field",
        },
    },
)

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No such task (or not yours)"}
}


_LIST_QUERY = QueryModel(TaskListParams)


@router.get("", response_model=Page[TaskRead], openapi_extra=BEARER_SECURITY | _LIST_QUERY.openapi)
async def list_tasks(request: Request) -> Response:
    """Your tasks, filtered and sorted (newest first by default), one page at a time."""
    # The busiest route, kept to the work it needs: the token is checked first, as the other
    # routes do, then the query, and the page is read with the user's check in one query (see
    # AuthenticatedReader); no dependency to resolve and no session.
    reader = AuthenticatedReader(request)
    query = _LIST_QUERY.parse(request)
    codec: CursorCodec = request.app.state.cursor_codec
    page = await service.list_tasks(reader.rows, codec, query, query.limit, query.cursor)
    return json_response(page)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TaskRead,
    responses=idempotent_responses(status.HTTP_201_CREATED),
)
async def create_task(
    data: TaskCreate, user: CurrentUser, session: SessionDep, idempotency: IdempotencyDep
) -> Response:
    """Create a task. Its category, if any, must be one of yours. With an `Idempotency-Key`,
    a retry gets the first answer instead of a second task."""

    async def create() -> TaskRead:
        return TaskRead.model_validate(await service.create_task(session, user.id, data))

    return await idempotency.respond(session, user.id, create)


@router.get("/{task_id}", response_model=TaskRead, responses=NOT_FOUND, dependencies=[ReadOnly])
async def read_task(task: OwnedTask) -> TaskRead:
    return TaskRead.model_validate(task)


@router.patch("/{task_id}", response_model=TaskRead, responses=NOT_FOUND)
async def update_task(
    data: TaskUpdate, task: OwnedTask, user: CurrentUser, session: SessionDep
) -> TaskRead:
    """Change the fields sent; `completed_at` follows the status."""
    return TaskRead.model_validate(await service.update_task(session, user.id, task, data))


@router.delete(
    "/{task_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=NOT_FOUND,
)
async def delete_task(task: OwnedTask, session: SessionDep) -> Response:
    await service.delete_task(session, task)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
