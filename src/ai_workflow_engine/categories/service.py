"""Categories: each user's named, coloured, weighted buckets for tasks and events."""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ai_workflow_engine.categories.models import Category
from ai_workflow_engine.categories.schemas import CategoryCreate, CategoryRead, CategoryUpdate
from ai_workflow_engine.core.errors import Conflict, InvalidInput
from ai_workflow_engine.core.pagination import CursorCodec, Page

# name, color, weight of the categories every new user starts with
DEFAULT_CATEGORIES: tuple[tuple[str, str, int], ...] = (
    ("Work", "#2563EB", 5),
    ("Health", "#16A34A", 5),
    ("Leisure", "#F59E0B", 5),
    ("Family", "#DB2777", 5),
    ("Fitness", "#7C3AED", 5),
)

# colours handed out, in order, to categories created without one
PALETTE: tuple[str, ...] = (
    *(color for _, color, _ in DEFAULT_CATEGORIES),
    "#DC2626",
    "#0891B2",
    "#EA580C",
    "#4F46E5",
    "#65A30D",
    "#C026D3",
    "#0D9488",
    "#64748B",
)

_CURSOR_SCOPE = "categories"
_DUPLICATE_NAME = "You already have a category with this name"


def name_key(name: str) -> str:
    """The form in which names are unique: case-insensitive for all of Unicode.

    Canonical normalisation before and after folding makes "Ä" typed precomposed or as "A" plus a
    combining diaeresis the same name.
    """
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", name).casefold())


async def create_default_categories(session: AsyncSession, user_id: int) -> None:
    """Give a new user the default categories."""
    session.add_all(
        Category(user_id=user_id, name=name, name_key=name_key(name), color=color, weight=weight)
        for name, color, weight in DEFAULT_CATEGORIES
    )
    await session.flush()


async def user_has_category(session: AsyncSession, user_id: int, category_id: int) -> bool:
    """Whether `category_id` is one of the user's categories."""
    found = await session.scalar(
        select(Category.id).where(Category.id == category_id, Category.user_id == user_id)
    )
    return found is not None


async def list_categories(
    session: AsyncSession, codec: CursorCodec, user_id: int, limit: int, cursor: str | None
) -> Page[CategoryRead]:
    """The user's categories in creation order, one page of them."""
    query = select(Category).where(Category.user_id == user_id)
    if cursor is not None:
        query = query.where(Category.id > _decode_cursor(codec, cursor))
    rows = list(await session.scalars(query.order_by(Category.id).limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = codec.encode(_CURSOR_SCOPE, [rows[-1].id])
    return Page(items=[CategoryRead.model_validate(row) for row in rows], next_cursor=next_cursor)


def _decode_cursor(codec: CursorCodec, cursor: str) -> int:
    values = codec.decode(_CURSOR_SCOPE, cursor)
    match values:
        case [int() as last_id]:
            return last_id
    raise InvalidInput(["query", "cursor"], "Invalid cursor; use a next_cursor from this listing")


async def create_category(session: AsyncSession, user_id: int, data: CategoryCreate) -> Category:
    """Create a category; 409 when the user already has one of that name, ignoring case."""
    color = data.color or await _unused_color(session, user_id)
    category = Category(
        user_id=user_id,
        name=data.name,
        name_key=name_key(data.name),
        color=color,
        weight=data.weight,
    )
    async with _unique_name(session):
        session.add(category)
    return category


async def update_category(
    session: AsyncSession, category: Category, data: CategoryUpdate
) -> Category:
    """Apply the fields sent; 409 when renamed onto another of the user's category names."""
    changes = data.model_dump(exclude_unset=True)
    async with _unique_name(session):
        if "name" in changes:
            category.name_key = name_key(changes["name"])
        for field, value in changes.items():
            setattr(category, field, value)
    return category


async def delete_category(session: AsyncSession, category: Category) -> None:
    """Delete a category. Its tasks stay, uncategorised (the foreign key sets them to NULL)."""
    await session.delete(category)
    await session.flush()


@asynccontextmanager
async def _unique_name(session: AsyncSession) -> AsyncIterator[None]:
    """Make the changes in the block and flush them; 409 if a name is then taken twice.

    The unique constraint (user_id, name_key) is the check, so it also holds against a concurrent
    request that took the name a moment ago. The changes must be made inside the savepoint:
    opening one flushes whatever is pending, outside its protection.
    """
    try:
        async with session.begin_nested():
            yield
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(_DUPLICATE_NAME) from exc


async def _unused_color(session: AsyncSession, user_id: int) -> str:
    used = set(await session.scalars(select(Category.color).where(Category.user_id == user_id)))
    used_upper = {color.upper() for color in used}
    for color in PALETTE:
        if color not in used_upper:
            return color
    return PALETTE[len(used) % len(PALETTE)]
