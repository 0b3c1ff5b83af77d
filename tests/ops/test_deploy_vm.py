"""The one-VM deployment files (deploy/, docs/deploy-vm.md): the systemd unit's promises, the example settings, and
the nginx proxy settings Socket.IO needs."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from realtime_sio import settings
from tests.support import ROOT

DEPLOY = ROOT / "deploy"


def unit() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read_string((DEPLOY / "realtime-sio.service").read_text())
    return parser["Service"]


def example_env() -> dict[str, str]:
    lines = (DEPLOY / "env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_unit_runs_unprivileged_with_descriptors_and_restarts() -> None:
    """Non-root user, a descriptor limit for one socket per connection, restart on failure but not on exit 2."""
    service = unit()
    assert service["User"] not in ("", "root") and service["Group"] not in ("", "root")
    assert int(service["LimitNOFILE"]) >= 65536
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "2"  # the CLI's configuration-error status (cli.py)
    assert service["AmbientCapabilities"] == "CAP_NET_BIND_SERVICE"
    assert service["ExecStart"].endswith("realtime-sio serve")


def test_unit_stop_timeout_leaves_room_for_the_drain() -> None:
    """SIGTERM starts the drain; systemd waits longer than the server's whole bounded shutdown before SIGKILL."""
    service = unit()
    assert service["KillSignal"] == "SIGTERM"
    stop = float(service["TimeoutStopSec"])
    env = example_env()
    configured = settings.load({k: v for k, v in env.items() if k.startswith(settings.PREFIX)})
    assert configured.drain_seconds < configured.shutdown_timeout < stop
    assert settings.Settings().shutdown_timeout < stop


def test_example_env_holds_only_real_settings() -> None:
    """Every variable in env.example is a setting realtime_sio knows (an unknown one would stop the server)."""
    env = example_env()
    assert set(env) <= set(settings.OPTIONS_BY_ENV)
    loaded = settings.load(env)
    assert loaded.tls.cert_file and loaded.tls.key_file and loaded.port == 443


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """systemd itself accepts the unit (ExecStart pointed at /bin/true, since the venv is not installed here)."""
    text = (DEPLOY / "realtime-sio.service").read_text().replace("/opt/realtime-sio/venv/bin/realtime-sio serve", "/bin/true")
    path = tmp_path / "realtime-sio.service"
    path.write_text(text)
    proc = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "realtime-sio.service" not in proc.stderr, proc.stderr  # no warning about the unit itself


def nginx_location(conf: str, prefix: str) -> str:
    """The body of ``location <prefix> { ... }`` in the nginx file (its blocks hold no nested braces)."""
    body = conf[conf.index(f"location {prefix} {{") :]
    return body[: body.index("}")]


def read_timeout(location: str) -> int:
    return int(re.search(r"proxy_read_timeout (\d+)s;", location).group(1))  # type: ignore[union-attr]


WEBSOCKET_DIRECTIVES = (
    "proxy_http_version 1.1;",
    "proxy_set_header Upgrade $http_upgrade;",
    "proxy_set_header Connection $connection_upgrade;",
    "proxy_set_header X-Forwarded-Proto $scheme;",
    "proxy_buffering off;",
    "proxy_request_buffering off;",
)


def test_nginx_proxy_settings_for_websocket_and_long_polling() -> None:
    """/socket.io/: Upgrade/Connection passed, HTTP/1.1 upstream, buffering off, read timeout above ping interval +
    timeout."""
    conf = (DEPLOY / "nginx-realtime-sio.conf").read_text()
    location = nginx_location(conf, "/socket.io/")
    for directive in WEBSOCKET_DIRECTIVES:
        assert directive in location, directive
    defaults = settings.Settings()
    assert read_timeout(location) > defaults.engine.ping_interval + defaults.engine.ping_timeout
    assert "map $http_upgrade $connection_upgrade" in conf
    doc = (ROOT / "docs" / "deploy-vm.md").read_text()
    assert "proxy_read_timeout 75s" in doc and "proxy_buffering off" in doc  # the doc quotes the file


def test_nginx_proxies_the_pusher_websocket_for_reverb_frontends() -> None:
    """/app/ (pusher-js, Echo's reverb broadcaster) gets the same WebSocket settings, with a read timeout above the
    Pusher activity timeout + pong timeout; the docs say it is public."""
    conf = (DEPLOY / "nginx-realtime-sio.conf").read_text()
    location = nginx_location(conf, "/app/")
    for directive in WEBSOCKET_DIRECTIVES:
        assert directive in location, directive
    defaults = settings.Settings()
    assert read_timeout(location) > defaults.pusher.activity_timeout + defaults.pusher.pong_timeout
    doc = (ROOT / "docs" / "deploy-vm.md").read_text()
    assert "location /app/" in doc and "`/app/{key}`" in doc


def test_nginx_keeps_publishing_apis_off_the_public_port() -> None:
    """/apps/ (the Pusher HTTP API) and /api/ have no active location: the catch-all answers 404, as the docs say;
    the Laravel settings for publishing over loopback are documented."""
    conf = (DEPLOY / "nginx-realtime-sio.conf").read_text()
    active = [line.strip() for line in conf.splitlines() if not line.strip().startswith("#")]
    locations = sorted(line.split()[1] for line in active if line.startswith("location "))
    assert locations == ["/", "/", "/.well-known/acme-challenge/", "/app/", "/client/", "/socket.io/"]  # "/" on 80 and 443
    assert "return 404;" in nginx_location(conf[conf.index("listen 443") :], "/")  # the TLS server's catch-all
    doc = (ROOT / "docs" / "deploy-vm.md").read_text()
    assert "REVERB_HOST=127.0.0.1" in doc and "VITE_REVERB_HOST=" in doc
