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
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy import ColumnElement, Integer, Select, bindparam, select, tuple_, union_all
from sqlalchemy.orm import InstrumentedAttribute

from ai_workflow_engine.tasks.models import Task
from ai_workflow_engine.tasks.schemas import PRIORITY_RANK, TaskListQuery, TaskSort

SortValue = datetime | int | None

# What a listed task shows (the fields of TaskRead). Lists read these columns as plain rows: no
# ORM objects to build and track for a page that is only read.
LISTED_COLUMNS = (
    Task.id,
    Task.title,
    Task.description,
    Task.status,
    Task.priority,
    Task.task_type,
    Task.category_id,
    Task.due_at,
    Task.estimated_minutes,
    Task.completed_at,
    Task.created_at,
    Task.updated_at,
)
ListedTask = tuple[Any, ...]
_LISTED_INDEX = {column.key: index for index, column in enumerate(LISTED_COLUMNS)}
_AFTER_ID = bindparam("after_id", type_=Integer())
ListQuery = Select[*tuple[Any, ...]]


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
        """The documented order: for `due_at`, tasks without one last in both directions."""
        first, tie = self.index_order()
        return [first.nulls_last() if self.nullable else first, tie]

    def index_order(self) -> list[ColumnElement[Any]]:
        """The order of the (user_id, column, id) index, or its reverse. The same as `order_by`
        except where the column is null (the index keeps nulls last, so its reverse has them
        first): the page query of the nullable column orders each part this way."""
        if self.descending:
            return [self.column.desc(), Task.id.desc()]
        return [self.column.asc(), Task.id.asc()]

    def beyond_value(self) -> ColumnElement[bool]:
        """Rows after the position bound as `after_value`, `after_id` (a non-null value)."""
        # A row comparison, which PostgreSQL answers from the (user_id, column, id) index. The
        # value is bound with the column's type, so that SQLite compares it in stored UTC form.
        key = tuple_(self.column, Task.id)
        start = tuple_(bindparam("after_value", type_=self.column.type), _AFTER_ID)
        return key < start if self.descending else key > start

    def beyond_id(self) -> ColumnElement[bool]:
        """Within the group without a due date: rows after the id bound as `after_id`."""
        return Task.id < _AFTER_ID if self.descending else Task.id > _AFTER_ID

    def value_of(self, task: ListedTask) -> SortValue:
        value: SortValue = task[_LISTED_INDEX[self.column.key]]
        return value


def fold(text: str) -> str:
    """Text in the form that case-insensitive matching compares, for all of Unicode."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", text).casefold())


def search_text(title: str, description: str | None) -> str:
    """The value of `Task.search_text`, which `q` searches with a plain LIKE on every backend."""
    return fold(title + "\n" + (description or ""))


def _like_escaped(text: str) -> str:
    """`text` for a LIKE pattern with `/` as the escape: `%`, `_` and `/` match themselves."""
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


@dataclass(frozen=True, slots=True)
class _Shape:
    """What a page query looks like apart from its values: which filters are given, the sort,
    and where the page starts. Each shape's statement is built once (see `_page_query`)."""

    sort: TaskSort
    start: Literal["first", "after_value", "after_null"]
    filters: frozenset[str]


_FILTERS = ("status", "priority", "task_type", "category_id", "due_after", "due_before", "q")


@lru_cache(maxsize=1024)
def _page_query(shape: _Shape) -> ListQuery:
    """The listed columns of one page of the user's tasks, every value a bound parameter."""
    query: ListQuery = select(*LISTED_COLUMNS).where(Task.user_id == bindparam("user_id"))
    given = shape.filters
    if "status" in given:
        query = query.where(Task.status.in_(bindparam("status", expanding=True)))
    if "priority" in given:
        query = query.where(Task.priority.in_(bindparam("priority", expanding=True)))
    if "task_type" in given:
        query = query.where(Task.task_type.in_(bindparam("task_type", expanding=True)))
    if "category_id" in given:
        query = query.where(Task.category_id == bindparam("category_id"))
    if "due_after" in given:
        query = query.where(Task.due_at >= bindparam("due_after", type_=Task.due_at.type))
    if "due_before" in given:
        query = query.where(Task.due_at < bindparam("due_before", type_=Task.due_at.type))
    if "q" in given:
        query = query.where(Task.search_text.contains(bindparam("q"), escape="/"))
    ordering = Ordering.of(shape.sort)
    size = bindparam("size", type_=Integer())
    if not ordering.nullable:
        if shape.start == "after_value":
            query = query.where(ordering.beyond_value())
        return query.order_by(*ordering.order_by()).limit(size)
    # Tasks without a due date come last both ways, which no single index scan gives: one part
    # for the dated tasks and one for the others, each an index range in index order, and the
    # page is the first `size` of both (at most 2 x size rows to order).
    undated = query.where(Task.due_at.is_(None))
    if shape.start == "after_null":
        undated = undated.where(ordering.beyond_id())
        return undated.order_by(*ordering.index_order()).limit(size)
    dated = query.where(Task.due_at.is_not(None))
    if shape.start == "after_value":
        dated = dated.where(ordering.beyond_value())
    parts = [
        part.order_by(*ordering.index_order()).limit(size).subquery() for part in (dated, undated)
    ]
    page = union_all(*(select(*part.c) for part in parts)).subquery("page")
    first, tie = page.c.due_at, page.c.id
    order = (
        [first.desc().nulls_last(), tie.desc()]
        if ordering.descending
        else [first.asc().nulls_last(), tie.asc()]
    )
    return select(*page.c).order_by(*order).limit(size)


def page_query(
    filters: TaskListQuery, start_after: Position | None, size: int
) -> tuple[ListQuery, dict[str, Any]]:
    """The query of up to `size` of the user's tasks matching every filter given, in the order
    of `filters.sort`, starting after `start_after`, and its parameters: all but `user_id`, the
    user's id. The statement is built once for each shape of query (see `_Shape`)."""
    params: dict[str, Any] = {"size": size}
    for name in _FILTERS:
        value = getattr(filters, name)
        if value:  # (ids are >= 1 and instants are true: only absent filters are false)
            params[name] = value
    if "priority" in params:
        params["priority"] = [PRIORITY_RANK[p] for p in filters.priority]
    if "q" in params:
        params["q"] = _like_escaped(fold(params["q"]))
    start: Literal["first", "after_value", "after_null"] = "first"
    if start_after is not None:
        start = "after_null" if start_after.value is None else "after_value"
        params["after_id"] = start_after.task_id
        if start_after.value is not None:
            params["after_value"] = start_after.value
    shape = _Shape(filters.sort, start, frozenset(params) & frozenset(_FILTERS))
    return _page_query(shape), params
