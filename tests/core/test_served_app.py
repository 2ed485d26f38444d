"""The app as `serve` runs it keeps its start-up heap out of the garbage collector's way."""

from __future__ import annotations

import gc

from asgi_lifespan import LifespanManager

from ai_workflow_engine.main import create_app
from tests.conftest import Backend, make_settings


async def test_the_startup_heap_is_frozen_while_serving_and_thawed_after(
    backend: Backend,
) -> None:
    app = create_app(make_settings(backend.url), freeze_startup_heap=True)
    assert gc.get_freeze_count() == 0
    async with LifespanManager(app):
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


async def test_an_app_made_for_tests_leaves_the_collector_alone(backend: Backend) -> None:
    async with LifespanManager(create_app(make_settings(backend.url))):
        assert gc.get_freeze_count() == 0
