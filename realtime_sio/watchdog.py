"""Rollback watchdog: polls a realtime_sio instance and runs a rollback command after N consecutive failed checks.

The migration plan's automatic rollback (section 4), as ``realtime-sio watchdog``: every ``--interval`` seconds it
GETs ``/health`` and, with ``--expect-traffic``, reads ``websocket_connections_total`` from ``/metrics``. After
``--max-failures`` failed checks in a row it runs ``--rollback-cmd`` once through the shell (with a timeout),
POSTs a JSON alert to ``--alert-webhook`` and exits 2 (3 if the rollback command failed). A passing check resets
the count. ``--max-checks`` ends the watch after that many checks with exit 0 (for tests and one-shot probes).

With ``--max-delivery-p99 SECONDS`` a check also fails when the 99th percentile of the estimated delivery latency
(``realtime_sio_delivery_estimated_seconds``, every source and protocol) over the deliveries since the previous check
is above the limit (issue 15): a migration step rolls back on latency, not only on health. A window with fewer than
``--min-deliveries`` deliveries is not judged (a p99 of a handful is noise).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import aiohttp
import structlog
from prometheus_client.parser import text_string_to_metric_families

from realtime_sio.histograms import quantile

CONNECTIONS_METRIC = "websocket_connections_total"
DELIVERY_METRIC = "realtime_sio_delivery_estimated_seconds"

EXIT_OK = 0  # --max-checks reached without a rollback
EXIT_ROLLED_BACK = 2  # the rollback command ran and exited 0
EXIT_ROLLBACK_FAILED = 3  # the rollback command exited non-zero or timed out

FailureCode = Literal[
    "health_status",  # /health answered, but not 200
    "health_unreachable",  # connection refused, DNS failure, reset
    "health_timeout",
    "metrics_status",
    "metrics_unreachable",
    "metrics_timeout",
    "metrics_unparseable",  # /metrics is not Prometheus text
    "metric_missing",  # websocket_connections_total absent (or NaN)
    "no_connections",  # websocket_connections_total == 0 while traffic is expected
    "delivery_p99",  # the estimated delivery latency's p99 since the previous check is above --max-delivery-p99
]

# _FETCH_FAILURES[check] = (timeout code, unreachable code)
_FETCH_FAILURES: dict[str, tuple[FailureCode, FailureCode]] = {
    "health": ("health_timeout", "health_unreachable"),
    "metrics": ("metrics_timeout", "metrics_unreachable"),
}

_log = structlog.get_logger("realtime_sio.watchdog")


@dataclass(frozen=True)
class Failure:
    """Why one check failed: a stable code and a human detail."""

    code: FailureCode
    detail: str


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check; ``ok`` when there is no failure."""

    at: float  # wall-clock time.time() when the check started
    failures: tuple[Failure, ...] = ()
    connections: float | None = None
    delivery_p99: float | None = None  # seconds, when --max-delivery-p99 is set and the window had enough deliveries

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass
class FailureCounter:
    """Counts consecutive failed checks; trips at ``max_failures``, and a passing check resets it."""

    max_failures: int
    streak: list[CheckResult] = field(default_factory=list)  # the current run of failed checks, oldest first

    def record(self, result: CheckResult) -> bool:
        """Add one check result; return True when the failure streak has reached ``max_failures``."""
        if result.ok:
            self.streak.clear()
            return False
        self.streak.append(result)
        return len(self.streak) >= self.max_failures

    @property
    def consecutive(self) -> int:
        return len(self.streak)


@dataclass(frozen=True)
class RollbackOutcome:
    """How the rollback command ended: its exit code, or ``timed_out`` when it was killed."""

    returncode: int | None
    timed_out: bool
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


@dataclass
class DeliveryWindow:
    """The estimated delivery latency histogram at the previous check, to judge only the deliveries since."""

    max_p99: float
    min_deliveries: int = 20
    previous: tuple[tuple[float, float], ...] = ()

    def judge(self, buckets: tuple[tuple[float, float], ...]) -> tuple[float | None, Failure | None]:
        """(p99 of the deliveries since the previous call or None when too few, and the Failure when above the limit)."""
        before = dict(self.previous)
        self.previous = buckets
        if before and buckets and buckets[-1][1] < before.get(math.inf, 0.0):
            before = {}  # the counters went back: the instance restarted; judge everything it counted since
        count = (buckets[-1][1] if buckets else 0.0) - before.get(math.inf, 0.0)
        if count < self.min_deliveries:
            return None, None
        p99 = quantile(0.99, buckets, tuple(before.items()))
        if p99 is not None and p99 > self.max_p99:
            detail = f"delivery p99 {p99 * 1000:.0f} ms over {count:.0f} deliveries > {self.max_p99 * 1000:.0f} ms"
            return p99, Failure("delivery_p99", detail)
        return p99, None


def parse_delivery_buckets(text: str) -> tuple[tuple[float, float], ...]:
    """Cumulative (upper bound, count) of ``realtime_sio_delivery_estimated_seconds``, every label summed, ascending.

    Raises ValueError when the text is not valid Prometheus exposition format.
    """
    totals: dict[float, float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == DELIVERY_METRIC + "_bucket":
                    bound = float(sample.labels["le"])
                    totals[bound] = totals.get(bound, 0.0) + sample.value
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        raise ValueError(f"not Prometheus text: {exc}") from exc
    return tuple(sorted(totals.items()))


def parse_connections(text: str) -> float | None:
    """Sum of the ``websocket_connections_total`` samples in Prometheus text; None when there is none (or NaN).

    Raises ValueError when the text is not valid Prometheus exposition format.
    """
    total: float | None = None
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == CONNECTIONS_METRIC and not math.isnan(sample.value):
                    total = (total or 0.0) + sample.value
    except (ValueError, IndexError, KeyError, TypeError) as exc:  # the parser's failure modes on malformed input
        raise ValueError(f"not Prometheus text: {exc}") from exc
    return total


async def _fetch(
    session: aiohttp.ClientSession, url: str, timeout: float, which: Literal["health", "metrics"]
) -> tuple[int, str] | Failure:
    """GET ``url``; the status and body, or the Failure (timeout / unreachable) for check ``which``."""
    timeout_code, unreachable_code = _FETCH_FAILURES[which]
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout), allow_redirects=False) as resp:
            return resp.status, await resp.text(errors="replace")
    except TimeoutError:  # before ClientError: aiohttp's timeout errors are both
        return Failure(timeout_code, f"GET {url}: no answer within {timeout:g} s")
    except (aiohttp.ClientError, OSError) as exc:
        return Failure(unreachable_code, f"GET {url}: {type(exc).__name__}: {exc}")


async def check_once(
    session: aiohttp.ClientSession,
    base_url: str,
    *,
    expect_traffic: bool,
    timeout: float,
    delivery: DeliveryWindow | None = None,
) -> CheckResult:
    """One check: /health must answer 200; with ``expect_traffic`` /metrics must show open connections; with
    ``delivery`` the estimated delivery p99 since the previous check must be within its limit."""
    started = time.time()
    base = base_url.rstrip("/")
    health = await _fetch(session, base + "/health", timeout, "health")
    if isinstance(health, Failure):
        return CheckResult(started, (health,))
    if health[0] != 200:
        return CheckResult(started, (Failure("health_status", f"GET {base}/health: HTTP {health[0]}"),))
    if not expect_traffic and delivery is None:
        return CheckResult(started)
    metrics = await _fetch(session, base + "/metrics", timeout, "metrics")
    if isinstance(metrics, Failure):
        return CheckResult(started, (metrics,))
    status, body = metrics
    if status != 200:
        return CheckResult(started, (Failure("metrics_status", f"GET {base}/metrics: HTTP {status}"),))
    try:
        connections = parse_connections(body)
        buckets = parse_delivery_buckets(body) if delivery is not None else ()
    except ValueError as exc:
        return CheckResult(started, (Failure("metrics_unparseable", str(exc)),))
    p99, slow = delivery.judge(buckets) if delivery is not None else (None, None)
    if slow is not None:
        return CheckResult(started, (slow,), connections, p99)
    if not expect_traffic:
        return CheckResult(started, (), connections, p99)
    if connections is None:
        return CheckResult(started, (Failure("metric_missing", f"{CONNECTIONS_METRIC} not in /metrics"),))
    if connections <= 0:
        return CheckResult(started, (Failure("no_connections", f"{CONNECTIONS_METRIC} is {connections:g}"),), connections, p99)
    return CheckResult(started, (), connections, p99)


async def watch(
    check: Callable[[], Awaitable[CheckResult]],
    counter: FailureCounter,
    *,
    interval: float,
    max_checks: int | None = None,
) -> list[CheckResult] | None:
    """Run ``check`` every ``interval`` seconds until ``counter`` trips or ``max_checks`` checks have run.

    Returns the failing streak that tripped the counter, or None when ``max_checks`` ran out first.
    """
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    done = 0
    while max_checks is None or done < max_checks:
        result = await check()
        done += 1
        tripped = counter.record(result)
        if result.ok:
            _log.info("watchdog_check_ok", check=done, connections=result.connections, delivery_p99=result.delivery_p99)
        else:
            _log.warning(
                "watchdog_check_failed",
                check=done,
                consecutive_failures=counter.consecutive,
                max_failures=counter.max_failures,
                reasons=[f.code for f in result.failures],
                detail="; ".join(f.detail for f in result.failures),
            )
        if tripped:
            return list(counter.streak)
        # Checks start on a fixed grid; a check slower than the interval starts the next one at once.
        next_at = max(next_at + interval, loop.time())
        await asyncio.sleep(next_at - loop.time())
    return None


async def run_rollback(command: str, timeout: float) -> RollbackOutcome:
    """Run ``command`` through the shell in its own process group; kill the group after ``timeout`` seconds.

    The command's output goes to the watchdog's own stdout/stderr (it is not captured or logged: it may print
    credentials).
    """
    started = time.monotonic()
    proc = await asyncio.create_subprocess_shell(command, stdin=asyncio.subprocess.DEVNULL, start_new_session=True)
    try:
        returncode = await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        _kill_group(proc.pid)
        await proc.wait()
        return RollbackOutcome(None, True, time.monotonic() - started)
    except asyncio.CancelledError:
        _kill_group(proc.pid)
        raise
    return RollbackOutcome(returncode, False, time.monotonic() - started)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


def alert_payload(url: str, streak: list[CheckResult], outcome: RollbackOutcome, now: float) -> dict[str, Any]:
    """The JSON body POSTed to the alert webhook (``text`` makes it readable by Slack-style incoming webhooks)."""
    codes = sorted({f.code for r in streak for f in r.failures})
    verdict = "rolled back" if outcome.ok else "ROLLBACK FAILED"
    return {
        "text": f"realtime_sio watchdog {verdict} after {len(streak)} failed checks of {url}: {', '.join(codes)}",
        "event": "watchdog_rollback",
        "url": url,
        "time": _iso(now),
        "consecutive_failures": len(streak),
        "failures": [
            {"time": _iso(r.at), "reasons": [{"code": f.code, "detail": f.detail} for f in r.failures]} for r in streak
        ],
        "rollback": {"succeeded": outcome.ok, "returncode": outcome.returncode, "timed_out": outcome.timed_out},
    }


async def send_alert(session: aiohttp.ClientSession, webhook: str, payload: dict[str, Any], timeout: float) -> bool:
    """POST ``payload`` as JSON to ``webhook``; True on a 2xx answer. Failures are logged, never raised."""
    try:
        async with session.post(webhook, json=payload, timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            if 200 <= resp.status < 300:
                _log.info("watchdog_alert_sent", status=resp.status)
                return True
            _log.error("watchdog_alert_failed", status=resp.status)
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        _log.error("watchdog_alert_failed", error=f"{type(exc).__name__}: {exc}")
    return False


def _positive(kind: type[int | float]) -> Callable[[str], Any]:
    def parse(raw: str) -> Any:
        try:
            value = kind(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {raw!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {raw!r}")
        return value

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``realtime-sio watchdog`` options to ``parser``."""
    parser.add_argument("--url", required=True, help="base URL of the instance, e.g. http://realtime-sio:6001")
    parser.add_argument("--interval", type=_positive(float), default=30.0, help="seconds between checks (default 30)")
    parser.add_argument(
        "--max-failures", type=_positive(int), default=3, help="consecutive failed checks that trigger the rollback (default 3)"
    )
    parser.add_argument("--rollback-cmd", required=True, help="shell command run once on rollback")
    parser.add_argument(
        "--rollback-timeout", type=_positive(float), default=300.0, help="seconds before the rollback command is killed (default 300)"
    )
    parser.add_argument("--alert-webhook", default=None, help="URL that receives a JSON alert after the rollback")
    parser.add_argument(
        "--expect-traffic",
        action="store_true",
        help=f"also fail a check when {CONNECTIONS_METRIC} in /metrics is 0",
    )
    parser.add_argument(
        "--max-delivery-p99",
        type=_positive(float),
        default=None,
        help=f"also fail a check when the p99 of {DELIVERY_METRIC} over the deliveries since the previous check is above "
        "this many seconds (e.g. 0.05)",
    )
    parser.add_argument(
        "--min-deliveries",
        type=_positive(int),
        default=20,
        help="deliveries a window needs before --max-delivery-p99 judges it (default 20)",
    )
    parser.add_argument("--timeout", type=_positive(float), default=5.0, help="seconds per HTTP request (default 5)")
    parser.add_argument(
        "--max-checks", type=_positive(int), default=None, help="stop with exit 0 after this many checks (default: run until rollback)"
    )


async def run(args: argparse.Namespace) -> int:
    """Watch until rollback (exit 2, or 3 if the rollback command failed) or ``--max-checks`` (exit 0)."""
    log = _log.bind(url=args.url)
    async with aiohttp.ClientSession() as session:
        log.info(
            "watchdog_started",
            interval=args.interval,
            max_failures=args.max_failures,
            expect_traffic=args.expect_traffic,
            max_checks=args.max_checks,
            max_delivery_p99=args.max_delivery_p99,
        )
        delivery = DeliveryWindow(args.max_delivery_p99, args.min_deliveries) if args.max_delivery_p99 else None

        async def check() -> CheckResult:
            return await check_once(session, args.url, expect_traffic=args.expect_traffic, timeout=args.timeout, delivery=delivery)

        streak = await watch(check, FailureCounter(args.max_failures), interval=args.interval, max_checks=args.max_checks)
        if streak is None:
            log.info("watchdog_finished", checks=args.max_checks)
            return EXIT_OK
        log.error("watchdog_rollback_started", consecutive_failures=len(streak), timeout=args.rollback_timeout)
        outcome = await run_rollback(args.rollback_cmd, args.rollback_timeout)
        if outcome.ok:
            log.warning("watchdog_rollback_finished", seconds=round(outcome.seconds, 3))
        else:
            log.error(
                "watchdog_rollback_failed",
                returncode=outcome.returncode,
                timed_out=outcome.timed_out,
                seconds=round(outcome.seconds, 3),
            )
        if args.alert_webhook:
            await send_alert(session, args.alert_webhook, alert_payload(args.url, streak, outcome, time.time()), args.timeout)
        return EXIT_ROLLED_BACK if outcome.ok else EXIT_ROLLBACK_FAILED
