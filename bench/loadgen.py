"""A closed-loop HTTP/1.1 load generator: C keep-alive connections, each sending the next request
as soon as the previous answer is complete.

It runs as its own process, so that its CPU is not the server's: `python -m bench.loadgen
'<json list of specs>'` measures the specs one after the other and prints their results as one
JSON line. It speaks HTTP/1.1 over asyncio protocols with uvloop and httptools' response parser,
far cheaper per request than a general-purpose client, so that on a small machine the generator
is not what limits the figures.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

import httptools
import uvloop


@dataclass(frozen=True)
class Spec:
    url: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    concurrency: int = 32
    warmup: float = 2.0
    duration: float = 10.0

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Spec:
        return cls(**dict(values, body=values.get("body", "").encode()))

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__, body=self.body.decode())


class _Connection(asyncio.Protocol):
    """One keep-alive connection; `exchange` sends a request and waits for the whole answer."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._done: asyncio.Future[int] | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast("asyncio.Transport", transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_exception(ConnectionError("connection closed by the server"))
        if not self.lost.done():
            self.lost.set_result(None)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self._done is not None and not self._done.done():
                self._done.set_exception(exc)

    def on_message_complete(self) -> None:  # httptools callback
        if self._done is not None and not self._done.done():
            self._done.set_result(self._parser.get_status_code())

    async def exchange(self, request: bytes) -> int:
        assert self._transport is not None
        self._done = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return await self._done

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def _request_bytes(spec: Spec) -> tuple[str, int, bytes]:
    parts = urlsplit(spec.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"{spec.method} {target} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{name}: {value}" for name, value in spec.headers.items()]
    if spec.body or spec.method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(spec.body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return host, port, head + spec.body


async def run(spec: Spec) -> dict[str, Any]:
    """Warm up, then measure for `spec.duration` seconds; latencies are per request, in ms."""
    host, port, request = _request_bytes(spec)
    loop = asyncio.get_running_loop()
    connections = [
        (await loop.create_connection(_Connection, host, port))[1] for _ in range(spec.concurrency)
    ]
    latencies: list[int] = []
    statuses: dict[int, int] = {}
    errors: list[str] = []
    recording = False
    stop = False

    async def client(connection: _Connection) -> None:
        perf = time.perf_counter_ns
        while not stop:
            started = perf()
            try:
                status = await connection.exchange(request)
            except Exception as exc:  # reported with the figures, never a crash
                errors.append(f"{type(exc).__name__}: {exc}")
                return
            if recording:
                latencies.append(perf() - started)
                statuses[status] = statuses.get(status, 0) + 1

    tasks = [asyncio.create_task(client(connection)) for connection in connections]
    await asyncio.sleep(spec.warmup)
    recording = True
    started = time.perf_counter()
    await asyncio.sleep(spec.duration)
    recording = False
    elapsed = time.perf_counter() - started
    stop = True
    await asyncio.wait(tasks, timeout=10)
    for connection in connections:
        connection.close()
    latencies.sort()
    count = len(latencies)

    def percentile(p: float) -> float:
        if not latencies:
            return 0.0
        return latencies[min(count - 1, int(p / 100 * count))] / 1e6

    return {
        "requests": count,
        "seconds": round(elapsed, 3),
        "throughput": round(count / elapsed, 1),
        "p50_ms": round(percentile(50), 3),
        "p99_ms": round(percentile(99), 3),
        "max_ms": round(latencies[-1] / 1e6, 3) if latencies else 0.0,
        "statuses": {str(code): n for code, n in sorted(statuses.items())},
        "errors": errors[:5],
    }


async def run_all(specs: list[Spec]) -> list[dict[str, Any]]:
    return [await run(spec) for spec in specs]


def main() -> int:
    specs = [Spec.from_dict(values) for values in json.loads(sys.argv[1])]
    print(json.dumps(uvloop.run(run_all(specs))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
