from __future__ import annotations

import asyncio
from typing import Literal

import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text

from ai_workflow_engine.calendar.autosync import NEEDS_RECONNECT, count_reconnects_needed
from ai_workflow_engine.core.metrics import observe_pool
from ai_workflow_engine.core.migrations import pending_reason

router = APIRouter(tags=["service"])
log = structlog.get_logger(__name__)


class Liveness(BaseModel):
    status: Literal["ok"]


class ReadinessChecks(BaseModel):
    database: str
    migrations: str
    redis: str


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: ReadinessChecks


@router.get("/health", response_model=Liveness, summary="Liveness: the process runs")
async def liveness() -> Liveness:
    return Liveness(status="ok")


@router.get(
    "/health/ready",
    response_model=Readiness,
    summary="Readiness: database reachable, schema at the latest migration, Redis reachable",
    responses={503: {"model": Readiness, "description": "A dependency is not ready"}},
)
async def readiness(request: Request) -> JSONResponse:
    state = request.app.state
    timeout = state.settings.database.database_connect_timeout + 1
    checks = {"database": "ok", "migrations": "ok", "redis": "disabled"}
    try:
        async with asyncio.timeout(timeout):
            async with state.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            reason = await pending_reason(state.engine)
            if reason is not None:
                checks["migrations"] = reason
    except Exception as exc:  # any failure to reach the database is "not ready", with its kind
        log.warning("readiness_database_failed", error_class=type(exc).__name__)
        checks["database"] = f"unreachable ({type(exc).__name__})"
        checks["migrations"] = "unknown (database unreachable)"
    if state.redis is not None:
        try:
            async with asyncio.timeout(state.settings.redis.redis_timeout_seconds + 1):
                await state.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"unreachable ({type(exc).__name__})"
    ready = all(value in ("ok", "disabled") for value in checks.values())
    body = Readiness(status="ok" if ready else "unavailable", checks=ReadinessChecks(**checks))
    retry_after = state.settings.database.database_retry_after_seconds
    headers = {} if ready else {"Retry-After": str(retry_after)}
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503, headers=headers)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    state = request.app.state
    observe_pool(state.engine.pool)
    try:
        # connections waiting for their user are counted where the scheduler runs too; here the
        # API's own scrape sees them, bounded so that /metrics answers while the database is down
        async with asyncio.timeout(1), state.sessionmaker() as session:
            NEEDS_RECONNECT.set(await count_reconnects_needed(session))
    except Exception as exc:
        log.debug("metrics_reconnect_count_failed", error_class=type(exc).__name__)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
