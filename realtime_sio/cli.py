"""Command line: ``realtime-sio serve | token | watchdog``; argv → Settings → app.

Every ``serve`` flag mirrors one ``REALTIME_SIO_*`` variable (flags win); a bad value exits with status 2 and one
line naming the variable and what it accepts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import fields

from realtime_sio import __version__, logs
from realtime_sio import settings as settings_module
from realtime_sio.settings import GROUPS, OPTIONS, Settings, SettingsError


def _defaults() -> dict[str, object]:
    """Every option's default by its attr ("host", "redis.url"), from the dataclasses themselves."""
    top: dict[str, object] = {f.name: f.default for f in fields(Settings)}
    for name, group in GROUPS.items():
        top.update({f"{name}.{f.name}": f.default for f in fields(group)})
    return top


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    defaults = _defaults()
    for option in OPTIONS:
        default = "(unset)" if option.secret else defaults.get(option.attr)
        if isinstance(default, tuple):
            default = ",".join(str(d) for d in default) or "(empty)"
        parser.add_argument(
            option.flag,
            dest=option.env,
            metavar="VALUE",
            help=f"{option.help}; accepts {option.accepts}; env {option.env}; default {default}",
        )


def secret_flags(args: argparse.Namespace) -> list[str]:
    """The secret settings given as command-line flags (visible to every local user in ``ps``): their variables."""
    return [option.env for option in OPTIONS if option.secret and getattr(args, option.env, None) is not None]


def warn_secret_flags(args: argparse.Namespace) -> None:
    """Warn once per secret given as a flag, naming the variable to use instead (never the value)."""
    for env in secret_flags(args):
        logs.get(__name__).warning("secret_on_command_line", setting=env, hint=f"set {env} in the environment instead: argv is visible in ps")


def load_settings(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    """Environment overlaid with the flags given on the command line."""
    merged = {k: v for k, v in env.items() if k.startswith(settings_module.PREFIX)}
    for option in OPTIONS:
        value = getattr(args, option.env, None)
        if value is not None:
            merged[option.env] = value
    return settings_module.load(merged)


def _startup_error(environ: Mapping[str, str], args: argparse.Namespace, message: str) -> None:
    """One line on stderr before logging is configured: a JSON object when the logs would be JSON, else plain text."""
    log_format = getattr(args, "REALTIME_SIO_LOG_FORMAT", None) or environ.get("REALTIME_SIO_LOG_FORMAT", "auto")
    if logs.renders_json(log_format):
        print(json.dumps({"event": "startup_failed", "level": "error", "message": message}), file=sys.stderr)
    else:
        print(message, file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="realtime-sio", description="Laravel Echo-compatible Socket.IO server.")
    parser.add_argument("--version", action="version", version=f"realtime-sio {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server", description="Run the server. Every flag overrides its REALTIME_SIO_* variable.")
    _add_setting_flags(serve)
    token = sub.add_parser("token", help="mint a development JWT with the configured secret")
    token.add_argument("--user", required=True, help="user id (the sub claim)")
    token.add_argument("--roles", default="", help="comma-separated roles")
    token.add_argument("--name", default=None, help="display name (presence user_info.name)")
    token.add_argument("--ttl", type=int, default=None, help="lifetime in seconds (default REALTIME_SIO_JWT_TTL)")
    _add_setting_flags(token)
    watchdog = sub.add_parser("watchdog", help="health-check an instance and roll back after repeated failures")
    try:
        from realtime_sio import watchdog as watchdog_module
    except ImportError:  # the watchdog lands with the operations work (issue 6)
        watchdog_module = None  # type: ignore[assignment]
    if watchdog_module is not None:
        watchdog_module.add_arguments(watchdog)
    return parser


def _raise_fd_limit() -> None:
    """Every connection is a file descriptor: lift the soft limit to the hard one (containers often start at 1024)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
    logs.get(__name__).info("fd_limit", soft=resource.getrlimit(resource.RLIMIT_NOFILE)[0])


def _tune_gc() -> None:
    """Keep the cyclic collector from stalling the event loop once many connections are open.

    With 5,000 sockets, CPython's default thresholds ran full collections of 0.4-0.6 s during an emit stream
    (p99 delivery 730 ms); freezing the start-up objects and collecting young garbage every 50,000 allocations
    instead of 700 gave p99 8 ms (docs/performance.md). Garbage is still collected, in fewer, later passes.
    """
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Entry point of the ``realtime-sio`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    environ = os.environ if env is None else env
    if args.command == "watchdog":
        from realtime_sio import watchdog as watchdog_module

        logs.configure(environ.get("REALTIME_SIO_LOG_FORMAT", "auto"), "info")
        return int(asyncio.run(watchdog_module.run(args)))
    try:
        settings = load_settings(args, environ)
    except SettingsError as exc:
        _startup_error(environ, args, f"realtime-sio: error: {exc}")
        return 2
    if args.command == "token":
        from realtime_sio.auth.tokens import mint

        logs.configure(settings.log_format, settings.log_level)
        warn_secret_flags(args)
        roles = [r.strip() for r in args.roles.split(",") if r.strip()]
        try:
            print(mint(settings.jwt, args.user, roles, args.name, args.ttl))
        except ValueError as exc:
            _startup_error(environ, args, f"realtime-sio: error: {exc}")
            return 2
        return 0
    logs.configure(settings.log_format, settings.log_level, settings.log_throttle_lines, settings.log_throttle_seconds)
    warn_secret_flags(args)
    _raise_fd_limit()
    from realtime_sio import app

    if settings.gc_tuning:
        _tune_gc()

    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # pragma: no cover - uvloop is a dependency on every platform we ship
        runner = asyncio.Runner()
    try:
        with runner:
            runner.run(app.serve(settings))
    except ValueError as exc:  # construction-time configuration problems (e.g. an unusable JWKS)
        logs.get(__name__).error("startup_failed", message=f"realtime-sio: error: {exc}")  # JSON like every line now
        return 2
    except OSError as exc:
        message = f"realtime-sio: error: cannot listen on {settings.host}:{settings.port} ({exc.strerror})"
        logs.get(__name__).error("startup_failed", message=message)
        return 1
    return 0
