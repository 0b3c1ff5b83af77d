"""The lean WebSocket (engine/connection.py) and the connection router in front of aiohttp (engine/upgrade_router.py),
driven over real TCP: RFC 6455 framing, protocol violations, hand-off of everything else to aiohttp, ping deadlines."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
from typing import Any

import aiohttp

from tests.integration.test_channels import post_event
from tests.support import Client, ServerProcess, token

WS_PATH = "/socket.io/?EIO=4&transport=websocket"


class RawWebSocket:
    """A hand-rolled WebSocket client, so tests can send what real clients never would."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(
        cls,
        port: int,
        path: str = WS_PATH,
        headers: dict[str, str] | None = None,
        chunk: int = 0,
        ahead: bytes = b"",
        rcvbuf: int = 0,
    ) -> tuple[RawWebSocket, bytes]:
        """Connect and send an upgrade request (in ``chunk``-byte pieces when set, followed at once by ``ahead``);
        returns the client and the response head. ``rcvbuf`` shrinks the client's socket receive buffer."""
        sock = socket.socket()
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock)
        fields = {
            "Host": f"127.0.0.1:{port}",
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
            "Sec-WebSocket-Version": "13",
            **(headers or {}),
        }
        request = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n"
        data = request.encode() + ahead
        step = chunk or len(data)
        for i in range(0, len(data), step):
            writer.write(data[i : i + step])
            await writer.drain()
            if chunk:
                await asyncio.sleep(0.01)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        return cls(reader, writer), head

    def send_frame(self, opcode: int, payload: bytes, fin: bool = True, masked: bool = True, rsv: int = 0) -> None:
        self.writer.write(self.encode_frame(opcode, payload, fin, masked, rsv))

    @staticmethod
    def encode_frame(opcode: int, payload: bytes, fin: bool = True, masked: bool = True, rsv: int = 0) -> bytes:
        first = (0x80 if fin else 0) | rsv | opcode
        n = len(payload)
        if n < 126:
            head = bytes((first, (0x80 if masked else 0) | n))
        elif n < 65536:
            head = bytes((first, (0x80 if masked else 0) | 126)) + n.to_bytes(2, "big")
        else:
            head = bytes((first, (0x80 if masked else 0) | 127)) + n.to_bytes(8, "big")
        if masked:
            mask = os.urandom(4)
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            head += mask
        return head + payload

    def send_text(self, text: str) -> None:
        self.send_frame(0x1, text.encode())

    async def receive(self, timeout: float = 10) -> tuple[int, bytes]:
        """The next frame from the server as (opcode, payload); (-1, b"") at end of stream."""
        try:
            b0, b1 = await asyncio.wait_for(self.reader.readexactly(2), timeout)
        except asyncio.IncompleteReadError:
            return -1, b""
        assert not b1 & 0x80, "server frames are never masked"
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(await self.reader.readexactly(2), "big")
        elif n == 127:
            n = int.from_bytes(await self.reader.readexactly(8), "big")
        return b0 & 0x0F, await self.reader.readexactly(n)

    async def receive_text(self, timeout: float = 10) -> str:
        while True:
            opcode, payload = await self.receive(timeout)
            assert opcode in (0x1, 0x9, 0xA), f"expected text, got opcode {opcode}"
            if opcode == 0x1:
                return payload.decode()

    async def close_code(self, timeout: float = 10) -> int | None:
        """Read until the server's close frame; its status code (None when the stream ends without one)."""
        while True:
            opcode, payload = await self.receive(timeout)
            if opcode == -1:
                return None
            if opcode == 0x8:
                return int.from_bytes(payload[:2], "big")

    async def engineio_open(self) -> dict[str, Any]:
        text = await self.receive_text()
        assert text.startswith("0"), text
        return dict(json.loads(text[1:]))

    def close(self) -> None:
        self.writer.close()


async def connected_socket(server: ServerProcess, user: int = 1) -> RawWebSocket:
    ws, head = await RawWebSocket.open(server.port)
    assert head.startswith(b"HTTP/1.1 101"), head
    await ws.engineio_open()
    ws.send_text("40" + json.dumps({"token": token(user)}))
    reply = await ws.receive_text()
    assert reply.startswith("40{"), reply
    announced = await ws.receive_text()  # the automatic user room's position follows the CONNECT packet
    assert announced.startswith(f'42["recovery:position","private-user.{user}"'), announced
    return ws


async def test_upgrade_answers_101_with_the_rfc_accept_key(server: ServerProcess) -> None:
    """The 101 carries Sec-WebSocket-Accept for the client's key (RFC 6455 §4.2.2) and then the Engine.IO OPEN."""
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    ws, head = await RawWebSocket.open(server.port, headers={"Sec-WebSocket-Key": key})
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"\r\nServer:" not in head  # served by the lean WebSocket, not aiohttp (which always sends Server)
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in head
    opened = await ws.engineio_open()
    assert opened["upgrades"] == [] and "sid" in opened
    ws.close()


async def test_request_head_split_in_small_pieces_is_upgraded(server: ServerProcess) -> None:
    """A head that arrives a few bytes at a time is still read whole and upgraded."""
    ws, head = await RawWebSocket.open(server.port, chunk=7)
    assert head.startswith(b"HTTP/1.1 101")
    await ws.engineio_open()
    ws.close()


async def test_frames_sent_with_the_request_head_are_read_after_the_101(server: ServerProcess) -> None:
    """A client that sends frames right behind its request head gets the 101 first, then answers to those frames."""
    ws, head = await RawWebSocket.open(server.port, ahead=RawWebSocket.encode_frame(0x9, b"early"))
    assert head.startswith(b"HTTP/1.1 101")
    frames = [await ws.receive(), await ws.receive()]
    assert (0xA, b"early") in frames, frames
    assert any(op == 0x1 and payload.startswith(b"0{") for op, payload in frames), frames
    ws.close()


async def test_ping_frames_are_answered_and_fragments_reassembled(server: ServerProcess) -> None:
    """A WebSocket ping gets a pong with its payload; a Socket.IO packet split over three frames is one message."""
    ws = await connected_socket(server)
    ws.send_frame(0x9, b"are-you-there")
    assert await ws.receive() == (0xA, b"are-you-there")
    packet = "421" + json.dumps(["subscribe", {"channel": "fragments"}])  # ack id 1
    ws.send_frame(0x1, packet[:5].encode(), fin=False)
    ws.send_frame(0x9, b"mid")  # control frames may come between fragments
    assert await ws.receive() == (0xA, b"mid")
    ws.send_frame(0x0, packet[5:12].encode(), fin=False)
    ws.send_frame(0x0, packet[12:].encode())
    announced = await ws.receive_text()  # the channel's position comes before the ack (which repeats it)
    assert announced.startswith('42["recovery:position","fragments"'), announced
    ack = await ws.receive_text()
    assert ack.startswith("431") and '"ok": true' in ack.replace('":true', '": true'), ack
    await post_event(server.url, {"channel": "fragments", "event": "Joined", "data": 1})
    assert "Joined" in await ws.receive_text()
    ws.close()


async def test_protocol_violations_close_with_their_status_code(server: ServerProcess, clients: Any) -> None:
    """Each RFC 6455 violation closes only that connection, with the code the RFC assigns; others keep being served."""
    calm: Client = clients(server.url)
    await calm.connect(transports=["websocket"])
    await calm.joined("calm-ws")
    cases: list[tuple[str, dict[str, Any], int]] = [
        ("unmasked client frame", {"opcode": 0x1, "payload": b"40", "masked": False}, 1002),
        ("reserved bit set", {"opcode": 0x1, "payload": b"40", "rsv": 0x40}, 1002),
        ("unknown opcode", {"opcode": 0x3, "payload": b"x"}, 1002),
        ("continuation without a start", {"opcode": 0x0, "payload": b"x"}, 1002),
        ("fragmented control frame", {"opcode": 0x9, "payload": b"x", "fin": False}, 1002),
        ("text that is not UTF-8", {"opcode": 0x1, "payload": b"42\xff\xfe"}, 1007),
        ("message over MAX_MESSAGE_BYTES", {"opcode": 0x2, "payload": b"x" * 2_000_000}, 1009),
    ]
    for name, frame, code in cases:
        ws, _ = await RawWebSocket.open(server.port)
        await ws.engineio_open()
        ws.send_frame(**frame)
        assert await ws.close_code() == code, name
        assert await ws.receive() == (-1, b""), f"{name}: the server ends the TCP connection"
        ws.close()
    await post_event(server.url, {"channel": "calm-ws", "event": "StillHere", "data": 1})
    await calm.wait_for("StillHere")


async def test_invalid_close_frames_are_answered_with_a_protocol_error(server: ServerProcess) -> None:
    """Close codes no endpoint may send get 1002 (RFC 6455 §7.4.1), not an echo; a 1-byte close body gets 1002; a
    close reason that is not UTF-8 gets 1007; a valid code is echoed."""
    cases: list[tuple[bytes, int]] = [(code.to_bytes(2, "big"), 1002) for code in (1004, 1005, 1006, 1015, 1016, 2999)]
    cases += [(b"\x03", 1002), ((1000).to_bytes(2, "big") + b"\xff\xfe", 1007), ((4000).to_bytes(2, "big") + b"ok", 4000)]
    for payload, code in cases:
        ws, _ = await RawWebSocket.open(server.port)
        await ws.engineio_open()
        ws.send_frame(0x8, payload)
        assert await ws.close_code() == code, payload
        assert await ws.receive() == (-1, b""), f"{payload!r}: the server ends the TCP connection"
        ws.close()


async def test_other_websocket_versions_get_426_naming_version_13(server_factory: Any) -> None:
    """An upgrade asking for a WebSocket version other than 13 is answered 426 with Sec-WebSocket-Version: 13
    (RFC 6455 §4.4), with the lean WebSocket and with aiohttp's."""
    for lean in ("true", "false"):
        srv = server_factory(REALTIME_SIO_LEAN_WEBSOCKET=lean)
        for version in ("8", "12", "14"):
            ws, head = await RawWebSocket.open(srv.port, headers={"Sec-WebSocket-Version": version})
            assert head.startswith(b"HTTP/1.1 426 "), (lean, version, head)
            assert b"\r\nSec-WebSocket-Version: 13\r\n" in head, head
            ws.close()


async def test_a_complete_head_over_the_limit_in_one_read_is_refused_with_431(server: ServerProcess) -> None:
    """A valid upgrade whose head is over MAX_HEAD_BYTES gets 431, not 101, even when it arrives whole at once."""
    ws, head = await RawWebSocket.open(server.port, headers={"X-Padding": "p" * 20_000})
    assert head.startswith(b"HTTP/1.1 431 "), head
    ws.close()


async def open_sockets(url: str) -> float:
    async with aiohttp.ClientSession() as http:
        text = await (await http.get(f"{url}/metrics")).text()
    return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith("websocket_connections_total "))


async def test_client_close_frame_is_answered_and_the_socket_leaves(server_factory: Any) -> None:
    """A close frame from the client is echoed, the TCP connection ends, and the socket is gone from the server."""
    srv = server_factory()
    ws = await connected_socket(srv, user=7)
    assert await open_sockets(srv.url) == 1
    ws.send_frame(0x8, (1000).to_bytes(2, "big"))
    assert await ws.close_code() == 1000
    ws.close()
    deadline = asyncio.get_running_loop().time() + 10
    while await open_sockets(srv.url) != 0:
        assert asyncio.get_running_loop().time() < deadline, "socket still counted after the client closed"
        await asyncio.sleep(0.05)


async def test_everything_else_is_served_by_aiohttp(server: ServerProcess) -> None:
    """Plain requests, keep-alive, polling, malformed or unusual upgrades all reach aiohttp through the router."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /ready HTTP/1.1\r\nHost: x\r\n\r\n")
    first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert first.startswith(b"HTTP/1.1 200")
    length = int(next(line.split(b":")[1] for line in first.split(b"\r\n") if line.lower().startswith(b"content-length")))
    await reader.readexactly(length)
    second = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert second.startswith(b"HTTP/1.1 200"), "the second request on the kept-alive connection is answered too"
    writer.close()
    # Not ours to upgrade, so aiohttp answers (only aiohttp's answers carry a Server header): a key that is not 16
    # bytes, another path. (Another WebSocket version is refused by the router itself: 426, see below.)
    for headers, path in (({"Sec-WebSocket-Key": "c2hvcnQ="}, WS_PATH), ({}, "/nowhere?transport=websocket")):
        ws, head = await RawWebSocket.open(server.port, path=path, headers=headers)
        assert head.startswith(b"HTTP/1.1 4") and b"\r\nServer: realtime-sio\r\n" in head, (headers, path, head)
        ws.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"\x16\x03\x01 not http at all\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(100), 10)
    assert answer.startswith((b"HTTP/1.0 400", b"HTTP/1.1 400")), answer
    writer.close()
    async with aiohttp.ClientSession() as http:
        polled = await http.get(f"{server.url}/socket.io/?EIO=4&transport=polling")
        assert polled.status == 200 and (await polled.text()).startswith("0{")


async def test_refused_origin_gets_an_http_error_not_an_upgrade(server_factory: Any) -> None:
    """engineio's origin check applies to lean WebSockets: a foreign Origin gets 400 and no socket."""
    srv = server_factory(REALTIME_SIO_CORS_ORIGINS="https://forum.example")
    ws, head = await RawWebSocket.open(srv.port, headers={"Origin": "https://evil.example"})
    assert head.startswith(b"HTTP/1.1 400"), head
    ws.close()
    ws, head = await RawWebSocket.open(srv.port, headers={"Origin": "https://forum.example"})
    assert head.startswith(b"HTTP/1.1 101"), head
    ws.close()


async def test_silent_connection_is_closed_after_the_head_timeout(server_factory: Any) -> None:
    """A connection that never completes its request head is closed after REALTIME_SIO_HEAD_TIMEOUT."""
    srv = server_factory(REALTIME_SIO_HEAD_TIMEOUT="0.5")
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    writer.write(b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n")  # never finished
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()


async def test_unanswered_pings_end_the_socket(server_factory: Any) -> None:
    """A client that stops answering Engine.IO pings is closed once PING_TIMEOUT passes after a PING."""
    srv = server_factory(REALTIME_SIO_PING_INTERVAL="1", REALTIME_SIO_PING_TIMEOUT="1")
    ws = await connected_socket(srv)
    assert await ws.receive_text(timeout=5) == "2"  # PING, left unanswered
    code = await ws.close_code(timeout=10)
    assert code in (1000, None)
    ws.close()
    answering = await connected_socket(srv)
    for _ in range(3):  # a client that answers stays connected through several ping cycles
        assert await answering.receive_text(timeout=5) == "2"
        answering.send_text("3")
    answering.close()


async def test_a_node_paused_past_the_pong_deadline_keeps_the_client_that_answered(server_factory: Any) -> None:
    """The node is paused (SIGSTOP: a frozen VM or container) right after its PING, the client answers meanwhile, and
    the node resumes after the PONG deadline: the waiting PONG counts and the client stays. (A pause while the loop
    waits resumes in the read phase; a stall inside a callback, which resumes at the timers, is
    tests/unit/test_deadlines.py's stall case.)"""
    srv = server_factory(REALTIME_SIO_PING_INTERVAL="1", REALTIME_SIO_PING_TIMEOUT="1")
    assert srv.proc is not None
    ws = await connected_socket(srv)
    assert await ws.receive_text(timeout=5) == "2"  # PING
    os.kill(srv.proc.pid, signal.SIGSTOP)
    try:
        ws.send_text("3")  # the PONG reaches the node's socket while the node does not run
        await asyncio.sleep(2.5)  # the stall under test: longer than PING_TIMEOUT (not a wait for a condition)
    finally:
        os.kill(srv.proc.pid, signal.SIGCONT)
    for _ in range(2):  # still connected: the next ping cycles come and are answered
        assert await ws.receive_text(timeout=5) == "2"
        ws.send_text("3")
    ws.close()


async def test_aiohttp_websocket_path_still_serves_when_lean_is_off(server_factory: Any, clients: Any) -> None:
    """REALTIME_SIO_LEAN_WEBSOCKET=false: aiohttp's WebSocket serves sockets (order, binary and all) as before."""
    srv = server_factory(REALTIME_SIO_LEAN_WEBSOCKET="false")
    ws, head = await RawWebSocket.open(srv.port)
    assert head.startswith(b"HTTP/1.1 101")
    ws.close()
    client: Client = clients(srv.url)
    await client.connect(transports=["websocket"])
    await client.joined("plain")
    for n in range(20):
        await post_event(srv.url, {"channel": "plain", "event": "N", "data": n})
    got = await client.wait_for("N", count=20)
    assert [args[1] for args in got] == list(range(20))


async def test_flood_of_acked_pings_from_a_client_that_never_reads_harms_no_one_else(server: ServerProcess, clients: Any) -> None:
    """A client floods acked pings and never reads a reply; the server keeps serving other clients and stays healthy.

    (The server also stops reading such a client while its replies sit above the write high-water mark. In a manual
    run at log level warning, without that the server read 1M pings in 16 s and grew from 61 to 110 MB; with it the
    client was blocked after 0.37M and the server stayed at 63 MB. This test cannot tell the two apart: inside the
    test run the flooding client is blocked by the kernel buffers either way.)"""
    calm: Client = clients(server.url)
    await calm.connect(transports=["websocket"])
    await calm.joined("calm-flood")
    ws, _ = await RawWebSocket.open(server.port, rcvbuf=4096)
    await ws.engineio_open()
    ws.send_text("40" + json.dumps({"token": token(3)}))
    batch = b"".join(RawWebSocket.encode_frame(0x1, f'42{i}["ping"]'.encode()) for i in range(1000))
    for _ in range(300):  # 300,000 pings, or until the client cannot send any more
        ws.writer.write(batch)
        try:
            await asyncio.wait_for(ws.writer.drain(), 3)
        except TimeoutError:
            break
    await post_event(server.url, {"channel": "calm-flood", "event": "Fine", "data": 1})
    await calm.wait_for("Fine")
    assert await calm.sio.call("ping") == "pong"
    ws.writer.transport.abort()
