"""The `ai-workflow-engine` command: serve, migrate, create-user."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Sequence

from pydantic import ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from ai_workflow_engine.core import migrations
from ai_workflow_engine.core.config import Settings, describe_settings_error, load_settings
from ai_workflow_engine.core.db import create_engine, create_sessionmaker


class CommandError(Exception):
    """A failure to report as one line on stderr, with exit status 1."""


def _settings() -> Settings:
    try:
        return load_settings()
    except ValidationError as exc:
        raise CommandError(describe_settings_error(exc)) from exc


async def _migrate(settings: Settings) -> None:
    engine = create_engine(settings.database)
    try:
        await migrations.upgrade(engine)
    finally:
        await engine.dispose()


async def _schema_ready(settings: Settings) -> AsyncEngine:
    """An engine on a schema at the latest migration (the embedded SQLite is migrated here)."""
    engine = create_engine(settings.database)
    try:
        if settings.database.is_sqlite:
            await migrations.upgrade(engine)
        elif (reason := await migrations.pending_reason(engine)) is not None:
            raise CommandError(reason)
    except BaseException:
        await engine.dispose()
        raise
    return engine


async def _preflight(settings: Settings) -> None:
    """SQLite: migrate. PostgreSQL: refuse a schema that is behind; serve if unreachable."""
    if settings.database.is_sqlite:
        await _migrate(settings)
        return
    engine = create_engine(settings.database)
    try:
        reason = await migrations.pending_reason(engine)
    except Exception as exc:  # unreachable now: serve anyway, /health/ready reports it
        print(
            f"warning: database not reachable at start-up ({type(exc).__name__}); "
            "serving, readiness will report it",
            file=sys.stderr,
        )
        return
    finally:
        await engine.dispose()
    if reason is not None:
        raise CommandError(f"refusing to serve: {reason}")


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    settings = _settings()
    asyncio.run(_preflight(settings))
    uvicorn.run(
        "ai_workflow_engine.main:served_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning",
        # uvicorn's own lines go through the service's JSON logging (core/logging.py); the
        # service logs each request itself, by route template: an access line would carry the
        # query string, and the OAuth callback's holds the authorization code
        log_config=None,
        access_log=False,
        proxy_headers=True,
    )


def migrate(_args: argparse.Namespace) -> None:
    settings = _settings()
    asyncio.run(_migrate(settings))
    print("database is at the latest migration")


def _read_password() -> str:
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Repeat password: "):
            raise CommandError("passwords do not match")
        return password
    return sys.stdin.readline().rstrip("\r\n")


async def _create_user(settings: Settings, email: str, username: str, password: str) -> int:
    from ai_workflow_engine.core.security import PasswordHasher
    from ai_workflow_engine.users.schemas import UserCreate
    from ai_workflow_engine.users.service import create_user

    data = UserCreate(email=email, username=username, password=password)
    engine = await _schema_ready(settings)
    try:
        async with create_sessionmaker(engine).begin() as session:
            user = await create_user(session, PasswordHasher(), data)
            return user.id
    finally:
        await engine.dispose()


def create_user_command(args: argparse.Namespace) -> None:
    from ai_workflow_engine.core.errors import AppError

    settings = _settings()
    password = _read_password()
    try:
        user_id = asyncio.run(_create_user(settings, args.email, args.username, password))
    except ValidationError as exc:
        fields = ", ".join(str(e["loc"][-1]) for e in exc.errors())
        raise CommandError(f"invalid {fields}: " + exc.errors()[0]["msg"]) from exc
    except AppError as exc:
        raise CommandError(exc.detail) from exc
    print(f"created user {args.username} (id {user_id})")


def _run_jobs_process(name: str, metrics_host: str, metrics_port: int | None) -> None:
    from prometheus_client import start_http_server

    from ai_workflow_engine.core.logging import configure_logging
    from ai_workflow_engine.core.resources import open_resources
    from ai_workflow_engine.jobs.runtime import run_scheduler, run_worker

    settings = _settings()
    if not settings.redis.redis_url:
        raise CommandError(
            f"`{name}` needs REDIS_URL (the job queue lives in Redis); without Redis, "
            "`serve` runs the background jobs itself"
        )
    configure_logging(settings.log_level, json=settings.log_json)
    if metrics_port is not None:
        # the jobs' counters (sync runs, durations, failures) live in this process
        start_http_server(metrics_port, addr=metrics_host)
    runner = run_worker if name == "worker" else run_scheduler

    async def main() -> None:
        async with open_resources(settings) as resources:
            await runner(resources)

    asyncio.run(main())


def worker(args: argparse.Namespace) -> None:
    _run_jobs_process("worker", args.metrics_host, args.metrics_port)


def scheduler(args: argparse.Namespace) -> None:
    _run_jobs_process("scheduler", args.metrics_host, args.metrics_port)


async def _reencrypt(settings: Settings) -> int:
    from ai_workflow_engine.calendar.service import reencrypt_tokens
    from ai_workflow_engine.core.crypto import TokenCipher
    from ai_workflow_engine.core.db import unit_of_work

    engine = await _schema_ready(settings)
    try:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            return await reencrypt_tokens(session, TokenCipher.from_settings(settings))
    finally:
        await engine.dispose()


def reencrypt_tokens_command(_args: argparse.Namespace) -> None:
    count = asyncio.run(_reencrypt(_settings()))
    print(f"re-encrypted {count} stored secret(s) with the first TOKEN_ENCRYPTION_KEYS key")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ai-workflow-engine", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve_parser = commands.add_parser("serve", help="run the HTTP API")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=8000)
    serve_parser.add_argument("--workers", type=int, default=1)
    serve_parser.set_defaults(handler=serve)

    migrate_parser = commands.add_parser("migrate", help="apply pending database migrations")
    migrate_parser.set_defaults(handler=migrate)

    worker_parser = commands.add_parser(
        "worker", help="run background jobs from the Redis queue (calendar auto-sync)"
    )
    worker_parser.set_defaults(handler=worker)
    scheduler_parser = commands.add_parser(
        "scheduler", help="queue due background jobs (calendar auto-sync) every tick"
    )
    scheduler_parser.set_defaults(handler=scheduler)
    for jobs_parser in (worker_parser, scheduler_parser):
        jobs_parser.add_argument(
            "--metrics-port",
            type=int,
            default=None,
            help="serve this process's Prometheus metrics at http://HOST:PORT/metrics",
        )
        jobs_parser.add_argument("--metrics-host", default="127.0.0.1")

    reencrypt_parser = commands.add_parser(
        "reencrypt-tokens",
        help="after adding a new first key to TOKEN_ENCRYPTION_KEYS, re-encrypt stored tokens",
    )
    reencrypt_parser.set_defaults(handler=reencrypt_tokens_command)

    user_parser = commands.add_parser(
        "create-user", help="create a user (password from a prompt, or the first line of stdin)"
    )
    user_parser.add_argument("--email", required=True)
    user_parser.add_argument("--username", required=True)
    user_parser.set_defaults(handler=create_user_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OperationalError, InterfaceError, OSError) as exc:
        print(f"error: the database is unavailable ({type(exc).__name__})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
