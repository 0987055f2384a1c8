"""Fixtures of the actor tests: SMTP servers on this machine's network address (a "remote"
server for the mailer's TLS rules), with STARTTLS under a certificate made here or without."""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from storage.embedded import free_port
from tests.mail import SmtpServer

LOGIN = ("vigil", "relay password")


def own_address() -> str:
    """This machine's address on its network (not loopback): a "remote" SMTP server."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the route
        address = s.getsockname()[0]
    assert not ipaddress.ip_address(address).is_loopback, address
    return address


def self_signed(directory: Path, host: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp.crt", directory / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def remote_tls(tmp_path: Path) -> Iterator[tuple[SmtpServer, Path]]:
    """A server on this machine's network address offering STARTTLS and requiring login."""
    host = own_address()
    cert, key = self_signed(tmp_path, host)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = SmtpServer(free_port(), host=host, tls_context=context, login=LOGIN)
    server.start()
    yield server, cert
    server.stop()


@pytest.fixture
def remote_plain() -> Iterator[SmtpServer]:
    """A server on this machine's network address without STARTTLS."""
    server = SmtpServer(free_port(), host=own_address())
    server.start()
    yield server
    server.stop()
