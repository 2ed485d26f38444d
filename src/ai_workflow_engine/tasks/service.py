"""Tasks: creation and updates with their server-owned fields, and the filtered, sorted list."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ai_workflow_engine.categories.service import user_has_category
from ai_workflow_engine.core.db import utcnow
from ai_workflow_engine.core.errors import InvalidInput
from ai_workflow_engine.core.pagination import CursorCodec
from ai_workflow_engine.tasks import repository
from ai_workflow_engine.tasks.models import Task
from ai_workflow_engine.tasks.repository import (
    LISTED_COLUMNS,
    ListedTask,
    ListQuery,
    Ordering,
    Position,
    SortValue,
)
from ai_workflow_engine.tasks.schemas import (
    PRIORITY_BY_RANK,
    PRIORITY_RANK,
    TaskCreate,
    TaskListQuery,
    TaskSort,
    TaskUpdate,
)

_NOT_YOUR_CATEGORY = "No such category: use the id of one of your categories"
_BAD_CURSOR = "Invalid cursor; use a next_cursor from this listing"


async def create_task(session: AsyncSession, user_id: int, data: TaskCreate) -> Task:
    """Create a task; 422 when `category_id` is not one of the user's categories."""
    if data.category_id is not None:
        await _require_category(session, user_id, data.category_id)
    task = Task(
        user_id=user_id,
        title=data.title,
        description=data.description,
        status=data.status,
        priority=PRIORITY_RANK[data.priority],
        task_type=data.task_type,
        category_id=data.category_id,
        due_at=data.due_at,
        estimated_minutes=data.estimated_minutes,
        completed_at=utcnow() if data.status == "completed" else None,
        search_text=repository.search_text(data.title, data.description),
    )
    if data.category_id is None:
        # no category whose concurrent deletion could fail the insert: no savepoint to pay for
        session.add(task)
        await session.flush()
    else:
        async with _category_still_there(session):
            session.add(task)
    return task


async def update_task(session: AsyncSession, user_id: int, task: Task, data: TaskUpdate) -> Task:
    """Apply the fields sent.

    `completed_at` follows the status: set when it becomes completed, cleared when it leaves it.
    """
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    if changes.get("category_id") is not None:
        await _require_category(session, user_id, changes["category_id"])
    if "priority" in changes:
        changes["priority"] = PRIORITY_RANK[changes["priority"]]
    if "status" in changes and changes["status"] != task.status:
        changes["completed_at"] = utcnow() if changes["status"] == "completed" else None
    async with _category_still_there(session):
        for field, value in changes.items():
            setattr(task, field, value)
        task.search_text = repository.search_text(task.title, task.description)
    return task


async def delete_task(session: AsyncSession, task: Task) -> None:
    """Delete a task."""
    await session.delete(task)
    await session.flush()


RowsReader = Callable[[ListQuery, dict[str, Any]], Awaitable[list[ListedTask]]]
"""Runs a query of the user's rows (binding the user's id as `user_id`) and returns its rows:
the query's columns first (more may follow), instants as naive datetimes in UTC."""


async def list_tasks(
    read: RowsReader,
    codec: CursorCodec,
    filters: TaskListQuery,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """One page of the user's tasks matching `filters`, in the order of `filters.sort`, as the
    JSON document of a `Page[TaskRead]` (built from rows: nothing to validate on the way out)."""
    ordering = Ordering.of(filters.sort)
    start_after = _decode_cursor(codec, filters.sort, cursor) if cursor is not None else None
    # one row more than the page tells whether another page follows, in the same query
    tasks = await read(*repository.page_query(filters, start_after, limit + 1))
    next_cursor = None
    if len(tasks) > limit:
        items = [_listed(task) for task in tasks[:limit]]
        last = tasks[limit - 1]
        next_cursor = _encode_cursor(codec, filters.sort, ordering.value_of(last), last[0])
    else:
        items = [_listed(task) for task in tasks]
    return {"items": items, "next_cursor": next_cursor}


_LISTED_NAMES = tuple(column.key for column in LISTED_COLUMNS)


def _listed(row: ListedTask) -> dict[str, Any]:
    """A task row as TaskRead renders it (columns after the listed ones are left out)."""
    task = dict(zip(_LISTED_NAMES, row))  # noqa: B905 - a row may be longer, never shorter
    task["priority"] = PRIORITY_BY_RANK[task["priority"]]
    return task


async def _require_category(session: AsyncSession, user_id: int, category_id: int) -> None:
    if not await user_has_category(session, user_id, category_id):
        raise InvalidInput(["body", "category_id"], _NOT_YOUR_CATEGORY)


@asynccontextmanager
async def _category_still_there(session: AsyncSession) -> AsyncIterator[None]:
    """Make the changes in the block and flush them in a savepoint.

    The only constraint a valid task can break is its category's foreign key, when the category
    was deleted by a concurrent request after `_require_category` saw it: that is the same 422.
    """
    try:
        async with session.begin_nested():
            yield
            await session.flush()
    except IntegrityError as exc:
        raise InvalidInput(["body", "category_id"], _NOT_YOUR_CATEGORY) from exc


def _cursor_scope(sort: TaskSort) -> str:
    # the sort is part of the scope: a cursor from one ordering is meaningless in another
    return f"tasks:{sort}"


def _encode_cursor(codec: CursorCodec, sort: TaskSort, value: SortValue, task_id: int) -> str:
    # a naive UTC instant (see RowsReader), encoded with its offset as cursors always were
    encoded = value.replace(tzinfo=UTC).isoformat() if isinstance(value, datetime) else value
    return codec.encode(_cursor_scope(sort), [encoded, task_id])


def _decode_cursor(codec: CursorCodec, sort: TaskSort, cursor: str) -> Position:
    values = codec.decode(_cursor_scope(sort), cursor)
    ordering = Ordering.of(sort)
    match values:
        case [None, int() as task_id] if ordering.nullable:
            return Position(None, task_id)
        case [str() as stamp, int() as task_id] if ordering.column is not Task.priority:
            try:
                return Position(datetime.fromisoformat(stamp), task_id)
            except ValueError:
                pass
        case [int() as rank, int() as task_id] if ordering.column is Task.priority:
            return Position(rank, task_id)
    raise InvalidInput(["query", "cursor"], _BAD_CURSOR)
