"""The server's TLS: the certificate and key, ALPN (``h2``, ``http/1.1``), reload on SIGHUP.

``ServerTls.load`` reads the certificate chain and key into an ``ssl.SSLContext`` that offers
HTTP/2 and HTTP/1.1 by ALPN (RFC 7301; RFC 9113 §3.2: ``h2`` over TLS 1.2+) and refuses TLS
below 1.2.  A certificate or key that cannot be read, or that do not match, is a
``ConfigError`` that names the file and the reason: the server does not start (exit code 2).

Reload (``reload``, on SIGHUP): the files are read into a *new* context first; if that fails
the error is returned (and logged by the caller) and the running context stays.  New
connections then use the new certificate, open ones keep theirs.  The listening socket was
given one context at start-up, whose ``sni_callback`` (called for every ClientHello, with or
without a server name) switches each new connection to the current one.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

from livehub.errors import ConfigError

ALPN = ("h2", "http/1.1")
"""What the server offers, in its order of preference."""


def _context(cert: str, key: str | None) -> ssl.SSLContext:
    """A server context for ``cert`` (a PEM chain) and ``key`` (or the key in ``cert``)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(list(ALPN))
    # RFC 9113 §9.2: no compression, no renegotiation (OpenSSL 3 defaults); forward secrecy
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        context.load_cert_chain(cert, key)
    except FileNotFoundError as exc:
        raise ConfigError(f"TLS: no such file: {exc.filename or cert}") from None
    except PermissionError as exc:
        raise ConfigError(f"TLS: cannot read {exc.filename or cert}: permission "
                          "denied") from None
    except ssl.SSLError as exc:
        raise ConfigError(f"TLS: cannot load certificate {cert} with key {key or cert}: "
                          f"{exc.reason or exc} (a PEM certificate chain and its matching "
                          "private key are needed)") from None
    except OSError as exc:
        raise ConfigError(f"TLS: cannot read {cert}: {exc.strerror or exc}") from None
    return context


@dataclass(eq=False, slots=True)
class ServerTls:
    """The listening socket's TLS context and the certificate new connections get."""

    cert: str
    key: str | None
    context: ssl.SSLContext
    """The context the listening socket was created with (its callback picks ``current``)."""
    current: ssl.SSLContext
    reloads: int = 0
    """Successful reloads so far."""
    _alpn: tuple[str, ...] = field(default=ALPN)

    @classmethod
    def load(cls, cert: str, key: str | None) -> ServerTls:
        """Read ``cert`` and ``key``; ``ConfigError`` if they cannot serve."""
        context = _context(cert, key)
        tls = cls(cert, key, context, context)
        context.sni_callback = tls._pick
        return tls

    def reload(self) -> ConfigError | None:
        """Read the files again; new connections use them.  The error if they cannot serve
        (the running certificate then stays)."""
        try:
            fresh = _context(self.cert, self.key)
        except ConfigError as exc:
            return exc
        self.current = fresh
        self.reloads += 1
        return None

    def _pick(self, conn: ssl.SSLObject, server_name: str | None,
              context: ssl.SSLContext) -> None:
        current = self.current
        if current is not self.context:
            conn.context = current
