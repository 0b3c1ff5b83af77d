"""Unit tests of the watchdog's pure parts: metrics parsing, failure counting, pacing loop, rollback, alert."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from realtime_sio import metrics as metrics_module
from realtime_sio import watchdog
from realtime_sio.watchdog import CheckResult, Failure, FailureCounter, RollbackOutcome

FAIL = CheckResult(0.0, (Failure("no_connections", "websocket_connections_total is 0"),))
OK = CheckResult(0.0, (), 3.0)


def _exposition(connections: float) -> str:
    m = metrics_module.create(CollectorRegistry(auto_describe=True))
    m.connections.set(connections)
    return m.exposition().decode()


def test_parse_connections_reads_the_servers_own_exposition() -> None:
    """parse_connections returns the gauge value from the text realtime_sio.metrics really exposes."""
    assert watchdog.parse_connections(_exposition(7)) == 7.0
    assert watchdog.parse_connections(_exposition(0)) == 0.0


def test_parse_connections_is_not_fooled_by_substrings() -> None:
    """A HELP text or a longer metric name containing 'websocket_connections_total 0' does not count."""
    text = (
        "# HELP other_metric mentions websocket_connections_total 0 in its help\n"
        "# TYPE other_metric gauge\n"
        "other_metric 1\n"
        "# TYPE websocket_connections_total_backup gauge\n"
        "websocket_connections_total_backup 0\n"
        "# TYPE websocket_connections_total gauge\n"
        "websocket_connections_total 12\n"
    )
    assert watchdog.parse_connections(text) == 12.0


def test_parse_connections_sums_labelled_samples() -> None:
    """Samples of the metric with different labels are added up."""
    text = '# TYPE websocket_connections_total gauge\nwebsocket_connections_total{transport="ws"} 2\nwebsocket_connections_total{transport="polling"} 3\n'
    assert watchdog.parse_connections(text) == 5.0


def test_parse_connections_missing_or_nan_is_none() -> None:
    """Without the metric, or with a NaN value, the result is None (reported as metric_missing)."""
    assert watchdog.parse_connections("# TYPE up gauge\nup 1\n") is None
    assert watchdog.parse_connections("websocket_connections_total NaN\n") is None


def test_parse_connections_rejects_garbage() -> None:
    """Text that is not Prometheus exposition format raises ValueError."""
    with pytest.raises(ValueError):
        watchdog.parse_connections("<html>502 Bad Gateway</html>\n")


def test_counter_trips_after_max_consecutive_failures() -> None:
    """The counter trips on the max_failures-th consecutive failure and keeps that streak."""
    counter = FailureCounter(3)
    assert [counter.record(FAIL) for _ in range(3)] == [False, False, True]
    assert counter.consecutive == 3 and counter.streak == [FAIL, FAIL, FAIL]


def test_counter_success_resets_the_streak() -> None:
    """A passing check between failures starts the count again."""
    counter = FailureCounter(3)
    results = [counter.record(r) for r in (FAIL, FAIL, OK, FAIL, FAIL)]
    assert results == [False] * 5 and counter.consecutive == 2


async def test_watch_returns_the_streak_that_tripped() -> None:
    """watch runs checks until max_failures consecutive failures and returns exactly those results."""
    script: Iterator[CheckResult] = iter([FAIL, OK, FAIL, FAIL, FAIL, OK])
    calls = 0

    async def check() -> CheckResult:
        nonlocal calls
        calls += 1
        return next(script)

    streak = await watchdog.watch(check, FailureCounter(3), interval=0.001)
    assert calls == 5 and streak == [FAIL, FAIL, FAIL]


async def test_watch_stops_after_max_checks() -> None:
    """With max_checks and no trip, watch returns None after exactly that many checks."""
    calls = 0

    async def check() -> CheckResult:
        nonlocal calls
        calls += 1
        return OK if calls % 2 else FAIL

    assert await watchdog.watch(check, FailureCounter(2), interval=0.001, max_checks=4) is None
    assert calls == 4


async def test_watch_keeps_the_interval_between_check_starts() -> None:
    """Checks start about `interval` apart, not back to back."""
    starts: list[float] = []

    async def check() -> CheckResult:
        starts.append(time.monotonic())
        return OK

    await watchdog.watch(check, FailureCounter(3), interval=0.05, max_checks=3)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(g >= 0.045 for g in gaps), gaps


async def test_rollback_runs_a_shell_command(tmp_path: Path) -> None:
    """run_rollback runs the command through the shell and reports its exit code."""
    marker = tmp_path / "rolled-back"
    ok = await watchdog.run_rollback(f"echo done > '{marker}' && exit 0", timeout=10)
    assert ok.ok and ok.returncode == 0 and marker.read_text() == "done\n"
    failed = await watchdog.run_rollback("exit 7", timeout=10)
    assert not failed.ok and failed.returncode == 7 and not failed.timed_out


async def test_rollback_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    """A command that outlives its timeout is killed with its children and reported as timed out."""
    pidfile = tmp_path / "child.pid"
    outcome = await watchdog.run_rollback(f"sleep 30 & echo $! > '{pidfile}'; wait", timeout=0.3)
    assert outcome.timed_out and not outcome.ok and outcome.seconds < 5
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child not yet reaped by its (also killed) shell is a zombie: dead for our purpose.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_alert_payload_names_url_time_and_reasons() -> None:
    """The alert JSON carries the URL, an ISO time, every failure reason and the rollback result."""
    streak = [
        CheckResult(1_700_000_000.0, (Failure("health_unreachable", "GET http://x/health: refused"),)),
        CheckResult(1_700_000_030.0, (Failure("health_timeout", "GET http://x/health: no answer"),)),
    ]
    body = watchdog.alert_payload("http://x", streak, RollbackOutcome(0, False, 1.5), 1_700_000_031.0)
    assert body["url"] == "http://x" and body["event"] == "watchdog_rollback"
    assert body["time"] == "2023-11-14T22:13:51+00:00"
    assert body["consecutive_failures"] == 2
    assert [r["code"] for f in body["failures"] for r in f["reasons"]] == ["health_unreachable", "health_timeout"]
    assert body["rollback"] == {"succeeded": True, "returncode": 0, "timed_out": False}
    assert "health_timeout" in body["text"] and "http://x" in body["text"]


def test_arguments_have_the_documented_defaults_and_reject_nonsense() -> None:
    """add_arguments gives the plan's defaults (30 s, 3 failures) and refuses a zero interval."""
    parser = argparse.ArgumentParser(exit_on_error=False)
    watchdog.add_arguments(parser)
    args = parser.parse_args(["--url", "http://h:6001", "--rollback-cmd", "true"])
    assert (args.interval, args.max_failures, args.timeout, args.expect_traffic, args.max_checks) == (30.0, 3, 5.0, False, None)
    with pytest.raises(argparse.ArgumentError):
        parser.parse_args(["--url", "u", "--rollback-cmd", "true", "--interval", "0"])


@pytest.fixture
async def stub_server() -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """A stand-in HTTP server whose /health status, /metrics body and delay the test sets (edge cases only; the
    integration tests use the real server)."""
    state: dict[str, Any] = {"health": 200, "metrics": _exposition(2), "delay": 0.0}

    async def health(_: web.Request) -> web.Response:
        await asyncio.sleep(state["delay"])
        return web.json_response({"status": "ok"}, status=state["health"])

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text=state["metrics"])

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    server = TestServer(app)
    await server.start_server()
    yield str(server.make_url("")).rstrip("/"), state
    await server.close()


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"health": 503}, "health_status"),
        ({"delay": 1.0}, "health_timeout"),
        ({"metrics": "<html>oops</html>\n"}, "metrics_unparseable"),
        ({"metrics": "# TYPE up gauge\nup 1\n"}, "metric_missing"),
        ({"metrics": _exposition(0)}, "no_connections"),
    ],
)
async def test_check_once_reports_each_failure_code(
    stub_server: tuple[str, dict[str, Any]], change: dict[str, Any], code: str
) -> None:
    """check_once turns a 503, a slow answer, garbage metrics, a missing metric and zero connections into their codes."""
    url, state = stub_server
    async with aiohttp.ClientSession() as session:
        assert (await watchdog.check_once(session, url, expect_traffic=True, timeout=0.3)).ok
        state.update(change)
        result = await watchdog.check_once(session, url, expect_traffic=True, timeout=0.3)
    assert [f.code for f in result.failures] == [code]


async def test_alert_to_an_unreachable_webhook_is_logged_not_raised() -> None:
    """send_alert returns False when the webhook cannot be reached, so the exit status still reports the rollback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with aiohttp.ClientSession() as session:
        assert await watchdog.send_alert(session, f"http://127.0.0.1:{port}/hook", {"text": "x"}, timeout=1) is False


def test_delivery_window_judges_only_the_deliveries_since_the_previous_check() -> None:
    """--max-delivery-p99: the p99 of the window since the last check; too few deliveries are not judged; a restart
    (counters back to lower values) is judged from zero."""
    window = watchdog.DeliveryWindow(max_p99=0.05, min_deliveries=20)
    inf = float("inf")
    fast = ((0.01, 100.0), (0.05, 100.0), (0.1, 100.0), (inf, 100.0))
    p99, failure = window.judge(fast)  # the first check: everything counted since the start
    assert failure is None and p99 is not None and p99 <= 0.01
    assert window.judge(fast) == (None, None)  # no new deliveries: not judged
    slow = ((0.01, 100.0), (0.05, 100.0), (0.1, 150.0), (inf, 150.0))  # 50 new ones, all in (0.05, 0.1]
    p99, failure = window.judge(slow)
    assert p99 is not None and 0.05 < p99 <= 0.1
    assert failure is not None and failure.code == "delivery_p99"
    few = ((0.01, 100.0), (0.05, 100.0), (0.1, 160.0), (inf, 160.0))  # 10 new slow ones: under min_deliveries
    assert window.judge(few) == (None, None)
    restarted = ((0.01, 30.0), (0.05, 30.0), (0.1, 30.0), (inf, 30.0))
    p99, failure = window.judge(restarted)
    assert failure is None and p99 is not None and p99 <= 0.01


def test_parse_delivery_buckets_sums_every_label() -> None:
    """The estimated delivery histogram's buckets, summed over source and protocol, ascending with +Inf last."""
    text = (
        "# TYPE realtime_sio_delivery_estimated_seconds histogram\n"
        'realtime_sio_delivery_estimated_seconds_bucket{le="0.05",protocol="websocket",source="http"} 3.0\n'
        'realtime_sio_delivery_estimated_seconds_bucket{le="+Inf",protocol="websocket",source="http"} 4.0\n'
        'realtime_sio_delivery_estimated_seconds_bucket{le="0.05",protocol="polling",source="redis"} 1.0\n'
        'realtime_sio_delivery_estimated_seconds_bucket{le="+Inf",protocol="polling",source="redis"} 1.0\n'
        'realtime_sio_delivery_estimated_seconds_count{protocol="websocket",source="http"} 4.0\n'
    )
    assert watchdog.parse_delivery_buckets(text) == ((0.05, 4.0), (float("inf"), 5.0))
