"""Refused client input at the transport edges: counted per reason, logged at most once per reason per interval.

A flood of bad requests (slow heads, oversize bodies, broken WebSocket frames) must neither fill the disk nor go
unseen: every refusal increments ``realtime_sio_bad_input_total{reason}`` and the first one of each reason in an
interval is logged as ``client_input_refused`` (info) with how many were left unlogged since the previous line.
Reasons form a closed set (the metric's label values): the error codes of ``errors.py`` and the names below.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from realtime_sio import logs
from realtime_sio.metrics import Metrics

log = logs.get(__name__)

# reasons that are not catalogue codes because the client sees a close code or nothing, not an HTTP answer
WEBSOCKET_PROTOCOL_ERROR = "websocket_protocol_error"
REQUEST_HEAD_TIMEOUT = "request_head_timeout"
CONNECT_TIMEOUT = "connect_timeout"  # an Engine.IO session that never connected a Socket.IO namespace
MALFORMED_PACKET = "malformed_packet"  # a Socket.IO/Engine.IO packet that does not decode or that no client sends


class Refusals:
    """``refusals(reason, detail)``: count one refused input; log it unless this reason was logged recently."""

    def __init__(self, metrics: Metrics, interval: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._metrics = metrics
        self._interval = interval
        self._clock = clock
        self._logged_at: dict[str, float] = {}  # _logged_at[reason] = clock() of its last log line
        self._suppressed: dict[str, int] = {}  # _suppressed[reason] = refusals not logged since that line

    def __call__(self, reason: str, detail: str) -> None:
        self._metrics.bad_input.labels(reason=reason).inc()
        now = self._clock()
        last = self._logged_at.get(reason)
        if last is not None and now - last < self._interval:
            self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
            return
        self._logged_at[reason] = now
        log.info("client_input_refused", reason=reason, detail=detail, unlogged_before=self._suppressed.pop(reason, 0))
