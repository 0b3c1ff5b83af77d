"""Laravel Echo in headless Chromium over wss:// and https:// long-polling to a server that serves TLS itself, with
the test CA's leaf trusted through Chromium's --ignore-certificate-errors-spki-list (issue 13)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.browser.harness import PageServer, run_scenario
from tests.certs import Leaf, TestCA
from tests.support import API_KEY, ServerProcess, base_env, token

DEADLINE_MS = 15_000
CHANNEL = "private-user.42"


@pytest.fixture
def leaf() -> Leaf:
    return TestCA().issue()


@pytest.fixture
def tls_server(tmp_path: Path, leaf: Leaf, page_server: PageServer) -> Iterator[ServerProcess]:
    cert, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    leaf.write(cert, key)
    proc = ServerProcess(
        env=base_env(
            REALTIME_SIO_TLS_CERT_FILE=str(cert), REALTIME_SIO_TLS_KEY_FILE=str(key), REALTIME_SIO_CORS_ORIGINS=page_server.origin()
        )
    )
    proc.start()
    yield proc
    proc.kill()


def publisher(server: ServerProcess) -> Any:
    async def action(body: dict[str, Any]) -> dict[str, Any]:
        connector = aiohttp.TCPConnector(ssl=False)  # loopback publish from the test; the browser is what verifies
        async with aiohttp.ClientSession(connector=connector) as http:
            resp = await http.post(
                f"{server.url}/api/v1/events",
                json={"channel": CHANNEL, "event": "OrderShipped", "data": {"order_id": body["seq"]}},
                headers={"Authorization": f"Bearer {API_KEY}"},
            )
            assert resp.status == 200, await resp.text()
        return {"ok": True}

    return action


@pytest.mark.parametrize("transports", ["websocket", "polling"])
async def test_echo_page_over_tls_trusting_the_test_leaf(
    tls_server: ServerProcess, page_server: PageServer, leaf: Leaf, transports: str
) -> None:
    """Chromium trusting the leaf's public key connects Echo over wss:// (or https:// polling) and receives events."""
    page_server.on("publish", publisher(tls_server))
    query = {"server": tls_server.url, "token": token(42), "private": "user.42", "event": ".OrderShipped", "transports": transports}
    result = await run_scenario(
        "receive",
        {"control": page_server.origin(), "origin": page_server.origin(), "query": query, "publishes": 2,
         "deadlineMs": DEADLINE_MS, "chromiumArgs": [f"--ignore-certificate-errors-spki-list={leaf.spki_sha256}"]},
    )
    assert [e["data"]["order_id"] for e in result["events"] if e["channel"] == CHANNEL] == [1, 2]
    assert result["transport"] == transports


async def test_echo_page_refuses_an_untrusted_certificate(tls_server: ServerProcess, page_server: PageServer) -> None:
    """Without the SPKI flag Chromium refuses the test certificate: the browser really checks it."""
    query = {"server": tls_server.url, "token": token(42), "private": "user.42", "transports": "websocket"}
    with pytest.raises(AssertionError, match="the socket to connect"):
        await run_scenario(
            "receive", {"control": page_server.origin(), "origin": page_server.origin(), "query": query, "publishes": 0, "deadlineMs": 4000}
        )
