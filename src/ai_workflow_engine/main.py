"""The application factory and its lifespan (engine, sessionmaker, Redis client, auth state)."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import structlog
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from ai_workflow_engine import __version__
from ai_workflow_engine.auth.router import router as auth_router
from ai_workflow_engine.auth.state import AuthStateStore, DatabaseAuthState, RedisAuthState
from ai_workflow_engine.calendar.oauth_router import router as calendar_oauth_router
from ai_workflow_engine.calendar.router import router as calendar_router
from ai_workflow_engine.categories.router import router as categories_router
from ai_workflow_engine.core import migrations
from ai_workflow_engine.core.config import Settings, load_settings
from ai_workflow_engine.core.errors import install_error_handlers
from ai_workflow_engine.core.logging import configure_logging
from ai_workflow_engine.core.middleware import RequestContextMiddleware
from ai_workflow_engine.core.openapi import install_openapi
from ai_workflow_engine.core.pagination import CursorCodec
from ai_workflow_engine.core.resources import open_resources
from ai_workflow_engine.core.security import PasswordHasher, TokenCodec
from ai_workflow_engine.core.security_headers import install_security_headers
from ai_workflow_engine.health.router import router as health_router
from ai_workflow_engine.jobs.runtime import run_jobs_in_process
from ai_workflow_engine.profile.router import router as profile_router
from ai_workflow_engine.settings.router import router as settings_router
from ai_workflow_engine.tasks.router import router as tasks_router
from ai_workflow_engine.users.router import router as users_router

log = structlog.get_logger(__name__)


def create_app(settings: Settings | None = None, *, freeze_startup_heap: bool = False) -> FastAPI:
    """The application. `freeze_startup_heap` is for a process that serves this one app for its
    whole life (see `served_app`)."""
    settings = settings or load_settings()
    configure_logging(settings.log_level, json=settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_resources(settings) as resources:
            window = timedelta(minutes=settings.auth.login_failure_window_minutes)
            store: AuthStateStore
            if resources.redis is not None:
                store = RedisAuthState(
                    resources.redis,
                    settings.redis.redis_key_prefix,
                    settings.auth.login_max_failures,
                    window,
                )
            else:
                store = DatabaseAuthState(settings.auth.login_max_failures, window)
            if settings.database.is_sqlite:
                # the embedded default keeps itself at the latest schema
                await migrations.upgrade(resources.engine)
            app.state.resources = resources
            app.state.engine = resources.engine
            app.state.sessionmaker = resources.sessionmaker
            app.state.redis = resources.redis
            app.state.google_http = resources.google_http
            app.state.token_cipher = resources.token_cipher
            app.state.auth_state = store
            log.info(
                "started",
                database=resources.engine.url.get_backend_name(),
                redis=resources.redis is not None,
            )
            async with run_jobs_in_process(resources) as jobs:
                app.state.jobs = jobs  # None when worker/scheduler run out of process
                if freeze_startup_heap:
                    _freeze_startup_heap()
                try:
                    yield
                finally:
                    if freeze_startup_heap:
                        gc.unfreeze()

    app = FastAPI(
        title="AI Workflow Engine",
        version=__version__,
        description="Self-hosted personal productivity backend. Errors are RFC 9457 "
        "`application/problem+json`; lists are `{items, next_cursor}` pages.",
        lifespan=lifespan,
        telemetry={
            "tracing": settings.http.opentelemetry,
            "metrics": settings.http.opentelemetry,
            "logs": settings.http.opentelemetry,
        },
        docs_url="/docs" if settings.http.docs_enabled else None,
        redoc_url="/redoc" if settings.http.docs_enabled else None,
    )
    app.state.settings = settings
    app.state.token_codec = TokenCodec(settings.auth)
    app.state.cursor_codec = CursorCodec(settings.auth.secret_key.get_secret_value())
    app.state.password_hasher = PasswordHasher()
    install_error_handlers(
        app,
        db_retry_after=settings.database.database_retry_after_seconds,
        redis_retry_after=settings.redis.redis_retry_after_seconds,
    )
    if settings.http.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.http.cors_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    app.add_middleware(
        RequestContextMiddleware, max_body_bytes=settings.http.max_request_body_bytes
    )
    for router in (
        health_router,
        auth_router,
        users_router,
        settings_router,
        profile_router,
        categories_router,
        tasks_router,
        calendar_oauth_router,
        calendar_router,
    ):
        app.include_router(router)
    install_openapi(app)
    install_security_headers(
        app,
        hsts_max_age_seconds=settings.http.hsts_max_age_seconds
        if settings.google.public_base_url.startswith("https://")
        else 0,
    )
    return app


def served_app() -> FastAPI:
    """The app as `ai-workflow-engine serve` runs it: the heap built at start-up frozen."""
    return create_app(freeze_startup_heap=True)


def _freeze_startup_heap() -> None:
    """Keep what start-up built (modules, routes, models, the engine and its pool: objects that
    live as long as the process) out of the garbage collector's full collections.

    Objects of requests in flight outlive a young collection and reach the oldest generation, so
    full collections come regularly under load, and each one walked every object of the process:
    pauses that set the tail latency (p99 three times longer in the API benchmark) and took about
    a tenth of the CPU. Frozen objects are skipped by the collector; one whose last reference goes
    is still freed at once (only a reference cycle among them waits for `gc.unfreeze`).
    """
    gc.collect()
    gc.freeze()
