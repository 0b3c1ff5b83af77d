"""deploy/nginx-realtime-sio.conf in a real nginx in front of a real realtime_sio (docs/deploy-vm.md set-up B):
Socket.IO over WebSocket and long-polling and the Pusher protocol WebSocket pass through over TLS; what must stay
private is not proxied."""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import pytest

from realtime_sio.auth.pusher_signature import signed_params
from tests.certs import TestCA
from tests.nginx import Nginx, free_ports, nginx_binary, site
from tests.pusher_client import APP_ID, APP_KEY, APP_SECRET, PUSHER_APPS, PusherClient
from tests.support import API_KEY, Client, ServerProcess, base_env, token

# The test clients' TLS transports may be finalised after their test's loop ends (see tests/integration/test_tls.py).
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture(scope="module")
def ca() -> TestCA:
    return TestCA()


@pytest.fixture(scope="module")
def backend() -> Iterator[ServerProcess]:
    """realtime_sio as set-up B runs it: plain HTTP on loopback, with a Pusher app."""
    proc = ServerProcess(env=base_env(REALTIME_SIO_HOST="127.0.0.1", REALTIME_SIO_PUSHER_APPS=PUSHER_APPS))
    proc.start()
    yield proc
    proc.kill()


@pytest.fixture(scope="module")
def nginx(backend: ServerProcess, ca: TestCA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    """The shipped site in nginx on loopback ports, serving the test CA's full chain; skipped without nginx."""
    binary = nginx_binary()
    if binary is None:
        reason = "nginx is not installed (Debian: apt-get install nginx-light; scripts/test.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("nginx-tls")
    cert, key = folder / "fullchain.pem", folder / "privkey.pem"
    ca.issue().write(cert, key)
    http_port, https_port = free_ports(2)
    proxy = Nginx(binary, site(backend.port, http_port, https_port, cert, key), https_port)
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture
async def https(ca: TestCA) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP session that trusts only the test root."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ca.client_context())) as session:
        yield session


def public_url(nginx: Nginx) -> str:
    return f"https://127.0.0.1:{nginx.https_port}"


async def publish_sidecar(backend: ServerProcess, channel: str, data: dict[str, Any]) -> None:
    """POST /api/v1/events over loopback, as Laravel on the same VM does."""
    async with aiohttp.ClientSession() as http:
        resp = await http.post(
            f"{backend.url}/api/v1/events", json={"channel": channel, "event": "tick", "data": data},
            headers={"Authorization": f"Bearer {API_KEY}"},
        )
        assert resp.status == 200, await resp.text()


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_socketio_client_through_nginx_receives_events(
    nginx: Nginx, backend: ServerProcess, https: aiohttp.ClientSession, clients: Callable[..., Client], transport: str
) -> None:
    """python-socketio over wss:// (or https:// long-polling) to nginx, which proxies /socket.io/ to the plain-HTTP
    backend: it connects on that transport and receives an event published over loopback."""
    client = clients(public_url(nginx), http_session=https)
    await client.connect(auth={"token": token(11)}, transports=[transport])
    assert client.sio.transport() == transport
    await client.joined("private-user.11")
    await publish_sidecar(backend, "private-user.11", {"via": "nginx"})
    (args,) = await client.wait_for("tick")
    assert args[:2] == ("private-user.11", {"via": "nginx"})


async def test_pusher_client_through_nginx_receives_events(
    nginx: Nginx, backend: ServerProcess, ca: TestCA, pushers: Callable[..., PusherClient]
) -> None:
    """A Pusher protocol client (as pusher-js / Echo's reverb broadcaster) opens wss://…/app/{key} through nginx,
    joins a private channel and receives an event Laravel POSTs to /apps/{id}/events over loopback."""
    client = pushers(public_url(nginx))
    await client.connect(ssl=ca.client_context())
    await client.joined("private-orders.3")
    path = f"/apps/{APP_ID}/events"
    body = json.dumps({"name": "OrderShipped", "channel": "private-orders.3", "data": json.dumps({"id": 3})}).encode()
    query = signed_params(APP_KEY, APP_SECRET, "POST", path, body, int(time.time()))
    async with aiohttp.ClientSession() as http:
        resp = await http.post(backend.url + path, params=query, data=body, headers={"Content-Type": "application/json"})
        assert resp.status == 200, await resp.text()
    (event,) = await client.wait_for("OrderShipped", channel="private-orders.3")
    assert json.loads(event["data"]) == {"id": 3}


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", f"/apps/{APP_ID}/events"), ("GET", f"/apps/{APP_ID}/channels"), ("POST", "/api/v1/events"),
     ("GET", "/metrics"), ("GET", "/health"), ("GET", "/dashboard")],
)
async def test_server_to_server_and_operator_routes_are_not_proxied(
    nginx: Nginx, https: aiohttp.ClientSession, method: str, path: str
) -> None:
    """The public port answers nginx's own 404 for the publishing APIs and the operator routes (they stay on
    loopback); the backend never sees the request."""
    async with https.request(method, public_url(nginx) + path, data=b"{}") as resp:
        assert resp.status == 404
        assert resp.headers["Server"].startswith("nginx")
        assert "nginx" in await resp.text()
