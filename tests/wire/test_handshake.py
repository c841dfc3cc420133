"""Server opening handshake against RFC 6455 §4.2, cross-checked with the websockets client."""

from __future__ import annotations

import base64
import os

import pytest
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
)
from websockets.frames import Frame
from websockets.frames import Opcode as WsOpcode
from websockets.protocol import State

from livehub.errors import BadRequest, Forbidden
from livehub.wire.deflate import Deflater, encode_message
from livehub.wire.handshake import (
    Handshake,
    HandshakeError,
    accept_key,
    check_request,
    response_bytes,
)
from livehub.wire.websocket import FrameParser, TextMessage, encode_text
from tests.wire.helpers import handshake_client

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def request(**overrides: str | None) -> dict[str, str]:
    headers = {
        "host": "example.com",
        "upgrade": "websocket",
        "connection": "Upgrade",
        "sec-websocket-key": KEY,
        "sec-websocket-version": "13",
    }
    for attr, value in overrides.items():
        name = attr.replace("_", "-")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return headers


def test_accept_key_example_of_section_1_3() -> None:
    assert accept_key(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_minimal_request_and_response_bytes() -> None:
    h = check_request("GET", request())
    assert h == Handshake(key=KEY, subprotocol=None, deflate=None, response_headers=[
        (b"Upgrade", b"websocket"),
        (b"Connection", b"Upgrade"),
        (b"Sec-WebSocket-Accept", b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
    ])
    assert response_bytes(h) == (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        b"\r\n")


@pytest.mark.parametrize(("upgrade", "connection"), [
    ("WebSocket", "upgrade"),
    ("websocket, h2c", "keep-alive, Upgrade"),
    ("  websocket ", "Keep-Alive,UPGRADE"),
])
def test_tokens_are_case_insensitive_lists(upgrade: str, connection: str) -> None:
    assert check_request("GET", request(upgrade=upgrade, connection=connection)).key == KEY


def test_method_must_be_get() -> None:
    with pytest.raises(HandshakeError) as exc:
        check_request("POST", request())
    assert exc.value.http_status == 405
    assert exc.value.headers == [(b"Allow", b"GET")]


@pytest.mark.parametrize("overrides", [
    {"host": None},
    {"upgrade": None},
    {"upgrade": "h2c"},
    {"upgrade": "websocket2"},
    {"connection": None},
    {"connection": "keep-alive"},
    {"connection": "upgraded"},
])
def test_missing_or_wrong_upgrade_headers_are_400(overrides: dict[str, str | None]) -> None:
    with pytest.raises(HandshakeError) as exc:
        check_request("GET", request(**overrides))
    assert exc.value.http_status == 400
    assert isinstance(exc.value, BadRequest)


@pytest.mark.parametrize("version", [None, "8", "12", "13, 8", "14"])
def test_other_versions_are_426_with_the_supported_version(version: str | None) -> None:
    with pytest.raises(HandshakeError) as exc:
        check_request("GET", request(sec_websocket_version=version))
    assert exc.value.http_status == 426
    assert exc.value.headers == [(b"Sec-WebSocket-Version", b"13")]


@pytest.mark.parametrize("key", [
    None,
    "",
    "not base64!",
    base64.b64encode(os.urandom(15)).decode(),
    base64.b64encode(os.urandom(17)).decode(),
    base64.b64encode(os.urandom(16)).decode().rstrip("="),  # unpadded
    f"{KEY}, {KEY}",  # repeated header, joined by the HTTP layer
])
def test_key_must_be_base64_of_16_bytes(key: str | None) -> None:
    with pytest.raises(HandshakeError) as exc:
        check_request("GET", request(sec_websocket_key=key))
    assert exc.value.http_status == 400


ORIGINS = ["https://app.example.com", "http://localhost:8080"]


@pytest.mark.parametrize(("origin", "allowed"), [
    ("https://app.example.com", ORIGINS),
    ("HTTPS://App.Example.com", ORIGINS),
    ("http://localhost:8080", ORIGINS),
    (None, ORIGINS),  # non-browser clients send no Origin
    ("https://evil.example", ["*"]),
    ("https://evil.example", None),
])
def test_allowed_origins(origin: str | None, allowed: list[str] | None) -> None:
    assert check_request("GET", request(origin=origin), allowed_origins=allowed).key == KEY


@pytest.mark.parametrize("origin", ["https://evil.example", "http://app.example.com", "null",
                                    "https://app.example.com:8443"])
def test_other_origins_are_forbidden(origin: str) -> None:
    with pytest.raises(Forbidden) as exc:
        check_request("GET", request(origin=origin), allowed_origins=ORIGINS)
    assert exc.value.http_status == 403


@pytest.mark.parametrize(("offered", "supported", "chosen"), [
    ("chat, livehub.v1", ["livehub.v1", "chat"], "chat"),  # client's preference order
    ("a,b , livehub.v2", ["livehub.v2"], "livehub.v2"),
    ("other", ["livehub.v1"], None),
    (None, ["livehub.v1"], None),
    ("livehub.v1", [], None),
    ("Livehub.V1", ["livehub.v1"], None),  # subprotocol tokens are case-sensitive
])
def test_subprotocol_selection(offered: str | None, supported: list[str],
                               chosen: str | None) -> None:
    h = check_request("GET", request(sec_websocket_protocol=offered), subprotocols=supported)
    assert h.subprotocol == chosen
    protocol_headers = [v for n, v in h.response_headers if n == b"Sec-WebSocket-Protocol"]
    assert protocol_headers == ([chosen.encode()] if chosen else [])


def test_extension_negotiation_and_opt_out() -> None:
    offer = "permessage-deflate; client_max_window_bits"
    h = check_request("GET", request(sec_websocket_extensions=offer))
    assert h.deflate is not None
    assert (b"Sec-WebSocket-Extensions",
            b"permessage-deflate; server_no_context_takeover") in h.response_headers
    h = check_request("GET", request(sec_websocket_extensions=offer), deflate=False)
    assert h.deflate is None
    assert all(n != b"Sec-WebSocket-Extensions" for n, _ in h.response_headers)


# --- End to end with the websockets client (sans-I/O) ----------------------------------------


def test_websockets_client_completes_the_handshake_and_talks() -> None:
    client, h = handshake_client(
        extensions=[ClientPerMessageDeflateFactory()],
        subprotocols=["livehub.v2", "livehub.v1"], server_subprotocols=["livehub.v1",
                                                                        "livehub.v2"],
        origin="https://app.example.com", allowed_origins=ORIGINS)
    assert client.subprotocol == h.subprotocol == "livehub.v2"
    assert h.deflate is not None
    [ext] = client.extensions
    assert isinstance(ext, PerMessageDeflate)
    client.events_received()  # the handshake response

    # Client to server, compressed with context takeover.
    parser = FrameParser(deflate=Deflater(h.deflate))
    client.send_text(("hello " * 30).encode())
    client.send_text(b"frag", fin=False)
    client.send_continuation(("ment " * 30).encode(), fin=True)
    events = parser.feed(b"".join(client.data_to_send()))
    assert events == [TextMessage("hello " * 30), TextMessage("frag" + "ment " * 30)]

    # Server to client, plain and compressed.
    client.receive_data(encode_text("short") + encode_message("long " * 40, h.deflate))
    frames = client.events_received()
    assert [(f.opcode, bytes(f.data)) for f in frames if isinstance(f, Frame)] == [
        (WsOpcode.TEXT, b"short"), (WsOpcode.TEXT, ("long " * 40).encode())]
    assert client.state is State.OPEN  # nothing we sent made it fail the connection


def test_websockets_client_without_extensions() -> None:
    client, h = handshake_client(server_subprotocols=["livehub.v1"])
    assert h.deflate is None and h.subprotocol is None and client.extensions == []


def test_websockets_client_when_deflate_is_disabled() -> None:
    client, h = handshake_client(extensions=[ClientPerMessageDeflateFactory()], deflate=False)
    assert h.deflate is None and client.extensions == []
