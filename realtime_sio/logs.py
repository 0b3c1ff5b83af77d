"""structlog configuration, in one place: JSON lines by default, a console renderer on a tty.

Event names are stable snake_case (``client_connected``, ``subscription_denied``); ``sid``, ``user_id`` and
``channel`` are bound at the edges. The ``_redact`` processor drops any key that could hold a credential, so a
token or secret never reaches a log line even if a caller passes one by mistake.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRET_KEYS = frozenset({"token", "secret", "api_key", "password", "authorization", "cookie", "auth", "jwt"})


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if key.lower() in _SECRET_KEYS:
            event_dict[key] = "[redacted]"
    return event_dict


def configure(log_format: str = "auto", level: str = "info") -> None:
    """Configure structlog and the stdlib root logger once, at start-up."""
    use_console = log_format == "console" or (log_format == "auto" and sys.stderr.isatty())
    renderer: Any = structlog.dev.ConsoleRenderer() if use_console else structlog.processors.JSONRenderer()
    numeric = getattr(logging, level.upper(), logging.INFO)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries (aiohttp access log, engineio) go through stdlib logging at warning and above only.
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")


def get(name: str) -> Any:
    """A bound structlog logger for a module."""
    return structlog.get_logger(name)
