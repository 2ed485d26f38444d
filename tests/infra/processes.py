"""Processes the scale-out, fault and logging tests start: `ai-workflow-engine` commands, a private
redis-server. Each writes its output to a file of its own, handed back in failure messages.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from tests.backends import unavailable
from tests.conftest import TEST_SECRET
from tests.fixtures.pgbouncer import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 40.0
STOP_TIMEOUT = 10.0
# the variables a developer's shell could set for the service; the tests set their own
_SERVICE_VARIABLES = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ENVIRONMENT", "LOG_LEVEL")


def service_environment(**settings: str) -> dict[str, str]:
    """The environment of a child `ai-workflow-engine` process: this checkout's code first on
    PYTHONPATH, test defaults, then `settings` (names in upper case, as in production)."""
    env = {k: v for k, v in os.environ.items() if k not in _SERVICE_VARIABLES}
    paths = [str(REPO_ROOT / "src"), str(REPO_ROOT), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.update(
        {
            "ENVIRONMENT": "test",
            "SECRET_KEY": TEST_SECRET,
            "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "LOG_JSON": "true",
            "JOBS_IN_PROCESS": "false",
        }
    )
    env.update(settings)
    return env


def command(*args: str) -> list[str]:
    """`ai-workflow-engine ARGS` run by this interpreter (the same as the installed script)."""
    return [sys.executable, "-m", "ai_workflow_engine", *args]


def run_command(env: Mapping[str, str], *args: str, timeout: float = 120) -> str:
    """Run a command to completion; its output, or an AssertionError that shows it."""
    done = subprocess.run(
        command(*args),
        env=dict(env),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


class ServiceProcess:
    """One long-running command (`command("worker")`, `command("scheduler")`, ...)."""

    def __init__(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], log_dir: Path
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=REPO_ROOT,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def log_lines(self) -> list[str]:
        return [line for line in self.output().splitlines() if line.strip()]

    def describe(self) -> str:
        status = "running" if self.running else f"exited {self.process and self.process.poll()}"
        tail = "\n".join(self.output().splitlines()[-60:])
        return f"--- {self.name} ({status}), last lines of {self.log_path}:\n{tail}"

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)


class ApiProcess(ServiceProcess):
    """`ai-workflow-engine serve` (or another server given `argv(port)`) on a free loopback port."""

    def __init__(
        self,
        name: str,
        env: Mapping[str, str],
        log_dir: Path,
        argv: Callable[[int], Sequence[str]] | None = None,
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        if argv is None:
            line = command("serve", "--host", "127.0.0.1", "--port", str(self.port))
        else:
            line = list(argv(self.port))
        super().__init__(name, line, env, log_dir)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if not self.running:
                raise AssertionError(f"{self.name} exited while starting\n{self.describe()}")
            try:
                response = httpx.get(self.base_url + "/health/ready", timeout=2, trust_env=False)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.1)
        raise AssertionError(f"{self.name} not ready within {timeout}s ({last})\n{self.describe()}")


@contextmanager
def running_services(*services: ServiceProcess) -> Iterator[None]:
    """Start them all, wait for the APIs, stop them all at the end (in reverse order)."""
    try:
        for service in services:
            service.start()
        for service in services:
            if isinstance(service, ApiProcess):
                service.wait_ready()
        yield
    finally:
        for service in reversed(services):
            service.stop()


def find_redis_server() -> str:
    found = os.environ.get("REDIS_SERVER") or shutil.which("redis-server")
    if found is None:
        message = "redis-server is not installed (set REDIS_SERVER to its path)"
        unavailable(message)
    return found


class PrivateRedis:
    """A redis-server of the test's own on a fixed free port, which it may stop, pause (SIGSTOP:
    it accepts connections and never answers) and start again. Nothing is kept on disk unless
    `durable`."""

    def __init__(self, executable: str, workdir: Path, *, durable: bool = False) -> None:
        self.executable = executable
        self.workdir = workdir
        self.port = free_port()
        self.durable = durable
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = workdir / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.durable else []
        args = [
            self.executable,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            *persistence,
            "--dir",
            str(self.workdir),
            "--logfile",
            str(self.log_path),
        ]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"redis-server exited: {self.log_tail()}")
            if self.ping():
                return
            time.sleep(0.05)
        raise AssertionError(f"redis-server did not answer within {timeout}s: {self.log_tail()}")

    def ping(self) -> bool:
        import redis

        client = redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)  # a paused server cannot act on SIGTERM
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT)

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])
        except OSError:
            return "(no log)"


def delete_redis_keys(url: str, prefix: str) -> None:
    """Remove what a test's processes left under their key prefix in a shared Redis."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
