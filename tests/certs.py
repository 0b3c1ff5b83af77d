"""A throw-away certificate authority for TLS tests and benches: a root, an intermediate and leaf certificates made
with ``cryptography``, shaped like a public CA's (clients trust the root; servers send leaf + intermediate)."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAY = datetime.timedelta(days=1)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _ca_cert(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None, issuer_key: ec.EllipticCurvePrivateKey, path_length: int
) -> x509.Certificate:
    """A CA certificate for ``key``: self-signed when ``issuer`` is None, else signed by ``issuer_key``."""
    now = datetime.datetime.now(datetime.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer is not None else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - DAY)
        .not_valid_after(now + 30 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(ski, critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass(frozen=True)
class Leaf:
    """A server certificate as certbot's fullchain.pem holds it (leaf, then the intermediate; never the root) and its
    key, PEM."""

    chain_pem: bytes
    key_pem: bytes = field(repr=False)
    serial: int

    def write(self, cert_path: Path, key_path: Path) -> None:
        """Replace both files the way certbot's deploy does: write aside, then rename over (atomic per file)."""
        for path, data in ((cert_path, self.chain_pem), (key_path, self.key_pem)):
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(data)
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)


class TestCA:
    """A self-signed root and an intermediate under it that issues leaf certificates for 127.0.0.1/localhost.

    Clients trust ``pem`` (the root) only, so a server that does not send the intermediate fails verification, as
    it would with a public CA.
    """

    __test__ = False  # not a pytest class

    def __init__(self, common_name: str = "realtime_sio test CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = _ca_cert(common_name, self.key, None, self.key, path_length=1)
        self.pem = _pem(self.cert)
        self.intermediate_key = ec.generate_private_key(ec.SECP256R1())
        self.intermediate = _ca_cert(f"{common_name} intermediate", self.intermediate_key, self.cert, self.key, path_length=0)
        self.intermediate_pem = _pem(self.intermediate)

    def write(self, path: Path) -> Path:
        """Write the root (what a client trusts) to ``path``."""
        path.write_bytes(self.pem)
        return path

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts only this root (hostname checked)."""
        return ssl.create_default_context(cadata=self.pem.decode())

    def issue(
        self,
        hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
        valid_from: datetime.timedelta = -DAY,
        valid_for: datetime.timedelta = 10 * DAY,
    ) -> Leaf:
        """A leaf for ``hosts``, signed by the intermediate, valid from now + ``valid_from`` for ``valid_for``
        (negative offsets make expired ones)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        serial = x509.random_serial_number()
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(hosts[0]))
            .issuer_name(self.intermediate.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now + valid_from)
            .not_valid_after(now + valid_from + valid_for)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.intermediate_key.public_key()), critical=False
            )
            .sign(self.intermediate_key, hashes.SHA256())
        )
        return Leaf(chain_pem=_pem(cert) + self.intermediate_pem, key_pem=_key_pem(key), serial=serial)


def other_key_pem() -> bytes:
    """A private key that matches no certificate (for mismatched pairs)."""
    return _key_pem(ec.generate_private_key(ec.SECP256R1()))
