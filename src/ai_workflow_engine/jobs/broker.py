"""The job queue: Taskiq's Redis broker when REDIS_URL is set, its in-memory broker otherwise.

Tasks are registered on a broker built at run time (the choice depends on the settings), with the
process's own `Resources` bound in; the worker and scheduler processes build the same tasks under
the same names.
"""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import structlog
from taskiq import AsyncBroker, AsyncTaskiqDecoratedTask, InMemoryBroker, TaskiqScheduler
from taskiq.schedule_sources import LabelScheduleSource
from taskiq_redis import ListQueueBroker

from ai_workflow_engine.calendar.autosync import (
    NEEDS_RECONNECT,
    auto_sync_user,
    count_reconnects_needed,
    due_user_ids,
)
from ai_workflow_engine.core.db import utcnow
from ai_workflow_engine.core.metrics import count_redis_errors
from ai_workflow_engine.core.resources import Resources

log = structlog.get_logger(__name__)

AUTO_SYNC_TASK = "calendar.auto_sync_user"
ENQUEUE_TASK = "calendar.enqueue_due_syncs"


@dataclass(frozen=True, slots=True)
class Jobs:
    broker: AsyncBroker
    scheduler: TaskiqScheduler
    auto_sync: AsyncTaskiqDecoratedTask[[int], Coroutine[Any, Any, str]]
    enqueue_due: AsyncTaskiqDecoratedTask[[], Coroutine[Any, Any, int]]


def build_broker(resources: Resources) -> AsyncBroker:
    settings = resources.settings
    if settings.redis.redis_url:
        return ListQueueBroker(
            url=settings.redis.redis_url,
            queue_name=f"{settings.redis.redis_key_prefix}jobs",
            # a worker waits for jobs in a blocking BRPOP: redis-py's default 5 s read timeout
            # would break every idle wait with an error; keepalive and health checks notice a
            # dead connection instead
            socket_timeout=None,
            socket_keepalive=True,
            health_check_interval=30,
        )
    return InMemoryBroker()


def create_jobs(resources: Resources) -> Jobs:
    broker = build_broker(resources)

    async def sync_one_user(user_id: int) -> str:
        return await auto_sync_user(resources, user_id)

    auto_sync = broker.register_task(sync_one_user, task_name=AUTO_SYNC_TASK)

    async def enqueue_due_syncs() -> int:
        """Queue a sync for every due user: one job each, so one failure delays nobody."""
        async with resources.sessionmaker() as session:
            due = await due_user_ids(session, utcnow())
            NEEDS_RECONNECT.set(await count_reconnects_needed(session))
        with count_redis_errors("job_queue"):
            for user_id in due:
                await auto_sync.kiq(user_id)
        if due:
            log.info("calendar_autosync_enqueued", users=len(due))
        return len(due)

    schedule: list[dict[str, Any]] = [{"interval": resources.settings.jobs.scheduler_tick_seconds}]
    enqueue_due = broker.register_task(enqueue_due_syncs, task_name=ENQUEUE_TASK, schedule=schedule)
    scheduler = TaskiqScheduler(broker, sources=[LabelScheduleSource(broker)])
    return Jobs(broker=broker, scheduler=scheduler, auto_sync=auto_sync, enqueue_due=enqueue_due)
