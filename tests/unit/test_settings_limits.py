"""The deadlines and limits group of settings.py (Limits): defaults, parsing, refusals naming the variable."""

from __future__ import annotations

import pytest

from realtime_sio.settings import Limits, SettingsError, load


def test_every_deadline_has_a_default() -> None:
    """Without settings, heads and bodies have 30 s, a kept-alive connection 75 s, a Socket.IO connect 45 s, a head
    at most 16 KiB."""
    defaults = Limits(head_timeout=30.0, max_head_bytes=16_384, body_timeout=30.0, keepalive_timeout=75.0, connect_timeout=45.0)
    assert load({}).limits == defaults


def test_deadlines_are_read_into_the_http_group() -> None:
    """HEAD_TIMEOUT, MAX_HEAD_BYTES, BODY_TIMEOUT, KEEPALIVE_TIMEOUT and CONNECT_TIMEOUT land in Settings.limits."""
    settings = load({
        "REALTIME_SIO_HEAD_TIMEOUT": "5", "REALTIME_SIO_MAX_HEAD_BYTES": "8192", "REALTIME_SIO_BODY_TIMEOUT": "7.5",
        "REALTIME_SIO_KEEPALIVE_TIMEOUT": "120", "REALTIME_SIO_CONNECT_TIMEOUT": "10",
    })  # fmt: skip
    assert settings.limits == Limits(head_timeout=5.0, max_head_bytes=8192, body_timeout=7.5, keepalive_timeout=120.0, connect_timeout=10.0)


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"REALTIME_SIO_HEAD_TIMEOUT": "0"}, "REALTIME_SIO_HEAD_TIMEOUT='0': expected a number from 0.1 to 3600"),
        ({"REALTIME_SIO_MAX_HEAD_BYTES": "100"}, "REALTIME_SIO_MAX_HEAD_BYTES='100': expected an integer from 4096 to 1048576"),
        ({"REALTIME_SIO_BODY_TIMEOUT": "forever"}, "REALTIME_SIO_BODY_TIMEOUT='forever': expected a number"),
        ({"REALTIME_SIO_KEEPALIVE_TIMEOUT": "0"}, "REALTIME_SIO_KEEPALIVE_TIMEOUT='0': expected a number from 1 to 3600"),
    ],
)
def test_a_deadline_out_of_range_is_refused_naming_it(env: dict[str, str], fragment: str) -> None:
    """No deadline can be switched off or set absurdly: the error names the variable and the accepted range."""
    with pytest.raises(SettingsError) as raised:
        load(env)
    assert fragment in str(raised.value)
