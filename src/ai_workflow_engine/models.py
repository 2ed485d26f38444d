"""Every table, imported in one place for Alembic and for tests comparing schema to models."""

from ai_workflow_engine.auth.models import LoginFailure, RefreshToken, RevokedSession
from ai_workflow_engine.calendar.models import (
    Calendar,
    CalendarEvent,
    GoogleConnection,
    OAuthState,
)
from ai_workflow_engine.categories.models import Category
from ai_workflow_engine.core.db import Base
from ai_workflow_engine.core.idempotency import IdempotencyRecord
from ai_workflow_engine.profile.models import UserProfile
from ai_workflow_engine.settings.models import UserSettings
from ai_workflow_engine.tasks.models import Task
from ai_workflow_engine.users.models import User

__all__ = [
    "Base",
    "Calendar",
    "CalendarEvent",
    "Category",
    "GoogleConnection",
    "IdempotencyRecord",
    "LoginFailure",
    "OAuthState",
    "RefreshToken",
    "RevokedSession",
    "Task",
    "User",
    "UserProfile",
    "UserSettings",
]
