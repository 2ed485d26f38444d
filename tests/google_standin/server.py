"""Running the stand-in: on a loopback port in a background thread (for tests), or as a separate
process (for benchmarks) driven through its ``/_control`` endpoints."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import uvicorn
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.google_standin.app import create_app
from tests.google_standin.common import StandinConfig
from tests.google_standin.control import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_EMAIL,
    GoogleStandin,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


class _Urls:
    base_url: str

    @property
    def auth_uri(self) -> str:
        return self.base_url + "/o/oauth2/v2/auth"

    @property
    def token_uri(self) -> str:
        return self.base_url + "/token"

    @property
    def revoke_uri(self) -> str:
        return self.base_url + "/revoke"

    @property
    def calendar_api_base(self) -> str:
        return self.base_url + "/calendar/v3"


@dataclass(frozen=True)
class ConsentRedirect:
    """Where the consent screen sent the browser."""

    location: str
    code: str | None
    state: str | None
    error: str | None
    scope: str | None


@dataclass
class RunningStandin(_Urls):
    base_url: str
    control: GoogleStandin

    def consent(self, auth_url: str, *, timeout: float = 10.0) -> ConsentRedirect:
        """Play the browser: open ``auth_url`` and return where the 302 points.
        Raises ``AssertionError`` when the consent endpoint shows an error page instead."""
        response = httpx.get(auth_url, follow_redirects=False, timeout=timeout, trust_env=False)
        if response.status_code != 302:
            raise AssertionError(
                f"consent answered {response.status_code}, not a redirect: {response.text}"
            )
        location = response.headers["location"]
        query = parse_qs(urlsplit(location).query)

        def one(name: str) -> str | None:
            return query[name][0] if name in query else None

        return ConsentRedirect(location, one("code"), one("state"), one("error"), one("scope"))


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _uvicorn_config(app: ASGIApp, log_level: str, *, loop: str) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        http="h11",
        loop=loop,
        timeout_graceful_shutdown=1,
        timeout_keep_alive=30,
    )


class _Dispatch:
    """The ASGI app of a host: forwards to the stand-in currently installed."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self.app
        if app is None:
            response = PlainTextResponse("no stand-in installed", status_code=503)
            await response(scope, receive, send)
            return
        await app(scope, receive, send)


class StandinHost:
    """A uvicorn server on a loopback port in a background thread. Stand-ins are installed into
    it one at a time, so a test suite can reuse one server (and its port) for fresh state."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._dispatch = _Dispatch()
        self._sock = _bind(host, port)
        bound_host, bound_port = self._sock.getsockname()[:2]
        self.base_url = f"http://{bound_host}:{bound_port}"
        self._server = uvicorn.Server(_uvicorn_config(self._dispatch, "warning", loop="asyncio"))
        self._failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._serve, name="google-standin", daemon=True)
        self._thread.start()
        try:
            while not self._server.started:
                if self._failure or not self._thread.is_alive():
                    raise RuntimeError(f"the stand-in did not start: {self._failure}")
                self._thread.join(0.01)
        except BaseException:
            self.stop()
            raise

    def _serve(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        except BaseException as error:  # reported to the starting thread
            self._failure.append(error)

    def install(self, standin: GoogleStandin) -> RunningStandin:
        self._dispatch.app = create_app(standin)
        return RunningStandin(self.base_url, standin)

    def uninstall(self) -> None:
        self._dispatch.app = None

    def stop(self) -> None:
        self._dispatch.app = None
        self._server.should_exit = True
        self._thread.join(15)
        self._sock.close()


class StandinHostPool:
    """Idle hosts for reuse across tests (see ``fixtures.py``)."""

    def __init__(self) -> None:
        self._idle: list[StandinHost] = []
        self._all: list[StandinHost] = []
        self._lock = threading.Lock()

    def acquire(self) -> StandinHost:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        host = StandinHost()
        with self._lock:
            self._all.append(host)
        return host

    def release(self, host: StandinHost) -> None:
        host.uninstall()
        with self._lock:
            self._idle.append(host)

    def close(self) -> None:
        with self._lock:
            hosts, self._all, self._idle = self._all, [], []
        for host in hosts:
            host.stop()


@contextmanager
def run_standin(
    standin: GoogleStandin | None = None,
    *,
    config: StandinConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> Iterator[RunningStandin]:
    """Serve ``standin`` (default: a fresh seeded one) in a background thread until the block
    ends."""
    server = StandinHost(host, port)
    try:
        yield server.install(standin or GoogleStandin(config))
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------------
# separate process


class ControlClient:
    """HTTP client of a stand-in process's ``/_control`` endpoints."""

    def __init__(self, base_url: str, *, timeout: float = 120.0) -> None:
        self._http = httpx.Client(base_url=base_url + "/_control", timeout=timeout, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        payload = {k: v for k, v in (body or {}).items() if v is not None}
        response = self._http.request(
            method,
            path,
            json=payload if method != "GET" else None,
            params=payload if method == "GET" else None,
        )
        if response.status_code != 200:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json()

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/health")
        return result

    def mint_tokens(
        self,
        email: str | None = None,
        *,
        client_id: str | None = None,
        scopes: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "POST",
            "/tokens",
            {"email": email, "client_id": client_id, "scopes": list(scopes) if scopes else None},
        )
        return result

    def generate_events(
        self,
        count: int,
        *,
        calendar_id: str | None = None,
        spacing_minutes: float | None = None,
        duration_minutes: float | None = None,
        all_day_every: int | None = None,
    ) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "POST",
            "/events/generate",
            {
                "count": count,
                "calendar_id": calendar_id,
                "spacing_minutes": spacing_minutes,
                "duration_minutes": duration_minutes,
                "all_day_every": all_day_every,
            },
        )
        return result

    def churn_events(
        self,
        *,
        updates: int = 10,
        deletes: int = 0,
        adds: int = 0,
        calendar_id: str | None = None,
        seed: int | None = None,
    ) -> dict[str, list[str]]:
        result: dict[str, list[str]] = self._call(
            "POST",
            "/events/churn",
            {
                "updates": updates,
                "deletes": deletes,
                "adds": adds,
                "calendar_id": calendar_id,
                "seed": seed,
            },
        )
        return result

    def add_event(self, start: str, end: str, **fields: Any) -> str:
        return str(self._call("POST", "/events", {"start": start, "end": end, **fields})["id"])

    def update_event(self, event_id: str, **fields: Any) -> None:
        self._call("POST", "/events/update", {"event_id": event_id, **fields})

    def delete_event(self, event_id: str, *, calendar_id: str | None = None) -> None:
        self._call("POST", "/events/delete", {"event_id": event_id, "calendar_id": calendar_id})

    def invalidate_sync_tokens(self, calendar_id: str | None = None) -> None:
        self._call("POST", "/sync-tokens/invalidate", {"calendar_id": calendar_id})

    def expire_access_tokens(self, email: str | None = None) -> int:
        return int(self._call("POST", "/access-tokens/expire", {"email": email})["expired"])

    def revoke_grant(self, email: str, client_id: str | None = None) -> int:
        return int(
            self._call("POST", "/grants/revoke", {"email": email, "client_id": client_id})[
                "revoked"
            ]
        )

    def queue_consent(
        self,
        *,
        email: str | None = None,
        deny: bool = False,
        granted_scopes: Sequence[str] | None = None,
    ) -> None:
        self._call(
            "POST",
            "/consent",
            {
                "email": email,
                "deny": deny,
                "granted_scopes": list(granted_scopes) if granted_scopes else None,
            },
        )

    def add_fault(
        self,
        endpoint: str = "events",
        *,
        status: int | None = None,
        kind: str = "status",
        reason: str | None = None,
        seconds: float | None = None,
        times: int | None = 1,
        from_page: int | None = None,
        after: int = 0,
        retry_after: int | None = None,
    ) -> None:
        body: dict[str, Any] = {
            "endpoint": endpoint,
            "status": status,
            "kind": kind,
            "reason": reason,
            "seconds": seconds,
            "from_page": from_page,
            "after": after,
            "retry_after": retry_after,
        }
        response = self._http.post(
            "/faults", json={**{k: v for k, v in body.items() if v is not None}, "times": times}
        )
        if response.status_code != 200:
            raise RuntimeError(f"POST /faults: {response.status_code} {response.text}")

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def requests(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/requests", {"endpoint": endpoint})
        return result

    def clear_requests(self) -> None:
        self._call("DELETE", "/requests")

    def advance_clock(self, seconds: float) -> None:
        self._call("POST", "/clock/advance", {"seconds": seconds})

    def configure(self, **fields: Any) -> None:
        self._call("POST", "/config", fields)


@dataclass
class StandinProcess(_Urls):
    base_url: str
    process: subprocess.Popen[str]
    control: ControlClient
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def client_id(self) -> str:
        return str(self.info["client_id"])

    @property
    def client_secret(self) -> str:
        return str(self.info["client_secret"])

    @property
    def email(self) -> str:
        return str(self.info["email"])


@contextmanager
def spawn_standin_process(
    *,
    events: int = 0,
    port: int = 0,
    args: Sequence[str] = (),
    python: str = sys.executable,
    startup_timeout: float = 60.0,
) -> Iterator[StandinProcess]:
    """``python -m tests.google_standin --port PORT --events N ...`` as a child process; yields
    once it serves, terminates it afterwards."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    command = [
        python,
        "-m",
        "tests.google_standin",
        "--port",
        str(port),
        "--events",
        str(events),
        *args,
    ]
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, text=True, bufsize=1
    )
    control: ControlClient | None = None
    try:
        assert process.stdout is not None
        ready: list[str] = []
        reader = threading.Thread(
            target=lambda: ready.append(process.stdout.readline()),  # type: ignore[union-attr]
            daemon=True,
        )
        reader.start()
        reader.join(startup_timeout)
        if not ready or not ready[0].strip():
            raise RuntimeError(f"the stand-in process did not start (exit code {process.poll()})")
        info = json.loads(ready[0])
        control = ControlClient(info["base_url"])
        yield StandinProcess(info["base_url"], process, control, info)
    finally:
        if control is not None:
            control.close()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()


__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_EMAIL",
    "ConsentRedirect",
    "ControlClient",
    "RunningStandin",
    "StandinHost",
    "StandinHostPool",
    "StandinProcess",
    "pkce_pair",
    "run_standin",
    "spawn_standin_process",
]
