"""The out-of-process worker on the real Redis queue."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ai_workflow_engine.core.resources import open_resources
from ai_workflow_engine.jobs.runtime import run_worker
from tests.conftest import make_settings

pytestmark = pytest.mark.slow


async def test_an_idle_worker_waits_quietly_and_stops_cleanly(
    sqlite_database: str, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Waiting longer than redis-py's default read timeout (5 s) for a job is not an error."""
    settings = make_settings(sqlite_database, redis={"redis_url": redis_url})
    caplog.set_level(logging.WARNING, logger="taskiq")
    async with open_resources(settings) as resources:
        worker = asyncio.create_task(run_worker(resources))
        await asyncio.sleep(6.5)
        assert not worker.done()
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
    problems = [r for r in caplog.records if "Exception found while listening" in r.getMessage()]
    assert problems == []
