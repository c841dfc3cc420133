"""A test certificate authority made by the fixtures (trustme) and a server certificate for
127.0.0.1 and localhost, written to files the server and the clients read."""

from __future__ import annotations

import base64
import hashlib
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization


@dataclass(frozen=True, slots=True)
class TlsFiles:
    authority: trustme.CA
    ca: Path
    """The CA certificate (PEM): what clients trust."""
    cert: Path
    """The server's certificate chain (PEM)."""
    key: Path
    """The server's private key (PEM)."""
    spki: str
    """base64 SHA-256 of the server certificate's public key (Chromium's
    ``--ignore-certificate-errors-spki-list``)."""

    def client_context(self, alpn: tuple[str, ...] = ("h2", "http/1.1")) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca))
        context.set_alpn_protocols(list(alpn))
        return context


def spki_hash(cert_pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem)
    der = cert.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def make_tls_files(directory: Path, authority: trustme.CA | None = None,
                   name: str = "server") -> TlsFiles:
    """A server certificate for 127.0.0.1/localhost from ``authority`` (a new CA if None)."""
    authority = authority or trustme.CA()
    issued = authority.issue_cert("127.0.0.1", "localhost", common_name=name)
    ca = directory / "ca.pem"
    cert = directory / f"{name}-cert.pem"
    key = directory / f"{name}-key.pem"
    authority.cert_pem.write_to_path(str(ca))
    for blob in issued.cert_chain_pems:
        blob.write_to_path(str(cert), append=True)
    issued.private_key_pem.write_to_path(str(key))
    return TlsFiles(authority, ca, cert, key, spki_hash(issued.cert_chain_pems[0].bytes()))
