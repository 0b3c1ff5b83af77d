"""The server log guard's scanner (tests/support.py log_problems): what fails a test, what a test may declare."""

from __future__ import annotations

from tests.support import log_problems

INFO = '{"event": "server_started", "level": "info"}'
ERROR = '{"event": "websocket_request_failed", "level": "error"}'
WITH_TRACEBACK = '{"event": "handler_failed", "level": "warning", "exception": "Traceback (most recent call last):\\n..."}'
PLAIN = "ERROR aiohttp.server Error handling request\nTraceback (most recent call last):\n  File \"x.py\", line 1\nValueError: bad"


def test_info_json_lines_pass() -> None:
    """JSON lines below ERROR without a traceback are fine."""
    assert log_problems(INFO + "\n" + INFO + "\n") == []


def test_errors_tracebacks_and_plain_text_fail() -> None:
    """An ERROR line, a JSON line carrying a traceback and a plain-text record (with its traceback) are refused,
    one problem each."""
    problems = log_problems(f"{INFO}\n{ERROR}\n{WITH_TRACEBACK}\n{PLAIN}\n{INFO}")
    assert len(problems) == 3, problems
    assert "websocket_request_failed" in problems[0] and "handler_failed" in problems[1]
    assert "non-JSON output (4 lines)" in problems[2]


def test_declared_records_are_accepted() -> None:
    """A pattern found in a record's first line accepts that record, plain-text traceback included."""
    text = f"{ERROR}\n{PLAIN}"
    assert log_problems(text, {"websocket_request_failed", "aiohttp.server"}) == []
    assert len(log_problems(text, {"websocket_request_failed"})) == 1


def test_console_logs_fail_only_on_errors_and_tracebacks() -> None:
    """With console (non-JSON) logs, plain lines are expected; errors and tracebacks still fail."""
    assert log_problems("2026-01-01 [info     ] server_started\n", json_logs=False) == []
    assert len(log_problems(PLAIN, json_logs=False)) == 1
