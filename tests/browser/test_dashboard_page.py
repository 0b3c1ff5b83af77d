"""The /dashboard page in headless Chromium: sign-in, live view of a connected Echo page, refusals, screenshots."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import socketio

from tests.browser.harness import PageServer, publish, run_scenario
from tests.support import ROOT, Client, ServerProcess, token

DASHBOARD_TOKEN = "dashboard-test-token-0123456789"
# The issue asks for the browser's connection "within a second". Snapshots are pushed once per second; the test
# waits up to 5 s (a deadline, not a measurement) so a loaded 2-core CI machine does not make it flaky, and reports
# the observed time in the result instead of asserting on it.
APPEAR_DEADLINE_MS = 5_000
DOCS_SCREENSHOT = ROOT / "docs" / "images" / "dashboard.png"


async def test_dashboard_shows_browser_connection_and_refuses_wrong_token(
    server_factory: Callable[..., ServerProcess], page_server: PageServer, artifacts: str, clients: Callable[..., Client]
) -> None:
    """After signing in, the dashboard lists the Echo page's socket and channel by the deadline; wrong tokens get 401."""
    server = server_factory(REALTIME_SIO_CORS_ORIGINS=page_server.origin(), REALTIME_SIO_DASHBOARD_TOKEN=DASHBOARD_TOKEN)
    with pytest.raises(socketio.exceptions.ConnectionError):  # one refused connection for the Errors panel
        await clients(server.url).connect(auth={"token": "not-a-jwt"})

    async def action(body: dict[str, Any]) -> dict[str, Any]:
        await publish(server.url, "private-user.42", "OrderShipped", {"order_id": body["seq"]})
        return {"ok": True}

    page_server.on("publish", action)
    screenshot = Path(artifacts) / "dashboard.png"
    narrow = Path(artifacts) / "dashboard-narrow.png"
    result = await run_scenario(
        "dashboard",
        {
            "control": page_server.origin(),
            "origin": page_server.origin(),
            "server": server.url,
            "query": {
                "server": server.url,
                "token": token(42, name="Ada"),
                "private": "user.42",
                "public": "orders",
                "presence": "chat.lobby",
                "event": ".OrderShipped",
            },
            "expectChannel": "private-user.42",
            "token": DASHBOARD_TOKEN,
            "wrongToken": "not-the-dashboard-token",
            "screenshot": str(screenshot),
            "narrowScreenshot": str(narrow),
            "deadlineMs": APPEAR_DEADLINE_MS,
        },
    )
    print(f"dashboard showed the connection {result['appearedMs']} ms after sign-in")

    assert result["loginStatus"] == 200 and result["dashboardStatus"] == 200
    assert result["dashErrors"] == []
    assert result["rows"]["stream"] == "live"
    channels = {row[0]: row for row in result["rows"]["channels"]}
    assert channels["private-user.42"][1:3] == ["private", "1"]
    assert channels["presence-chat.lobby"][1:] == ["presence", "1", "1"]
    assert "orders" in channels
    assert ["auth", "token_malformed", "1"] in [[row[0], row[1], row[3]] for row in result["rows"]["errors"]]
    sockets = {row[0]: row for row in result["rows"]["connections"]}
    assert sockets[result["sid"]][1] == "42"
    assert result["narrow"]["scrollWidth"] <= result["narrow"]["innerWidth"], "the dashboard overflows a 360 px window"

    session = [c for c in result["cookies"] if c["name"] == "realtime_sio_dashboard"]
    assert session and session[0]["httpOnly"] and session[0]["sameSite"] == "Strict"
    assert not session[0]["holdsToken"]

    assert result["wrongForm"]["status"] == 401 and not result["wrongForm"]["dashboardShown"]
    assert "not valid" in result["wrongForm"]["message"]
    assert result["wrongBasicStatus"] == 401
    assert result["noCredentialStreamStatus"] == 401

    assert screenshot.stat().st_size > 10_000
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS"):  # refresh the README's picture on purpose, never as a side effect
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(screenshot, DOCS_SCREENSHOT)
