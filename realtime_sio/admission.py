"""Admission control: whether this node takes a new connection now, or asks it to come back (a retryable 503).

A node that accepts every handshake of a thundering herd (a peer died, ~14,000 clients reconnect at once) slows
everyone down until handshakes time out and are retried, which costs more again (issue 14). New connections are
refused, cheaply and with ``server_busy`` (retryable), while

- the node is draining (``server_draining``),
- the event loop runs late by more than ``ADMISSION_MAX_LAG`` (measured by ``runtime_watch``): the node is saturated
  and each refused client retries after socket.io-client's backoff, spreading the herd over time,
- fewer than ``ADMISSION_FD_RESERVE`` descriptors remain below ``RLIMIT_NOFILE``: at the limit accept() fails and a
  client only sees a broken socket, with nothing logged or counted.

Sockets already connected, and long-polling requests of existing sessions, are never refused here.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable

from realtime_sio import errors, logs
from realtime_sio.errors import ErrorCode
from realtime_sio.metrics import Metrics
from realtime_sio.probes import Health

log = logs.get(__name__)

LAG_WINDOW = 1.0  # seconds a measured loop lag keeps counting against admission
FD_SAMPLE_EVERY = 0.25  # seconds between two counts of open descriptors
LOG_EVERY = 5.0  # seconds between two admission_refused log lines (the metric counts every refusal)


def open_descriptors() -> int:
    """How many file descriptors this process has open (Linux: /proc/self/fd).

    Linux 6.2 and later report the count as the directory's size: one ``stat``, whatever the count. Older kernels
    report 0 there; then the directory is listed (a string per descriptor: ~3 ms at 14,000 connections).
    """
    try:
        size = os.stat("/proc/self/fd").st_size
        return size if size > 0 else len(os.listdir("/proc/self/fd")) - 1  # less the listing's own descriptor
    except OSError:
        return 0


def descriptor_limit() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 30


def decide(draining: bool, lag: float, max_lag: float, free_descriptors: int, reserve: int) -> str | None:
    """The reason to refuse a new connection now, or ``None`` to admit it."""
    if draining:
        return "draining"
    if free_descriptors <= reserve:  # admitting one more would eat into the reserve
        return "descriptors"
    if max_lag > 0 and lag > max_lag:
        return "overloaded"
    return None


class Admission:
    """Decides on new connections from the node's state; counts and logs refusals."""

    def __init__(
        self,
        health: Health,
        metrics: Metrics,
        max_lag: float,
        fd_reserve: int,
        clock: Callable[[], float] = time.monotonic,
        count_descriptors: Callable[[], int] = open_descriptors,
        limit: int | None = None,
    ) -> None:
        self._health = health
        self._metrics = metrics
        self._max_lag = max_lag
        self._reserve = fd_reserve
        self._clock = clock
        self._count = count_descriptors
        self._limit = descriptor_limit() if limit is None else limit
        self._lag = 0.0
        self._lag_at = 0.0
        self._fds = 0
        self._fds_at = -FD_SAMPLE_EVERY
        self._admitted = 0  # connections admitted since the last count (each will hold a descriptor)
        self._refused_since_log = 0
        self._logged_at = -LOG_EVERY

    def observe_lag(self, lag: float) -> None:
        """Record a loop-lag measurement (runtime_watch calls this for every probe)."""
        now = self._clock()
        if lag >= self._lag or now - self._lag_at > LAG_WINDOW:
            self._lag, self._lag_at = lag, now

    def _recent_lag(self, now: float) -> float:
        return self._lag if now - self._lag_at <= LAG_WINDOW else 0.0

    def _free_descriptors(self, now: float) -> int:
        if now - self._fds_at >= FD_SAMPLE_EVERY:
            self._fds, self._fds_at, self._admitted = self._count(), now, 0
        return self._limit - self._fds - self._admitted

    def refuse(self) -> ErrorCode | None:
        """For a new connection: the error to answer with, or ``None`` when it is admitted."""
        now = self._clock()
        reason = decide(self._health.draining, self._recent_lag(now), self._max_lag, self._free_descriptors(now), self._reserve)
        if reason is None:
            self._admitted += 1
            return None
        self._metrics.admission_refused.labels(reason=reason).inc()
        if reason == "draining":
            return errors.SERVER_DRAINING
        self._refused_since_log += 1
        if now - self._logged_at >= LOG_EVERY:
            log.warning("admission_refused", reason=reason, refused=self._refused_since_log, lag_ms=round(self._recent_lag(now) * 1000))
            self._logged_at, self._refused_since_log = now, 0
        return errors.SERVER_BUSY
