from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ai_workflow_engine.core.db import Base, UTCDateTime, utcnow


class UserProfile(Base):
    """A user's saved profile. No row means the profile is all defaults."""

    __tablename__ = "user_profiles"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    display_name: Mapped[str | None] = mapped_column(String(100))
    mission_statement: Mapped[str | None] = mapped_column(Text)
    personal_goals: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    work_style_preferences: Mapped[dict[str, Any]] = mapped_column(JSON)
    productivity_patterns: Mapped[dict[str, Any]] = mapped_column(JSON)
    project_preferences: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
