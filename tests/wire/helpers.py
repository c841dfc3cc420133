"""Test helpers: raw client frames built by hand and an independent peer (``websockets``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from websockets.client import ClientProtocol
from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
)
from websockets.frames import Frame
from websockets.headers import parse_extension
from websockets.protocol import State
from websockets.streams import StreamReader
from websockets.uri import parse_uri

from livehub.errors import LivehubError
from livehub.wire.handshake import Handshake, check_request, response_bytes
from livehub.wire.websocket import Event, FrameParser

MASK = b"\x37\xfa\x21\x3d"


def raw_frame(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0,
              masked: bool = True, mask: bytes = MASK, length_bytes: int | None = None) -> bytes:
    """A client frame built byte by byte, so it can break any rule (RFC 6455 §5.2).

    ``rsv`` is OR-ed into the first byte (0x40 RSV1, 0x20 RSV2, 0x10 RSV3);
    ``length_bytes`` forces 0, 2 or 8 extended length bytes (non-minimal encodings).
    Masking is a plain per-byte XOR: an independent reference for the parser.
    """
    n = len(payload)
    if length_bytes is None:
        length_bytes = 0 if n < 126 else 2 if n < 0x10000 else 8
    head = bytearray([(0x80 if fin else 0) | rsv | opcode])
    mask_bit = 0x80 if masked else 0
    if length_bytes == 0:
        head.append(mask_bit | n)
    elif length_bytes == 2:
        head.append(mask_bit | 126)
        head += n.to_bytes(2, "big")
    else:
        head.append(mask_bit | 127)
        head += n.to_bytes(8, "big")
    if not masked:
        return bytes(head) + payload
    return bytes(head) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def feed_all(parser: FrameParser, data: bytes, chunks: Iterable[int] = ()) -> list[Event]:
    """Feed ``data`` cut at the offsets in ``chunks`` (sorted); collect every event."""
    events: list[Event] = []
    start = 0
    for cut in sorted(set(chunks)):
        if start < cut < len(data):
            events += parser.feed(data[start:cut])
            start = cut
    events += parser.feed(data[start:])
    return events


def feed_bytewise(parser: FrameParser, data: bytes) -> list[Event]:
    events: list[Event] = []
    for i in range(len(data)):
        events += parser.feed(data[i:i + 1])
    return events


def close_code_of(parser: FrameParser, data: bytes) -> int:
    """Feed ``data`` and return the close code of the error it must raise (maybe on the next
    ``feed``, when events preceded the violation)."""
    try:
        parser.feed(data)
        parser.feed(b"")
    except LivehubError as exc:
        return exc.close_code
    raise AssertionError("no error raised")


def read_server_frames(data: bytes, extensions: Sequence[Extension] = ()) -> list[Frame]:
    """Parse unmasked server frames with ``websockets``' own parser."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    frames: list[Frame] = []
    while reader.buffer:
        gen = Frame.parse(reader.read_exact, mask=False, extensions=list(extensions))
        try:
            gen.send(None)
        except StopIteration as stop:
            frames.append(stop.value)
        else:
            raise AssertionError("truncated server frame")
    return frames


def client_deflate(response_value: str,
                   factory: ClientPerMessageDeflateFactory | None = None) -> PerMessageDeflate:
    """The ``websockets`` client side of a permessage-deflate response we produced."""
    factory = factory or ClientPerMessageDeflateFactory()
    [(name, params)] = parse_extension(response_value)
    assert name == "permessage-deflate"
    return factory.process_response_params(params, [])


def handshake_client(*, extensions: Sequence[ClientPerMessageDeflateFactory] = (),
                     subprotocols: Sequence[str] = (), origin: str | None = None,
                     server_subprotocols: Sequence[str] = (),
                     allowed_origins: Sequence[str] | None = None,
                     deflate: bool = True) -> tuple[ClientProtocol, Handshake]:
    """Run a full opening handshake between a ``websockets`` client and ``check_request``."""
    client = ClientProtocol(
        parse_uri("ws://example.com/ws"),
        origin=origin,
        extensions=list(extensions),
        subprotocols=list(subprotocols),
        max_size=None,
    )
    request = client.connect()
    client.send_request(request)
    assert b"".join(client.data_to_send()).startswith(b"GET /ws HTTP/1.1\r\n")
    headers = request_headers(request.headers.raw_items())
    handshake = check_request("GET", headers, subprotocols=server_subprotocols,
                              allowed_origins=allowed_origins, deflate=deflate)
    client.receive_data(response_bytes(handshake))
    assert client.handshake_exc is None, client.handshake_exc
    assert client.state is State.OPEN
    return client, handshake


def request_headers(items: Iterable[tuple[str, str]]) -> Mapping[str, str]:
    """Lower-case names, repeated fields joined with ", " (what the HTTP layer hands us)."""
    out: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out
