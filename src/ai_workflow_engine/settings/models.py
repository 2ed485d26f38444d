from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ai_workflow_engine.core.db import Base, UTCDateTime, utcnow


class UserSettings(Base):
    """A user's saved settings. No row means every setting is at its default."""

    __tablename__ = "user_settings"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    theme: Mapped[str] = mapped_column(String(16))
    timezone: Mapped[str] = mapped_column(String(64))
    notifications_enabled: Mapped[bool] = mapped_column(Boolean)
    chat_model: Mapped[str] = mapped_column(String(128))
    executive_assessment_model: Mapped[str] = mapped_column(String(128))
    confidence_assessment_model: Mapped[str] = mapped_column(String(128))
    tool_routing_model: Mapped[str] = mapped_column(String(128))
    simple_planning_model: Mapped[str] = mapped_column(String(128))
    plan_validation_model: Mapped[str] = mapped_column(String(128))
    reflection_model: Mapped[str] = mapped_column(String(128))
    final_response_model: Mapped[str] = mapped_column(String(128))
    fast_conversational_model: Mapped[str] = mapped_column(String(128))
    embeddings_model: Mapped[str] = mapped_column(String(128))
    calendar_event_weights: Mapped[dict[str, Any]] = mapped_column(JSON)
    calendar_auto_sync: Mapped[bool] = mapped_column(Boolean)
    calendar_sync_interval_minutes: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
