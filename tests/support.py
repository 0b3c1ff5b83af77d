"""Test helpers: real redis-server and realtime_sio processes on free ports, and deadline-based waiting clients."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import socketio

from realtime_sio.auth.tokens import mint
from realtime_sio.settings import JwtSettings

ROOT = Path(__file__).resolve().parent.parent
JWT_SECRET = "test-secret-" + "0123456789abcdef" * 4
API_KEY = "test-api-key-0042"
JWT = JwtSettings(secret=JWT_SECRET)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def token(user: str | int, roles: list[str] | None = None, name: str | None = None, ttl: int = 600) -> str:
    """A valid HS256 token for the test secret."""
    return mint(JWT, str(user), roles or [], name, ttl)


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true or raise after ``timeout`` seconds (blocking; for process start-up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Await until ``predicate`` is true, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class RedisServer:
    """A real redis-server on a free port that a test may stop and start again."""

    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    extra: tuple[str, ...] = ()  # more redis-server options, e.g. ("--requirepass", "pw")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no", *self.extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: _port_open(self.port), what=f"redis-server on {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None
        wait_until(lambda: not _port_open(self.port), what="redis-server to stop")


# Every ServerProcess started in this pytest process, in start order: the log guard (tests/conftest.py) scans what each
# wrote during a test, then forgets the ones that have exited.
STARTED: list[ServerProcess] = []
_ERROR_LEVELS = frozenset({"error", "critical", "exception", "fatal"})


def log_problems(text: str, expected: Collection[str] = (), json_logs: bool = True) -> list[str]:
    """What the log guard refuses in a server's log: tracebacks, ERROR lines and (with JSON logs) non-JSON lines.

    A record is one JSON line, or a plain-text line with the plain lines that follow it (a stdlib traceback).
    It is accepted when one of ``expected`` occurs in its first line (an event name, a logger name, a message).
    Returns one short description per refused record.
    """
    problems = []
    blocks: list[list[str]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        record = _json_object(line)
        if record is not None or not blocks or _json_object(blocks[-1][0]) is not None:
            blocks.append([line])
        else:
            blocks[-1].append(line)  # continuation of a plain-text record (traceback lines)
    for block in blocks:
        first = block[0]
        if any(pattern in first for pattern in expected):
            continue
        record = _json_object(first)
        if record is not None:
            level = str(record.get("level", "")).lower()
            if level in _ERROR_LEVELS or "exception" in record or "Traceback (most recent call last)" in first:
                problems.append(f"unexpected {level or 'error'} line: {first[:300]}")
            continue
        whole = "\n".join(block)
        if json_logs:
            problems.append(f"non-JSON output ({len(block)} lines): {whole[:500]}")
        elif "Traceback (most recent call last)" in whole or first.startswith(("ERROR", "CRITICAL")) or "[error" in first:
            problems.append(f"unexpected error output: {whole[:500]}")
    return problems


def _json_object(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@dataclass
class ServerProcess:
    """A real ``python -m realtime_sio serve`` process on a free port."""

    env: dict[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    nofile: int | None = None  # RLIMIT_NOFILE (soft and hard) of the process, for descriptor-budget tests
    event_loop: str = "uvloop"  # "asyncio": the CLI finds no uvloop and runs on asyncio's own loop
    log_path: Path = field(default_factory=lambda: Path(tempfile.mkstemp(prefix="realtime-sio-", suffix=".log")[1]))

    @property
    def tls(self) -> bool:
        """True when the server terminates TLS itself (``REALTIME_SIO_TLS_CERT_FILE`` is set)."""
        return bool(self.env.get("REALTIME_SIO_TLS_CERT_FILE"))

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("REALTIME_SIO_")}
        env.update(self.env)
        env["REALTIME_SIO_PORT"] = str(self.port)
        env.setdefault("REALTIME_SIO_LOG_FORMAT", "json")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self._command(), env=env, stdout=log, stderr=log, cwd=ROOT)
        STARTED.append(self)
        wait_until(self._healthy, timeout=20, what=f"realtime_sio on {self.port} (log {self.log_path})")

    def _command(self) -> list[str]:
        command = [sys.executable, "-m", "realtime_sio", "serve"]
        if self.event_loop == "asyncio":
            hide_uvloop = "import sys; sys.modules['uvloop'] = None; from realtime_sio.cli import main; sys.exit(main())"
            command = [sys.executable, "-c", hide_uvloop, "serve"]
        if self.nofile is not None:  # the hard limit too: the server lifts its soft limit to the hard one at start
            command = ["prlimit", f"--nofile={self.nofile}:{self.nofile}", "--", *command]
        return command

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"server exited with {self.proc.returncode}: {self.logs()[-2000:]}")
        return _port_open(self.port)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def json_logs(self) -> bool:
        return self.env.get("REALTIME_SIO_LOG_FORMAT", "json") == "json"

    def complete_log_size(self) -> int:
        """Bytes of the log up to its last complete line (a line being written is left for the next scan)."""
        data = self.log_path.read_bytes()
        return data.rfind(b"\n") + 1

    def log_since(self, offset: int) -> str:
        """The complete lines written after ``offset``."""
        data = self.log_path.read_bytes()
        return data[offset : data.rfind(b"\n") + 1].decode(errors="replace")

    def settle(self) -> None:
        """When running, wait (at most 2 s) for a /health answer: the loop has then handled what came before it."""
        if not self.running:
            return
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2):
                pass
        except OSError:
            pass  # a stopping or busy server: scan what it wrote

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM and wait; returns the exit status."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def base_env(**extra: str) -> dict[str, str]:
    """Settings every test server shares: the test secret and key, any origin, a short drain."""
    env = {
        "REALTIME_SIO_JWT_SECRET": JWT_SECRET,
        "REALTIME_SIO_API_KEY": API_KEY,
        "REALTIME_SIO_CORS_ORIGINS": "*",
        "REALTIME_SIO_DRAIN_SECONDS": "0.5",
        "REALTIME_SIO_LOG_LEVEL": "debug",
    }
    env.update(extra)
    return env


class Client:
    """A ``socketio.AsyncClient`` that records every event it receives, for deadline-based assertions."""

    def __init__(self, url: str, **client_kwargs: Any) -> None:
        self.url = url
        self.sio = socketio.AsyncClient(reconnection=client_kwargs.pop("reconnection", False), **client_kwargs)
        self.events: list[tuple[str, tuple[Any, ...]]] = []
        self.connect_errors: list[Any] = []
        self.sio.on("*", self._record)
        self.sio.on("connect_error", self.connect_errors.append)

    def _record(self, event: str, *args: Any) -> None:
        self.events.append((event, args))

    async def connect(self, auth: Any = None, transports: list[str] | None = None, headers: Mapping[str, str] | None = None, **kw: Any) -> None:
        await self.sio.connect(
            self.url, auth=auth, transports=transports or ["websocket"], headers=dict(headers or {}), wait_timeout=10, **kw
        )

    @property
    def sid(self) -> str:
        sid = self.sio.get_sid()
        assert sid is not None
        return sid

    def named(self, event: str) -> list[tuple[Any, ...]]:
        return [args for name, args in self.events if name == event]

    async def wait_for(self, event: str, count: int = 1, timeout: float = 10.0) -> list[tuple[Any, ...]]:
        await eventually(lambda: len(self.named(event)) >= count, timeout, f"{count} x {event!r} (got {self.events[-5:]})")
        return self.named(event)

    async def subscribe(self, channel: str, **extra: Any) -> None:
        await self.sio.emit("subscribe", {"channel": channel, **extra})

    async def joined(self, channel: str, timeout: float = 10.0, **extra: Any) -> dict[str, Any]:
        """Subscribe and wait for the server's ack; fails unless the join succeeded."""
        ack = await self.sio.call("subscribe", {"channel": channel, **extra}, timeout=timeout)
        assert isinstance(ack, dict) and ack.get("ok") is True, f"subscribe {channel!r} refused: {ack}"
        return ack

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()
        http = getattr(self.sio.eio, "http", None)  # left open by a connect attempt the server refused
        if http is not None and not http.closed:
            await http.close()


class ReadyProxy:
    """A TCP proxy standing in for a Kubernetes Service: each new connection goes to a backend whose /ready is 200."""

    def __init__(self, backends: list[ServerProcess]) -> None:
        self.backends = backends
        self.port = free_port()
        self._server: asyncio.base_events.Server | None = None
        self._next = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _ready_backend(self) -> ServerProcess | None:
        import aiohttp

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as http:
            for i in range(len(self.backends)):
                backend = self.backends[(self._next + i) % len(self.backends)]
                try:
                    if (await http.get(f"{backend.url}/ready")).status == 200:
                        self._next = (self._next + i + 1) % len(self.backends)
                        return backend
                except (TimeoutError, aiohttp.ClientError):
                    continue
        return None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        backend = await self._ready_backend()
        if backend is None:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", backend.port)
        except OSError:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
