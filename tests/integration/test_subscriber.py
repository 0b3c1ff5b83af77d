"""The cluster bus's subscriber connection (cluster/subscriber.py) against a real redis-server: bulk reads in order,
credentials, Unix sockets and TLS from the URL, and a deadline on every wait."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from realtime_sio.cluster import subscriber as subscriber_module
from realtime_sio.cluster.subscriber import Subscription
from tests.certs import TestCA
from tests.support import RedisServer, eventually, free_port

CHANNEL = "rtsio-test:events"


@pytest.fixture
def redis_with(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """A redis-server started with the options the test is parametrised with."""
    server = RedisServer(extra=tuple(request.param))
    server.start()
    yield server
    server.stop()


async def publish(url: str, payloads: list[bytes], **options: object) -> None:
    client = aioredis.Redis.from_url(url, **options)  # type: ignore[arg-type]
    try:
        async with client.pipeline(transaction=False) as pipe:
            for payload in payloads:
                pipe.publish(CHANNEL, payload)
            await pipe.execute()
    finally:
        await client.aclose()


async def pinged(url: str) -> None:
    """Wait (at most 5 s) until Redis shows a client whose last command was PING."""
    client = aioredis.Redis.from_url(url)
    try:
        async with asyncio.timeout(5):
            while not any(c.get("cmd") == "ping" for c in await client.client_list()):
                await asyncio.sleep(0.02)
    finally:
        await client.aclose()


class Received:
    """What a started subscription hands over (``start``), batch by batch, with the task that handed each (None: the
    connection's read callback)."""

    def __init__(self, subscription: Subscription) -> None:
        self.batches: asyncio.Queue[tuple[list[bytes], asyncio.Task[object] | None]] = asyncio.Queue()
        subscription.start(lambda batch: self.batches.put_nowait((batch, asyncio.current_task())))

    async def collect(self, count: int) -> tuple[list[bytes], int]:
        """``count`` payloads and the largest number one batch held."""
        got: list[bytes] = []
        largest = 0
        self.tasks: list[asyncio.Task[object] | None] = []
        async with asyncio.timeout(10):
            while len(got) < count:
                batch, task = await self.batches.get()
                self.tasks.append(task)
                largest = max(largest, len(batch))
                got.extend(batch)
        return got, largest


async def collect(subscription: Subscription, count: int) -> tuple[list[bytes], int]:
    return await Received(subscription).collect(count)


async def test_messages_arrive_in_order_many_per_read(redis_server: RedisServer) -> None:
    """5,000 published messages come out in publish order, several per read (one parse loop per read), handed over in
    the read callback (a task in between would cost a loop iteration per read)."""
    subscription = await Subscription.open(redis_server.url, CHANNEL)
    try:
        received = Received(subscription)
        payloads = [b"%d {}" % n for n in range(5000)]
        await publish(redis_server.url, payloads)
        got, largest = await received.collect(len(payloads))
        assert got == payloads
        assert largest > 1
        assert set(received.tasks) == {None}, "handed over by a task, not the read callback"
    finally:
        await subscription.aclose()


async def test_messages_before_start_are_handed_over_first(redis_server: RedisServer) -> None:
    """What arrives between subscribing and ``start`` (the bus catches up from the streams meanwhile) is kept and
    handed over first, in order, then what comes later."""
    subscription = await Subscription.open(redis_server.url, CHANNEL)
    try:
        await publish(redis_server.url, [b"- early 1", b"- early 2"])
        await eventually(lambda: subscription.held == 2, what="the early messages to be read")
        received = Received(subscription)
        await publish(redis_server.url, [b"- late"])
        assert (await received.collect(3))[0] == [b"- early 1", b"- early 2", b"- late"]
    finally:
        await subscription.aclose()


@pytest.mark.parametrize("redis_with", [("--requirepass", "s3cret-pass")], indirect=True)
async def test_password_and_user_from_the_url(redis_with: RedisServer) -> None:
    """A password (and the user name, when given) in the URL authenticate; a wrong one is refused at open."""
    for url in (f"redis://:s3cret-pass@127.0.0.1:{redis_with.port}/0", f"redis://default:s3cret-pass@127.0.0.1:{redis_with.port}/0"):
        subscription = await Subscription.open(url, CHANNEL)
        try:
            await publish(url, [b"- hello"])
            assert (await collect(subscription, 1))[0] == [b"- hello"]
        finally:
            await subscription.aclose()
    with pytest.raises(RedisConnectionError, match="refused the connection: WRONGPASS"):
        await Subscription.open(f"redis://:wrong@127.0.0.1:{redis_with.port}/0", CHANNEL)


_SOCKET = os.path.join(tempfile.gettempdir(), f"rtsio-test-{os.getpid()}.sock")


@pytest.mark.parametrize("redis_with", [("--unixsocket", _SOCKET, "--unixsocketperm", "700")], indirect=True)
async def test_unix_socket_url(redis_with: RedisServer) -> None:
    """``unix://`` URLs connect through the socket file."""
    url = f"unix://{_SOCKET}?db=0"
    subscription = await Subscription.open(url, CHANNEL)
    try:
        await publish(url, [b"- over unix"])
        assert (await collect(subscription, 1))[0] == [b"- over unix"]
    finally:
        await subscription.aclose()


async def test_tls_url_verifies_against_the_given_ca(tmp_path: Path) -> None:
    """``rediss://`` with ``ssl_ca_certs`` connects over TLS and verifies Redis's certificate; without that CA the
    connection is refused (the system store does not know the test CA)."""
    ca = TestCA()
    ca_file = ca.write(tmp_path / "ca.pem")
    ca.issue().write(tmp_path / "redis.pem", tmp_path / "redis.key")
    tls_port = free_port()
    server = RedisServer(
        extra=(
            "--tls-port", str(tls_port), "--tls-cert-file", str(tmp_path / "redis.pem"), "--tls-key-file",
            str(tmp_path / "redis.key"), "--tls-ca-cert-file", str(ca_file), "--tls-auth-clients", "no",
        )
    )
    server.start()
    try:
        url = f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={ca_file}"
        subscription = await Subscription.open(url, CHANNEL)
        try:
            await publish(server.url, [b"- over tls"])
            assert (await collect(subscription, 1))[0] == [b"- over tls"]
        finally:
            await subscription.aclose()
        with pytest.raises(RedisConnectionError, match="CERTIFICATE_VERIFY_FAILED"):  # without the CA: refused
            await Subscription.open(f"rediss://127.0.0.1:{tls_port}/0", CHANNEL)
    finally:
        server.stop()


async def test_a_silent_redis_is_pinged_and_given_up_after_the_deadline(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A quiet but live Redis answers the subscriber's PING and the wait goes on; a Redis that stops answering (here:
    SIGSTOP, the TCP connection stays open) ends the wait with a ConnectionError instead of waiting forever."""
    monkeypatch.setattr(subscriber_module, "IDLE_PING", 0.2)
    subscription = await Subscription.open(redis_server.url, CHANNEL, timeout=1.0)
    try:
        received = Received(subscription)
        await pinged(redis_server.url)
        assert not subscription.ended.done() and received.batches.empty()  # the PONG is not a message
        await publish(redis_server.url, [b"- still here"])
        assert (await received.collect(1))[0] == [b"- still here"]
        assert redis_server.proc is not None
        redis_server.proc.send_signal(signal.SIGSTOP)
        try:
            with pytest.raises(RedisTimeoutError, match="no reply from Redis"):
                await asyncio.wait_for(subscription.ended, 5)
        finally:
            redis_server.proc.send_signal(signal.SIGCONT)
    finally:
        await subscription.aclose()


async def test_redis_going_away_ends_the_wait(redis_server: RedisServer) -> None:
    """When redis-server dies the subscription ends with ConnectionError (the bus then resubscribes and catches up)."""
    subscription = await Subscription.open(redis_server.url, CHANNEL)
    try:
        Received(subscription)
        redis_server.stop()
        with pytest.raises(RedisConnectionError, match="closed the connection"):
            await asyncio.wait_for(subscription.ended, 5)
    finally:
        await subscription.aclose()
