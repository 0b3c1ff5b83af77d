"""Shared fixtures: real redis-server and realtime_sio processes on free ports, and recording clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from realtime_sio.cluster.script_calls import ScriptCalls
from tests.pusher_client import PusherClient
from tests.support import (
    STARTED,
    Client,
    RedisServer,
    ServerProcess,
    base_env,
    log_problems,
)

EXPECTED_LOG_ERRORS = pytest.StashKey[set[str]]()  # patterns a test declared, read by log_guard at teardown


@pytest.fixture
def expect_log_errors(request: pytest.FixtureRequest) -> Callable[..., None]:
    """``expect_log_errors("event_name", ...)``: server log records this test expects (see :func:`log_guard`)."""
    expected: set[str] = request.node.stash.setdefault(EXPECTED_LOG_ERRORS, set())
    return lambda *patterns: expected.update(patterns)


@pytest.fixture(autouse=True)
def log_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test when a server it used logged a traceback, an unexpected ERROR or (JSON logs) a non-JSON line.

    Every ServerProcess is scanned for what it wrote while the test ran, after the test's own fixtures have stopped
    the servers they started (this fixture is set up first, so it is torn down last). A test declares the records it
    provokes on purpose with ``@pytest.mark.expect_log_errors("event_name", ...)`` or the ``expect_log_errors``
    fixture; a pattern accepts a record when it occurs in the record's first line.
    """
    expected: set[str] = request.node.stash.setdefault(EXPECTED_LOG_ERRORS, set())
    for marker in request.node.iter_markers("expect_log_errors"):
        expected.update(marker.args)
    offsets = {id(proc): proc.complete_log_size() for proc in STARTED}
    yield
    problems: list[str] = []
    for proc in list(STARTED):
        proc.settle()  # what the test provoked is logged before its share of a shared server's log is read
        text = proc.log_since(offsets.get(id(proc), 0))
        problems += [f"{proc.log_path}: {p}" for p in log_problems(text, expected, proc.json_logs)]
        if not proc.running:
            STARTED.remove(proc)  # stopped: nothing more to scan
    if problems:
        pytest.fail("server log guard (tests/conftest.py log_guard):\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh redis-server on a free port; the test may stop() and start() it."""
    server = RedisServer()
    server.start()
    yield server
    server.stop() if server.proc is not None else None


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A redis-py asyncio client of :func:`redis_server`, closed after the test."""
    client = aioredis.Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture
async def script_calls(redis_server: RedisServer) -> AsyncIterator[Callable[..., ScriptCalls]]:
    """Make script calls (cluster/script_calls.py) to :func:`redis_server` (``timeout`` seconds per reply, 5 unless
    given); every one made is closed after the test."""
    made: list[ScriptCalls] = []

    def make(timeout: float = 5.0) -> ScriptCalls:
        made.append(ScriptCalls(redis_server.url, timeout))
        return made[-1]

    yield make
    for calls in made:
        await calls.aclose()


@pytest.fixture
def server_factory() -> Iterator[Callable[..., ServerProcess]]:
    """Start realtime_sio processes with extra settings; all are killed at teardown."""
    started: list[ServerProcess] = []

    def start(nofile: int | None = None, **env: str) -> ServerProcess:
        proc = ServerProcess(env=base_env(**env), nofile=nofile)
        proc.start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    """One embedded-mode server (no Redis) shared by a test module."""
    proc = ServerProcess(env=base_env())
    proc.start()
    yield proc
    proc.kill()


@pytest.fixture
async def clients() -> AsyncIterator[Callable[..., Client]]:
    """Make recording clients for a server URL; all are disconnected at teardown."""
    made: list[Client] = []

    def make(url: str, **kwargs: object) -> Client:
        client = Client(url, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


@pytest.fixture
async def pushers() -> AsyncIterator[Callable[..., PusherClient]]:
    """Make raw Pusher protocol clients (tests/pusher_client.py); all are closed at teardown."""
    made: list[PusherClient] = []

    def make(url: str, **kwargs: Any) -> PusherClient:
        client = PusherClient(url, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()

