from __future__ import annotations

from fastapi import FastAPI

from ai_workflow_engine.tasks import repository, service
from ai_workflow_engine.tasks.schemas import TaskCreate, TaskUpdate
from tests.conftest import Users


def test_search_text_is_title_and_description_casefolded() -> None:
    greek = repository.search_text("Große ÄRZTE", "Σοφία")
    assert greek == "grosse ärzte\nσοφία"  # noqa: RUF001 - Greek letters on purpose
    assert repository.search_text("A\u0308rzte", None) == "ärzte\n"


def test_fold_gives_composed_and_decomposed_text_one_form() -> None:
    assert repository.fold("A\u0308") == repository.fold("ä") == "ä"


async def test_search_text_and_completed_at_follow_updates(app: FastAPI, users: Users) -> None:
    user_id = (await users.register())["id"]

    async with app.state.sessionmaker() as session:
        task = await service.create_task(
            session, user_id, TaskCreate(title="Call Ärzte", description="Monday")
        )
        assert task.search_text == "call ärzte\nmonday"
        assert task.completed_at is None

        await service.update_task(
            session, user_id, task, TaskUpdate(description=None, status="completed")
        )
        assert task.search_text == "call ärzte\n"
        completed_at = task.completed_at
        assert completed_at is not None

        await service.update_task(session, user_id, task, TaskUpdate(title="Call DOCTORS"))
        assert task.search_text == "call doctors\n"
        assert task.completed_at == completed_at

        await service.update_task(session, user_id, task, TaskUpdate(status="cancelled"))
        assert task.completed_at is None
