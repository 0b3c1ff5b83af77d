"""Shared fixtures: real redis-server and realtime_sio processes on free ports, and recording clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from tests.support import Client, RedisServer, ServerProcess, base_env


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh redis-server on a free port; the test may stop() and start() it."""
    server = RedisServer()
    server.start()
    yield server
    server.stop() if server.proc is not None else None


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
