"""FrameParser and encoders against RFC 6455 §5 (framing), §7.4 (close codes), §8.1 (UTF-8)."""

from __future__ import annotations

import itertools
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Close, Frame
from websockets.frames import Opcode as WsOpcode

from livehub.errors import PayloadTooLarge, WebSocketError
from livehub.wire.websocket import (
    BinaryMessage,
    CloseReceived,
    FrameParser,
    Opcode,
    Ping,
    Pong,
    TextMessage,
    _unmask,
    encode_binary,
    encode_close,
    encode_frame,
    encode_ping,
    encode_pong,
    encode_text,
    is_valid_close_code,
)
from tests.wire.helpers import (
    close_code_of,
    feed_all,
    feed_bytewise,
    raw_frame,
    read_server_frames,
)

TEXT, BINARY, CONT, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10


# --- §5.2 base framing ------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70001])
def test_lengths_of_every_encoding_are_parsed(size: int) -> None:
    payload = os.urandom(size)
    wire = Frame(WsOpcode.BINARY, payload).serialize(mask=True)
    assert FrameParser().feed(wire) == [BinaryMessage(payload)]


def test_several_frames_in_one_chunk() -> None:
    wire = b"".join([
        Frame(WsOpcode.TEXT, b"one").serialize(mask=True),
        Frame(WsOpcode.BINARY, b"\x00two").serialize(mask=True),
        Frame(WsOpcode.PING, b"p").serialize(mask=True),
        Frame(WsOpcode.TEXT, "thrée".encode()).serialize(mask=True),
    ])
    assert FrameParser().feed(wire) == [
        TextMessage("one"), BinaryMessage(b"\x00two"), Ping(b"p"), TextMessage("thrée")]


def test_one_byte_at_a_time() -> None:
    wire = b"".join(Frame(WsOpcode.TEXT, ("x" * n).encode()).serialize(mask=True)
                    for n in (0, 5, 125, 126, 300, 65536))
    parser = FrameParser()
    events = feed_bytewise(parser, wire)
    assert events == [TextMessage("x" * n) for n in (0, 5, 125, 126, 300, 65536)]
    assert parser.buffered == 0


def test_partial_frame_is_held_back() -> None:
    wire = Frame(WsOpcode.TEXT, b"hello").serialize(mask=True)
    parser = FrameParser()
    assert parser.feed(wire[:-1]) == []
    assert parser.buffered == len(wire) - 1
    assert parser.feed(wire[-1:]) == [TextMessage("hello")]
    assert parser.buffered == 0


def test_input_may_be_a_bytearray() -> None:
    wire = bytearray(Frame(WsOpcode.BINARY, b"abc").serialize(mask=True))
    assert FrameParser().feed(wire) == [BinaryMessage(b"abc")]


@pytest.mark.parametrize(("length", "length_bytes"), [(0, 2), (125, 2), (126, 8), (65535, 8)])
def test_non_minimal_length_is_a_protocol_error(length: int, length_bytes: int) -> None:
    wire = raw_frame(BINARY, b"a" * length, length_bytes=length_bytes)
    assert close_code_of(FrameParser(max_message_size=1 << 20), wire) == 1002


def test_64_bit_length_with_high_bit_is_a_protocol_error() -> None:
    wire = bytes([0x82, 0x80 | 127]) + (1 << 63 | 70000).to_bytes(8, "big")
    assert close_code_of(FrameParser(max_message_size=1 << 62), wire) == 1002


@pytest.mark.parametrize("rsv", [0x40, 0x20, 0x10, 0x70])
def test_reserved_bits_without_extension_are_a_protocol_error(rsv: int) -> None:
    assert close_code_of(FrameParser(), raw_frame(TEXT, b"hi", rsv=rsv)) == 1002


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_reserved_opcodes_are_a_protocol_error(opcode: int) -> None:
    assert close_code_of(FrameParser(), raw_frame(opcode, b"")) == 1002


def test_violation_is_detected_on_the_first_two_bytes() -> None:
    # A reserved opcode with a 1 MiB payload announced: no need to wait for the payload.
    header = raw_frame(5, b"x" * 70000)[:2]
    assert close_code_of(FrameParser(), header) == 1002


def test_parser_stays_dead_after_an_error() -> None:
    parser = FrameParser()
    with pytest.raises(WebSocketError) as first:
        parser.feed(raw_frame(TEXT, b"x", masked=False))
    valid = Frame(WsOpcode.TEXT, b"ok").serialize(mask=True)
    with pytest.raises(WebSocketError) as again:
        parser.feed(valid)
    assert first.value.close_code == again.value.close_code == 1002
    assert again.value.message == first.value.message


# --- §5.3 client-to-server masking ------------------------------------------------------------


def test_unmasked_client_frame_is_a_protocol_error() -> None:
    assert close_code_of(FrameParser(), raw_frame(TEXT, b"hi", masked=False)) == 1002


def test_zero_mask_is_accepted() -> None:
    wire = raw_frame(TEXT, b"plain", mask=b"\0\0\0\0")
    assert wire.endswith(b"plain")
    assert FrameParser().feed(wire) == [TextMessage("plain")]


@given(st.binary(max_size=3000), st.binary(min_size=4, max_size=4))
def test_unmask_matches_per_byte_xor(data: bytes, mask: bytes) -> None:
    expected = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    assert _unmask(data, mask) == expected
    assert FrameParser(max_message_size=4000).feed(
        raw_frame(BINARY, data, mask=mask)) == [BinaryMessage(data)]


# --- §5.4 fragmentation -----------------------------------------------------------------------


def test_fragmented_text_and_binary_messages() -> None:
    wire = (raw_frame(TEXT, b"Hel", fin=False) + raw_frame(CONT, b"", fin=False)
            + raw_frame(CONT, b"lo") + raw_frame(BINARY, b"\x01", fin=False)
            + raw_frame(CONT, b"\x02"))
    assert FrameParser().feed(wire) == [TextMessage("Hello"), BinaryMessage(b"\x01\x02")]


def test_control_frames_may_be_interleaved_in_a_fragmented_message() -> None:
    wire = (raw_frame(TEXT, b"a", fin=False) + raw_frame(PING, b"1")
            + raw_frame(CONT, b"b", fin=False) + raw_frame(PONG, b"2") + raw_frame(CONT, b"c"))
    assert FrameParser().feed(wire) == [Ping(b"1"), Pong(b"2"), TextMessage("abc")]


def test_continuation_without_a_message_is_a_protocol_error() -> None:
    assert close_code_of(FrameParser(), raw_frame(CONT, b"x")) == 1002


def test_continuation_after_a_finished_message_is_a_protocol_error() -> None:
    wire = raw_frame(TEXT, b"a", fin=False) + raw_frame(CONT, b"b") + raw_frame(CONT, b"c")
    assert close_code_of(FrameParser(), wire) == 1002


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
def test_new_data_frame_inside_a_fragmented_message_is_a_protocol_error(opcode: int) -> None:
    wire = raw_frame(BINARY, b"a", fin=False) + raw_frame(opcode, b"b")
    assert close_code_of(FrameParser(), wire) == 1002


# --- §5.5 control frames ----------------------------------------------------------------------


def test_ping_and_pong_carry_their_payload() -> None:
    wire = raw_frame(PING, b"x" * 125) + raw_frame(PONG, b"")
    assert FrameParser().feed(wire) == [Ping(b"x" * 125), Pong(b"")]


@pytest.mark.parametrize("opcode", [CLOSE, PING, PONG])
def test_control_frame_over_125_bytes_is_a_protocol_error(opcode: int) -> None:
    assert close_code_of(FrameParser(), raw_frame(opcode, b"\x03\xe8" + b"x" * 124)) == 1002


@pytest.mark.parametrize("opcode", [CLOSE, PING, PONG])
def test_fragmented_control_frame_is_a_protocol_error(opcode: int) -> None:
    assert close_code_of(FrameParser(), raw_frame(opcode, b"", fin=False)) == 1002


def test_close_without_body_reports_1005() -> None:
    assert FrameParser().feed(raw_frame(CLOSE)) == [CloseReceived(1005, "")]


def test_close_with_code_and_reason() -> None:
    body = Close(1001, "bye ✓").serialize()
    assert FrameParser().feed(raw_frame(CLOSE, body)) == [CloseReceived(1001, "bye ✓")]


def test_close_with_one_byte_body_is_a_protocol_error() -> None:
    assert close_code_of(FrameParser(), raw_frame(CLOSE, b"\x03")) == 1002


def test_close_reason_must_be_utf8() -> None:
    assert close_code_of(FrameParser(), raw_frame(CLOSE, b"\x03\xe8\xff")) == 1007


def test_bytes_after_close_are_ignored() -> None:
    parser = FrameParser()
    wire = raw_frame(CLOSE, b"\x03\xe8") + raw_frame(TEXT, b"late") + b"\xff\xff garbage"
    assert parser.feed(wire) == [CloseReceived(1000, "")]
    assert parser.closed
    assert parser.feed(raw_frame(TEXT, b"later")) == []
    assert parser.buffered == 0


# --- §7.4 close codes -------------------------------------------------------------------------


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999,
                                  5000, 65535])
def test_invalid_close_codes_are_a_protocol_error(code: int) -> None:
    assert not is_valid_close_code(code)
    assert close_code_of(FrameParser(), raw_frame(CLOSE, code.to_bytes(2, "big"))) == 1002


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012,
                                  1013, 1014, 3000, 3999, 4000, 4999])
def test_valid_close_codes_are_reported(code: int) -> None:
    assert FrameParser().feed(raw_frame(CLOSE, code.to_bytes(2, "big") + b"r")) == [
        CloseReceived(code, "r")]


# --- §5.6 data frames, §8.1 UTF-8 -------------------------------------------------------------


@pytest.mark.parametrize("bad", [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
                                 b"ok\xe2\x82"])
def test_invalid_utf8_text_is_1007(bad: bytes) -> None:
    assert close_code_of(FrameParser(), raw_frame(TEXT, bad)) == 1007


def test_invalid_utf8_fails_fast_on_the_first_fragment() -> None:
    parser = FrameParser()
    with pytest.raises(WebSocketError) as exc:
        parser.feed(raw_frame(TEXT, b"ok \xce\xba\xff", fin=False))  # message not finished
    assert exc.value.close_code == 1007


def test_invalid_utf8_fails_fast_when_a_split_sequence_goes_wrong() -> None:
    parser = FrameParser()
    assert parser.feed(raw_frame(TEXT, b"\xe2\x82", fin=False)) == []  # valid prefix of €
    with pytest.raises(WebSocketError) as exc:
        parser.feed(raw_frame(CONT, b"(", fin=False))  # still not the end of the message
    assert exc.value.close_code == 1007


def test_sequence_split_across_fragments_is_valid() -> None:
    data = "€😀".encode()
    wire = b"".join(raw_frame(TEXT if i == 0 else CONT, data[i:i + 1], fin=i == len(data) - 1)
                    for i in range(len(data)))
    assert FrameParser().feed(wire) == [TextMessage("€😀")]


def test_message_ending_inside_a_sequence_is_1007() -> None:
    wire = raw_frame(TEXT, b"a", fin=False) + raw_frame(CONT, b"\xf0\x9f\x98")
    assert close_code_of(FrameParser(), wire) == 1007


def test_binary_messages_are_not_utf8_checked() -> None:
    assert FrameParser().feed(raw_frame(BINARY, b"\xff\xfe")) == [BinaryMessage(b"\xff\xfe")]


# --- §10.4 message size limit -----------------------------------------------------------------


def test_message_at_the_limit_is_accepted() -> None:
    assert FrameParser(max_message_size=10).feed(raw_frame(BINARY, b"x" * 10)) == [
        BinaryMessage(b"x" * 10)]


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
def test_small_frame_over_a_small_limit_is_1009(opcode: int) -> None:
    with pytest.raises(PayloadTooLarge) as exc:
        FrameParser(max_message_size=10).feed(raw_frame(opcode, b"x" * 11))
    assert exc.value.close_code == 1009


def test_oversized_frame_is_refused_from_its_header() -> None:
    header = raw_frame(BINARY, b"x" * 70000)[:14]  # header only, payload never sent
    with pytest.raises(PayloadTooLarge) as exc:
        FrameParser(max_message_size=65536).feed(header)
    assert exc.value.close_code == 1009


def test_oversized_fragmented_message_is_refused_at_the_crossing_fragment() -> None:
    parser = FrameParser(max_message_size=100)
    assert parser.feed(raw_frame(TEXT, b"a" * 60, fin=False)) == []
    with pytest.raises(PayloadTooLarge) as exc:
        parser.feed(raw_frame(CONT, b"a" * 41, fin=False)[:6])  # header of the 2nd fragment
    assert exc.value.close_code == 1009


def test_size_budget_resets_between_messages() -> None:
    parser = FrameParser(max_message_size=100)
    for _ in range(3):
        wire = raw_frame(TEXT, b"a" * 60, fin=False) + raw_frame(CONT, b"a" * 40)
        assert parser.feed(wire) == [TextMessage("a" * 100)]


def test_fragment_count_is_bounded() -> None:
    # 64 KiB allows 1024 frames per message: tiny or empty continuations cannot go on forever.
    parser = FrameParser(max_message_size=65536)
    wire = raw_frame(BINARY, b"ab", fin=False) + raw_frame(CONT, b"", fin=False) * 1022
    assert parser.feed(wire + raw_frame(CONT, b"cd")) == [BinaryMessage(b"abcd")]
    with pytest.raises(PayloadTooLarge, match="1024 fragments") as exc:
        parser.feed(wire + raw_frame(CONT, b"", fin=False) + raw_frame(CONT, b""))
    assert exc.value.close_code == 1009


def test_small_limits_still_allow_some_fragments() -> None:
    wire = b"".join(raw_frame(TEXT if i == 0 else CONT, b"a", fin=i == 63) for i in range(64))
    assert FrameParser(max_message_size=100).feed(wire) == [TextMessage("a" * 64)]
    assert close_code_of(FrameParser(max_message_size=100),
                         wire[:-7] + raw_frame(CONT, b"a", fin=False) + raw_frame(CONT, b"")) \
        == 1009


# --- §7.1.7 the events that preceded a violation ------------------------------------------------


def test_events_before_a_violation_are_returned_then_the_error() -> None:
    parser = FrameParser()
    wire = raw_frame(TEXT, b"one") + raw_frame(PING, b"p") + raw_frame(5, b"")
    assert parser.feed(wire + raw_frame(TEXT, b"never")) == [TextMessage("one"), Ping(b"p")]
    assert parser.error is not None and parser.error.close_code == 1002
    with pytest.raises(WebSocketError) as exc:
        parser.feed(b"")
    assert exc.value.close_code == 1002


def test_a_violation_alone_raises_at_once() -> None:
    parser = FrameParser()
    with pytest.raises(WebSocketError):
        parser.feed(raw_frame(5, b""))
    assert parser.error is not None


# --- §8.1 fail fast inside an incomplete frame -------------------------------------------------


@pytest.mark.parametrize("tail", [10, 200, 70000])
def test_invalid_utf8_fails_before_the_frame_is_complete(tail: int) -> None:
    wire = raw_frame(TEXT, "κόσμε".encode() + b"\xf4\x90\x80\x80" + b"x" * tail)
    assert close_code_of(FrameParser(), wire[:-tail]) == 1007


def test_invalid_utf8_fails_inside_an_incomplete_continuation() -> None:
    parser = FrameParser()
    assert parser.feed(raw_frame(TEXT, b"ok\xe2\x82", fin=False)) == []
    assert close_code_of(parser, raw_frame(CONT, b"(" + b"x" * 300)[:-300]) == 1007


def test_valid_utf8_split_anywhere_inside_frames_is_accepted() -> None:
    text = "ab€😀κόσμε" * 40
    for size in (len(text.encode()), 50):  # a long frame, then 50-byte fragments
        raw = text.encode()
        pieces = [raw[i:i + size] for i in range(0, len(raw), size)]
        wire = b"".join(raw_frame(TEXT if i == 0 else CONT, p, fin=i == len(pieces) - 1)
                        for i, p in enumerate(pieces))
        assert feed_bytewise(FrameParser(), wire) == [TextMessage(text)]
        assert feed_all(FrameParser(), wire, range(3, len(wire), 7)) == [TextMessage(text)]


def test_a_frame_peeked_then_completed_leaves_no_stale_peek_for_the_next() -> None:
    """Found by hypothesis: a continuation peeked, completed in the next feed, then the next
    fragment arriving alone in a third feed was checked with the first one's stale decoder."""
    raw = "00\x80\x80\x80\x80\x80".encode()
    pieces = [raw[len(raw) * i // 4:len(raw) * (i + 1) // 4] for i in range(4)]
    wire = b"".join(Frame(WsOpcode.CONT if i else WsOpcode.TEXT, p, fin=i == 3)
                    .serialize(mask=True) for i, p in enumerate(pieces))
    assert feed_all(FrameParser(), wire, [16, 18, 26]) == [TextMessage(raw.decode())]
    for cuts in itertools.combinations(range(1, len(wire)), 3):
        assert feed_all(FrameParser(), wire, cuts) == [TextMessage(raw.decode())], cuts


def test_binary_frames_are_not_peeked() -> None:
    parser = FrameParser()
    assert parser.feed(raw_frame(BINARY, b"\xff" * 300)[:-100]) == []
    assert parser.buffered > 0


# --- Round trips against an independent client (websockets) -----------------------------------

messages = st.lists(st.one_of(st.text(max_size=300), st.binary(max_size=300)),
                    min_size=1, max_size=6)


@settings(max_examples=150, deadline=None)
@given(messages, st.data())
def test_random_messages_fragments_and_chunks(msgs: list[str | bytes], data: st.DataObject) -> None:
    wire = bytearray()
    expected: list[object] = []
    for msg in msgs:
        raw = msg.encode() if isinstance(msg, str) else msg
        cuts = sorted(data.draw(st.sets(st.integers(0, len(raw)), max_size=4)))
        pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
        for i, piece in enumerate(pieces):
            opcode = WsOpcode.CONT if i else (
                WsOpcode.TEXT if isinstance(msg, str) else WsOpcode.BINARY)
            wire += Frame(opcode, piece, fin=i == len(pieces) - 1).serialize(mask=True)
            if data.draw(st.booleans()):
                ping = data.draw(st.binary(max_size=125))
                wire += Frame(WsOpcode.PING, ping).serialize(mask=True)
                expected.append(Ping(ping))
        expected.append(TextMessage(msg) if isinstance(msg, str) else BinaryMessage(msg))
    chunks = data.draw(st.lists(st.integers(0, len(wire)), max_size=20))
    # Control frames interleaved in a message come out before the message they interrupt.
    parsed = feed_all(FrameParser(), bytes(wire), chunks)
    assert sorted(map(repr, parsed)) == sorted(map(repr, expected))
    assert [e for e in parsed if not isinstance(e, Ping)] == [
        e for e in expected if not isinstance(e, Ping)]
    assert [e for e in parsed if isinstance(e, Ping)] == [
        e for e in expected if isinstance(e, Ping)]


# --- Encoders (server frames: §5.1 unmasked) --------------------------------------------------


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_encode_frame_header_lengths(size: int) -> None:
    payload = os.urandom(size)
    wire = encode_frame(Opcode.BINARY, payload)
    assert len(wire) == size + (2 if size < 126 else 4 if size < 65536 else 10)
    [frame] = read_server_frames(wire)
    assert (frame.opcode, frame.fin, frame.rsv1, bytes(frame.data)) == (
        WsOpcode.BINARY, True, False, payload)


def test_encode_frame_flags() -> None:
    [frame] = read_server_frames(encode_frame(Opcode.TEXT, b"x", fin=False))
    assert not frame.fin
    assert encode_frame(Opcode.TEXT, b"x", rsv1=True)[0] == 0xC1


@given(st.text(max_size=200_000))
@settings(max_examples=30, deadline=None)
def test_encode_text_is_read_by_websockets(text: str) -> None:
    [frame] = read_server_frames(encode_text(text))
    assert frame.opcode == WsOpcode.TEXT
    assert bytes(frame.data).decode() == text
    assert encode_text(text.encode()) == encode_text(text)


@given(st.binary(max_size=70_000))
@settings(max_examples=30, deadline=None)
def test_encode_binary_is_read_by_websockets(data: bytes) -> None:
    [frame] = read_server_frames(encode_binary(data))
    assert (frame.opcode, bytes(frame.data)) == (WsOpcode.BINARY, data)


def test_encode_ping_and_pong() -> None:
    ping, pong = read_server_frames(encode_ping(b"abc") + encode_pong(b"abc"))
    assert (ping.opcode, bytes(ping.data)) == (WsOpcode.PING, b"abc")
    assert (pong.opcode, bytes(pong.data)) == (WsOpcode.PONG, b"abc")
    assert read_server_frames(encode_ping())[0].data == b""


def test_control_frames_over_125_bytes_are_refused() -> None:
    with pytest.raises(ValueError, match="125"):
        encode_ping(b"x" * 126)
    with pytest.raises(ValueError, match="125"):
        encode_frame(Opcode.PONG, b"", fin=False)


def test_encode_close_is_read_by_websockets() -> None:
    [frame] = read_server_frames(encode_close(4001, "gone"))
    assert Close.parse(bytes(frame.data)) == Close(4001, "gone")
    assert read_server_frames(encode_close())[0].data == b"\x03\xe8"


@pytest.mark.parametrize("reason", ["a" * 200, "é" * 100, "€" * 60, "a" + "😀" * 40])
def test_encode_close_truncates_the_reason_on_a_character_boundary(reason: str) -> None:
    wire = encode_close(1000, reason)
    [frame] = read_server_frames(wire)
    assert len(frame.data) <= 125
    close = Close.parse(bytes(frame.data))  # websockets checks the UTF-8 and the code
    assert reason.startswith(close.reason)
    assert len(close.reason.encode()) > 123 - 4  # cut at most one character short
    assert FrameParser().feed(raw_frame(CLOSE, bytes(frame.data))) == [
        CloseReceived(1000, close.reason)]


def test_encode_close_1005_sends_an_empty_body() -> None:
    assert encode_close(1005) == b"\x88\x00"


@pytest.mark.parametrize("code", [999, 1004, 1006, 1015, 2000, 5000])
def test_encode_close_refuses_codes_that_may_not_be_sent(code: int) -> None:
    with pytest.raises(ValueError, match="may not be sent"):
        encode_close(code)
