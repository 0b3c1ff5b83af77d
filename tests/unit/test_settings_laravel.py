"""Settings for the Laravel paths: Pusher apps from the environment and [[apps]], Redis ingestion, delegated auth."""

from __future__ import annotations

from pathlib import Path

import pytest

from realtime_sio.settings import DEFAULT_CHANNEL_RULES, PusherApp, SettingsError, load

SECRET = "s" * 20


def test_pusher_apps_from_env() -> None:
    """id:key:secret pairs separated by commas; a secret may contain ':'."""
    settings = load({"REALTIME_SIO_PUSHER_APPS": f"1:key-a:{SECRET}, app-2:key-b:{SECRET}:x"})
    assert settings.pusher.apps == (PusherApp("1", "key-a", SECRET), PusherApp("app-2", "key-b", SECRET + ":x"))


def test_secrets_not_in_repr() -> None:
    """Neither the settings nor an app print their secret."""
    settings = load({"REALTIME_SIO_PUSHER_APPS": f"1:key-a:{SECRET}"})
    assert SECRET not in repr(settings) and SECRET not in repr(settings.pusher.apps[0])


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [("1:key", "expected id:key:secret"), ("1:key:short", "at least 16"), ("bad id:key:" + SECRET, "app id"), (f"1:k y:{SECRET}", "app key")],
)
def test_bad_pusher_apps(raw: str, fragment: str) -> None:
    """A malformed entry fails at start-up naming the variable."""
    with pytest.raises(SettingsError, match="REALTIME_SIO_PUSHER_APPS") as info:
        load({"REALTIME_SIO_PUSHER_APPS": raw})
    assert fragment in str(info.value)


def test_apps_from_config_file_keep_default_rules(tmp_path: Path) -> None:
    """[[apps]] in the TOML file add to the environment's apps; a file without [[channels]] keeps the default rules."""
    path = tmp_path / "c.toml"
    path.write_text(f'[[apps]]\nid = 7\nkey = "file-key"\nsecret = "{SECRET}"\n')
    settings = load({"REALTIME_SIO_CONFIG_FILE": str(path), "REALTIME_SIO_PUSHER_APPS": f"1:env-key:{SECRET}"})
    assert [a.key for a in settings.pusher.apps] == ["env-key", "file-key"]
    assert settings.pusher.apps[1].id == "7"
    assert settings.channel_rules == DEFAULT_CHANNEL_RULES


def test_duplicate_app_refused(tmp_path: Path) -> None:
    """The same app id (or key) twice is refused."""
    path = tmp_path / "c.toml"
    path.write_text(f'[[apps]]\nid = "1"\nkey = "other"\nsecret = "{SECRET}"\n')
    with pytest.raises(SettingsError, match="configured twice"):
        load({"REALTIME_SIO_CONFIG_FILE": str(path), "REALTIME_SIO_PUSHER_APPS": f"1:env-key:{SECRET}"})


def test_apps_may_name_their_own_allowed_origins(tmp_path: Path) -> None:
    """[[apps]] allowed_origins (Reverb's per-app setting) is kept on the app; apps without it have none."""
    path = tmp_path / "c.toml"
    path.write_text(f'[[apps]]\nid = "7"\nkey = "k7"\nsecret = "{SECRET}"\nallowed_origins = ["https://app.example.com", "*.example.org"]\n')
    settings = load({"REALTIME_SIO_CONFIG_FILE": str(path), "REALTIME_SIO_PUSHER_APPS": f"1:env-key:{SECRET}"})
    assert settings.pusher.apps[0].allowed_origins == ()
    assert settings.pusher.apps[1].allowed_origins == ("https://app.example.com", "*.example.org")


@pytest.mark.parametrize("body", ['[[apps]]\nid = "1"\nkey = "k"\n', f'[[apps]]\nid = "1"\nkey = "k"\nsecret = "{SECRET}"\nextra = 1\n', "apps = 3\n", "[other]\n",
                                  f'[[apps]]\nid = "1"\nkey = "k"\nsecret = "{SECRET}"\nallowed_origins = "https://a.example"\n',
                                  f'[[apps]]\nid = "1"\nkey = "k"\nsecret = "{SECRET}"\nallowed_origins = [""]\n'])
def test_bad_config_file_apps(body: str, tmp_path: Path) -> None:
    """Missing or unknown keys in [[apps]], or unknown top-level tables, name the file."""
    path = tmp_path / "c.toml"
    path.write_text(body)
    with pytest.raises(SettingsError, match="REALTIME_SIO_CONFIG_FILE"):
        load({"REALTIME_SIO_CONFIG_FILE": str(path)})


def test_laravel_auth_settings() -> None:
    """Delegated-auth settings parse with their documented defaults."""
    settings = load({"REALTIME_SIO_LARAVEL_AUTH_URL": "https://app.example/broadcasting/auth"})
    assert (settings.laravel.auth_timeout, settings.laravel.auth_cache_ttl, settings.laravel.auth_default) == (5.0, 0.0, True)
    with pytest.raises(SettingsError, match="REALTIME_SIO_LARAVEL_AUTH_URL"):
        load({"REALTIME_SIO_LARAVEL_AUTH_URL": "app.example/broadcasting/auth"})


def test_redis_ingest_settings() -> None:
    """Redis message limit and reconnect cap are bounded settings."""
    settings = load({"REALTIME_SIO_REDIS_MAX_MESSAGE_BYTES": "4096", "REALTIME_SIO_REDIS_RECONNECT_MAX": "2.5"})
    assert (settings.redis.max_message_bytes, settings.redis.reconnect_max) == (4096, 2.5)
    with pytest.raises(SettingsError, match="REALTIME_SIO_REDIS_RECONNECT_MAX"):
        load({"REALTIME_SIO_REDIS_RECONNECT_MAX": "0"})
