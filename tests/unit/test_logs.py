"""The log throttle and the stdlib record filters (logs.py)."""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import BadHttpMessage

from realtime_sio.logs import Throttle, _ClientErrorFilter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(lines: int = 3, seconds: float = 10.0) -> tuple[Throttle, Clock, list[tuple[str, int, float]]]:
    clock = Clock()
    reports: list[tuple[str, int, float]] = []
    return Throttle(lines, seconds, lambda key, count, window: reports.append((key, count, window)), clock), clock, reports


def test_first_lines_pass_then_the_rest_are_counted() -> None:
    """Per key: `lines` admitted per window, the rest suppressed and reported once when the next window starts."""
    throttle, clock, reports = make()
    assert [throttle.admit("a") for _ in range(5)] == [True, True, True, False, False]
    assert throttle.admit("b") is True  # keys are independent
    assert reports == []
    clock.now += 10
    assert throttle.admit("a") is True
    assert reports == [("a", 2, 10.0)]


def test_flush_reports_once_and_resets() -> None:
    """flush() (the end-of-window timer) reports the suppressed count once; a quiet key reports nothing."""
    throttle, _, reports = make(lines=1)
    throttle.admit("a")
    throttle.admit("a")
    throttle.flush("a")
    throttle.flush("a")
    throttle.flush("never-seen")
    assert reports == [("a", 1, 10.0)]


def test_zero_lines_means_no_limit() -> None:
    """lines=0 turns the throttle off."""
    throttle, _, reports = make(lines=0)
    assert all(throttle.admit("a") for _ in range(1000)) and reports == []


def _record(exc: BaseException | None, level: int = logging.ERROR) -> logging.LogRecord:
    info = (type(exc), exc, None) if exc is not None else None
    return logging.LogRecord("aiohttp.server", level, __file__, 1, "Error handling request from %s", ("1.2.3.4",), info)


def test_client_parse_errors_become_one_info_line() -> None:
    """aiohttp's ERROR + traceback for an unparsable request becomes info http_request_malformed without exc_info."""
    record = _record(BadHttpMessage("bad header"))
    assert _ClientErrorFilter(logging.INFO).filter(record) is True
    assert (record.levelno, record.getMessage(), record.exc_info) == (logging.INFO, "http_request_malformed", None)
    assert record.error == "BadHttpMessage"
    assert _ClientErrorFilter(logging.WARNING).filter(_record(BadHttpMessage("x"))) is False  # below LOG_LEVEL


def test_server_faults_keep_their_traceback() -> None:
    """Any other exception stays an ERROR with its traceback: that is a bug to see."""
    record = _record(RuntimeError("boom"))
    assert _ClientErrorFilter(logging.INFO).filter(record) is True
    assert record.levelno == logging.ERROR and record.exc_info is not None
