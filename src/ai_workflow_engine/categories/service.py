from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from ai_workflow_engine.categories.models import Category

# name, color, weight of the categories every new user starts with
DEFAULT_CATEGORIES: tuple[tuple[str, str, int], ...] = (
    ("Work", "#2563EB", 5),
    ("Health", "#16A34A", 5),
    ("Leisure", "#F59E0B", 5),
    ("Family", "#DB2777", 5),
    ("Fitness", "#7C3AED", 5),
)


async def create_default_categories(session: AsyncSession, user_id: int) -> None:
    session.add_all(
        Category(user_id=user_id, name=name, name_key=name.casefold(), color=color, weight=weight)
        for name, color, weight in DEFAULT_CATEGORIES
    )
    await session.flush()
