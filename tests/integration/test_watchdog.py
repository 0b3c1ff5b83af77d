"""The rollback watchdog against a real realtime_sio server process and a real webhook receiver: green checks,
rollback on no connections, rollback when the server dies (through the `realtime-sio watchdog` CLI), failed rollback."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from realtime_sio import watchdog
from tests.support import ROOT, Client, ServerProcess, free_port

INTERVAL = 0.2


@dataclass
class Webhook:
    """A real HTTP endpoint that records the JSON alerts POSTed to it."""

    url: str
    alerts: list[dict[str, Any]] = field(default_factory=list)

    async def wait(self, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.alerts) < count:
            assert time.monotonic() < deadline, f"timed out waiting for {count} alert(s), got {self.alerts}"
            await asyncio.sleep(0.01)
        return self.alerts


@pytest.fixture
async def webhook() -> AsyncIterator[Webhook]:
    """An aiohttp server on a free port whose POST /alert records the JSON body."""
    hook = Webhook(url="")

    async def receive(request: web.Request) -> web.Response:
        hook.alerts.append(await request.json())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/alert", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    hook.url = f"http://127.0.0.1:{port}/alert"
    yield hook
    await runner.cleanup()


def make_args(url: str, marker: Path, **overrides: Any) -> argparse.Namespace:
    """Parsed `realtime-sio watchdog` arguments with test-speed timings; the rollback appends a line to marker."""
    parser = argparse.ArgumentParser()
    watchdog.add_arguments(parser)
    argv = ["--url", url, "--interval", str(INTERVAL), "--timeout", "2", "--rollback-cmd", f"echo rolled-back >> '{marker}'"]
    args = parser.parse_args(argv)
    for key, value in overrides.items():
        setattr(args, key, value)
    return args


async def run_watchdog(args: argparse.Namespace, timeout: float = 20.0) -> int:
    return await asyncio.wait_for(watchdog.run(args), timeout)


async def test_healthy_server_passes_every_check(server: ServerProcess, webhook: Webhook, tmp_path: Path) -> None:
    """Against a healthy server (traffic not expected) the watchdog runs its checks and exits 0 without rollback."""
    marker = tmp_path / "rollback"
    code = await run_watchdog(make_args(server.url, marker, max_checks=3, alert_webhook=webhook.url))
    assert code == watchdog.EXIT_OK
    assert not marker.exists() and webhook.alerts == []


async def test_open_connection_satisfies_expect_traffic(server: ServerProcess, clients: Callable[..., Client], tmp_path: Path) -> None:
    """With a real Socket.IO client connected, websocket_connections_total > 0 keeps --expect-traffic checks green."""
    client = clients(server.url)
    await client.connect()
    marker = tmp_path / "rollback"
    code = await run_watchdog(make_args(server.url, marker, max_checks=3, expect_traffic=True))
    assert code == watchdog.EXIT_OK and not marker.exists()


async def test_no_connections_while_traffic_expected_rolls_back_once(
    server_factory: Callable[..., ServerProcess], webhook: Webhook, tmp_path: Path
) -> None:
    """A server with no connections fails --expect-traffic checks; after 3 the rollback runs once, the webhook gets
    the reasons, URL and time, and the exit status is 2."""
    srv = server_factory()
    marker = tmp_path / "rollback"
    started = time.time()
    code = await run_watchdog(make_args(srv.url, marker, expect_traffic=True, max_failures=3, alert_webhook=webhook.url))
    assert code == watchdog.EXIT_ROLLED_BACK
    assert marker.read_text() == "rolled-back\n"
    (alert,) = await webhook.wait()
    assert alert["url"] == srv.url and alert["consecutive_failures"] == 3
    assert [r["code"] for f in alert["failures"] for r in f["reasons"]] == ["no_connections"] * 3
    assert alert["rollback"] == {"succeeded": True, "returncode": 0, "timed_out": False}
    assert datetime.fromisoformat(alert["time"]).timestamp() >= int(started)


async def test_server_death_rolls_back_through_the_cli(
    server_factory: Callable[..., ServerProcess], webhook: Webhook, tmp_path: Path
) -> None:
    """`realtime-sio watchdog` passes while the server runs; once the server is killed, three unreachable checks
    trigger the rollback command and the alert, and the CLI exits 2."""
    srv = server_factory()
    marker = tmp_path / "rollback"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REALTIME_SIO_")}
    env["REALTIME_SIO_LOG_FORMAT"] = "json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "realtime_sio", "watchdog",
        "--url", srv.url, "--interval", str(INTERVAL), "--timeout", "1", "--max-failures", "3",
        "--rollback-cmd", f"echo rolled-back >> '{marker}'", "--alert-webhook", webhook.url,
        cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    events: list[dict[str, Any]] = []
    try:
        await _read_events_until(proc, events, "watchdog_check_ok", timeout=15)
        srv.kill()
        await _read_events_until(proc, events, "watchdog_rollback_finished", timeout=15)
        assert await asyncio.wait_for(proc.wait(), 15) == watchdog.EXIT_ROLLED_BACK
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert marker.read_text() == "rolled-back\n"
    failed = [e for e in events if e["event"] == "watchdog_check_failed"]
    assert [e["consecutive_failures"] for e in failed] == [1, 2, 3]
    assert all(e["reasons"] == ["health_unreachable"] for e in failed)
    (alert,) = await webhook.wait()
    assert {r["code"] for f in alert["failures"] for r in f["reasons"]} == {"health_unreachable"}


async def _read_events_until(proc: asyncio.subprocess.Process, events: list[dict[str, Any]], name: str, timeout: float) -> None:
    """Read the CLI's JSON log lines into ``events`` until one named ``name`` arrives (or fail at the deadline)."""
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    while not any(e.get("event") == name for e in events):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {name!r} within {timeout}s; got {[e.get('event') for e in events]}"
        line = await asyncio.wait_for(proc.stderr.readline(), remaining)
        assert line, f"watchdog exited before {name!r}: {[e.get('event') for e in events]}"
        if line.startswith(b"{"):
            events.append(json.loads(line))


async def test_failed_rollback_command_exits_3_and_says_so(webhook: Webhook, tmp_path: Path) -> None:
    """When nothing answers and the rollback command itself fails, the exit status is 3 and the alert says so."""
    dead = f"http://127.0.0.1:{free_port()}"
    args = make_args(dead, tmp_path / "unused", max_failures=2, alert_webhook=webhook.url)
    args.rollback_cmd = "exit 9"
    assert await run_watchdog(args) == watchdog.EXIT_ROLLBACK_FAILED
    (alert,) = await webhook.wait()
    assert alert["rollback"] == {"succeeded": False, "returncode": 9, "timed_out": False}
    assert "ROLLBACK FAILED" in alert["text"]
