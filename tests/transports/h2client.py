"""A raw HTTP/2 client on the ``h2`` library and a blocking socket, for the bad-input tests:
it sends what a misbehaving client sends (a thousand streams at once, no WINDOW_UPDATE, a
request that never ends) and records every event the server causes."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable

import h2.config
import h2.connection
import h2.events
import h2.settings

OPEN: list[H2Client] = []
"""Clients not closed yet: ``close_all`` closes them after each test, failed ones too."""


def close_all() -> None:
    while OPEN:
        OPEN.pop().close()


class H2Client:
    """One HTTP/2 connection (h2c with prior knowledge, or TLS with ALPN h2)."""

    def __init__(self, port: int, *, window: int | None = None,
                 tls: ssl.SSLContext | None = None) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=15)
        if tls is not None:
            sock = tls.wrap_socket(sock, server_hostname="127.0.0.1")
            assert isinstance(sock, ssl.SSLSocket) and sock.selected_alpn_protocol() == "h2"
        self.sock = sock
        OPEN.append(self)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8"))
        if window is not None:
            # sent in the first SETTINGS: the server may send ``window`` bytes per stream
            self.conn.local_settings = h2.settings.Settings(client=True, initial_values={
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.conn.initiate_connection()
        self.events: list[h2.events.Event] = []
        self.closed = False
        self.flush()

    def request(self, path: str, method: str = "GET", *, end: bool = True,
                headers: list[tuple[str, str]] | None = None, flush: bool = True) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream_id, [(":method", method), (":path", path),
                                           (":scheme", "http"), (":authority", "127.0.0.1"),
                                           *(headers or [])], end_stream=end)
        if flush:
            self.flush()
        return stream_id

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def read(self) -> None:
        """One read from the socket; its events are appended to ``events``."""
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:  # closed by the server with our frames unread
            data = b""
        if not data:
            self.closed = True
            return
        self.events.extend(self.conn.receive_data(data))
        self.flush()

    def until(self, done: Callable[[list[h2.events.Event]], bool]) -> None:
        """Read until ``done(events)`` (the socket timeout bounds every read)."""
        while not done(self.events):
            assert not self.closed, f"connection closed; events: {self.events[-5:]}"
            self.read()

    def body(self, stream_id: int) -> bytes:
        return b"".join(e.data or b"" for e in self.events
                        if isinstance(e, h2.events.DataReceived) and e.stream_id == stream_id)

    def status(self, stream_id: int) -> int | None:
        for e in self.events:
            if isinstance(e, h2.events.ResponseReceived) and e.stream_id == stream_id:
                for name, value in e.headers or []:
                    if name in (":status", b":status"):
                        return int(value)
        return None

    def ended(self, stream_id: int) -> bool:
        return any(isinstance(e, h2.events.StreamEnded | h2.events.StreamReset)
                   and e.stream_id == stream_id for e in self.events)

    def close(self) -> None:
        self.sock.close()
        if self in OPEN:
            OPEN.remove(self)
