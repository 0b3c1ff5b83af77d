"""Laravel Echo in headless Chromium over wss:// and https:// long-polling to a server that serves TLS itself
(issue 13). Chromium trusts the test's root CA through an NSS database in a temporary HOME, the way an operator's
browser trusts an installed root; the server sends its full chain (leaf + intermediate)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.browser.harness import PageServer, run_scenario
from tests.certs import TestCA
from tests.support import API_KEY, ServerProcess, base_env, token

DEADLINE_MS = 15_000
CHANNEL = "private-user.42"
NSS_NICKNAME = "realtime-sio-test-ca"


@pytest.fixture
def ca() -> TestCA:
    return TestCA()


def certutil() -> str:
    """Path of NSS's certutil; skips (fails under CI) when libnss3-tools is not installed."""
    path = shutil.which("certutil")
    if path is None:
        reason = "certutil not found (libnss3-tools; run tests/browser/install.sh)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def nss_home(home: Path, trust: TestCA | None) -> Path:
    """A HOME for Chromium with an empty NSS database at .pki/nssdb, trusting ``trust``'s root for TLS servers."""
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    tool = certutil()
    subprocess.run([tool, "-d", f"sql:{db}", "-N", "--empty-password"], check=True, capture_output=True, timeout=30)
    if trust is not None:
        root = trust.write(home / "ca.pem")
        add = [tool, "-d", f"sql:{db}", "-A", "-t", "C,,", "-n", NSS_NICKNAME, "-i", str(root)]
        subprocess.run(add, check=True, capture_output=True, timeout=30)
        listed = subprocess.run([tool, "-d", f"sql:{db}", "-L"], check=True, capture_output=True, text=True, timeout=30)
        assert NSS_NICKNAME in listed.stdout, listed.stdout
    return home


@pytest.fixture
def tls_server(tmp_path: Path, ca: TestCA, page_server: PageServer) -> Iterator[ServerProcess]:
    cert, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    ca.issue().write(cert, key)
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
async def test_echo_page_over_tls_trusting_the_test_root(
    tls_server: ServerProcess, page_server: PageServer, ca: TestCA, tmp_path: Path, transports: str
) -> None:
    """Chromium whose NSS database trusts the test root connects Echo over wss:// (or https:// polling) to the
    server's full chain and receives events; no certificate flag is passed."""
    home = nss_home(tmp_path / "home", trust=ca)
    page_server.on("publish", publisher(tls_server))
    query = {"server": tls_server.url, "token": token(42), "private": "user.42", "event": ".OrderShipped", "transports": transports}
    result = await run_scenario(
        "receive",
        {"control": page_server.origin(), "origin": page_server.origin(), "query": query, "publishes": 2,
         "deadlineMs": DEADLINE_MS, "chromiumEnv": {"HOME": str(home)}},
    )
    assert [e["data"]["order_id"] for e in result["events"] if e["channel"] == CHANNEL] == [1, 2]
    assert result["transport"] == transports


@pytest.mark.parametrize("transports", ["websocket", "polling"])
async def test_echo_page_refuses_a_certificate_from_an_untrusted_root(
    tls_server: ServerProcess, page_server: PageServer, tmp_path: Path, transports: str
) -> None:
    """Chromium whose NSS database trusts another root never connects, and what fails is the certificate:
    net::ERR_CERT_AUTHORITY_INVALID on the server's wss:// (or https://) request."""
    home = nss_home(tmp_path / "home", trust=TestCA("some other root"))
    query = {"server": tls_server.url, "token": token(42), "private": "user.42", "transports": transports}
    result = await run_scenario(
        "tls_refused",
        {"origin": page_server.origin(), "query": query, "deadlineMs": DEADLINE_MS, "chromiumEnv": {"HOME": str(home)}},
    )
    assert result["connected"] is False, result
    server = tls_server.url.split("://")[1]
    refusals = [line for line in result["network"] if server in line]
    assert refusals, result
    assert all("net::ERR_CERT_AUTHORITY_INVALID" in line for line in refusals if "net::" in line), result
    assert any("net::ERR_CERT_AUTHORITY_INVALID" in line for line in refusals), result
