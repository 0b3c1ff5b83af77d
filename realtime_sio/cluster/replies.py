"""Typed views of redis-py replies (the client is built with ``decode_responses=False``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def text(value: Any) -> str:
    """One reply item as ``str``."""
    return value.decode() if isinstance(value, bytes) else str(value)


def texts(values: Iterable[Any]) -> list[str]:
    """A reply list as ``str`` items."""
    return [text(v) for v in values]
