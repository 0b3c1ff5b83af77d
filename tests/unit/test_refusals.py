"""Refused client input (refusals.py): every refusal counted, one log line per reason per interval."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from realtime_sio import metrics as metrics_module
from realtime_sio.refusals import Refusals


def test_each_refusal_is_counted_and_a_flood_is_logged_once_per_interval() -> None:
    """1000 refusals of one reason in an interval: counted 1000 times, logged once; the next interval's line says
    how many went unlogged."""
    m = metrics_module.create(CollectorRegistry(), process=False)
    now = [0.0]
    refusals = Refusals(m, interval=60.0, clock=lambda: now[0])
    with capture_logs() as logs:
        for _ in range(1000):
            refusals("head_too_large", "limit is 16384 bytes")
        refusals("request_timeout", "body not complete after 30 s")
        now[0] = 61.0
        refusals("head_too_large", "limit is 16384 bytes")
    assert m.registry.get_sample_value("realtime_sio_bad_input_total", {"reason": "head_too_large"}) == 1001
    assert [(e["reason"], e["unlogged_before"]) for e in logs] == [("head_too_large", 0), ("request_timeout", 0), ("head_too_large", 999)]
    assert {e["event"] for e in logs} == {"client_input_refused"} and {e["log_level"] for e in logs} == {"info"}
