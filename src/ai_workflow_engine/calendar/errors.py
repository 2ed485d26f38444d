"""Problems the calendar feature answers with. Google's failures never surface as a 500."""

from __future__ import annotations

from ai_workflow_engine.core.errors import AppError, Conflict


class NotConnected(Conflict):
    slug = "calendar-not-connected"

    def __init__(self) -> None:
        super().__init__("Google Calendar is not connected; connect it first")


class ReconnectRequired(Conflict):
    """Google refused the refresh token (`invalid_grant`): only the user can fix it.

    Raised with keep_changes so that `needs_reconnect` is stored although the request fails.
    """

    slug = "calendar-reconnect-required"

    def __init__(self) -> None:
        super().__init__(
            "Google no longer accepts this connection (access was revoked or expired); "
            "reconnect Google Calendar",
            keep_changes=True,
        )


class SyncInProgress(Conflict):
    slug = "calendar-sync-in-progress"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "A calendar sync for this user is already running; retry when it has finished",
            headers={"Retry-After": str(retry_after)},
        )


class GoogleNotConfigured(AppError):
    status, slug, title = 503, "google-not-configured", "Service Unavailable"

    def __init__(self) -> None:
        super().__init__(
            "Google Calendar is not configured on this server (GOOGLE_CLIENT_ID/SECRET)"
        )


class GoogleUnavailable(AppError):
    """Google answered 5xx/429/rate-limit after every retry, or could not be reached."""

    status, slug, title = 503, "google-unavailable", "Service Unavailable"

    def __init__(self, detail: str, retry_after: int, *, keep_changes: bool = False) -> None:
        super().__init__(
            detail, headers={"Retry-After": str(retry_after)}, keep_changes=keep_changes
        )


class GoogleBadGateway(AppError):
    """Google answered something we cannot use (an unexpected 4xx, malformed JSON)."""

    status, slug, title = 502, "google-bad-gateway", "Bad Gateway"

    def __init__(self, detail: str, retry_after: int, *, keep_changes: bool = False) -> None:
        super().__init__(
            detail, headers={"Retry-After": str(retry_after)}, keep_changes=keep_changes
        )


class GoogleTimeout(AppError):
    status, slug, title = 504, "google-timeout", "Gateway Timeout"

    def __init__(self, detail: str, retry_after: int, *, keep_changes: bool = False) -> None:
        super().__init__(
            detail, headers={"Retry-After": str(retry_after)}, keep_changes=keep_changes
        )
