"""Shared pieces of the stand-in: clock, configuration, time values, error types, opaque tokens."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC = dt.UTC
BASE32HEX = "0123456789abcdefghijklmnopqrstuv"


class Clock:
    """Wall clock of the stand-in. Tests move it forward instead of sleeping."""

    def __init__(self) -> None:
        self._offset = dt.timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        with self._lock:
            return dt.datetime.now(UTC) + self._offset

    def advance(self, by: float | dt.timedelta) -> dt.datetime:
        delta = by if isinstance(by, dt.timedelta) else dt.timedelta(seconds=by)
        with self._lock:
            self._offset += delta
        return self.now()

    def set(self, when: dt.datetime) -> None:
        """Jump to ``when`` (aware); the clock keeps running from there."""
        if when.tzinfo is None:
            raise ValueError("Clock.set needs an aware datetime")
        with self._lock:
            self._offset = when - dt.datetime.now(UTC)


@dataclass
class StandinConfig:
    """Behaviour switches. Change them at any time through ``GoogleStandin.config``."""

    access_token_lifetime: float = 3599.0
    refresh_token_lifetime: float | None = None  # None: refresh tokens do not expire
    rotate_refresh_tokens: bool = False  # Google does not rotate; some tests want it
    auth_code_lifetime: float = 600.0
    max_refresh_tokens_per_grant: int = 100  # Google drops the oldest beyond this
    # Strictness of the consent endpoint beyond Google's own checks: our product must send these.
    require_pkce: bool = True  # code_challenge with code_challenge_method=S256
    require_state: bool = True
    extra_scopes: set[str] = field(default_factory=set)
    # Recurring series are expanded up to now + horizon unless timeMax asks for less or more.
    expansion_horizon: dt.timedelta = dt.timedelta(days=365)
    max_instances_per_series: int = 2500
    # Google may return fewer items than maxResults; set to force short pages.
    max_page_size: int | None = None
    hang_seconds: float = 60.0


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def format_timestamp(instant: dt.datetime) -> str:
    """Google's ``created``/``updated`` format: UTC with milliseconds."""
    return instant.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def format_local(instant: dt.datetime, tz: ZoneInfo) -> str:
    """RFC 3339 in ``tz`` with its offset, ``Z`` when the offset is zero (as Google renders)."""
    text = instant.astimezone(tz).isoformat(timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def parse_rfc3339(text: str) -> dt.datetime:
    """A timestamp with a mandatory offset (Google rejects timeMin without one)."""
    if "T" not in text.upper():
        raise ValueError(text)
    parsed = dt.datetime.fromisoformat(text.replace("z", "Z"))
    if parsed.tzinfo is None:
        raise ValueError(text)
    return parsed.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class When:
    """An event boundary: an all-day ``date`` or an ``instant`` (UTC) with an optional zone name."""

    date: dt.date | None = None
    instant: dt.datetime | None = None
    tz: str | None = None

    @property
    def all_day(self) -> bool:
        return self.date is not None

    def as_instant(self, tz: ZoneInfo) -> dt.datetime:
        """The moment this boundary denotes; all-day dates are midnight in ``tz``."""
        if self.date is not None:
            return dt.datetime.combine(self.date, dt.time(), tz).astimezone(UTC)
        assert self.instant is not None
        return self.instant

    def render(self, tz: ZoneInfo) -> dict[str, str]:
        if self.date is not None:
            return {"date": self.date.isoformat()}
        assert self.instant is not None
        out = {"dateTime": format_local(self.instant, tz)}
        if self.tz:
            out["timeZone"] = self.tz
        return out


TimeInput = dt.datetime | dt.date | str | Mapping[str, str]


def to_when(value: TimeInput, time_zone: str | None, fallback_zone: str) -> When:
    """Accept a datetime (aware, or naive in ``time_zone``/the calendar's zone), a date (all-day),
    an RFC 3339 string or ``YYYY-MM-DD``, or Google's ``{"dateTime", "timeZone"}``/``{"date"}``."""
    if isinstance(value, Mapping):
        if "date" in value:
            return When(date=dt.date.fromisoformat(value["date"]))
        tz_name = value.get("timeZone", time_zone)
        return to_when(dt.datetime.fromisoformat(value["dateTime"]), tz_name, fallback_zone)
    if isinstance(value, str):
        if len(value) == 10:
            return When(date=dt.date.fromisoformat(value))
        return to_when(dt.datetime.fromisoformat(value), time_zone, fallback_zone)
    if isinstance(value, dt.datetime):
        if time_zone is not None:
            zone(time_zone)
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone(time_zone or fallback_zone))
        elif time_zone is None and isinstance(value.tzinfo, ZoneInfo):
            time_zone = value.tzinfo.key
        return When(instant=value.astimezone(UTC), tz=time_zone)
    return When(date=value)


class ApiError(Exception):
    """A Calendar API error, rendered as Google's ``{"error": {...}}`` body."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        domain: str = "global",
        location: str | None = None,
        location_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        top_message: str | None = None,
    ) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.top_message = top_message or message
        self.code = code
        self.reason = reason
        self.message = message
        self.domain = domain
        self.location = location
        self.location_type = location_type
        self.headers = dict(headers or {})


def bad_parameter(name: str, message: str | None = None) -> ApiError:
    return ApiError(
        400,
        "invalid",
        message or f"Invalid value for parameter {name}.",
        location=name,
        location_type="parameter",
    )


class OAuthError(Exception):
    """An OAuth 2.0 endpoint error: ``{"error": ..., "error_description": ...}``."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{status} {error}: {description}")
        self.error = error
        self.description = description
        self.status = status


class TokenCodec:
    """Opaque, tamper-evident tokens (page and sync tokens) carrying a small JSON payload."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def encode(self, payload: Mapping[str, Any]) -> str:
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        mac = hmac.new(self._key, body, hashlib.sha256).digest()[:10]
        return base64.urlsafe_b64encode(body + mac).decode().rstrip("=")

    def decode(self, token: str) -> dict[str, Any] | None:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError):
            return None
        body, mac = raw[:-10], raw[-10:]
        expected = hmac.new(self._key, body, hashlib.sha256).digest()[:10]
        if len(raw) <= 10 or not hmac.compare_digest(mac, expected):
            return None
        try:
            payload = json.loads(body)
        except ValueError:
            return None
        return payload if isinstance(payload, dict) else None


def random_event_id() -> str:
    return "".join(secrets.choice(BASE32HEX) for _ in range(26))


def valid_event_id(event_id: str) -> bool:
    return 5 <= len(event_id) <= 1024 and all(c in BASE32HEX for c in event_id)
