"""permessage-deflate against RFC 7692: §5/§7.1 negotiation, §6 RSV1, §7.2 (de)compression."""

from __future__ import annotations

import os
import tracemalloc
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame
from websockets.frames import Opcode as WsOpcode
from websockets.headers import build_extension

from livehub.errors import PayloadTooLarge, WebSocketError
from livehub.wire.deflate import (
    COMPRESS_THRESHOLD,
    SAMPLE_FROM,
    DeflateParams,
    Deflater,
    compress_shared,
    encode_message,
    negotiate,
    parse_offers,
    worth_compressing,
)
from livehub.wire.websocket import (
    BinaryMessage,
    FrameParser,
    Ping,
    TextMessage,
    encode_frame,
)
from tests.wire.helpers import (
    client_deflate,
    close_code_of,
    feed_all,
    raw_frame,
    read_server_frames,
)

PMD = "permessage-deflate"
SNCT = "server_no_context_takeover"


def deflate_raw(data: bytes, bits: int = 15) -> bytes:
    """A client's compressed message payload: sync flush, tail stripped (RFC 7692 §7.2.1)."""
    c = zlib.compressobj(6, zlib.DEFLATED, -bits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def inflate_raw(payload: bytes, bits: int = 15) -> bytes:
    return zlib.decompressobj(-bits).decompress(payload + b"\x00\x00\xff\xff")


# --- §7.1 negotiation ------------------------------------------------------------------------


@pytest.mark.parametrize(("offer", "response", "params"), [
    (PMD, f"{PMD}; {SNCT}", DeflateParams()),
    (f"{PMD}; {SNCT}", f"{PMD}; {SNCT}", DeflateParams()),
    (f"{PMD}; client_no_context_takeover",
     f"{PMD}; {SNCT}; client_no_context_takeover",
     DeflateParams(client_no_context_takeover=True)),
    (f"{PMD}; server_max_window_bits=10", f"{PMD}; {SNCT}; server_max_window_bits=10",
     DeflateParams(server_max_window_bits=10)),
    (f"{PMD}; client_max_window_bits", f"{PMD}; {SNCT}", DeflateParams()),
    # §7.1.2.2: the offered value binds the client even if we do not echo it.
    (f"{PMD}; client_max_window_bits=10", f"{PMD}; {SNCT}",
     DeflateParams(client_max_window_bits=10)),
    (f'{PMD}; client_max_window_bits="12"', f"{PMD}; {SNCT}",
     DeflateParams(client_max_window_bits=12)),
    ("Permessage-Deflate;Server_Max_Window_Bits=9", f"{PMD}; {SNCT}; server_max_window_bits=9",
     DeflateParams(server_max_window_bits=9)),
    (f"x-webkit-deflate-frame, {PMD}; client_max_window_bits", f"{PMD}; {SNCT}",
     DeflateParams()),
    # Declined offers are skipped, the next valid one is accepted (§5).
    (f"{PMD}; server_max_window_bits=8, {PMD}; client_no_context_takeover",
     f"{PMD}; {SNCT}; client_no_context_takeover",
     DeflateParams(client_no_context_takeover=True)),
    (f"{PMD}; foo=1, {PMD}", f"{PMD}; {SNCT}", DeflateParams()),
    (f'{PMD}; x="a,b", {PMD}; server_max_window_bits=11',
     f"{PMD}; {SNCT}; server_max_window_bits=11", DeflateParams(server_max_window_bits=11)),
])
def test_accepted_offers(offer: str, response: str, params: DeflateParams) -> None:
    assert negotiate(offer) == (response, params)


@pytest.mark.parametrize("offer", [
    None,
    "",
    "x-webkit-deflate-frame",
    f"{PMD}; foo",  # unknown parameter
    f"{PMD}; {SNCT}; {SNCT}",  # duplicate
    f"{PMD}; client_max_window_bits; client_max_window_bits=10",  # duplicate
    f"{PMD}; {SNCT}=1",  # value where none is allowed
    f"{PMD}; client_no_context_takeover=true",
    f"{PMD}; server_max_window_bits",  # value required
    f"{PMD}; server_max_window_bits=7",
    f"{PMD}; server_max_window_bits=16",
    f"{PMD}; server_max_window_bits=010",  # leading zero
    f"{PMD}; server_max_window_bits=abc",
    f"{PMD}; client_max_window_bits=16",
    f"{PMD}; client_max_window_bits=",
    f"{PMD}; server_max_window_bits=8",  # zlib cannot deflate with a 256-byte window
    f'{PMD}; client_max_window_bits="10',  # unterminated quoted-string
    f'{PMD}; client_max_window_bits="1 0"',  # quoted value must be a token
    f"{PMD} ;; {SNCT}",
    "permessage-deflate2",
])
def test_declined_offers(offer: str | None) -> None:
    assert negotiate(offer) is None


def test_disabled() -> None:
    assert negotiate(PMD, enabled=False) is None


def test_server_limits() -> None:
    # §7.1.2.1: the server may announce a smaller window even if not offered.
    assert negotiate(PMD, server_max_window_bits=12) == (
        f"{PMD}; {SNCT}; server_max_window_bits=12", DeflateParams(server_max_window_bits=12))
    assert negotiate(f"{PMD}; server_max_window_bits=10", server_max_window_bits=12) == (
        f"{PMD}; {SNCT}; server_max_window_bits=10", DeflateParams(server_max_window_bits=10))
    # §7.1.2.2: client_max_window_bits only in answer to an offer carrying it.
    assert negotiate(PMD, client_max_window_bits=10) == (f"{PMD}; {SNCT}", DeflateParams())
    assert negotiate(f"{PMD}; client_max_window_bits", client_max_window_bits=10) == (
        f"{PMD}; {SNCT}; client_max_window_bits=10", DeflateParams(client_max_window_bits=10))
    assert negotiate(f"{PMD}; client_max_window_bits=9", client_max_window_bits=10) == (
        f"{PMD}; {SNCT}", DeflateParams(client_max_window_bits=9))
    # §7.1.1.2: client_no_context_takeover may always be imposed.
    assert negotiate(PMD, client_no_context_takeover=True) == (
        f"{PMD}; {SNCT}; client_no_context_takeover",
        DeflateParams(client_no_context_takeover=True))
    with pytest.raises(ValueError, match="9-15"):
        negotiate(PMD, server_max_window_bits=8)


def test_variant_key_groups_by_server_window() -> None:
    a = DeflateParams(server_max_window_bits=12, client_no_context_takeover=True)
    b = DeflateParams(server_max_window_bits=12, client_max_window_bits=9)
    assert a.variant_key == b.variant_key != DeflateParams().variant_key
    assert len({a.variant_key, b.variant_key}) == 1


def test_parse_offers_marks_broken_offers() -> None:
    assert parse_offers(f'{PMD}; a=1; b="1\\0", {PMD} ; =1, foo,, {PMD}; c="q\\"x"') == [
        (PMD, [("a", "1"), ("b", "10")]), None, ("foo", []), None]


bits_or_none = st.one_of(st.none(), st.integers(8, 15))


@settings(max_examples=200, deadline=None)
@given(st.booleans(), st.booleans(), bits_or_none,
       st.one_of(st.none(), st.just(True), st.integers(9, 15)))
def test_every_websockets_client_offer_is_handled(
        server_nct: bool, client_nct: bool, server_bits: int | None,
        client_bits: int | bool | None) -> None:
    factory = ClientPerMessageDeflateFactory(
        server_no_context_takeover=server_nct, client_no_context_takeover=client_nct,
        server_max_window_bits=server_bits, client_max_window_bits=client_bits)
    offer = build_extension([(factory.name, factory.get_request_params())])
    result = negotiate(offer)
    if server_bits == 8:
        assert result is None
        return
    assert result is not None
    response, params = result
    ext = client_deflate(response, factory)  # websockets accepts our answer
    assert ext.remote_no_context_takeover  # the server never takes over context
    assert ext.remote_max_window_bits == params.server_max_window_bits
    assert ext.local_max_window_bits <= params.client_max_window_bits
    parser = FrameParser(deflate=Deflater(params))
    for i in range(3):
        text = f"message {i} " + "abcdefgh" * 40
        wire = Frame(WsOpcode.TEXT, text.encode()).serialize(mask=True, extensions=[ext])
        assert wire[0] & 0x40  # RSV1: really compressed
        assert parser.feed(wire) == [TextMessage(text)]
        [frame] = read_server_frames(encode_message(text, params), [ext])
        assert bytes(frame.data).decode() == text


# --- §6 RSV1 in frames -----------------------------------------------------------------------


def test_rsv1_on_a_continuation_frame_is_a_protocol_error() -> None:
    parser = FrameParser(deflate=Deflater(DeflateParams()))
    payload = deflate_raw(b"hello")
    wire = raw_frame(1, payload[:2], fin=False, rsv=0x40) + raw_frame(0, payload[2:], rsv=0x40)
    assert close_code_of(parser, wire) == 1002


@pytest.mark.parametrize("opcode", [8, 9, 10])
def test_rsv1_on_a_control_frame_is_a_protocol_error(opcode: int) -> None:
    assert close_code_of(FrameParser(deflate=Deflater(DeflateParams())),
                         raw_frame(opcode, b"", rsv=0x40)) == 1002


@pytest.mark.parametrize("rsv", [0x20, 0x10, 0x60])
def test_rsv2_rsv3_are_a_protocol_error_even_with_deflate(rsv: int) -> None:
    assert close_code_of(FrameParser(deflate=Deflater(DeflateParams())),
                         raw_frame(1, deflate_raw(b"x"), rsv=rsv)) == 1002


def test_uncompressed_messages_still_allowed_with_deflate() -> None:
    parser = FrameParser(deflate=Deflater(DeflateParams()))
    assert parser.feed(raw_frame(1, b"plain") + raw_frame(1, deflate_raw(b"zipped"), rsv=0x40)
                       + raw_frame(2, b"\x00")) == [
        TextMessage("plain"), TextMessage("zipped"), BinaryMessage(b"\x00")]


# --- §7.2.2 decompression --------------------------------------------------------------------


def test_context_takeover_across_messages() -> None:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    text = b"the quick brown fox jumps over the lazy dog " * 5
    first = (c.compress(text) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
    second = (c.compress(text) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
    assert len(second) < 12  # refers back to the first message
    parser = FrameParser(deflate=Deflater(DeflateParams()))
    wire = raw_frame(1, first, rsv=0x40) + raw_frame(1, second, rsv=0x40)
    assert parser.feed(wire) == [TextMessage(text.decode())] * 2
    # With client_no_context_takeover the window is dropped after each message.
    parser = FrameParser(deflate=Deflater(DeflateParams(client_no_context_takeover=True)))
    assert parser.feed(raw_frame(1, first, rsv=0x40)) == [TextMessage(text.decode())]
    assert close_code_of(parser, raw_frame(1, second, rsv=0x40)) == 1007


def test_corrupt_stream_is_1007() -> None:
    parser = FrameParser(deflate=Deflater(DeflateParams()))
    with pytest.raises(WebSocketError) as exc:
        parser.feed(raw_frame(2, b"\xff\xff\xff\xff", rsv=0x40))
    assert exc.value.close_code == 1007


def test_empty_compressed_message_keeps_the_context() -> None:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    first = (c.compress(b"abcabcabc") + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
    second = (c.compress(b"abcabcabc") + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
    parser = FrameParser(deflate=Deflater(DeflateParams()))
    wire = (raw_frame(1, first, rsv=0x40) + raw_frame(1, b"", rsv=0x40)
            + raw_frame(2, b"", rsv=0x40) + raw_frame(1, second, rsv=0x40))
    assert parser.feed(wire) == [TextMessage("abcabcabc"), TextMessage(""), BinaryMessage(b""),
                                 TextMessage("abcabcabc")]


def test_bfinal_block_ends_the_stream_and_the_next_message_starts_anew() -> None:
    parser = FrameParser(deflate=Deflater(DeflateParams()))
    one = zlib.compress(b"one", wbits=-15)  # ends with a BFINAL block (§7.2.3.4)
    assert parser.feed(raw_frame(1, one, rsv=0x40) + raw_frame(1, deflate_raw(b"two"), rsv=0x40)
                       ) == [TextMessage("one"), TextMessage("two")]


def test_data_after_a_bfinal_block_is_1007() -> None:
    parser = FrameParser(deflate=Deflater(DeflateParams()))
    wire = raw_frame(1, zlib.compress(b"one", wbits=-15) + b"junk", rsv=0x40)
    assert close_code_of(parser, wire) == 1007


def test_fragmented_compressed_message_inflates_per_fragment() -> None:
    payload = deflate_raw("ünïcode ".encode() * 50)
    parser = FrameParser(deflate=Deflater(DeflateParams()))
    wire = b"".join(raw_frame(1 if i == 0 else 0, payload[i:i + 7], fin=i + 7 >= len(payload),
                              rsv=0x40 if i == 0 else 0) for i in range(0, len(payload), 7))
    assert parser.feed(wire) == [TextMessage("ünïcode " * 50)]


def test_invalid_utf8_in_a_compressed_fragment_fails_fast() -> None:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    part = c.compress(b"ok\xff") + c.flush(zlib.Z_SYNC_FLUSH)
    parser = FrameParser(deflate=Deflater(DeflateParams()))
    with pytest.raises(WebSocketError) as exc:
        parser.feed(raw_frame(1, part, fin=False, rsv=0x40))
    assert exc.value.close_code == 1007


def test_decompressed_size_limit() -> None:
    payload = deflate_raw(b"a" * 1001)
    assert len(payload) < 100
    parser = FrameParser(max_message_size=1000, deflate=Deflater(DeflateParams()))
    with pytest.raises(PayloadTooLarge) as exc:
        parser.feed(raw_frame(1, payload, rsv=0x40))
    assert exc.value.close_code == 1009
    parser = FrameParser(max_message_size=1001, deflate=Deflater(DeflateParams()))
    assert parser.feed(raw_frame(1, payload, rsv=0x40)) == [TextMessage("a" * 1001)]


def test_decompressed_size_limit_across_fragments() -> None:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    first = c.compress(b"a" * 600) + c.flush(zlib.Z_SYNC_FLUSH)
    second = (c.compress(b"b" * 600) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
    parser = FrameParser(max_message_size=1000, deflate=Deflater(DeflateParams()))
    assert parser.feed(raw_frame(1, first, fin=False, rsv=0x40)) == []
    with pytest.raises(PayloadTooLarge):
        parser.feed(raw_frame(0, second, fin=False))  # raised before the message ends


def test_wire_size_of_a_compressed_frame_is_bounded_too() -> None:
    header = raw_frame(1, b"x" * 70000, rsv=0x40)[:14]
    with pytest.raises(PayloadTooLarge):
        FrameParser(max_message_size=1000, deflate=Deflater(DeflateParams())).feed(header)


def test_decompression_bomb_is_stopped_without_inflating_it() -> None:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(1 << 20)
    bomb = b"".join(c.compress(chunk) for _ in range(64)) + c.flush(zlib.Z_SYNC_FLUSH)
    bomb = bomb[:-4]  # 64 MiB of zeros in ~64 KiB
    assert len(bomb) < 100_000
    parser = FrameParser(max_message_size=1 << 20, deflate=Deflater(DeflateParams()))
    wire = raw_frame(2, bomb, rsv=0x40)
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooLarge):
            parser.feed(wire)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20  # never held the 64 MiB


def test_deflater_decompress_whole_message() -> None:
    d = Deflater(DeflateParams(client_max_window_bits=9))
    assert d.decompress(deflate_raw(b"xyz" * 100, bits=9), max_size=300) == b"xyz" * 100
    with pytest.raises(PayloadTooLarge):
        d.decompress(deflate_raw(b"xyz" * 100), max_size=299)


# --- §7.2.1 compression, shared for broadcasts -----------------------------------------------


@given(st.lists(st.binary(max_size=5000), min_size=1, max_size=5), st.integers(9, 15))
@settings(max_examples=50, deadline=None)
def test_compress_shared_is_independent_of_earlier_calls(msgs: list[bytes], bits: int) -> None:
    params = DeflateParams(server_max_window_bits=bits)
    first = [compress_shared(msg, params) for msg in msgs]
    for msg, out in zip(msgs, first, strict=True):
        assert not out.endswith(b"\x00\x00\xff\xff")
        assert inflate_raw(out, bits) == msg  # a fresh decompressor: no context needed
    # Same bytes whatever was compressed before (here: the other messages, reversed).
    again = [compress_shared(msg, params) for msg in reversed(msgs)]
    assert again[::-1] == first
    assert [Deflater(params).compress(msg) for msg in msgs] == first


def test_broadcast_bytes_are_shared_by_every_subscriber() -> None:
    text = "broadcast payload " * 20
    params_a = negotiate(f"{PMD}; client_max_window_bits")
    params_b = negotiate(f"{PMD}; client_no_context_takeover")
    assert params_a is not None and params_b is not None
    assert params_a[1].variant_key == params_b[1].variant_key
    frame = encode_message(text, params_a[1])
    assert encode_message(text, Deflater(params_b[1])) == frame
    clients = [client_deflate(params_a[0]), client_deflate(params_b[0])]
    for client in clients:
        for other in ("x" * 100, text, "y" * 300):
            wire = encode_message(other, params_a[1]) + frame
            first, second = read_server_frames(wire, [client])
            assert bytes(first.data).decode() == other
            assert bytes(second.data).decode() == text


def test_encode_message_threshold_and_types() -> None:
    params = DeflateParams()
    short = "s" * (COMPRESS_THRESHOLD - 1)
    assert encode_message(short, params) == encode_frame(1, short.encode())
    assert encode_message(b"\x00" * 100, None) == encode_frame(2, b"\x00" * 100)
    wire = encode_message(b"\x00" * 100, params)
    assert wire[0] == 0xC2  # FIN, RSV1, binary
    [frame] = read_server_frames(wire, [client_deflate(f"{PMD}; {SNCT}")])
    assert (frame.opcode, bytes(frame.data)) == (WsOpcode.BINARY, b"\x00" * 100)
    assert encode_message("x" * 10, params, threshold=0)[0] == 0xC1


# --- Round trips with random fragmentation and chunking --------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=400), st.binary(max_size=400)), min_size=1,
                max_size=5),
       st.sampled_from([f"{PMD}", f"{PMD}; client_no_context_takeover",
                        f"{PMD}; client_max_window_bits=9"]),
       st.data())
def test_random_compressed_client_streams(msgs: list[str | bytes], offer: str,
                                          data: st.DataObject) -> None:
    factory = ClientPerMessageDeflateFactory(
        client_no_context_takeover="client_no" in offer,
        client_max_window_bits=9 if "=9" in offer else True)
    result = negotiate(offer)
    assert result is not None
    ext = client_deflate(result[0], factory)
    wire = bytearray()
    expected: list[object] = []
    for msg in msgs:
        raw = msg.encode() if isinstance(msg, str) else msg
        n = data.draw(st.integers(1, 4))
        pieces = [raw[len(raw) * i // n:len(raw) * (i + 1) // n] for i in range(n)]
        compress = data.draw(st.booleans())
        for i, piece in enumerate(pieces):
            opcode = WsOpcode.CONT if i else (
                WsOpcode.TEXT if isinstance(msg, str) else WsOpcode.BINARY)
            frame = Frame(opcode, piece, fin=i == n - 1)
            wire += frame.serialize(mask=True, extensions=[ext] if compress else [])
            if i == 0 and data.draw(st.booleans()):
                wire += Frame(WsOpcode.PING, b"p").serialize(mask=True)
                expected.append(Ping(b"p"))
        expected.append(TextMessage(msg) if isinstance(msg, str) else BinaryMessage(msg))
    # An uncompressed message does not touch the client's context: both sides agree.
    chunks = data.draw(st.lists(st.integers(0, len(wire)), max_size=10))
    parser = FrameParser(deflate=Deflater(result[1]))
    events = feed_all(parser, bytes(wire), chunks)
    assert [e for e in events if not isinstance(e, Ping)] == [
        e for e in expected if not isinstance(e, Ping)]
    assert len(events) == len(expected)


def test_large_random_payload_round_trip() -> None:
    payload = os.urandom(300_000)  # incompressible: deflate output is larger than input
    result = negotiate(PMD)
    assert result is not None
    ext = client_deflate(result[0])
    wire = Frame(WsOpcode.BINARY, payload).serialize(mask=True, extensions=[ext])
    parser = FrameParser(max_message_size=300_000, deflate=Deflater(result[1]))
    assert parser.feed(wire) == [BinaryMessage(payload)]
    [frame] = read_server_frames(encode_message(payload, result[1]), [ext])
    assert bytes(frame.data) == payload


# --- worth_compressing: skip what will not shrink (issue 10 item 3) ----------------------------


def test_worth_compressing_samples_large_payloads_only() -> None:
    assert worth_compressing(os.urandom(SAMPLE_FROM - 1))  # small: always (cheap either way)
    assert not worth_compressing(os.urandom(SAMPLE_FROM))  # random: will not shrink
    assert worth_compressing(b'{"price": 101.5, "symbol": "ACME"}' * 2000)
    assert worth_compressing(os.urandom(64) * 1000)  # repeats within the sample
