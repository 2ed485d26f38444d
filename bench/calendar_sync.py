"""Calendar sync benchmark: figures as ratios against baselines measured in the same run.

- full sync of N events (default 10,000) into an empty calendar vs. merely downloading the same
  pages with the same HTTP client (target: at most 2x); each is the best of `--repeat` runs, each
  run starting after a garbage collection;
- incremental sync of 10 changes in that calendar vs. the full sync (target: at most 5%), the
  best of `--repeat` runs, each after 10 new changes;
- the runs are interleaved (download, full sync, incremental sync, then again), so that a burst
  of load from elsewhere on the machine slows a round of all three rather than one of them;
- peak memory growth of a process doing a full sync of 100,000 events (target: under 50 MB),
  measured in a child process so that nothing else is counted.

The Google stand-in runs as its own process, so its memory and CPU are not ours.
With `--database` naming a PostgreSQL server, the benchmark runs in a database of its own that
it creates there and drops at the end.

Usage: python -m bench.calendar_sync [--events 10000] [--repeat 3] [--memory-events 100000]
                                    [--database URL]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import delete, make_url, update

import ai_workflow_engine
from ai_workflow_engine.calendar.autosync import build_sync_clients
from ai_workflow_engine.calendar.google.calendar_list import refresh_calendar_list
from ai_workflow_engine.calendar.google.client import GoogleCalendarApi, calendar_events_path
from ai_workflow_engine.calendar.models import Calendar, CalendarEvent, GoogleConnection
from ai_workflow_engine.calendar.sync_service import sync_user
from ai_workflow_engine.core import migrations
from ai_workflow_engine.core.config import Settings, load_settings
from ai_workflow_engine.core.db import unit_of_work
from ai_workflow_engine.core.logging import configure_logging
from ai_workflow_engine.core.resources import Resources, open_resources
from ai_workflow_engine.core.security import PasswordHasher
from ai_workflow_engine.users.schemas import UserCreate
from ai_workflow_engine.users.service import create_user
from tests.google_standin import spawn_standin_process

SECRET = "benchmark-secret-key-of-sufficient-length-0123456789"


def _settings(database_url: str, standin: Any) -> Settings:
    return load_settings(
        database={"database_url": database_url},
        auth={"secret_key": SECRET},
        jobs={"jobs_in_process": False},
        google={
            "google_client_id": standin.client_id,
            "google_client_secret": standin.client_secret,
            "google_auth_uri": standin.auth_uri,
            "google_token_uri": standin.token_uri,
            "google_revoke_uri": standin.revoke_uri,
            "google_calendar_api_base": standin.calendar_api_base,
            "google_sync_deadline_seconds": 600,
        },
        log_level="WARNING",
        environment="test",
    )


async def _connect_user(resources: Resources, standin: Any) -> int:
    """A user with a Google connection to the stand-in's account and its calendar list."""
    tokens = standin.control.mint_tokens()
    cipher = resources.token_cipher
    async with unit_of_work(resources.sessionmaker) as session:
        user = await create_user(
            session,
            PasswordHasher(),
            # one user per process: the memory run shares the speed run's database
            UserCreate(
                email=f"bench{os.getpid()}@example.com",
                username=f"bench{os.getpid()}",
                password="benchmark-pw",
            ),
        )
        session.add(
            GoogleConnection(
                user_id=user.id,
                account_email=standin.email,
                access_token_encrypted=cipher.encrypt(tokens["access_token"]),
                refresh_token_encrypted=cipher.encrypt(tokens["refresh_token"]),
                token_expires_at=datetime.now(UTC) + timedelta(seconds=tokens["expires_in"]),
                scopes=tokens.get("scope", ""),
            )
        )
        api = GoogleCalendarApi(resources.google_http, resources.settings.google)

        async def token(_force: bool) -> str:
            return str(tokens["access_token"])

        await refresh_calendar_list(session, api, user.id, token)
        return user.id


async def _download_only(resources: Resources, standin: Any) -> float:
    """The baseline: the same pages, the same client, nothing stored."""
    tokens = standin.control.mint_tokens()
    settings = resources.settings.google
    url = settings.google_calendar_api_base + calendar_events_path(standin.email)
    params = {
        "maxResults": str(settings.google_page_size),
        "singleEvents": "true",
        "showDeleted": "true",
    }
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    gc.collect()
    started = time.perf_counter()
    page_token: str | None = None
    while True:
        query = dict(params, **({"pageToken": page_token} if page_token else {}))
        response = await resources.google_http.get(url, params=query, headers=headers)
        response.raise_for_status()
        page_token = response.json().get("nextPageToken")
        if not page_token:
            break
    return time.perf_counter() - started


async def _timed_sync(resources: Resources, user_id: int) -> tuple[float, Any]:
    gc.collect()
    started = time.perf_counter()
    async with unit_of_work(resources.sessionmaker) as session:
        result = await sync_user(session, build_sync_clients(resources), user_id)
    return time.perf_counter() - started, result


async def _forget_events(resources: Resources, user_id: int) -> None:
    """Back to a connected calendar that was never synced: the next sync is a full one."""
    async with unit_of_work(resources.sessionmaker) as session:
        await session.execute(delete(CalendarEvent).where(CalendarEvent.user_id == user_id))
        await session.execute(
            update(Calendar).where(Calendar.user_id == user_id).values(sync_token=None)
        )


async def _prepare(database_url: str | None, standin: Any, stack: AsyncExitStack) -> Resources:
    if database_url is None:
        folder = stack.enter_context(tempfile.TemporaryDirectory())
        database_url = f"sqlite:///{folder}/bench.db"
    resources = await stack.enter_async_context(open_resources(_settings(database_url, standin)))
    await migrations.upgrade(resources.engine)
    return resources


async def speed(events: int, repeat: int, database_url: str | None) -> dict[str, Any]:
    with spawn_standin_process(events=events) as standin:
        async with AsyncExitStack() as stack:
            resources = await _prepare(database_url, standin, stack)
            user_id = await _connect_user(resources, standin)
            await _download_only(resources, standin)  # warm the connection and the stand-in
            downloads, runs, increments = [], [], []
            # interleaved, so that a burst of load from elsewhere on the machine slows one round
            # of all three rather than all the runs of one of them
            for _ in range(repeat):
                downloads.append(await _download_only(resources, standin))
                await _forget_events(resources, user_id)
                runs.append(await _timed_sync(resources, user_id))
                standin.control.churn_events(updates=10)
                increments.append(await _timed_sync(resources, user_id))
            download = min(downloads)
            full, full_result = min(runs, key=lambda run: run[0])
            incremental, incremental_result = min(increments, key=lambda run: run[0])
    return {
        "events": events,
        "backend": resources.engine.url.get_backend_name(),
        "download_seconds": round(download, 3),
        "full_sync_seconds": round(full, 3),
        "full_sync_created": full_result.created,
        "full_vs_download": round(full / download, 2),
        "incremental_seconds": round(incremental, 4),
        "incremental_updated": incremental_result.updated,
        "incremental_vs_full": round(incremental / full, 4),
    }


async def _memory_child(events: int, database_url: str | None) -> dict[str, Any]:
    with spawn_standin_process(events=events) as standin:
        async with AsyncExitStack() as stack:
            resources = await _prepare(database_url, standin, stack)
            user_id = await _connect_user(resources, standin)
            gc.collect()
            baseline = _rss_bytes()
            peak = baseline
            done = threading.Event()

            def sample() -> None:
                # the process's peak (ru_maxrss) may already be higher from set-up (Argon2
                # alone takes 64 MB), so the resident size is sampled during the sync itself,
                # from a thread so that CPU-bound stretches of the sync are sampled too
                nonlocal peak
                while not done.wait(0.005):
                    peak = max(peak, _rss_bytes())

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            _seconds, result = await _timed_sync(resources, user_id)
            done.set()
            sampler.join()
            peak = max(peak, _rss_bytes())
    return {
        "events": events,
        "created": result.created,
        "rss_before_mb": round(baseline / 2**20, 1),
        "rss_peak_mb": round(peak / 2**20, 1),
        "growth_mb": round((peak - baseline) / 2**20, 1),
    }


def _rss_bytes() -> int:
    """Resident set size now (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def memory(events: int, database_url: str | None) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.calendar_sync", "--memory-child", str(events)]
    if database_url:
        command += ["--database", database_url]
    root = Path(__file__).resolve().parent.parent
    # the child imports the code this process runs (a worktree's, say), not whatever copy of
    # the package the interpreter would find first
    package_root = Path(ai_workflow_engine.__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(package_root), str(root)]))
    out = subprocess.run(
        command, cwd=root, env=env, capture_output=True, text=True, check=True, timeout=1800
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


@contextmanager
def _scratch_database(url: str | None) -> Iterator[str | None]:
    """A new, empty database on the PostgreSQL server of `url`, dropped afterwards; SQLite and
    the default (a temporary SQLite file) pass through."""
    if url is None or make_url(url).get_backend_name() != "postgresql":
        yield url
        return
    server = make_url(url).set(drivername="postgresql")
    admin = server.render_as_string(hide_password=False)
    name = f"aiwe_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each timing; best counts")
    parser.add_argument("--memory-events", type=int, default=100_000)
    parser.add_argument("--database", default=None, help="DATABASE_URL (default: a temp SQLite)")
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    configure_logging("WARNING")
    if args.memory_child:
        print(json.dumps(asyncio.run(_memory_child(args.memory_child, args.database))))
        return 0
    with _scratch_database(args.database) as database:
        figures = asyncio.run(speed(args.events, args.repeat, database))
        figures_memory = memory(args.memory_events, database) if args.memory_events else None
    print(f"calendar sync benchmark on {figures['backend']}")
    print(
        f"  {_verdict(figures['full_vs_download'] <= 2)}  full sync of {figures['events']} "
        f"events: {figures['full_sync_seconds']} s; download only: "
        f"{figures['download_seconds']} s; ratio {figures['full_vs_download']}x (target <= 2x)"
    )
    print(
        f"  {_verdict(figures['incremental_vs_full'] <= 0.05)}  incremental sync of 10 changes: "
        f"{figures['incremental_seconds']} s; ratio to full "
        f"{figures['incremental_vs_full']:.2%} (target <= 5%)"
    )
    if figures_memory:
        print(
            f"  {_verdict(figures_memory['growth_mb'] < 50)}  full sync of "
            f"{figures_memory['events']} events: peak memory growth "
            f"{figures_memory['growth_mb']} MB (target < 50 MB)"
        )
    print(json.dumps({"speed": figures, "memory": figures_memory}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
