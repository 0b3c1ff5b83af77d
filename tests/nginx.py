"""Run the shipped deploy/nginx-realtime-sio.conf in a real nginx for tests: loopback ports, its own prefix and
temporary folders, a test certificate, and a bounded lifetime."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import ROOT, free_port, wait_until

CONF = ROOT / "deploy" / "nginx-realtime-sio.conf"
LIFETIME = 300  # seconds: `timeout` ends nginx even if the test process dies without tearing it down


def nginx_binary() -> str | None:
    """Path of nginx (PATH, then Debian's /usr/sbin, which a non-root PATH may lack), or None."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def site(upstream_port: int, http_port: int, https_port: int, cert: Path, key: Path) -> str:
    """deploy/nginx-realtime-sio.conf with only its addresses and certificate paths replaced (every replacement must
    match, so a changed file cannot silently leave the test running another configuration)."""
    text = CONF.read_text()
    replacements = [
        (r"listen 80;", f"listen 127.0.0.1:{http_port};"),
        (r"listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;"),
        (r"listen \[::\]:(80|443)( ssl)?;\n", ""),  # no IPv6 listener in the test
        (r"server 127\.0\.0\.1:6001;", f"server 127.0.0.1:{upstream_port};"),
        (r"ssl_certificate +\S+;", f"ssl_certificate {cert};"),
        (r"ssl_certificate_key +\S+;", f"ssl_certificate_key {key};"),
    ]
    for pattern, value in replacements:
        text, count = re.subn(pattern, value, text)
        assert count, f"{CONF.name}: {pattern!r} not found"
    return text


@dataclass
class Nginx:
    """nginx in the foreground with a generated main configuration that includes the site (see :func:`site`)."""

    binary: str
    site: str
    https_port: int
    prefix: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="realtime-sio-nginx-")))
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        # The workers may run as nobody (nginx's default user when started as root): the prefix must be traversable.
        os.chmod(self.prefix, 0o755)
        temp = "\n".join(f"    {kind}_temp_path {self.prefix / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (self.prefix / "site.conf").write_text(self.site)
        (self.prefix / "nginx.conf").write_text(
            f"daemon off;\npid {self.prefix / 'nginx.pid'};\nerror_log {self.prefix / 'error.log'} info;\n"
            "worker_processes 1;\nevents { worker_connections 512; }\n"
            f"http {{\n    access_log {self.prefix / 'access.log'};\n{temp}\n    include {self.prefix / 'site.conf'};\n}}\n"
        )
        command = [self.binary, "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf"), "-e", str(self.prefix / "error.log")]
        check = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30, check=False)
        assert check.returncode == 0, f"nginx -t refused the configuration:\n{check.stderr}"
        log = open(self.prefix / "stderr.log", "wb")  # noqa: SIM115 - handed to the child, closed with it
        with log:
            # Its own process group (timeout, the master, its workers), so stop() can end all of them by its id.
            self.proc = subprocess.Popen(
                ["timeout", "--kill-after=5", str(LIFETIME), *command], stdout=log, stderr=log, start_new_session=True
            )
        wait_until(self._listening, timeout=20, what=f"nginx on {self.https_port} ({self.prefix})")

    def _listening(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"nginx exited with {self.proc.returncode}: {self.errors()}")
        return (self.prefix / "nginx.pid").exists() and _connectable(self.https_port)

    def errors(self) -> str:
        return "".join((self.prefix / name).read_text(errors="replace") for name in ("stderr.log", "error.log") if (self.prefix / name).exists())

    def stop(self) -> None:
        """Fast shutdown (SIGTERM, which `timeout` passes to the master), else SIGKILL to the group; then the prefix
        is removed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        shutil.rmtree(self.prefix, ignore_errors=True)


def _connectable(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports
