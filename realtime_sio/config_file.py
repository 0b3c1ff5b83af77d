"""The TOML config file (``REALTIME_SIO_CONFIG_FILE``): ``[[channels]]`` rules and ``[[apps]]`` Pusher apps.

Parsed once at start-up by :func:`realtime_sio.settings.load`; every error names the file and the entry.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from realtime_sio.settings import (
    PREFIX,
    RULE_KINDS,
    ChannelRule,
    PusherApp,
    SettingsError,
    pusher_app,
)


@dataclass(frozen=True)
class ConfigFile:
    """What the TOML config file holds."""

    channel_rules: tuple[ChannelRule, ...] | None  # None: the file has no [[channels]], the defaults stay
    apps: tuple[PusherApp, ...]


def load_config_file(path: str) -> ConfigFile:
    """Read ``[[channels]]`` rules and ``[[apps]]`` (``id``, ``key``, ``secret``) from a TOML file.

    Raises :class:`SettingsError` naming the file and the entry.
    """
    var = f"{PREFIX}CONFIG_FILE={path!r}"
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise SettingsError(f"{var}: expected a readable TOML file ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{var}: invalid TOML ({exc})") from None
    unknown = set(data) - {"channels", "apps"}
    if unknown:
        raise SettingsError(f"{var}: unknown top-level keys {sorted(unknown)} (expected [[channels]], [[apps]])")
    rules: tuple[ChannelRule, ...] | None = None
    if "channels" in data:
        entries = data["channels"]
        if not isinstance(entries, list):
            raise SettingsError(f"{var}: expected [[channels]] tables")
        rules = tuple(parse_rule(entry, f"{var} channels[{i}]") for i, entry in enumerate(entries))
    apps = data.get("apps", [])
    if not isinstance(apps, list):
        raise SettingsError(f"{var}: expected [[apps]] tables")
    return ConfigFile(rules, tuple(_parse_app(entry, f"{var} apps[{i}]") for i, entry in enumerate(apps)))


def _parse_app(entry: Any, where: str) -> PusherApp:
    if not isinstance(entry, dict) or set(entry) != {"id", "key", "secret"}:
        raise SettingsError(f"{where}: expected a table with exactly id, key and secret")
    return pusher_app(where, entry["id"], entry["key"], entry["secret"])


def load_rules_file(path: str) -> tuple[ChannelRule, ...]:
    """Read ``[[channels]]`` rules from a TOML file (none → ``()``); raises :class:`SettingsError`."""
    return load_config_file(path).channel_rules or ()


def parse_rule(entry: Any, where: str) -> ChannelRule:
    """Validate one rule mapping ``{pattern, allow, param?, roles?}``."""
    if not isinstance(entry, dict):
        raise SettingsError(f"{where}: expected a table with pattern and allow")
    pattern, allow = entry.get("pattern"), entry.get("allow")
    if not isinstance(pattern, str) or not pattern:
        raise SettingsError(f"{where}: expected pattern = \"private-user.{{id}}\"-style string")
    if allow not in RULE_KINDS:
        raise SettingsError(f"{where}: allow={allow!r}: expected one of {', '.join(RULE_KINDS)}")
    param = entry.get("param")
    if param is not None and (not isinstance(param, str) or "{" + param + "}" not in pattern):
        raise SettingsError(f"{where}: param={param!r}: expected the name of a {{placeholder}} in the pattern")
    roles = entry.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise SettingsError(f"{where}: roles: expected a list of strings")
    if allow in ("user", "role") and "{" not in pattern:
        raise SettingsError(f"{where}: allow={allow!r} needs a {{placeholder}} in the pattern")
    if allow == "roles" and not roles:
        raise SettingsError(f"{where}: allow='roles' needs roles = [\"admin\", ...]")
    if allow == "public" and pattern.startswith(("private-", "presence-")):
        raise SettingsError(f"{where}: private-/presence- channels cannot be public")
    unknown = set(entry) - {"pattern", "allow", "param", "roles"}
    if unknown:
        raise SettingsError(f"{where}: unknown keys {sorted(unknown)}")
    return ChannelRule(pattern=pattern, allow=allow, param=param, roles=tuple(roles))
