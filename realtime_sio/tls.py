"""TLS on the listening port: a server SSLContext from a PEM chain and key, renewed from disk without a restart.

How renewal reaches new connections (issue 13): the listening socket keeps the SSLContext it was created with, and
that context's SNI callback, which OpenSSL runs on every ClientHello (with or without a server name), moves each new
connection onto the newest context (``SSLObject.context = …``, OpenSSL's ``SSL_set_SSL_CTX``, the documented way to
choose a certificate per handshake). A connection that has already shaken hands keeps its own copy of the old
certificate and is never touched. A new pair is loaded into a fresh context first, so a broken pair can never leave
the serving context half-replaced (``load_cert_chain`` on a live context swaps the certificate before it checks the
key). asyncio and uvloop both wrap connections with ``SSLContext.wrap_bio``, so the callback runs under both.

Files are polled (``os.stat``: device, inode, size, mtime, following symlinks), which sees certbot's symlink flips and a
Kubernetes Secret's ``..data`` swap alike; a change is loaded once it has held still for one poll, so certbot's
one-file-at-a-time update is not refused half-way. Key material is never logged.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization

from realtime_sio import logs
from realtime_sio.metrics import Metrics
from realtime_sio.settings import PREFIX, SettingsError

CERT_VAR = PREFIX + "TLS_CERT_FILE"
KEY_VAR = PREFIX + "TLS_KEY_FILE"
ALPN = ("http/1.1",)

log = logs.get(__name__)

Stamp = tuple[int, int, int, int]  # (st_dev, st_ino, st_size, st_mtime_ns) of the file a path resolves to
Fingerprint = tuple[Stamp, Stamp] | None  # (cert, key); None while a file is missing or unreadable


class TlsError(SettingsError):
    """A certificate/key pair cannot be served; the message names the variable and the reason, never key material."""


@dataclass(frozen=True, slots=True)
class Certificate:
    """What is worth knowing (and logging) about the leaf certificate being served."""

    serial: int
    not_before: float  # unix seconds
    not_after: float  # unix seconds
    subject: str
    sha256: str  # fingerprint of the DER leaf, hex


def inspect(cert_pem: bytes, now: float, cert_path: str = "") -> Certificate:
    """The first (leaf) certificate of a PEM chain; raises :class:`TlsError` when it is not PEM or not valid at ``now``."""
    where = f"{CERT_VAR}={cert_path!r}"
    try:
        leaf = x509.load_pem_x509_certificates(cert_pem)[0]
    except ValueError:
        raise TlsError(f"{where}: expected a PEM certificate chain (-----BEGIN CERTIFICATE-----), leaf first") from None
    cert = Certificate(
        serial=leaf.serial_number,
        not_before=leaf.not_valid_before_utc.timestamp(),
        not_after=leaf.not_valid_after_utc.timestamp(),
        subject=leaf.subject.rfc4514_string(),
        sha256=leaf.fingerprint(hashes.SHA256()).hex(),
    )
    if cert.not_after <= now:
        expired = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(cert.not_after))
        raise TlsError(f"{where}: the certificate expired at {expired} (serial {cert.serial:x})")
    if cert.not_before > now:
        start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(cert.not_before))
        raise TlsError(f"{where}: the certificate is not valid before {start} (serial {cert.serial:x})")
    return cert


def _read(var: str, path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise TlsError(f"{var}={path!r}: expected a readable file ({exc.strerror})") from None


def server_context(cert_path: str, key_path: str, now: float | None = None) -> tuple[ssl.SSLContext, Certificate]:
    """A server context (TLS 1.2+, ALPN http/1.1) serving the pair, and its leaf; raises :class:`TlsError`."""
    cert_pem = _read(CERT_VAR, cert_path)
    key_pem = _read(KEY_VAR, key_path)  # a clear "unreadable" error naming the key variable, before OpenSSL's
    cert = inspect(cert_pem, time.time() if now is None else now, cert_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(list(ALPN))
    # No client certificates are asked for. TLS 1.3 session tickets stay stateless (nothing is cached per client);
    # one per handshake instead of OpenSSL's two is enough to resume once (a resumed connection gets a fresh one) and
    # took the server's handshake CPU from 0.31 to 0.26 ms (bench/tls_objects.py's context, P-256 leaf).
    ctx.num_tickets = 1
    def encrypted_key() -> bytes:  # without a callback OpenSSL would ask for a passphrase on the terminal
        raise TlsError(f"{KEY_VAR}={key_path!r}: the private key is encrypted; expected an unencrypted PEM private key")

    try:
        ctx.load_cert_chain(cert_path, key_path, password=encrypted_key)
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            if _matches_a_later_certificate(cert_pem, key_pem):
                raise TlsError(
                    f"{CERT_VAR}={cert_path!r}: the certificate of the private key in {KEY_VAR} is not first in the chain; "
                    "expected the leaf first, then its intermediates (certbot's fullchain.pem)"
                ) from None
            raise TlsError(f"{KEY_VAR}={key_path!r}: the private key does not match the certificate in {CERT_VAR}") from None
        raise TlsError(
            f"{CERT_VAR}={cert_path!r}, {KEY_VAR}={key_path!r}: expected a PEM chain and an unencrypted PEM private key "
            f"({exc.reason or exc.__class__.__name__})"
        ) from None
    except OSError as exc:
        raise TlsError(f"{CERT_VAR}={cert_path!r}, {KEY_VAR}={key_path!r}: cannot load ({exc.strerror})") from None
    if _read(CERT_VAR, cert_path) != cert_pem:
        raise TlsError(f"{CERT_VAR}={cert_path!r}: the file changed while it was loaded; it is read again at the next poll")
    return ctx, cert


def _matches_a_later_certificate(cert_pem: bytes, key_pem: bytes) -> bool:
    """True when the key belongs to a certificate after the first of the chain (a chain concatenated out of order)."""
    try:
        public = serialization.load_pem_private_key(key_pem, password=None).public_key()
        later = x509.load_pem_x509_certificates(cert_pem)[1:]
    except (ValueError, TypeError, UnsupportedAlgorithm):  # not PEM, encrypted, or a key type this build cannot read
        return False
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return any(cert.public_key().public_bytes(*spki) == public.public_bytes(*spki) for cert in later)


def _stamp(path: str) -> Stamp:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def fingerprint(cert_path: str, key_path: str) -> Fingerprint:
    """Identity of the files the two paths resolve to now (None while either is missing)."""
    try:
        return (_stamp(cert_path), _stamp(key_path))
    except OSError:
        return None


class ChangeWatch:
    """Decides, poll by poll, when the files hold a new pair worth loading (pure: feed fingerprints, read answers)."""

    __slots__ = ("_last", "_loaded", "_refused")

    def __init__(self, loaded: Fingerprint) -> None:
        self._loaded = loaded  # the files of the pair being served
        self._last = loaded  # what the previous poll saw
        self._refused: Fingerprint = None  # the files of the last pair refused (not retried until they change)

    def observe(self, seen: Fingerprint) -> bool:
        """True when ``seen`` differs from the served pair, held still since the previous poll and was not refused."""
        settled = seen == self._last
        self._last = seen
        return settled and seen is not None and seen != self._loaded and seen != self._refused

    def loaded(self, seen: Fingerprint) -> None:
        self._loaded = seen
        self._refused = None

    def refused(self, seen: Fingerprint) -> None:
        self._refused = seen


class CertificateReloader:
    """Serves the pair at two paths and follows them: ``context`` listens; ``run()`` polls and swaps in new pairs."""

    def __init__(
        self,
        cert_path: str,
        key_path: str,
        metrics: Metrics,
        interval: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Load the pair now; raises :class:`TlsError` (a start-up error) when it cannot be served."""
        self.cert_path = cert_path
        self.key_path = key_path
        self.interval = interval
        self._metrics = metrics
        self._clock = clock
        seen = fingerprint(cert_path, key_path)
        self.context, self.certificate = server_context(cert_path, key_path, clock())
        self._current = self.context
        self.context.sni_callback = self._select
        self._watch = ChangeWatch(seen)
        metrics.tls_certificate_expiry.set(self.certificate.not_after)
        log.info("tls_certificate_loaded", **_describe(self.certificate))

    def _select(self, conn: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, ctx: ssl.SSLContext) -> None:
        # OpenSSL's servername callback: runs during every ClientHello on the listening context.
        if self._current is not ctx:
            conn.context = self._current

    def check(self) -> bool:
        """One poll: load a changed, settled pair if there is one; True when a new certificate is now served."""
        seen = fingerprint(self.cert_path, self.key_path)
        if not self._watch.observe(seen):
            return False
        try:
            context, cert = server_context(self.cert_path, self.key_path, self._clock())
        except TlsError as exc:
            self._watch.refused(seen)
            self._metrics.tls_reloads.labels(outcome="refused").inc()
            log.error("tls_certificate_refused", reason=str(exc), serving_serial=f"{self.certificate.serial:x}")
            return False
        self._current = context
        self.certificate = cert
        self._watch.loaded(seen)
        self._metrics.tls_reloads.labels(outcome="loaded").inc()
        self._metrics.tls_certificate_expiry.set(cert.not_after)
        log.info("tls_certificate_reloaded", **_describe(cert))
        return True

    async def run(self) -> None:
        """Poll every ``interval`` seconds until cancelled; an unexpected error is logged and polling goes on."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.check()
            except Exception as exc:  # noqa: BLE001 - a failed poll must not end renewal for the process's lifetime
                log.error("tls_reload_failed", error=type(exc).__name__)


def _describe(cert: Certificate) -> dict[str, object]:
    return {
        "serial": f"{cert.serial:x}",
        "subject": cert.subject,
        "not_after": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(cert.not_after)),
        "sha256": cert.sha256,
    }
