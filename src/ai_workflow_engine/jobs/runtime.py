"""Running the jobs: inside `serve` (the embedded default), or as `worker` and `scheduler`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import structlog
from taskiq import InMemoryBroker
from taskiq.api import run_receiver_task, run_scheduler_task

from ai_workflow_engine.core.resources import Resources
from ai_workflow_engine.jobs.broker import Jobs, create_jobs

log = structlog.get_logger(__name__)


@asynccontextmanager
async def _running(jobs: Jobs, *loops: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    await jobs.broker.startup()
    tasks = [asyncio.create_task(loop) for loop in loops]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await jobs.broker.shutdown()


@asynccontextmanager
async def run_jobs_in_process(resources: Resources) -> AsyncIterator[Jobs | None]:
    """With JOBS_IN_PROCESS (the default) `serve` schedules the jobs and runs them itself."""
    if not resources.settings.jobs.jobs_in_process:
        yield None
        return
    jobs = create_jobs(resources)
    loops = [run_scheduler_task(jobs.scheduler)]
    if not isinstance(jobs.broker, InMemoryBroker):
        loops.append(run_receiver_task(jobs.broker))
    async with _running(jobs, *loops):
        log.info("jobs_running_in_process", broker=type(jobs.broker).__name__)
        yield jobs


async def run_worker(resources: Resources) -> None:
    """Execute queued jobs until stopped (needs REDIS_URL: the queue lives there)."""
    jobs = create_jobs(resources)
    async with _running(jobs):
        await run_receiver_task(jobs.broker)


async def run_scheduler(resources: Resources) -> None:
    """Queue the due syncs every SCHEDULER_TICK_SECONDS until stopped."""
    jobs = create_jobs(resources)
    async with _running(jobs):
        await run_scheduler_task(jobs.scheduler)
