"""Configuration, read from the environment and an optional `.env` file.

One settings class per concern, composed into `Settings`. Every knob the service has is here,
documented by its field description, so nothing is a magic constant elsewhere.
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

DEFAULT_SECRET_KEY = "change-me-development-only"  # noqa: S105 - refused outside development

# Query parameters libpq understands that people put in URLs; anything else is refused at start-up
# with a clear message instead of failing on first connect.
_LIBPQ_PARAMS = frozenset(
    {
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "sslcrl",
        "sslpassword",
        "sslcompression",
        "sslsni",
        "connect_timeout",
        "application_name",
        "options",
        "target_session_attrs",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "channel_binding",
        "gssencmode",
        "krbsrvname",
        "passfile",
        "service",
        "client_encoding",
        "host",
        "hostaddr",
        "port",
    }
)
_SSLMODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})
_POSTGRES_SCHEMES = frozenset(
    {
        "postgres",
        "postgresql",
        "postgresql+psycopg2",
        "postgresql+psycopg2cffi",
        "postgresql+asyncpg",
        "postgresql+psycopg",
        "postgresql+psycopg_async",
        "postgresql+pg8000",
    }
)
_SQLITE_SCHEMES = frozenset({"sqlite", "sqlite+pysqlite", "sqlite+aiosqlite"})
# what a browser sends as Origin: scheme://host[:port], the host a name or a bracketed IPv6
_ORIGIN = re.compile(r"https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?")


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class _Section(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", env_file_encoding="utf-8", hide_input_in_errors=True
    )


def normalize_database_url(raw: str) -> URL:
    """Map the URL forms people paste from other tools onto the async drivers this service uses.

    PostgreSQL goes to psycopg 3, which is libpq: `sslmode` keeps its exact libpq meaning
    (`require` is TLS or nothing, `verify-full` verifies), and asyncpg's `ssl=` spelling is
    translated. SQLite goes to aiosqlite.
    """
    if raw.startswith("postgres://"):
        raw = "postgresql://" + raw.removeprefix("postgres://")
    try:
        url = make_url(raw)
    except Exception as exc:  # sqlalchemy raises ArgumentError with the URL in it
        raise ValueError("DATABASE_URL is not a valid database URL") from exc
    scheme = url.drivername
    if scheme in _SQLITE_SCHEMES:
        return url.set(drivername="sqlite+aiosqlite")
    if scheme not in _POSTGRES_SCHEMES:
        raise ValueError(
            f"DATABASE_URL scheme {scheme!r} is not supported; use sqlite:/// or postgresql://"
        )
    query = dict(url.query)
    if "ssl" in query and "sslmode" not in query:
        # asyncpg spelling (`ssl=require`, `ssl=true`)
        ssl = query.pop("ssl")
        query["sslmode"] = "require" if ssl in ("true", "1", "on") else ssl
    unknown = sorted(set(query) - _LIBPQ_PARAMS)
    if unknown:
        raise ValueError(f"DATABASE_URL has unsupported query parameter(s): {', '.join(unknown)}")
    sslmode = query.get("sslmode")
    if sslmode is not None and sslmode not in _SSLMODES:
        raise ValueError(f"DATABASE_URL sslmode must be one of {', '.join(sorted(_SSLMODES))}")
    return url.set(drivername="postgresql+psycopg", query=query)


class DatabaseSettings(_Section):
    database_url: str | None = Field(
        default=None,
        description="Database URL; default is a SQLite file in DATA_DIR. "
        "postgres://, postgresql://, postgresql+psycopg2://, postgresql+asyncpg:// are accepted.",
    )
    data_dir: Path = Field(default=Path("./data"), description="Where embedded data lives.")
    database_pool_size: int = Field(default=10, ge=1, le=200)
    database_max_overflow: int = Field(default=10, ge=0, le=200)
    database_pool_timeout: float = Field(
        default=2.0, gt=0, le=60, description="Seconds to wait for a pooled connection before 503."
    )
    database_connect_timeout: int = Field(
        default=3, ge=1, le=60, description="Seconds to wait for a new connection before 503."
    )
    database_query_timeout: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="Seconds to wait for the database to answer one statement (including a wait "
        "in pgbouncer's queue) before 503.",
    )
    database_busy_timeout_ms: int = Field(
        default=5000,
        ge=0,
        le=60000,
        description="SQLite: milliseconds to wait on a locked database.",
    )
    database_retry_after_seconds: int = Field(
        default=5,
        ge=1,
        le=3600,
        description="Retry-After sent with a 503 when the database is down.",
    )

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None:
            if not value.strip():
                return None
            normalize_database_url(value)
        return value

    @cached_property
    def url(self) -> URL:
        if self.database_url is None:
            return URL.create(
                "sqlite+aiosqlite", database=str(self.data_dir / "ai_workflow_engine.db")
            )
        return normalize_database_url(self.database_url)

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"


class AuthSettings(_Section):
    secret_key: SecretStr = Field(
        default=SecretStr(DEFAULT_SECRET_KEY),
        description="Signs tokens and cursors. Required (and not the default) in production.",
    )
    access_token_minutes: int = Field(default=15, ge=1, le=1440)
    refresh_token_days: int = Field(default=30, ge=1, le=365)
    login_max_failures: int = Field(default=5, ge=1, le=100)
    login_failure_window_minutes: int = Field(default=15, ge=1, le=1440)

    @property
    def uses_default_secret(self) -> bool:
        return self.secret_key.get_secret_value() == DEFAULT_SECRET_KEY


class RedisSettings(_Section):
    redis_url: str | None = Field(
        default=None,
        description="Redis for state shared between processes; without it the database holds it.",
    )
    redis_key_prefix: str = Field(default="aiwe:", max_length=64)
    redis_timeout_seconds: float = Field(
        default=1.0,
        gt=0,
        le=30,
        description="Seconds to wait for Redis to accept a connection, and then for each answer.",
    )
    redis_retries: int = Field(
        default=1,
        ge=0,
        le=5,
        description="Retries of a Redis call that could not connect or timed out (a retry on a "
        "fresh connection gets past connections Redis dropped when it restarted). A request "
        "waits at most (1 + REDIS_RETRIES) x REDIS_TIMEOUT_SECONDS for Redis before its 503.",
    )
    redis_retry_after_seconds: int = Field(
        default=5, ge=1, le=3600, description="Retry-After sent with a 503 while Redis is down."
    )


class HttpSettings(_Section):
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated origins allowed by CORS."
    )
    max_request_body_bytes: int = Field(default=1_048_576, ge=1024)
    idempotency_key_ttl_hours: int = Field(
        default=24,
        ge=1,
        le=720,
        description="How long the answer to a POST sent with an Idempotency-Key is kept for "
        "replay; after that the key may be used again.",
    )
    idempotency_wait_seconds: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="PostgreSQL: how long a request waits for a concurrent one with the same "
        "Idempotency-Key to finish before answering 409. Keep it below DATABASE_QUERY_TIMEOUT.",
    )
    hsts_max_age_seconds: int = Field(
        default=31_536_000,
        ge=0,
        le=63_072_000,
        description="Strict-Transport-Security max-age, sent when PUBLIC_BASE_URL is https; "
        "0 sends none.",
    )
    opentelemetry: bool = Field(
        default=False,
        description="FastAPI's own OpenTelemetry traces, metrics and logs, sent to the globally "
        "configured OpenTelemetry providers. Off by default: the service's metrics are at "
        "/metrics, and with this off no request pays for looking the providers up.",
    )
    docs_enabled: bool = Field(
        default=True,
        description="Serve the interactive API docs at /docs and /redoc (their scripts come from "
        "a CDN). /openapi.json is served either way.",
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _exact_origins(cls, value: list[str]) -> list[str]:
        if "*" in value:
            raise ValueError(
                "CORS_ORIGINS may not be '*': name the origins (credentials are allowed)"
            )
        for origin in value:
            # browsers send exactly scheme://host[:port]; anything else never matches, and
            # "null" would let any sandboxed page or file:// document in
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"CORS_ORIGINS entries must be origins like https://app.example.com "
                    f"(scheme, host, optional port; no path): {origin!r}"
                )
        return value


class GoogleSettings(_Section):
    google_client_id: str | None = Field(default=None, description="OAuth client id.")
    google_client_secret: SecretStr | None = Field(default=None, description="OAuth secret.")
    google_auth_uri: str = "https://accounts.google.com/o/oauth2/v2/auth"
    google_token_uri: str = "https://oauth2.googleapis.com/token"  # noqa: S105 - an address
    google_revoke_uri: str = "https://oauth2.googleapis.com/revoke"
    google_calendar_api_base: str = "https://www.googleapis.com/calendar/v3"
    google_scopes: str = Field(
        default="https://www.googleapis.com/auth/calendar.readonly openid email",
        description="Space-separated scopes asked for at consent.",
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="The address users reach the API at; the OAuth redirect URI is built on it.",
    )
    google_http_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    google_max_attempts: int = Field(
        default=4, ge=1, le=10, description="Tries of one Google request on 403-rate/429/5xx."
    )
    google_backoff_base_seconds: float = Field(default=0.5, ge=0, le=30)
    google_backoff_max_seconds: float = Field(default=8.0, ge=0, le=120)
    google_sync_deadline_seconds: float = Field(
        default=50.0, gt=0, le=600, description="A sync that takes longer is abandoned (504)."
    )
    google_token_refresh_margin_seconds: int = Field(
        default=120, ge=0, le=3600, description="Refresh an access token this long before expiry."
    )
    google_oauth_state_minutes: int = Field(default=10, ge=1, le=60)
    google_page_size: int = Field(
        default=2500, ge=1, le=2500, description="events.list maxResults per page."
    )
    google_retry_after_seconds: int = Field(default=30, ge=1, le=3600)

    @property
    def configured(self) -> bool:
        return bool(self.google_client_id and self.google_client_secret)

    @property
    def redirect_uri(self) -> str:
        return self.public_base_url.rstrip("/") + "/api/v1/calendar/oauth/callback"


class SecuritySettings(_Section):
    token_encryption_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated Fernet keys: the first encrypts, all decrypt (rotation). "
        "Unset outside production, a key is derived from SECRET_KEY.",
    )

    @field_validator("token_encryption_keys", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("token_encryption_keys")
    @classmethod
    def _valid_fernet_keys(cls, value: list[SecretStr]) -> list[SecretStr]:
        import base64
        import binascii

        for key in value:
            try:
                raw = base64.urlsafe_b64decode(key.get_secret_value().encode())
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) != 32:
                raise ValueError("each key must be 32 url-safe base64-encoded bytes (a Fernet key)")
        return value


class OllamaSettings(_Section):
    ollama_base_url: str = Field(default="http://127.0.0.1:11434")


class JobsSettings(_Section):
    jobs_in_process: bool = Field(
        default=True,
        description="Run background jobs (calendar auto-sync) inside `serve`. Set false when "
        "`ai-workflow-engine worker` and `scheduler` run them out of process.",
    )
    scheduler_tick_seconds: int = Field(
        default=60, ge=5, le=3600, description="How often due auto-syncs are looked for."
    )


class Settings(_Section):
    environment: Environment = Environment.DEVELOPMENT
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    log_json: bool = Field(default=True, description="JSON log lines (false: human-readable).")
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    google: GoogleSettings = Field(default_factory=GoogleSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    ollama: OllamaSettings = Field(default_factory=OllamaSettings)
    jobs: JobsSettings = Field(default_factory=JobsSettings)

    @model_validator(mode="after")
    def _production_guards(self) -> Settings:
        if self.environment is Environment.PRODUCTION:
            if self.google.configured and not self.security.token_encryption_keys:
                raise ValueError(
                    "TOKEN_ENCRYPTION_KEYS must be set in production when Google is configured"
                )
            key = self.auth.secret_key.get_secret_value()
            if self.auth.uses_default_secret or len(key) < 32:
                raise ValueError(
                    "SECRET_KEY must be a random value of at least 32 characters in production"
                )
        return self


def describe_settings_error(exc: ValidationError) -> str:
    """One line naming the setting(s) that are wrong, without echoing their values."""
    parts = []
    for error in exc.errors():
        name = "_".join(str(p) for p in error["loc"][-1:]).upper() or "SETTINGS"
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{name}: {message}" if error["loc"] else message)
    return "invalid configuration: " + "; ".join(parts)


def load_settings(**overrides: Any) -> Settings:
    """Build the settings; each section reads its own variables from the environment."""
    sections = {
        "database": DatabaseSettings,
        "auth": AuthSettings,
        "redis": RedisSettings,
        "http": HttpSettings,
        "google": GoogleSettings,
        "security": SecuritySettings,
        "ollama": OllamaSettings,
        "jobs": JobsSettings,
    }
    values: dict[str, Any] = {}
    for name, cls in sections.items():
        section_overrides = overrides.pop(name, {})
        values[name] = cls(**section_overrides)
    return Settings(**values, **overrides)
