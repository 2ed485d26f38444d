"""API benchmark: throughput and latency of the hot routes as ratios to a bare-driver baseline.

One run, on PostgreSQL (a fresh database, created, migrated and dropped here), against ONE API
process (`ai-workflow-engine serve`, one worker) and, for the baseline, one process serving the
same task-list query with psycopg and orjson (bench/baseline_app.py). Every target is loaded by the
same closed-loop generator (bench/loadgen.py, its own process) at the same concurrency: a warm-up,
then a measured window; with several rounds the median round of each target is reported.

Targets: list-tasks throughput >= 50% of the baseline; p99 <= 4x p50 for each route; list
latency with 100,000 tasks (default sort, and an indexed sort with a filter) and the events
range query with 100,000 events, each within 1.5x of the same with 1,000.

Usage: python -m bench.api [--quick] [--database ADMIN_URL] [--duration S] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg

from ai_workflow_engine.core import migrations
from ai_workflow_engine.core.config import load_settings
from ai_workflow_engine.core.db import create_engine
from bench.loadgen import Spec
from bench.seed import seed_events, seed_tasks

ROOT = Path(__file__).resolve().parent.parent
SECRET = "benchmark-secret-key-of-sufficient-length-0123456789"
PASSWORD = "benchmark password"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
THROUGHPUT_TARGET = 0.5
TAIL_TARGET = 4.0
SCALE_TARGET = 1.5


@dataclass
class Options:
    admin_url: str
    concurrency: int
    warmup: float
    duration: float
    rounds: int
    scale_small: int
    scale_large: int
    scale_duration: float
    pool_size: int
    load_tasks: int = 1000


@dataclass
class Figures:
    """One target's measured rounds."""

    name: str
    rounds: list[dict[str, Any]] = field(default_factory=list)

    @property
    def median(self) -> dict[str, Any]:
        ordered = sorted(self.rounds, key=lambda r: r["throughput"])
        return ordered[(len(ordered) - 1) // 2]


# --- processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    paths = [str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env | extra


@contextmanager
def server(command: list[str], env: dict[str, str], ready_url: str) -> Iterator[None]:
    """A server subprocess, waited for until `ready_url` answers, stopped at the end."""
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 90
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    tail = log.read().decode(errors="replace")[-3000:]
                    raise RuntimeError(f"server {command[2]} did not start:\n{tail}")
                try:
                    if httpx.get(ready_url, timeout=1).status_code < 500:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            yield
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def load(specs: list[Spec]) -> list[dict[str, Any]]:
    """Measurements by the load generator, one after the other, in a process of its own."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", json.dumps([spec.to_dict() for spec in specs])],
        env=_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=sum(spec.warmup + spec.duration + 30 for spec in specs),
    )
    results: list[dict[str, Any]] = json.loads(out.stdout.strip().splitlines()[-1])
    return results


# --- the database -----------------------------------------------------------------------------


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    name = f"aiwe_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        yield urlsplit(admin_url)._replace(path="/" + name).geturl()
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


async def _migrate(url: str) -> None:
    engine = create_engine(load_settings(database={"database_url": url}).database)
    try:
        await migrations.upgrade(engine)
    finally:
        await engine.dispose()


# --- the API's users --------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchUser:
    id: int
    headers: dict[str, str]


def register(api: str, name: str) -> BenchUser:
    with httpx.Client(base_url=api, timeout=30) as client:
        body = {"email": f"{name}@example.com", "username": name, "password": PASSWORD}
        created = client.post("/api/v1/auth/register", json=body)
        created.raise_for_status()
        login = client.post("/api/v1/auth/jwt/login", data={"username": name, "password": PASSWORD})
        login.raise_for_status()
    token = login.json()["access_token"]
    return BenchUser(created.json()["id"], {"Authorization": f"Bearer {token}"})


def check(api: str, user: BenchUser, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(method, api + path, headers=user.headers, timeout=30, **kwargs)
    if response.status_code >= 300:
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:500]}")
    return response.json()


def saved_settings() -> dict[str, Any]:
    """A realistic saved settings document for the settings target."""
    return {
        "theme": "light",
        "timezone": "Europe/Berlin",
        "chat_model": "llama3.2:3b",
        "calendar_event_weights": {f"Meeting {n}": n % 10 for n in range(20)},
        "calendar_sync_interval_minutes": 30,
    }


# --- the run ----------------------------------------------------------------------------------


def run(options: Options) -> dict[str, Any]:
    anchor = datetime.now(UTC).replace(microsecond=0)
    with ExitStack() as stack:
        url = stack.enter_context(fresh_database(options.admin_url))
        asyncio.run(_migrate(url))
        api = f"http://127.0.0.1:{free_port()}"
        api_env = _env(
            DATABASE_URL=url,
            SECRET_KEY=SECRET,
            ENVIRONMENT="production",
            JOBS_IN_PROCESS="false",
            ACCESS_TOKEN_MINUTES="240",
            # the baseline's pool: a fixed set of connections (an overflow above a pool's size
            # is opened and closed again with the load's ups and downs, a cost of its own)
            DATABASE_POOL_SIZE=str(options.pool_size),
            DATABASE_MAX_OVERFLOW="0",
        )
        serve = [sys.executable, "-m", "ai_workflow_engine", "serve", "--port"]
        stack.enter_context(server([*serve, api.rsplit(":", 1)[1]], api_env, api + "/health"))
        users = {name: register(api, name) for name in ("load", "small", "large")}
        check(api, users["load"], "PUT", "/api/v1/settings", json=saved_settings())
        started = time.perf_counter()
        with psycopg.connect(url, autocommit=True) as connection:
            seed_tasks(connection, users["load"].id, options.load_tasks, anchor)
            for name, count in (("small", options.scale_small), ("large", options.scale_large)):
                seed_tasks(connection, users[name].id, count, anchor)
                seed_events(connection, users[name].id, count, anchor)
            connection.execute("VACUUM ANALYZE")
        seeded = time.perf_counter() - started

        base = f"http://127.0.0.1:{free_port()}"
        baseline_cmd = [sys.executable, "-m", "bench.baseline_app", "--database", url]
        baseline_cmd += ["--secret-key", SECRET, "--port", base.rsplit(":", 1)[1]]
        baseline_cmd += ["--pool-size", str(options.pool_size)]
        baseline_url = f"{base}/?user_id={users['load'].id}"
        stack.enter_context(server(baseline_cmd, _env(), baseline_url))
        same_page = httpx.get(baseline_url).json() == check(
            api, users["load"], "GET", "/api/v1/tasks?limit=50"
        )

        throughput = measure_throughput(options, api, baseline_url, users["load"])
        scale = measure_scale(options, api, users["small"], users["large"], anchor)
        version = psycopg.connect(url).info.server_version
    return {
        "postgresql": f"{version // 10000}.{version % 10000}",
        "concurrency": options.concurrency,
        "pool_size": options.pool_size,
        "rounds": options.rounds,
        "duration_seconds": options.duration,
        "seed_seconds": round(seeded, 1),
        "baseline_page_equals_api_page": same_page,
        "throughput": throughput,
        "scale": scale,
    }


def measure_throughput(
    options: Options, api: str, baseline_url: str, user: BenchUser
) -> list[dict[str, Any]]:
    json_headers = user.headers | {"Content-Type": "application/json"}
    new_task = {
        "title": "Write the quarterly report",
        "description": "Numbers from finance, a summary for the board.",
        "priority": "high",
        "task_type": "general",
        "due_at": "2030-01-15T09:00:00Z",
        "estimated_minutes": 90,
    }
    common = {
        "concurrency": options.concurrency,
        "warmup": options.warmup,
        "duration": options.duration,
    }
    targets = [
        ("baseline (psycopg + orjson)", Spec(url=baseline_url, **common)),
        (
            "GET /api/v1/tasks?limit=50",
            Spec(url=api + "/api/v1/tasks?limit=50", headers=user.headers, **common),
        ),
        (
            "GET /api/v1/settings",
            Spec(url=api + "/api/v1/settings", headers=user.headers, **common),
        ),
        (
            "POST /api/v1/tasks",
            Spec(
                url=api + "/api/v1/tasks",
                method="POST",
                headers=json_headers,
                body=json.dumps(new_task).encode(),
                **common,
            ),
        ),
    ]
    figures = [Figures(name) for name, _ in targets]
    for _ in range(options.rounds):
        results = load([spec for _name, spec in targets])
        for result, target in zip(results, figures, strict=True):
            target.rounds.append(result)
    baseline = figures[0].median
    results = []
    for target in figures:
        chosen = target.median
        results.append(
            {
                "target": target.name,
                "throughput": chosen["throughput"],
                "p50_ms": chosen["p50_ms"],
                "p99_ms": chosen["p99_ms"],
                "p99_over_p50": round(chosen["p99_ms"] / max(chosen["p50_ms"], 1e-9), 2),
                "throughput_vs_baseline": round(chosen["throughput"] / baseline["throughput"], 3),
                "p50_vs_baseline": round(chosen["p50_ms"] / max(baseline["p50_ms"], 1e-9), 2),
                "statuses": chosen["statuses"],
                "errors": chosen["errors"],
                "throughput_rounds": [r["throughput"] for r in target.rounds],
            }
        )
    return results


def measure_scale(
    options: Options, api: str, small: BenchUser, large: BenchUser, anchor: datetime
) -> list[dict[str, Any]]:
    """p50 latency at concurrency 1 for the same request by a user with few and with many rows."""
    week_start = (anchor - timedelta(days=8)).isoformat().replace("+00:00", "Z")
    week_end = (anchor - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    due_after = anchor.isoformat().replace("+00:00", "Z")
    cases = [
        ("GET /api/v1/tasks?limit=50 (newest first)", "tasks", "/api/v1/tasks?limit=50"),
        (
            "GET /api/v1/tasks?limit=50&sort=due_at&due_after=... (index range)",
            "tasks",
            f"/api/v1/tasks?limit=50&sort=due_at&due_after={due_after}",
        ),
        (
            "GET /api/v1/calendar/events?start=&end= (one week)",
            "events",
            f"/api/v1/calendar/events?start={week_start}&end={week_end}",
        ),
    ]
    results = []
    for name, rows, path in cases:
        for user in (small, large):  # both answer a full page: the comparison is like for like
            page = check(api, user, "GET", path)
            assert len(page["items"]) == 50, (name, len(page["items"]))
        p50: dict[str, list[float]] = {"small": [], "large": []}
        specs = [
            Spec(
                url=api + path,
                headers=user.headers,
                concurrency=1,
                warmup=min(1.0, options.scale_duration / 2),
                duration=options.scale_duration,
            )
            for user in (small, large)
        ]
        for _ in range(options.rounds):
            small_result, large_result = load(specs)
            p50["small"].append(small_result["p50_ms"])
            p50["large"].append(large_result["p50_ms"])
        small_ms, large_ms = statistics.median(p50["small"]), statistics.median(p50["large"])
        results.append(
            {
                "target": name,
                "rows": rows,
                "small_rows": options.scale_small,
                "large_rows": options.scale_large,
                "small_p50_ms": small_ms,
                "large_p50_ms": large_ms,
                "ratio": round(large_ms / small_ms, 2),
            }
        )
    return results


# --- the report -------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(figures: dict[str, Any]) -> bool:
    """Print the figures and the verdict of each target; True when all pass."""
    all_pass = True
    print(
        f"API benchmark on PostgreSQL {figures['postgresql']}: one API process, "
        f"concurrency {figures['concurrency']}, {figures['pool_size']} database connections, "
        f"{figures['rounds']} round(s) of {figures['duration_seconds']} s per target "
        "(median round shown)"
    )
    if not figures["baseline_page_equals_api_page"]:
        print("  warning: the baseline's page differs from the API's page")
    print(
        f"  {'target':<30} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'p99/p50':>8} "
        f"{'vs baseline':>12} {'p50 vs base':>12}"
    )
    for row in figures["throughput"]:
        print(
            f"  {row['target']:<30} {row['throughput']:>9.1f} {row['p50_ms']:>8.2f} "
            f"{row['p99_ms']:>8.2f} {row['p99_over_p50']:>8.2f} "
            f"{row['throughput_vs_baseline']:>11.1%} {row['p50_vs_baseline']:>11.2f}x"
        )
        failed = sum(n for status, n in row["statuses"].items() if not status.startswith("2"))
        if failed or row["errors"]:
            all_pass = False
            print(f"    errors: {row['statuses']} {row['errors']}")
    for row in figures["throughput"][1:]:
        if row["target"].startswith("GET /api/v1/tasks"):
            ok = row["throughput_vs_baseline"] >= THROUGHPUT_TARGET
            all_pass &= ok
            print(
                f"  {verdict(ok)}  {row['target']} throughput {row['throughput_vs_baseline']:.1%} "
                f"of the baseline (target >= {THROUGHPUT_TARGET:.0%})"
            )
    for row in figures["throughput"][1:]:
        ok = row["p99_over_p50"] <= TAIL_TARGET
        all_pass &= ok
        print(
            f"  {verdict(ok)}  {row['target']} p99 {row['p99_over_p50']:.2f}x p50 "
            f"(target <= {TAIL_TARGET:g}x)"
        )
    print("scale: p50 latency at concurrency 1, a user with few rows vs one with many")
    for row in figures["scale"]:
        ok = row["ratio"] <= SCALE_TARGET
        all_pass &= ok
        print(
            f"  {verdict(ok)}  {row['target']}: {row['small_rows']:,} {row['rows']} "
            f"{row['small_p50_ms']:.2f} ms, {row['large_rows']:,} {row['rows']} "
            f"{row['large_p50_ms']:.2f} ms, ratio {row['ratio']:.2f}x (target <= {SCALE_TARGET}x)"
        )
    print(f"all targets: {verdict(all_pass)}")
    return all_pass


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database",
        default=os.environ.get("TEST_POSTGRES_URL", DEFAULT_ADMIN_URL),
        help="PostgreSQL admin URL; a fresh database is created from it and dropped after",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every target")
    parser.add_argument("--scale-small", type=int, default=1_000)
    parser.add_argument("--scale-large", type=int, default=100_000)
    parser.add_argument("--scale-duration", type=float, default=3.0)
    parser.add_argument(
        "--pool-size", type=int, default=10, help="database connections, baseline and API alike"
    )
    args = parser.parse_args(argv)
    if args.quick:
        return Options(
            admin_url=args.database,
            concurrency=args.concurrency,
            warmup=0.2,
            duration=0.5,
            rounds=1,
            scale_small=200,
            scale_large=2_000,
            scale_duration=0.3,
            pool_size=args.pool_size,
            load_tasks=200,
        )
    return Options(
        admin_url=args.database,
        concurrency=args.concurrency,
        warmup=args.warmup,
        duration=args.duration,
        rounds=args.rounds,
        scale_small=args.scale_small,
        scale_large=args.scale_large,
        scale_duration=args.scale_duration,
        pool_size=args.pool_size,
    )


def main(argv: list[str] | None = None) -> int:
    figures = run(parse_options(argv))
    report(figures)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
