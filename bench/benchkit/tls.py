"""TLS for a bench run (``run.py --tls``): a throw-away CA and a 127.0.0.1 leaf, and the settings that make both
servers serve them and the Node load generator trust them."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class BenchTls:
    """Where the pair and the CA were written."""

    cert: Path
    key: Path
    ca: Path

    def server_env(self) -> dict[str, str]:
        """Both servers read the same two variables (bench/peers/node-socketio/server.js mirrors realtime_sio)."""
        return {"REALTIME_SIO_TLS_CERT_FILE": str(self.cert), "REALTIME_SIO_TLS_KEY_FILE": str(self.key)}

    def client_env(self) -> dict[str, str]:
        """socket.io-client and fetch in the load generator trust the CA through Node's extra CA list."""
        return {"NODE_EXTRA_CA_CERTS": str(self.ca)}


def make(folder: Path) -> BenchTls:
    """Issue a P-256 leaf for 127.0.0.1 (what certbot issues by default since 2.0: ECDSA) signed by a new CA."""
    sys.path.insert(0, str(REPO))  # the test suite's CA maker: one implementation for tests and benches
    from tests.certs import TestCA

    ca = TestCA("realtime_sio bench CA")
    tls = BenchTls(folder / "fullchain.pem", folder / "privkey.pem", folder / "ca.pem")
    ca.issue().write(tls.cert, tls.key)
    ca.write(tls.ca)
    return tls
