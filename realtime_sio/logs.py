"""structlog configuration, in one place: JSON lines by default, a console renderer on a tty.

Event names are stable snake_case (``client_connected``, ``subscription_denied``); ``sid``, ``user_id`` and
``channel`` are bound at the edges. The ``_redact`` processor drops any key that could hold a credential, so a
token or secret never reaches a log line even if a caller passes one by mistake.

Libraries (aiohttp, asyncio, engineio, socketio) log through the stdlib; their records are rendered by the same
processors (``structlog.stdlib.ProcessorFormatter``), so with JSON logs every line the process writes is one JSON
object, a traceback included (as the ``exception`` string). Uncaught and "unraisable" exceptions go the same way.

A flood cannot fill the disk (issue 11, item 12): lines at info and above pass a :class:`Throttle` keyed by event
name (for library records: logger name and message template). The first ``lines`` per ``seconds`` are written; the
rest are counted and reported as one ``log_lines_suppressed`` line when the window ends. Debug lines (opt-in
diagnosis, per-connection detail) are never throttled.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Callable, MutableMapping
from types import TracebackType
from typing import Any

import structlog

_SECRET_KEYS = frozenset({"token", "secret", "api_key", "password", "authorization", "cookie", "auth", "jwt"})
SUPPRESSED_EVENT = "log_lines_suppressed"
DEFAULT_THROTTLE_LINES = 20
DEFAULT_THROTTLE_SECONDS = 10.0


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if key.lower() in _SECRET_KEYS:
            event_dict[key] = "[redacted]"
    return event_dict


class Throttle:
    """Admit the first ``lines`` log lines per key in each ``seconds`` window; count the rest.

    ``report(key, count, seconds)`` is called once for a window that suppressed lines: from a timer at the window's
    end when an event loop runs, otherwise before the key's next admitted line. ``lines`` 0 admits everything.
    """

    def __init__(
        self,
        lines: int,
        seconds: float,
        report: Callable[[str, int, float], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lines = lines
        self.seconds = seconds
        self._report = report
        self._clock = clock
        # windows[key] = [window start, lines admitted, lines suppressed]
        self._windows: dict[str, list[float]] = {}

    def admit(self, key: str) -> bool:
        """True when a line with this key may be written now."""
        if self.lines <= 0:
            return True
        now = self._clock()
        window = self._windows.get(key)
        if window is None or now - window[0] >= self.seconds:
            if window is not None:
                self.flush(key)
            if len(self._windows) >= 10_000:  # keys are event names (a closed set); bound it anyway
                self._windows.clear()
            self._windows[key] = [now, 1, 0]
            return True
        if window[1] < self.lines:
            window[1] += 1
            return True
        window[2] += 1
        if window[2] == 1:
            self._schedule(key, window[0] + self.seconds - now)
        return False

    def flush(self, key: str) -> None:
        """Report the lines suppressed so far for ``key`` (if any) and start counting afresh."""
        window = self._windows.get(key)
        if window is not None and window[2]:
            count = int(window[2])
            window[2] = 0
            self._report(key, count, self.seconds)

    def _schedule(self, key: str, delay: float) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: reported before the key's next admitted line
        loop.call_later(max(0.0, delay), self.flush, key)


def _report_suppressed(key: str, count: int, seconds: float) -> None:
    structlog.get_logger(__name__).warning(SUPPRESSED_EVENT, suppressed_event=key, count=count, seconds=seconds)


_throttle = Throttle(DEFAULT_THROTTLE_LINES, DEFAULT_THROTTLE_SECONDS, _report_suppressed)


def _throttled(_: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: drop info+ lines past the per-event budget (see :class:`Throttle`)."""
    if method_name == "debug" or event_dict.get("event") == SUPPRESSED_EVENT:
        return event_dict
    if not _throttle.admit(str(event_dict.get("event"))):
        raise structlog.DropEvent
    return event_dict


class _ThrottleFilter(logging.Filter):
    """The same budget for stdlib records, keyed by logger name and message template."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.INFO:
            return True
        return _throttle.admit(f"{record.name}:{record.msg}")


class _ClientErrorFilter(logging.Filter):
    """aiohttp logs an unparsable request from a client as an ERROR with a traceback ("Error handling request").

    That is bad input, not a server fault: the record becomes one info line ``http_request_malformed`` naming the
    parser's error, without the traceback. aiohttp has already answered 400. engineio's ERROR for a refused Origin
    becomes the info line ``origin_refused`` the same way.
    """

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if record.name.startswith("engineio") and "is not an accepted origin" in str(record.msg):
            # engineio logs a refused Origin (a browser on another site) as an ERROR: client input, answered 400.
            record.msg, record.args = "origin_refused", None
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.error = "origin_not_allowed"
            return record.levelno >= self.level
        if exc is not None and _is_client_error(exc):
            record.msg = "http_request_malformed"
            record.args = None
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.error = type(exc).__name__
            record.exc_info = None
            record.exc_text = None
        return record.levelno >= self.level


def _is_client_error(exc: BaseException) -> bool:
    from aiohttp.http_exceptions import HttpProcessingError

    return isinstance(exc, HttpProcessingError)


def _error_field(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    record = event_dict.get("_record")
    error = getattr(record, "error", None) if record is not None else None
    if isinstance(error, str):
        event_dict["error"] = error
    return event_dict


def renders_json(log_format: str) -> bool:
    """True when ``log_format`` gives JSON lines: ``json``, or ``auto`` with stderr not a terminal."""
    return log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())


def configure(
    log_format: str = "auto",
    level: str = "info",
    throttle_lines: int = DEFAULT_THROTTLE_LINES,
    throttle_seconds: float = DEFAULT_THROTTLE_SECONDS,
) -> None:
    """Configure structlog and the stdlib root logger once, at start-up."""
    renderer: Any = structlog.processors.JSONRenderer() if renders_json(log_format) else structlog.dev.ConsoleRenderer()
    numeric = getattr(logging, level.upper(), logging.INFO)
    _throttle.lines, _throttle.seconds = throttle_lines, throttle_seconds
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    structlog.configure(
        processors=[
            _throttled,
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            timestamper,
            _redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries log through the stdlib at warning and above only, rendered like our own lines.
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name, timestamper, _error_field],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(_ClientErrorFilter(numeric))
    handler.addFilter(_ThrottleFilter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(max(numeric, logging.WARNING))
    logging.captureWarnings(True)
    _route_uncaught()


def _route_uncaught() -> None:
    """Uncaught exceptions (main thread, other threads) and unraisable ones (``__del__``) as one log line each."""
    uncaught = get("realtime_sio.uncaught")

    def excepthook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        uncaught.error("uncaught_exception", exc_info=(kind, value, tb))

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            uncaught.error("uncaught_exception", thread=getattr(args.thread, "name", None), exc_info=(args.exc_type, args.exc_value, args.exc_traceback))

    def unraisable_hook(unraisable: Any) -> None:
        exc = unraisable.exc_value
        info = (type(exc), exc, unraisable.exc_traceback) if exc is not None else None
        uncaught.warning("unraisable_exception", where=repr(unraisable.object)[:200], message=unraisable.err_msg, exc_info=info)

    sys.excepthook = excepthook
    threading.excepthook = thread_hook
    sys.unraisablehook = unraisable_hook


def get(name: str) -> Any:
    """A bound structlog logger for a module."""
    return structlog.get_logger(name)
