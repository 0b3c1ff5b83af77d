"""Unit tests of settings loading (settings.py): defaults, parsing, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from realtime_sio.settings import (
    DEFAULT_CHANNEL_RULES,
    OPTIONS,
    Settings,
    SettingsError,
    load,
)


def test_defaults_need_nothing() -> None:
    """An empty environment gives the embedded single-node defaults."""
    s = load({})
    assert s == Settings() and s.port == 6001 and s.host == "127.0.0.1" and s.redis.url is None
    assert s.channel_rules == DEFAULT_CHANNEL_RULES


def test_values_are_parsed() -> None:
    """Typed values come from strings."""
    s = load({
        "REALTIME_SIO_PORT": "7000", "REALTIME_SIO_CORS_ORIGINS": "https://a.example, https://b.example",
        "REALTIME_SIO_WS_COMPRESSION": "yes", "REALTIME_SIO_JWT_SECRET": "x" * 32, "REALTIME_SIO_JWT_LEEWAY": "5",
    })
    assert s.port == 7000 and s.cors_origins == ("https://a.example", "https://b.example")
    assert s.engine.ws_compression is True and s.jwt.leeway_seconds == 5.0


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"REALTIME_SIO_PORT": "70000"}, "REALTIME_SIO_PORT='70000': expected an integer from 0 to 65535"),
        ({"REALTIME_SIO_LOG_FORMAT": "xml"}, "expected one of auto, json, console"),
        ({"REALTIME_SIO_API_KEY": "k" * 15}, "REALTIME_SIO_API_KEY: expected at least 16 characters"),
        ({"REALTIME_SIO_LOG_THROTTLE_LINES": "-1"}, "REALTIME_SIO_LOG_THROTTLE_LINES"),
        ({"REALTIME_SIO_WS_COMPRESSION": "maybe"}, "REALTIME_SIO_WS_COMPRESSION"),
        ({"REALTIME_SIO_CORS_ORIGINS": "app.example"}, "REALTIME_SIO_CORS_ORIGINS"),
        ({"REALTIME_SIO_JWT_ALGORITHMS": "HS256,RS256"}, "mix of HMAC and public-key"),
        ({"REALTIME_SIO_JWT_ALGORITHMS": "none"}, "REALTIME_SIO_JWT_ALGORITHMS"),
        ({"REALTIME_SIO_JWT_SECRET": "short"}, "at least 32 bytes"),
        ({"REALTIME_SIO_REDIS_URL": "http://x"}, "REALTIME_SIO_REDIS_URL"),
        ({"REALTIME_SIO_USER_ROOM": "private-user"}, "{id}"),
        ({"REALTIME_SIO_TYPO": "1"}, "unknown setting"),
        ({"REALTIME_SIO_JWT_PUBLIC_KEY_FILE": "/nonexistent.pem"}, "readable file"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], fragment: str) -> None:
    """Each bad value raises SettingsError mentioning the variable or the accepted values."""
    with pytest.raises(SettingsError) as info:
        load(env)
    assert fragment in str(info.value)


def test_secrets_not_in_repr() -> None:
    """repr(Settings) never shows secrets."""
    s = load({"REALTIME_SIO_JWT_SECRET": "x" * 40, "REALTIME_SIO_API_KEY": "k" * 20, "REALTIME_SIO_REDIS_URL": "redis://:pw@h:1"})
    assert "x" * 40 not in repr(s) and "k" * 20 not in repr(s) and "pw@" not in repr(s)


def test_rules_file(tmp_path: Path) -> None:
    """[[channels]] rules load from the TOML config file; bad rules name file and index."""
    good = tmp_path / "rules.toml"
    good.write_text('[[channels]]\npattern = "private-team.{team}"\nallow = "role"\n[[channels]]\npattern = "private-admin.*"\nallow = "roles"\nroles = ["admin"]\n')
    s = load({"REALTIME_SIO_CONFIG_FILE": str(good)})
    assert [r.allow for r in s.channel_rules] == ["role", "roles"]
    for body, fragment in [
        ('[[channels]]\npattern = "x"\nallow = "maybe"\n', "channels[0]: allow='maybe'"),
        ('[[channels]]\npattern = "private-x"\nallow = "public"\n', "cannot be public"),
        ('[[channels]]\npattern = "private-x"\nallow = "user"\n', "placeholder"),
        ("not toml ===", "invalid TOML"),
    ]:
        bad = tmp_path / "bad.toml"
        bad.write_text(body)
        with pytest.raises(SettingsError, match="REALTIME_SIO_CONFIG_FILE") as info:
            load({"REALTIME_SIO_CONFIG_FILE": str(bad)})
        assert fragment in str(info.value)


def test_every_option_has_help_and_unique_flag() -> None:
    """Every option documents itself and maps to a distinct flag and attribute."""
    assert len({o.flag for o in OPTIONS}) == len(OPTIONS) == len({o.attr for o in OPTIONS})
    assert all(o.help and o.accepts for o in OPTIONS)


def test_kubernetes_service_links() -> None:
    """Service-link variables are ignored; a service link shadowing REALTIME_SIO_PORT gets an explanation."""
    assert load({"REALTIME_SIO_SERVICE_HOST": "10.0.0.1", "REALTIME_SIO_PORT_6001_TCP_ADDR": "10.0.0.1"}).port == 6001
    with pytest.raises(SettingsError, match="enableServiceLinks"):
        load({"REALTIME_SIO_PORT": "tcp://10.0.0.1:6001"})
