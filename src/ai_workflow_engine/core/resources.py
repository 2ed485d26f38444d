"""What a running process owns: database engine, sessionmaker, Redis client, HTTP client, cipher.

The API's lifespan, the job worker and the scheduler all open them here, the same way, and close
them when they stop. Nothing is global: each process has its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ai_workflow_engine.core.config import Settings
from ai_workflow_engine.core.crypto import TokenCipher
from ai_workflow_engine.core.db import create_engine, create_sessionmaker


@dataclass(frozen=True, slots=True)
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis | None
    google_http: httpx.AsyncClient
    token_cipher: TokenCipher


@asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Resources]:
    engine = create_engine(settings.database)
    redis: Redis | None = None
    if settings.redis.redis_url:
        timeout = settings.redis.redis_timeout_seconds
        redis = Redis.from_url(
            settings.redis.redis_url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # bounded: a request waits at most (1 + retries) timeouts for Redis, then gets a 503
            retry=Retry(NoBackoff(), settings.redis.redis_retries),
        )
    # one pooled HTTP client for every call to Google (OAuth and Calendar API)
    google_http = httpx.AsyncClient(
        timeout=httpx.Timeout(settings.google.google_http_timeout_seconds),
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
    )
    try:
        yield Resources(
            settings=settings,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            redis=redis,
            google_http=google_http,
            token_cipher=TokenCipher.from_settings(settings),
        )
    finally:
        await google_http.aclose()
        if redis is not None:
            await redis.aclose()
        await engine.dispose()
