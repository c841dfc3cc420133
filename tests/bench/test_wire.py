"""The load generator's byte helpers, on bytes only (no sockets)."""

from __future__ import annotations

import pytest

from livehub.bench.wire import (
    OP_PING,
    CfCounter,
    ChunkedReader,
    WsCounter,
    WsParser,
    cf_commands,
    make_payload,
    parse_marks,
    split_head,
    ws_client_frame,
)


def server_frame(payload: bytes, opcode: int = 1) -> bytes:
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big")
    return head + payload


def test_payload_has_requested_size_and_parses_back() -> None:
    p = make_payload(42, 123456789, 100)
    assert len(p) == 100
    out: list[tuple[int, int]] = []
    assert parse_marks(p, 0, len(p), out) == len(p)
    assert out == [(42, 123456789)]


def test_payload_longer_than_size_when_header_does_not_fit() -> None:
    assert make_payload(1, 2, 3) == b"#1,2,"


def test_parse_marks_keeps_incomplete_tail() -> None:
    stream = b'data: "#1,10,xx"\n\ndata: "#2,2'
    out: list[tuple[int, int]] = []
    rest = parse_marks(stream, 0, len(stream), out)
    assert out == [(1, 10)]
    assert stream[rest:] == b"#2,2"


@pytest.mark.parametrize("size", [1, 35, 125, 126, 300, 65535, 65536, 70000])
def test_counter_counts_frames_split_at_every_offset(size: int) -> None:
    frames = b"".join(server_frame(b"#" * size) for _ in range(3))
    step = max(1, len(frames) // 97)
    for cut in range(0, len(frames), step):
        counter = WsCounter()
        total = counter.feed(frames[:cut]) + counter.feed(frames[cut:])
        assert total == 3, cut


def test_counter_reports_pings_and_skips_them() -> None:
    counter = WsCounter()
    data = server_frame(b"a") + server_frame(b"hi", OP_PING) + server_frame(b"b")
    assert counter.feed(data) == 2
    assert counter.controls == [(OP_PING, b"hi")]


def test_parser_reassembles_frames_across_reads() -> None:
    frames = server_frame(b"one") + server_frame(b"x" * 200)
    parser = WsParser()
    assert parser.feed(frames[:4]) == []
    assert parser.feed(frames[4:]) == [(1, b"one"), (1, b"x" * 200)]


def test_client_frame_uses_zero_mask() -> None:
    frame = ws_client_frame(b"hello")
    assert frame == b"\x81\x85\x00\x00\x00\x00hello"
    assert ws_client_frame(b"x" * 200)[:4] == b"\x81\xfe\x00\xc8"


def test_split_head_and_chunked_body() -> None:
    raw = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nNEXT")
    parsed = split_head(raw)
    assert parsed is not None
    head, offset = parsed
    assert head.status == 200 and head.chunked
    reader = ChunkedReader(head)
    assert reader.feed(raw[offset : offset + 5]) == b""
    assert reader.feed(raw[offset + 5 :]) == b"NEXT"
    assert reader.done and reader.body == b"abcde"


def test_content_length_body_and_incomplete_head() -> None:
    assert split_head(b"HTTP/1.1 200 OK\r\n") is None
    parsed = split_head(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert parsed is not None
    assert ChunkedReader(parsed[0]).done
    with pytest.raises(ValueError):
        split_head(b"SSH-2.0\r\n\r\n")


def _pub(seq: int) -> bytes:
    data = make_payload(seq, 7, 100).decode()
    return b'{"push":{"channel":"bench:x","pub":{"data":"%s","offset":%d}}}' % (
        data.encode(), seq)


def test_cf_counter_counts_pushes_at_every_split() -> None:
    # Several pushes in one frame (newline-separated), a ping, a 35-byte frame whose header
    # byte is "#" (0x23), and a long frame with a 2-byte extended length.
    frames = (server_frame(b"\n".join(_pub(s) for s in (1, 2, 3)))
              + server_frame(b"{}")
              + server_frame(b'{"push":{"channel":"c","join":{}}}'.ljust(35))
              + server_frame(_pub(4))
              + server_frame(b"\n".join(_pub(s) for s in range(5, 9))))
    assert frames.count(b"\x81\x23") == 1
    for cut in range(len(frames) + 1):
        counter = CfCounter()
        total = counter.feed(frames[:cut]) + counter.feed(frames[cut:])
        assert total == 8, cut
        assert counter.pings == 1 and counter.controls == []
    counter = CfCounter()
    assert sum(counter.feed(frames[i : i + 7]) for i in range(0, len(frames), 7)) == 8


def test_cf_commands_frame() -> None:
    frame = cf_commands(b'{"id":1,"connect":{}}', b'{"id":2}')
    assert frame[6:] == b'{"id":1,"connect":{}}\n{"id":2}'
