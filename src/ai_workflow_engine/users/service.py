from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ai_workflow_engine.categories.service import create_default_categories
from ai_workflow_engine.core.errors import Conflict
from ai_workflow_engine.core.security import PasswordHasher
from ai_workflow_engine.users.models import User
from ai_workflow_engine.users.schemas import UserCreate


def identity_key(value: str) -> str:
    """Emails and usernames are unique case-insensitively, for all of Unicode."""
    return value.strip().casefold()


async def create_user(session: AsyncSession, hasher: PasswordHasher, data: UserCreate) -> User:
    """Create a user with the default categories; 409 when the email or username is taken."""
    email_key, username_key = identity_key(str(data.email)), identity_key(data.username)
    # hash before touching the database: no pooled connection is held during the slow hash
    password_hash = await hasher.hash(data.password)
    taken = await session.scalar(
        select(User.id).where(or_(User.email_key == email_key, User.username_key == username_key))
    )
    if taken is not None:
        raise Conflict("A user with this email or username already exists")
    user = User(
        email=str(data.email),
        email_key=email_key,
        username=data.username,
        username_key=username_key,
        password_hash=password_hash,
    )
    try:
        async with session.begin_nested():
            session.add(user)
            await session.flush()
    except IntegrityError as exc:  # a concurrent registration took it between check and insert
        raise Conflict("A user with this email or username already exists") from exc
    await create_default_categories(session, user.id)
    return user


async def find_user_by_login(session: AsyncSession, login: str) -> User | None:
    key = identity_key(login)
    return await session.scalar(
        select(User).where(or_(User.username_key == key, User.email_key == key))
    )
