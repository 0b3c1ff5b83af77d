"""End to end with the real npm `laravel-echo` and `socket.io-client@4` against a real server."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support import API_KEY, ROOT, ServerProcess, token

JS = ROOT / "tests" / "js"


async def run_node(script: Path, args: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
    """Run a Node script with one JSON argument and parse the JSON line it prints."""
    node = shutil.which("node")
    assert node, "node is required for the JS end-to-end tests"
    assert (JS / "node_modules" / "laravel-echo").is_dir(), "run `npm ci --prefix tests/js` (the README test command does)"
    proc = await asyncio.create_subprocess_exec(
        node, str(script), json.dumps(args), cwd=JS, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    lines = [line for line in out.decode().splitlines() if line.startswith("{")]
    assert lines, f"no JSON from {script.name}: {out.decode()[-2000:]} {err.decode()[-2000:]}"
    return dict(json.loads(lines[-1]))


@pytest.mark.parametrize("transports", [["websocket"], ["polling"]], ids=["websocket", "polling"])
async def test_echo_private_presence_whisper(server: ServerProcess, transports: list[str]) -> None:
    """Echo.private().listen, Echo.join() here/joining/leaving and whisper/listenForWhisper all work."""
    result = await run_node(
        JS / "echo_flow.mjs",
        {"url": server.url, "apiKey": API_KEY, "transports": transports,
         "tokens": {"a": token(42, name="Ann"), "b": token(43, name="Bob")}},
    )
    assert result["ok"], result
    seen = result["seen"]
    assert seen["transportA"] == transports[0]
    assert seen["order"] == {"order": {"id": 1}}
    assert seen["namespaced"] == {"order": {"id": 2}}
    assert seen["hereA"] == [{"id": 42, "name": "Ann"}]
    assert sorted(m["id"] for m in seen["hereB"]) == [42, 43]
    assert seen["joiningA"] == {"id": 43, "name": "Bob"}
    assert seen["whisperA"] == {"name": "B"}
    assert seen["leavingA"] == {"id": 43, "name": "Bob"}


async def test_recovery_helper_with_plain_client_and_echo(server_factory: Any, tmp_path: Path) -> None:
    """The shipped ES module helper replays missed events after a reconnect, for socket.io-client and for Echo, also on
    channels that had no event before the client went away."""
    rules = tmp_path / "rules.toml"
    rules.write_text('[[channels]]\npattern = "private-orders.{id}"\nallow = "authenticated"\n'
                     '[[channels]]\npattern = "private-user.{id}"\nallow = "user"\n')
    srv = server_factory(REALTIME_SIO_CONFIG_FILE=str(rules))
    result = await run_node(
        JS / "recovery_flow.mjs",
        {"url": srv.url, "apiKey": API_KEY, "tokens": {"plain": token(7), "echo": token(8), "quiet": token(9), "quietUser": 9}},
    )
    assert result["ok"], result
    assert result["seen"]["plain"] == list(range(22))
    assert result["seen"]["echo"] == list(range(22))
    assert result["seen"]["quietPlain"] == list(range(5)), "events to a quiet user channel sent while away were lost"
    assert result["seen"]["quietEcho"] == list(range(5)), "events to a quiet Echo channel sent while away were lost"
    assert result["seen"]["resets"] == []
