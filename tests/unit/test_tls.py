"""realtime_sio.tls without a server: certificate checks, the context it builds, change detection and reloading."""

from __future__ import annotations

import datetime
import os
import ssl
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from prometheus_client import CollectorRegistry

from realtime_sio import metrics as metrics_module
from realtime_sio import settings
from realtime_sio.tls import (
    CERT_VAR,
    KEY_VAR,
    CertificateReloader,
    ChangeWatch,
    TlsError,
    fingerprint,
    inspect,
    server_context,
)
from tests.certs import Leaf, TestCA, other_key_pem

DAY = datetime.timedelta(days=1)


@pytest.fixture(scope="module")
def ca() -> TestCA:
    return TestCA()


@pytest.fixture
def pair(tmp_path: Path, ca: TestCA) -> tuple[Path, Path]:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    ca.issue().write(cert, key)
    return cert, key


def test_inspect_reads_the_leaf_of_a_chain(ca: TestCA) -> None:
    """Of a full chain (leaf + intermediate) the leaf is described: its serial, its own expiry, its SHA-256."""
    leaf = ca.issue(valid_for=3 * DAY)
    certs = x509.load_pem_x509_certificates(leaf.chain_pem)
    assert [c.issuer for c in certs] == [ca.intermediate.subject, ca.cert.subject]  # leaf, then the intermediate
    cert = inspect(leaf.chain_pem, time.time())
    assert cert.serial == leaf.serial
    assert cert.not_before < time.time() < cert.not_after == certs[0].not_valid_after_utc.timestamp()
    assert cert.not_after < certs[1].not_valid_after_utc.timestamp()  # the intermediate lives longer: not used
    assert cert.sha256 == certs[0].fingerprint(hashes.SHA256()).hex() and cert.subject == "CN=127.0.0.1"


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> None:
    """A TLS handshake between two in-memory ends; raises the client's ssl.SSLError when it fails."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    tls_client = client.wrap_bio(c_in, c_out, server_hostname="127.0.0.1")
    tls_server = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for name, end in (("client", tls_client), ("server", tls_server)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return
    raise AssertionError(f"handshake did not finish: {done}")


def test_server_context_sends_the_intermediate(pair: tuple[Path, Path], ca: TestCA, tmp_path: Path) -> None:
    """A client trusting only the root verifies the served full chain; the leaf alone (no intermediate) would fail."""
    ctx, _ = server_context(str(pair[0]), str(pair[1]))
    _handshake(ctx, ca.client_context())
    leaf_only = tmp_path / "cert.pem"
    leaf_only.write_bytes(pair[0].read_bytes().split(b"-----END CERTIFICATE-----\n")[0] + b"-----END CERTIFICATE-----\n")
    bare, _ = server_context(str(leaf_only), str(pair[1]))
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer certificate"):
        _handshake(bare, ca.client_context())


def test_server_context_names_a_chain_out_of_order(pair: tuple[Path, Path], ca: TestCA) -> None:
    """Intermediate first, leaf second: refused naming TLS_CERT_FILE and the expected order, not a key mismatch."""
    leaf_pem, intermediate_pem = (c.public_bytes(serialization.Encoding.PEM) for c in x509.load_pem_x509_certificates(pair[0].read_bytes()))
    pair[0].write_bytes(intermediate_pem + leaf_pem)
    with pytest.raises(TlsError, match="not first in the chain") as err:
        server_context(str(pair[0]), str(pair[1]))
    assert str(err.value).startswith(CERT_VAR) and "leaf first" in str(err.value)


@pytest.mark.parametrize(
    ("valid_from", "valid_for", "words"), [(-10 * DAY, DAY, "expired at"), (2 * DAY, DAY, "not valid before")]
)
def test_inspect_refuses_certificates_outside_their_validity(
    ca: TestCA, valid_from: datetime.timedelta, valid_for: datetime.timedelta, words: str
) -> None:
    """Expired and not-yet-valid leaves are refused with a message naming TLS_CERT_FILE and the serial."""
    leaf = ca.issue(valid_from=valid_from, valid_for=valid_for)
    with pytest.raises(TlsError, match=words) as err:
        inspect(leaf.chain_pem, time.time(), "/etc/x.pem")
    assert str(err.value).startswith(f"{CERT_VAR}='/etc/x.pem'") and f"{leaf.serial:x}" in str(err.value)


def test_inspect_refuses_text_that_is_not_pem() -> None:
    """A file without a PEM certificate is refused, naming what was expected."""
    with pytest.raises(TlsError, match="expected a PEM certificate chain"):
        inspect(b"-----BEGIN PRIVATE KEY-----\n", time.time())


def test_server_context_is_tls12_plus_server_side(pair: tuple[Path, Path]) -> None:
    """The context is a server context with TLS 1.2 as its floor, no client certificates asked for, one session ticket."""
    ctx, cert = server_context(str(pair[0]), str(pair[1]))
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_NONE
    assert ctx.options & ssl.OP_NO_COMPRESSION
    assert ctx.num_tickets == 1  # stateless TLS 1.3 tickets, one per handshake
    assert cert.serial > 0


def test_server_context_names_the_key_when_it_does_not_match(pair: tuple[Path, Path]) -> None:
    """A key of another certificate is refused naming TLS_KEY_FILE; the key itself never appears in the message."""
    key = other_key_pem()
    pair[1].write_bytes(key)
    with pytest.raises(TlsError, match="does not match") as err:
        server_context(str(pair[0]), str(pair[1]))
    assert str(err.value).startswith(KEY_VAR)
    assert key.decode().splitlines()[1] not in str(err.value)


@pytest.mark.parametrize("which", ["cert", "key"])
def test_server_context_names_the_unreadable_file(pair: tuple[Path, Path], tmp_path: Path, which: str) -> None:
    """A missing file is reported against its own variable."""
    cert, key = (str(tmp_path / "nope"), str(pair[1])) if which == "cert" else (str(pair[0]), str(tmp_path / "nope"))
    with pytest.raises(TlsError, match="expected a readable file") as err:
        server_context(cert, key)
    assert str(err.value).startswith(CERT_VAR if which == "cert" else KEY_VAR)


def test_settings_need_both_files() -> None:
    """TLS_CERT_FILE without TLS_KEY_FILE (or the reverse) is a settings error naming the missing one."""
    with pytest.raises(settings.SettingsError, match="REALTIME_SIO_TLS_KEY_FILE"):
        settings.load({CERT_VAR: "/a.pem"})
    with pytest.raises(settings.SettingsError, match="REALTIME_SIO_TLS_CERT_FILE"):
        settings.load({KEY_VAR: "/a.key"})
    loaded = settings.load({CERT_VAR: "/a.pem", KEY_VAR: "/a.key", "REALTIME_SIO_TLS_RELOAD_INTERVAL": "2"})
    assert (loaded.tls.cert_file, loaded.tls.key_file, loaded.tls.reload_interval) == ("/a.pem", "/a.key", 2.0)


def test_change_watch_loads_a_change_once_it_held_still() -> None:
    """A new fingerprint is loaded on the poll after it first appeared, not while the files are still moving."""
    a = ((1, 1, 1, 1), (1, 2, 1, 1))
    b = ((1, 3, 1, 2), (1, 2, 1, 1))  # certbot: the certificate moved first...
    c = ((1, 3, 1, 2), (1, 4, 1, 2))  # ...then the key
    watch = ChangeWatch(a)
    assert watch.observe(a) is False
    assert watch.observe(b) is False  # just changed
    assert watch.observe(c) is False  # changed again
    assert watch.observe(c) is True  # held still for one poll
    watch.loaded(c)
    assert watch.observe(c) is False


def test_change_watch_does_not_retry_a_refused_pair_until_it_changes() -> None:
    """A refused pair is not loaded (and logged) again on every poll; the next change is tried."""
    a, b, c = (((1, n, 1, 1), (1, 9, 1, 1)) for n in (1, 2, 3))
    watch = ChangeWatch(a)
    watch.observe(b)
    assert watch.observe(b) is True
    watch.refused(b)
    assert [watch.observe(b) for _ in range(3)] == [False, False, False]
    watch.observe(c)
    assert watch.observe(c) is True


def test_change_watch_waits_while_a_file_is_missing() -> None:
    """A missing file (None) is never loaded: the served pair stays."""
    a = ((1, 1, 1, 1), (1, 2, 1, 1))
    watch = ChangeWatch(a)
    assert [watch.observe(None) for _ in range(3)] == [False, False, False]


def test_fingerprint_follows_a_kubernetes_secret_data_swap(tmp_path: Path, ca: TestCA) -> None:
    """Secret volumes point tls.crt → ..data/tls.crt and swap the ..data symlink: the fingerprint changes."""
    first, second = tmp_path / "..2026_01", tmp_path / "..2026_02"
    for folder in (first, second):
        folder.mkdir()
        ca.issue().write(folder / "tls.crt", folder / "tls.key")
    (tmp_path / "..data").symlink_to(first.name)
    for name in ("tls.crt", "tls.key"):
        (tmp_path / name).symlink_to(f"..data/{name}")
    cert, key = str(tmp_path / "tls.crt"), str(tmp_path / "tls.key")
    before = fingerprint(cert, key)
    tmp = tmp_path / "..data_tmp"
    tmp.symlink_to(second.name)
    os.replace(tmp, tmp_path / "..data")
    after = fingerprint(cert, key)
    assert before is not None and after is not None and before != after
    assert fingerprint(cert, str(tmp_path / "absent")) is None


def _reloader(pair: tuple[Path, Path]) -> tuple[CertificateReloader, metrics_module.Metrics]:
    metrics = metrics_module.create(CollectorRegistry(), process=False)
    return CertificateReloader(str(pair[0]), str(pair[1]), metrics, interval=0.1), metrics


def _sample(metrics: metrics_module.Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_reloader_swaps_new_handshakes_onto_a_renewed_pair(pair: tuple[Path, Path], ca: TestCA) -> None:
    """After a settled change, the SNI callback moves new connections to the new context; the gauge follows."""
    reloader, metrics = _reloader(pair)
    listening = reloader.context
    conn = SimpleNamespace(context=listening)
    reloader._select(conn, None, listening)  # type: ignore[arg-type]
    assert conn.context is listening  # nothing renewed yet: no swap
    renewed = ca.issue(valid_for=40 * DAY)
    renewed.write(*pair)
    assert reloader.check() is False  # just changed
    assert reloader.check() is True
    assert reloader.certificate.serial == renewed.serial
    reloader._select(conn, "example.test", listening)  # type: ignore[arg-type]
    assert conn.context is not listening and isinstance(conn.context, ssl.SSLContext)
    assert _sample(metrics, "realtime_sio_tls_certificate_expiry_timestamp_seconds") == reloader.certificate.not_after
    assert _sample(metrics, "realtime_sio_tls_reloads_total", outcome="loaded") == 1


def test_reloader_refuses_a_broken_pair_and_keeps_serving(pair: tuple[Path, Path], ca: TestCA) -> None:
    """A mismatched renewal is refused once (counter, not retried); the served certificate and context stay."""
    reloader, metrics = _reloader(pair)
    serving = reloader.certificate
    Leaf(ca.issue().chain_pem, other_key_pem(), 0).write(*pair)
    assert [reloader.check() for _ in range(4)] == [False] * 4
    assert reloader.certificate == serving
    assert _sample(metrics, "realtime_sio_tls_reloads_total", outcome="refused") == 1
    conn = SimpleNamespace(context=reloader.context)
    reloader._select(conn, None, reloader.context)  # type: ignore[arg-type]
    assert conn.context is reloader.context


def test_reloader_start_up_error_is_a_settings_error(pair: tuple[Path, Path]) -> None:
    """A pair that cannot be served at start-up raises a SettingsError (the CLI exits 2 with its message)."""
    pair[1].write_bytes(other_key_pem())
    with pytest.raises(settings.SettingsError, match=KEY_VAR):
        _reloader(pair)


def test_server_context_refuses_an_encrypted_key_without_prompting(pair: tuple[Path, Path]) -> None:
    """A passphrase-protected key is refused naming TLS_KEY_FILE (OpenSSL is never left to prompt on a terminal)."""
    key = serialization.load_pem_private_key(pair[1].read_bytes(), None)
    pair[1].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pass")
        )
    )
    with pytest.raises(TlsError, match="the private key is encrypted") as err:
        server_context(str(pair[0]), str(pair[1]))
    assert str(err.value).startswith(KEY_VAR)
