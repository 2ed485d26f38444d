"""Request and response bodies of the calendar connection routes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool


class AuthorizationUrl(BaseModel):
    authorization_url: str = Field(
        description="Google's consent page; send the user's browser there. Valid 10 minutes, once."
    )


class ConnectionResult(BaseModel):
    status: Literal["connected"] = "connected"


class ConnectionStatus(BaseModel):
    connected: bool = Field(description="A Google grant is stored for this user.")
    needs_reconnect: bool = Field(
        description="Google no longer accepts the grant (revoked or expired): connect again."
    )
    account_email: str | None
    token_expires_at: datetime | None
    last_sync_at: datetime | None
    last_sync_status: Literal["ok", "failed"] | None
    last_error: str | None


class CalendarRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    google_calendar_id: str
    summary: str | None
    time_zone: str | None
    primary: bool
    selected: bool = Field(description="Only selected calendars are synced.")


class CalendarSelection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    selected: StrictBool = Field(
        description="Sync this calendar. Deselecting removes its stored events."
    )
