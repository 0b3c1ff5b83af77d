"""The TOML config file (``REALTIME_SIO_CONFIG_FILE``): read it and check its shape (``[[channels]]`` and ``[[apps]]``
tables, nothing else). What each table means is validated by :mod:`realtime_sio.settings`, which names the entry.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ConfigFileError(ValueError):
    """The file cannot be read, is not TOML, or has the wrong shape (the message says which)."""


@dataclass(frozen=True)
class ConfigTables:
    """The file's tables, unvalidated: ``channels`` None when the file has no ``[[channels]]`` (the defaults stay)."""

    channels: list[Any] | None
    apps: list[Any]


def read(path: str) -> ConfigTables:
    """Read the file and check its top-level shape; raises :class:`ConfigFileError`."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigFileError(f"expected a readable TOML file ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"invalid TOML ({exc})") from None
    unknown = set(data) - {"channels", "apps"}
    if unknown:
        raise ConfigFileError(f"unknown top-level keys {sorted(unknown)} (expected [[channels]], [[apps]])")
    channels = data.get("channels")
    if channels is not None and not isinstance(channels, list):
        raise ConfigFileError("expected [[channels]] tables")
    apps = data.get("apps", [])
    if not isinstance(apps, list):
        raise ConfigFileError("expected [[apps]] tables")
    return ConfigTables(channels, apps)
