"""Task list queries: filters, the orderings, and where a page starts in each of them.

Every ordering is (sort column, id) ascending, or the exact reverse of it for a `-` sort, except
that tasks without a due date come last in both directions of `due_at`. A page starts right after
the position (sort value, id) of the last task of the previous page, so pages neither repeat nor
skip tasks however many share a sort value.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, literal, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from ai_workflow_engine.tasks.models import Task
from ai_workflow_engine.tasks.schemas import PRIORITY_RANK, TaskListQuery, TaskSort

SortValue = datetime | int | None


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ended: the sort value and id of its last task."""

    value: SortValue
    task_id: int


@dataclass(frozen=True, slots=True)
class Ordering:
    column: InstrumentedAttribute[Any]
    descending: bool

    @classmethod
    def of(cls, sort: TaskSort) -> Ordering:
        name = sort.removeprefix("-")
        column = {"due_at": Task.due_at, "created_at": Task.created_at, "priority": Task.priority}
        return cls(column[name], descending=sort.startswith("-"))

    @property
    def nullable(self) -> bool:
        return self.column is Task.due_at

    def order_by(self) -> list[ColumnElement[Any]]:
        if self.descending:
            first, tie = self.column.desc(), Task.id.desc()
        else:
            first, tie = self.column.asc(), Task.id.asc()
        return [first.nulls_last() if self.nullable else first, tie]

    def after(self, position: Position) -> ColumnElement[bool]:
        """The tasks that come after `position` in this ordering."""
        if position.value is None:  # inside the trailing group without a due date
            later_id = Task.id < position.task_id if self.descending else Task.id > position.task_id
            return and_(self.column.is_(None), later_id)
        # A row comparison, which PostgreSQL answers from the (user_id, column, id) index. The
        # value is bound with the column's type, so that SQLite compares it in stored UTC form.
        key = tuple_(self.column, Task.id)
        start = tuple_(literal(position.value, self.column.type), literal(position.task_id))
        beyond = key < start if self.descending else key > start
        return or_(beyond, self.column.is_(None)) if self.nullable else beyond

    def value_of(self, task: Task) -> SortValue:
        if self.column is Task.priority:
            return task.priority
        return task.due_at if self.nullable else task.created_at


def fold(text: str) -> str:
    """Text in the form that case-insensitive matching compares, for all of Unicode."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", text).casefold())


def search_text(title: str, description: str | None) -> str:
    """The value of `Task.search_text`, which `q` searches with a plain LIKE on every backend."""
    return fold(title + "\n" + (description or ""))


def filtered(user_id: int, filters: TaskListQuery) -> Select[Task]:
    """The user's tasks matching every filter given."""
    query = select(Task).where(Task.user_id == user_id)
    if filters.status:
        query = query.where(Task.status.in_(filters.status))
    if filters.priority:
        query = query.where(Task.priority.in_([PRIORITY_RANK[p] for p in filters.priority]))
    if filters.task_type:
        query = query.where(Task.task_type.in_(filters.task_type))
    if filters.category_id is not None:
        query = query.where(Task.category_id == filters.category_id)
    if filters.due_after is not None:
        query = query.where(Task.due_at >= filters.due_after)
    if filters.due_before is not None:
        query = query.where(Task.due_at < filters.due_before)
    if filters.q:
        # autoescape: `%`, `_` and the escape character in the query match themselves
        query = query.where(Task.search_text.contains(fold(filters.q), autoescape=True))
    return query


async def fetch_page(
    session: AsyncSession,
    query: Select[Task],
    ordering: Ordering,
    start_after: Position | None,
    size: int,
) -> list[Task]:
    """Up to `size` tasks of `query` in `ordering`, starting after `start_after`."""
    if start_after is not None:
        query = query.where(ordering.after(start_after))
    return list(await session.scalars(query.order_by(*ordering.order_by()).limit(size)))
