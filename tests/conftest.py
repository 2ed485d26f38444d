from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text

from ai_workflow_engine.core import migrations
from ai_workflow_engine.core.config import Settings, load_settings
from ai_workflow_engine.core.db import create_engine
from ai_workflow_engine.main import create_app
from ai_workflow_engine.models import Base
from tests.backends import (
    POSTGRES_ADMIN_URL,
    REDIS_URL,
    postgres_url_for,
    require,
    unique_name,
)

# the suite never reads a developer's .env or environment for these
for _name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ENVIRONMENT"):
    os.environ.pop(_name, None)

TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"


@dataclass(frozen=True)
class Backend:
    name: str
    url: str


@pytest.fixture(scope="session")
def postgresql_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this run, migrated to the latest revision."""
    require("PostgreSQL", POSTGRES_ADMIN_URL, 5432)
    name = unique_name("aiwe_test")
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_url_for(name)
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = Path(tmp_path_factory.mktemp("sqlite")) / "test.db"
    return f"sqlite:///{path}"


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def backend(request: pytest.FixtureRequest) -> Backend:
    """Each test that uses the app runs once per database backend, on a migrated schema."""
    url = request.getfixturevalue(f"{request.param}_database")
    settings = make_settings(url)
    engine = create_engine(settings.database)
    try:
        await migrations.upgrade(engine)
    finally:
        await engine.dispose()
    return Backend(request.param, url)


@pytest.fixture(scope="session")
def redis_url() -> str:
    require("Redis", REDIS_URL, 6379)
    return REDIS_URL


def make_settings(database_url: str, **overrides: Any) -> Settings:
    database = {"database_url": database_url, **overrides.pop("database", {})}
    auth = {"secret_key": TEST_SECRET, **overrides.pop("auth", {})}
    redis = {"redis_key_prefix": unique_name("aiwe") + ":", **overrides.pop("redis", {})}
    # background jobs run only where a test starts them on purpose
    jobs = {"jobs_in_process": False, **overrides.pop("jobs", {})}
    return load_settings(
        database=database,
        auth=auth,
        redis=redis,
        jobs=jobs,
        environment="test",
        log_json=True,
        **overrides,
    )


async def empty_tables(app: FastAPI) -> None:
    engine = app.state.engine
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                await connection.execute(text(f"DELETE FROM {table}"))


AppFactory = Callable[..., Any]


@pytest.fixture
def app_factory(backend: Backend) -> AppFactory:
    """`async with app_factory(**settings_overrides) as app:` a running app on this backend."""

    @asynccontextmanager
    async def build(**overrides: Any) -> AsyncIterator[FastAPI]:
        app = create_app(make_settings(backend.url, **overrides))
        async with LifespanManager(app):
            try:
                yield app
            finally:
                await empty_tables(app)

    return build


@pytest.fixture
async def app(app_factory: AppFactory) -> AsyncIterator[FastAPI]:
    async with app_factory() as running:
        yield running


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


class Users:
    """Registers users and logs them in through the API, as a client would."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.count = 0

    async def register(self, **fields: str) -> dict[str, Any]:
        self.count += 1
        body = {
            "email": f"user{self.count}@example.com",
            "username": f"user{self.count}",
            "password": "correct horse battery",
            **fields,
        }
        response = await self.client.post("/api/v1/auth/register", json=body)
        assert response.status_code == 201, response.text
        return {**response.json(), "password": body["password"]}

    async def login(self, username: str, password: str = "correct horse battery") -> dict[str, Any]:
        response = await self.client.post(
            "/api/v1/auth/jwt/login", data={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        tokens: dict[str, Any] = response.json()
        return tokens

    async def headers(self, **fields: str) -> dict[str, str]:
        """A new user's Authorization header."""
        user = await self.register(**fields)
        tokens = await self.login(user["username"], user["password"])
        return {"Authorization": f"Bearer {tokens['access_token']}"}


@pytest.fixture
def users(client: httpx.AsyncClient) -> Users:
    return Users(client)


@pytest.fixture
async def auth_headers(users: Users) -> dict[str, str]:
    return await users.headers()
