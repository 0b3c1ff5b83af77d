"""Dashboard settings: off by default, a short token is refused at start-up, the token stays out of reprs."""

from __future__ import annotations

import pytest

from realtime_sio import settings


def test_dashboard_is_off_by_default() -> None:
    """Without REALTIME_SIO_DASHBOARD_TOKEN there is no dashboard credential."""
    loaded = settings.load({})
    assert loaded.dashboard.token is None
    assert loaded.dashboard.max_streams == 8


def test_short_dashboard_token_is_refused_naming_the_variable() -> None:
    """A token under 16 characters fails with a message naming the variable."""
    with pytest.raises(settings.SettingsError, match="REALTIME_SIO_DASHBOARD_TOKEN"):
        settings.load({"REALTIME_SIO_DASHBOARD_TOKEN": "short"})


def test_dashboard_token_is_secret() -> None:
    """The token is marked secret (hidden in --help) and never appears in the settings repr."""
    token = "a-long-dashboard-token-value"
    loaded = settings.load({"REALTIME_SIO_DASHBOARD_TOKEN": token, "REALTIME_SIO_DASHBOARD_MAX_STREAMS": "3"})
    assert loaded.dashboard.token == token and loaded.dashboard.max_streams == 3
    assert token not in repr(loaded)
    assert settings.OPTIONS_BY_ENV["REALTIME_SIO_DASHBOARD_TOKEN"].secret
