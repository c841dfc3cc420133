"""``livehub.asgi.framing`` (pure): livehub's own HTTP/1.1 and WebSocket output read back into
what ASGI sends, and the client frames the adapter feeds to a connection's parser."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livehub.asgi.framing import (
    Dechunker,
    client_frame,
    close_payload,
    read_head,
    split_frames,
)
from livehub.transports.framing import chunk
from livehub.transports.messages import head_bytes
from livehub.transports.stream import LAST_CHUNK
from livehub.wire.websocket import (
    BinaryMessage,
    FrameParser,
    Opcode,
    TextMessage,
    encode_close,
    encode_frame,
)


def test_head_of_a_stream_drops_what_the_asgi_server_writes() -> None:
    head = head_bytes(200, [("content-type", "application/x-ndjson"),
                            ("cache-control", "no-cache"), ("transfer-encoding", "chunked"),
                            ("access-control-allow-origin", "*")])
    assert read_head(head[:-1]) is None  # incomplete
    found = read_head(head + b"rest")
    assert found is not None
    parsed, end = found
    assert (parsed.status, parsed.chunked, end) == (200, True, len(head))
    assert parsed.headers == [(b"content-type", b"application/x-ndjson"),
                              (b"cache-control", b"no-cache"),
                              (b"access-control-allow-origin", b"*")]


def test_101_head_gives_the_subprotocol() -> None:
    head = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: x\r\nSec-WebSocket-Protocol: chat\r\n\r\n")
    found = read_head(head)
    assert found is not None
    assert (found[0].status, found[0].subprotocol, found[0].headers) == (101, "chat", [])


def test_not_a_head_is_a_bug() -> None:
    with pytest.raises(ValueError, match=r"HTTP/1\.1"):
        read_head(b"data: x\r\n\r\n")


@given(st.lists(st.binary(min_size=1, max_size=300), max_size=20), st.data())
def test_dechunker_reads_back_any_split_of_a_chunked_body(payloads: list[bytes],
                                                          data: st.DataObject) -> None:
    body = b"".join(chunk(p) for p in payloads) + LAST_CHUNK
    cuts = sorted(data.draw(st.lists(st.integers(0, len(body)), max_size=6)))
    dechunker = Dechunker()
    out = b""
    start = 0
    for cut in [*cuts, len(body)]:
        out += dechunker.feed(body[start:cut])
        start = cut
    assert out == b"".join(payloads) and dechunker.done


@given(st.lists(st.tuples(st.sampled_from([Opcode.TEXT, Opcode.BINARY]),
                          st.binary(max_size=70_000)), max_size=5), st.integers(0, 10))
def test_split_frames_reads_back_server_frames(frames: list[tuple[int, bytes]],
                                               cut: int) -> None:
    stream = b"".join(encode_frame(op, payload) for op, payload in frames)
    first, rest = split_frames(stream[:cut])
    second, left = split_frames(rest + stream[cut:])
    assert [*first, *second] == [(int(op), p) for op, p in frames] and left == b""


def test_split_frames_refuses_what_livehub_never_writes_under_asgi() -> None:
    with pytest.raises(ValueError):
        split_frames(encode_frame(Opcode.TEXT, b"x", rsv1=True))  # compressed
    with pytest.raises(ValueError):
        split_frames(client_frame(Opcode.TEXT, b"x"))  # masked


def test_close_payload() -> None:
    (frame,), _ = split_frames(encode_close(3008, "slow consumer"))
    assert close_payload(frame[1]) == (3008, "slow consumer")
    assert close_payload(b"") == (1000, "")


@given(st.text(max_size=70_000), st.binary(max_size=70_000))
def test_client_frames_parse_in_the_connections_own_parser(text: str, blob: bytes) -> None:
    parser = FrameParser(max_message_size=1 << 20)
    events = parser.feed(client_frame(Opcode.TEXT, text.encode())
                         + client_frame(Opcode.BINARY, blob))
    assert events == [TextMessage(text), BinaryMessage(blob)]
