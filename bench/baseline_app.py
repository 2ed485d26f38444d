"""The ceiling the API is measured against: the task list query on the bare database driver.

The same 50-newest-tasks query, the same columns and the same JSON page as `GET /api/v1/tasks`,
from a minimal ASGI handler: psycopg 3 (the driver the service itself uses, so the difference is
the service's own cost and not a faster driver) with its connection pool, connections in
autocommit (one round trip a request), and orjson. No authentication, no validation, no
middleware. It is served by uvicorn exactly as `ai-workflow-engine serve` serves the API.

Usage: python -m bench.baseline_app --database URL --port PORT --secret-key KEY
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import orjson
import uvicorn
from psycopg_pool import AsyncConnectionPool

from ai_workflow_engine.core.pagination import CursorCodec

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

PAGE = 50
PRIORITIES = {1: "low", 2: "medium", 3: "high", 4: "urgent"}
COLUMNS = (
    "id",
    "title",
    "description",
    "status",
    "priority",
    "task_type",
    "category_id",
    "due_at",
    "estimated_minutes",
    "completed_at",
    "created_at",
    "updated_at",
)
QUERY = (
    f"SELECT {', '.join(COLUMNS)} FROM tasks WHERE user_id = %s "  # noqa: S608 - constant text
    "ORDER BY created_at DESC, id DESC LIMIT %s"
)
JSON_HEADERS = [(b"content-type", b"application/json")]


class BaselineApp:
    def __init__(self, database_url: str, secret_key: str, pool_size: int) -> None:
        self.pool = AsyncConnectionPool(
            database_url,
            min_size=pool_size,
            max_size=pool_size,
            kwargs={"autocommit": True},
            open=False,
        )
        self.codec = CursorCodec(secret_key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        user_id = int(parse_qs(scope["query_string"].decode())["user_id"][0])
        async with self.pool.connection() as connection:
            cursor = await connection.execute(QUERY, (user_id, PAGE + 1))
            rows = await cursor.fetchall()
        items = [dict(zip(COLUMNS, row, strict=True)) for row in rows[:PAGE]]
        for item in items:
            item["priority"] = PRIORITIES[item["priority"]]
        next_cursor = None
        if len(rows) > PAGE:
            last = items[-1]
            next_cursor = self.codec.encode(
                "tasks:-created_at", [last["created_at"].isoformat(), last["id"]]
            )
        body = orjson.dumps({"items": items, "next_cursor": next_cursor}, option=orjson.OPT_UTC_Z)
        headers = [*JSON_HEADERS, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.pool.open(wait=True)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="a libpq URL (postgresql://...)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret-key", required=True, help="signs next_cursor, as the API does")
    parser.add_argument("--pool-size", type=int, default=10)
    args = parser.parse_args()
    app = BaselineApp(args.database, args.secret_key, args.pool_size)
    uvicorn.run(
        app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False, workers=1
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
